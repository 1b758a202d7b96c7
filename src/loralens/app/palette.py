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
#: memory breakdown stacks
MEMORY_SERIES = {"weights": BLUE, "gradients": ORANGE, "optimizer": PURPLE, "activations": GREEN, "overhead": GREY}
#: signed values: blue negative, near-white zero, orange-vermillion positive
DIVERGING = (BLUE, SKY, "#f7f7f7", ORANGE, VERMILLION)
#: unsigned magnitudes: light to dark blue
SEQUENTIAL = ("#f2f6fa", SKY, BLUE, "#08306b")
#: [0, 1] similarities (viridis' ends and middle: monotone in lightness, readable in grey scale)
VIRIDIS = ("#440154", "#21918c", "#fde725")
HATCH = "#bdbdbd"  # the frozen W's hatching in the diagram

__all__ = ["COLORS", "DIVERGING", "MEMORY_SERIES", "SEQUENTIAL", "SERIES", "VIRIDIS"]
