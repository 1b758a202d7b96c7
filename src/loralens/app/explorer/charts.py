"""The Explorer's bars and growth charts as plain data; web/explorer.js draws them as its own SVG.

Pure Python (no numpy, no NiceGUI). Every number here is either an exact integer count or a float computed with
the same operations the browser module uses, so the golden vectors compare them exactly.
"""

from __future__ import annotations

from fractions import Fraction

from loralens.core.counting import LayerCount
from loralens.core.units import share_percent

MAX_ZOOM_EXPONENT = 12
INSET_FROM_EXPONENT = 2  # magnify when LoRA is at most 1% of full: a thinner bar is hard to see on a linear scale


def bars(count: LayerCount) -> dict:
    """Linear bars (to scale) of full d·k and LoRA r(d+k), and a magnified inset for a tiny LoRA share.

    The inset magnifies by 10**n, the largest power of ten at which the LoRA bar still fits the inset
    (lora·10**n <= full, in exact integers), so the LoRA bar fills 10-100% of it.
    """
    top = max(count.full, count.lora)
    n = 0
    while n < MAX_ZOOM_EXPONENT and count.lora * 10 ** (n + 1) <= count.full:
        n += 1
    inset = None
    if n >= INSET_FROM_EXPONENT:
        zoom = 10**n
        inset = {
            "zoom": zoom,
            "lora": count.lora * zoom / count.full,
            "caption": f"magnified ×{zoom:,}: the first {_decimal_power(2 - n)}% of the full bar",
        }
    return {
        "full": count.full / top,
        "lora": count.lora / top,
        "full_label": f"full d·k  {count.full:,}",
        "lora_label": f"LoRA r(d+k)  {count.lora:,} ({share_percent(count.share)})",
        "inset": inset,
    }


def _decimal_power(exponent: int) -> str:
    """10**exponent as plain decimal text: 2 -> '100', 0 -> '1', -2 -> '0.01'."""
    return str(Fraction(10) ** exponent) if exponent >= 0 else "0." + "0" * (-exponent - 1) + "1"


def dims_along(d: int) -> list[int]:
    """d values from 16 to 65,536 (powers of two) plus the current d."""
    return sorted({2**e for e in range(4, 17)} | {d})


def growth_with_d(count: LayerCount) -> dict:
    """Parameters against d with k/d fixed: full grows as d², LoRA as d. Points are (d, full) and (d, lora)."""
    ratio = count.k / count.d
    xs = dims_along(count.d)
    ks = [max(1, round(x * ratio)) for x in xs]
    return {
        "full": [[x, x * k] for x, k in zip(xs, ks)],
        "lora": [[x, count.r * (x + k)] for x, k in zip(xs, ks)],
        "you": [count.d, count.full, count.lora],
        "legend": ["full d·k (quadratic)", f"LoRA r={count.r:,} (linear)"],
    }


def growth_with_r(count: LayerCount) -> dict:
    """Parameters against r: LoRA's line crosses full fine-tuning at the break-even rank dk/(d+k)."""
    m = min(count.d, count.k)
    ranks = sorted({1, count.r, m, *[max(1, round(m * i / 40)) for i in range(41)]})
    be = count.break_even
    be_text = f"{int(be):,}" if be.denominator == 1 else f"{float(be):,.1f}"
    return {
        "lora": [[r, r * (count.d + count.k)] for r in ranks],
        "full": count.full,
        "max_r": m,
        "break_even": float(be),
        "break_even_label": f"break-even {be_text}",
        "you": [count.r, count.lora],
    }


def tick_label(exponent: int) -> str:
    """The label of 10**exponent on a log axis: 1, 10, 100, 1K, 10K, ..., 1M, 1B, 1T, 10T."""
    for power, unit in ((12, "T"), (9, "B"), (6, "M"), (3, "K")):
        if exponent >= power:
            return f"{10 ** (exponent - power)}{unit}"
    return f"{10**exponent}"
