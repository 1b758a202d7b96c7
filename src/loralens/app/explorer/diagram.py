"""The Explorer's diagram, W (frozen) + ΔW = B·A = W′, as an SVG string. Pure Python (no numpy, no NiceGUI)."""

from __future__ import annotations

import math

from loralens.app.palette import COLORS, HATCH
from loralens.core.units import significant

# Colours (Okabe–Ito): frozen grey, B vermillion, A blue, W' bluish green. Shapes differ too (hatching on the
# frozen W, a snowflake label), so the roles do not depend on telling red from green.
_GREY, _B, _A, _MERGED = COLORS["frozen"], COLORS["b"], COLORS["a"], COLORS["merged"]
_BOX = 150.0  # the longer side of W, in SVG units
_MIN_SIDE = 18.0  # the shorter side of W never drawn thinner than this (extreme aspect ratios)


def rank_thickness(r: int, d: int, k: int, side: float) -> float:
    """Width of B (or height of A) in SVG units: a log scale from r = 1 to r = min(d, k).

    To scale, r = 8 of 4096 would be 0.3 units wide; on log(1 + r) / log(1 + min(d, k)) it is legible and still
    grows with r, and r = min(d, k) is exactly as wide as the side it multiplies.
    """
    m = min(d, k)
    if m <= 1 or r >= m:
        return side
    return max(2.0, min(side, side * math.log1p(r) / math.log1p(m)))


def _w_box(d: int, k: int) -> tuple[float, float]:
    """(width for k, height for d) of W, aspect ratio kept unless extreme."""
    if d >= k:
        return max(_MIN_SIDE, _BOX * k / d), _BOX
    return _BOX, max(_MIN_SIDE, _BOX * d / k)


def diagram_svg(d: int, k: int, r: int, s: float) -> str:
    """W (frozen) + ΔW = B·A = W′, with dimension labels, as an SVG string that scales to its container."""
    w_w, w_h = _w_box(d, k)
    t_b = rank_thickness(r, d, k, w_w)  # B's width (its r side)
    t_a = rank_thickness(r, d, k, w_h)  # A's height (its r side)
    gap, top, left = 46.0, 34.0, 16.0
    x_w = left
    x_plus = x_w + w_w + gap / 2
    x_b = x_w + w_w + gap
    x_a = x_b + t_b + 8
    x_eq = x_a + w_w + gap / 2
    x_m = x_a + w_w + gap
    width = x_m + w_w + 14
    height = top + w_h + 48
    y_a = top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="100%" '
        f'style="max-width:{width * 1.6:.0f}px;max-height:340px" role="img" data-testid="diagram" '
        f'aria-label="W ({d} by {k}, frozen) plus B ({d} by {r}) times A ({r} by {k}) equals W prime">',
        "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"" + HATCH + "\" "
        "stroke-width=\"2\"/></pattern></defs>",
        "<style>text{font:13px system-ui,sans-serif;fill:#222}.t{font-weight:600;font-size:15px}"
        ".op{font-size:20px;font-weight:600}.dim{fill:#444}</style>",
        # W, frozen
        _rect(x_w, top, w_w, w_h, _GREY, "url(#hatch)", "W"),
        _text(x_w + w_w / 2, top - 8, "❄ W (frozen)", "t", "middle"),
        _dims(x_w, top, w_w, w_h, d, k),
        _text(x_plus, top + w_h / 2 + 6, "+", "op", "middle"),
        # B (d x r) and A (r x k)
        _rect(x_b, top, t_b, w_h, _B, _B, "B"),
        _text(x_b + t_b / 2, top + w_h + 14, f"r={r:,}", "dim", "middle"),
        _rect(x_a, y_a, w_w, t_a, _A, _A, "A"),
        _text(x_a + w_w / 2, y_a + t_a + 13, f"k={k:,}", "dim", "middle"),
        _text(x_a + w_w + 3, y_a + t_a / 2 + 4, f"r={r:,}", "dim", "start"),
        _text((x_b + x_a + w_w) / 2, top - 8, f"ΔW = {significant(s, 3)}·B·A", "t", "middle"),
        _text(x_b + t_b / 2, top + w_h + 28, "B (trainable)", "dim", "middle"),
        _text(x_a + w_w / 2, y_a + t_a + 27, "A (trainable)", "dim", "start" if t_a > w_h - 40 else "middle"),
        _text(x_eq, top + w_h / 2 + 6, "=", "op", "middle"),
        # W'
        _rect(x_m, top, w_w, w_h, _MERGED, _MERGED, "W′", opacity=0.85),
        _text(x_m + w_w / 2, top - 8, "W′ = W + ΔW", "t", "middle"),
        _dims(x_m, top, w_w, w_h, d, k),
        "</svg>",
    ]
    return "".join(parts)


def _rect(x: float, y: float, w: float, h: float, stroke: str, fill: str, title: str, opacity: float = 1.0) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" fill-opacity="{opacity}" '
        f'stroke="{stroke}" stroke-width="1.5" rx="2"><title>{title}</title></rect>'
    )


def _text(x: float, y: float, text: str, cls: str, anchor: str, rotate: bool = False) -> str:
    transform = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    if rotate:
        anchor = "middle"
    return f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}"{transform}>{text}</text>'


def _dims(x: float, y: float, w: float, h: float, d: int, k: int) -> str:
    return _text(x + w / 2, y + h + 14, f"k={k:,}", "dim", "middle") + _text(
        x - 3, y + h / 2, f"d={d:,}", "dim", "end", rotate=True
    )
