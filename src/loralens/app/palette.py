"""Every colour the app draws with, once. Pure data (no NiceGUI), so view modules and the browser module agree.

The Okabe–Ito palette (Okabe & Ito 2008) stays apart for the common colour-vision deficiencies; each role keeps
one colour everywhere, so that "B is vermillion" holds on every page and chart.
"""

from __future__ import annotations

# the Okabe–Ito colours by name
BLACK = "#000000"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#9e9e9e"  # frozen weights: neutral, not a data colour
WINE = "#882255"  # Paul Tol's wine: dark, apart from the Okabe–Ito colours in lightness and for colour-blind readers

#: role -> colour: what a colour means on every page
COLORS = {
    "frozen": GREY,
    "b": VERMILLION,
    "a": BLUE,
    "merged": GREEN,
    "delta": PURPLE,
    "full": ORANGE,
    "lora": BLUE,
    "warn": "#B00020",  # error text: dark red with 7:1 contrast on white
}
#: series in order, for charts with several lines of equal standing
SERIES = (ORANGE, SKY, GREEN, BLUE, VERMILLION, PURPLE, BLACK, YELLOW)
#: up to five series of equal standing in one chart: every pair differs by >= 8 in CIELAB lightness (grey scale)
#: and by >= 20 in ΔE under simulated deuteranopia and protanopia (tests/app/labs/test_colours.py)
CATEGORICAL = (BLUE, ORANGE, GREEN, BLACK, WINE)
#: ordered series (a sweep of ranks): viridis from dark to light, monotone in lightness (readable in grey scale)
ORDERED = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58")
#: memory breakdown stacks
MEMORY_SERIES = {"weights": BLUE, "gradients": ORANGE, "optimizer": PURPLE, "activations": GREEN, "overhead": GREY}
#: signed values: blue negative, near-white zero, orange-vermillion positive
DIVERGING = (BLUE, SKY, "#f7f7f7", ORANGE, VERMILLION)
#: unsigned magnitudes: light to dark blue
SEQUENTIAL = ("#f2f6fa", SKY, BLUE, "#08306b")
#: [0, 1] similarities (viridis' ends and middle: monotone in lightness, readable in grey scale)
VIRIDIS = ("#440154", "#21918c", "#fde725")
HATCH = "#bdbdbd"  # the frozen W's hatching in the diagram

__all__ = ["BLACK", "CATEGORICAL", "COLORS", "DIVERGING", "MEMORY_SERIES", "ORDERED", "SEQUENTIAL", "SERIES", "VIRIDIS"]
