"""The Explorer's diagram, W (frozen) + ΔW = B·A = W′, as plain layout data (rectangles and labels).

Pure Python (no numpy, no NiceGUI). The browser module (web/explorer.js) computes the same layout with the same
floating-point operations in the same order and draws it as SVG; the golden vectors compare the two exactly.

To scale: W keeps its aspect ratio d : k (its shorter side never thinner than MIN_SIDE), B's width is r/k of W's
width and A's height r/d of W's height. A factor thinner than MIN_RANK_SIDE is drawn MIN_RANK_SIDE thick so that
it stays visible, and the scale note says so.
"""

from __future__ import annotations

from loralens.core.units import significant

LONGER_SIDE = 110.0  # W's longer side, in SVG units
MIN_SIDE = 16.0  # W's shorter side never drawn thinner (extreme aspect ratios)
MIN_RANK_SIDE = 3.0  # B's width and A's height never drawn thinner
LEFT, GAP, BA_GAP, RIGHT, TOP, BOTTOM = 26.0, 30.0, 6.0, 10.0, 24.0, 34.0
SLOT_MIN = 100.0  # each of the three columns at least this wide: room for its title
ROW_BUDGET = 330.0  # the three slots (less the B-A gap) within this: labels stay >= 11 px in a 400-px-wide frame


def _w_box(d: int, k: int) -> tuple[float, float]:
    """(width for k, height for d) of W, aspect kept unless extreme."""
    if d >= k:
        return max(MIN_SIDE, LONGER_SIDE * k / d), LONGER_SIDE
    return LONGER_SIDE, max(MIN_SIDE, LONGER_SIDE * d / k)


def diagram_layout(d: int, k: int, r: int, s: float) -> dict:
    """Rectangles and labels of the diagram for a d x k layer with a rank-r LoRA and scaling s.

    Three slots, W | B·A | W′, each at least SLOT_MIN wide so that the titles never overlap, with the shapes
    centred in them.
    """
    w_w, w_h = _w_box(d, k)
    b_share = r / k  # B's width against W's: r columns against k
    a_share = r / d  # A's height against W's: r rows against d
    # the widest W for which the three slots fit the budget (W, B and A in theirs; a slot at least SLOT_MIN)
    widest = ROW_BUDGET / (3 + b_share)
    if widest < SLOT_MIN:
        widest = (ROW_BUDGET - 2 * SLOT_MIN) / (1 + b_share)
    if w_w > widest:  # B nearly as wide as W: shrink the whole picture, not the labels
        shrink = widest / w_w
        w_w, w_h = w_w * shrink, w_h * shrink
    b_true, a_true = w_w * b_share, w_h * a_share
    t_b, t_a = max(MIN_RANK_SIDE, b_true), max(MIN_RANK_SIDE, a_true)
    slot_w = max(SLOT_MIN, w_w)
    slot_ba = max(SLOT_MIN, t_b + BA_GAP + w_w)
    x_slot_ba = LEFT + slot_w + GAP
    x_slot_m = x_slot_ba + slot_ba + GAP
    x_w = LEFT + (slot_w - w_w) / 2
    x_b = x_slot_ba + (slot_ba - (t_b + BA_GAP + w_w)) / 2
    x_a = x_b + t_b + BA_GAP
    x_m = x_slot_m + (slot_w - w_w) / 2
    below = TOP + w_h + 14
    rects = [
        {"name": "W", "x": x_w, "y": TOP, "w": w_w, "h": w_h},
        {"name": "B", "x": x_b, "y": TOP, "w": t_b, "h": w_h},
        {"name": "A", "x": x_a, "y": TOP, "w": w_w, "h": t_a},
        {"name": "W′", "x": x_m, "y": TOP, "w": w_w, "h": w_h},
    ]
    labels = [
        _label("❄ W (frozen)", LEFT + slot_w / 2, TOP - 8, "t"),
        _label(f"k={k:,}", x_w + w_w / 2, below, "dim"),
        _label(f"d={d:,}", x_w - 5, TOP + w_h / 2, "dim", rotate=True),
        _label("+", x_slot_ba - GAP / 2, TOP + w_h / 2 + 7, "op"),
        _label(f"ΔW = {significant(s, 3)}·B·A", x_slot_ba + slot_ba / 2, TOP - 8, "t"),
        _label(f"r={r:,}", x_b + t_b / 2, below, "dim"),
        _label("B", x_b + t_b / 2, below + 14, "dim"),
        _label(f"k={k:,}", x_a + w_w / 2, TOP + t_a + 14, "dim"),
        _label(f"A (r={r:,})", x_a + w_w / 2, TOP + t_a + 28, "dim"),
        _label("=", x_slot_m - GAP / 2, TOP + w_h / 2 + 7, "op"),
        _label("W′ = W + ΔW", x_slot_m + slot_w / 2, TOP - 8, "t"),
        _label(f"{d:,}×{k:,}", x_m + w_w / 2, below, "dim"),
    ]
    return {
        "width": x_slot_m + slot_w + RIGHT,
        "height": TOP + w_h + BOTTOM,
        "rects": rects,
        "labels": labels,
        "clamped": b_true < MIN_RANK_SIDE or a_true < MIN_RANK_SIDE,
        "note": scale_note(d, k, r, b_true, a_true),
    }


def _label(text: str, x: float, y: float, cls: str, anchor: str = "middle", rotate: bool = False) -> dict:
    return {"text": text, "x": x, "y": y, "cls": cls, "anchor": anchor, "rotate": rotate}


def scale_note(d: int, k: int, r: int, b_true: float, a_true: float) -> str:
    """What is to scale in the diagram, and which factor is drawn thicker than its scale."""
    note = f"To scale: B is r/k = {r:,}/{k:,} of W's width, A is r/d = {r:,}/{d:,} of its height."
    thin = []
    if b_true < MIN_RANK_SIDE:
        thin.append(f"B {significant(b_true, 2)} units wide")
    if a_true < MIN_RANK_SIDE:
        thin.append(f"A {significant(a_true, 2)} units high")
    if thin:
        note += f" That is {' and '.join(thin)} (W is {LONGER_SIDE:g}): drawn {MIN_RANK_SIDE:g} thick to stay visible."
    return note
