"""How numbers are written for people, once: significant digits, percentages, counts, bytes and text tables.

Pure Python (no numpy): the Explorer's view model, the CLI and every page write numbers through these, so the
same count reads the same everywhere, and the browser Explorer reproduces them from golden vectors.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from fractions import Fraction

KiB, MiB, GiB, TiB = 2**10, 2**20, 2**30, 2**40


def significant(value: float, digits: int = 2) -> str:
    """``value`` rounded to ``digits`` significant digits, as plain decimal text (0.39, 12, 0.0061).

    Rounds as CPython's ``round`` does (round-half-even on the binary value), which the browser module copies.
    """
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    rounded = round(value, decimals)
    # rounding can add a digit (9.96 -> 10.0): recompute the decimals for the rounded value
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded)))) if rounded else decimals
    return f"{rounded:.{decimals}f}"


def percent(share: Fraction | float, digits: int = 2) -> str:
    """A share as a percentage with ``digits`` significant digits: Fraction(1, 256) -> '0.39%'."""
    return significant(float(share) * 100, digits) + "%"


def share_percent(share: Fraction, digits: int = 2) -> str:
    """An exact share as a percentage with at least ``digits`` significant digits, never rounded to '0%' or
    '100%' unless it is exactly 0 or 1: Fraction(1, 256) -> '0.39%', 1 - Fraction(1, 2048) -> '99.95%' (3 digits)."""
    value = float(share) * 100
    text = significant(value, digits)
    while digits < 17 and Fraction(text) in (0, 100) and Fraction(share) * 100 != Fraction(text):
        digits += 1
        text = significant(value, digits)
    return text + "%"


def short_count(n: float) -> str:
    """A count in K/M/B/T with 3 significant digits: 16777216 -> '16.8M', 65536 -> '65.5K', 512 -> '512'."""
    rounded = float(f"{n:.3g}")  # choose the unit after rounding: 999,999,999 is '1.00B', not '1000M'
    for size, unit in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if abs(rounded) >= size:
            return significant(n / size, 3) + unit
    return f"{n:g}"


def binary_bytes(n: float) -> str:
    """Memory in binary units with one decimal: 37748736 -> '36.0 MiB'; under 1 KiB, whole bytes."""
    for size, unit in ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if abs(n) >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:.0f} B"


def decimal_bytes(n: float) -> str:
    """A file size in decimal units with 3 significant digits, as file managers show it: '3.21 MB'."""
    for size, unit in ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "kB")):
        if abs(n) >= size:
            return f"{significant(n / size, 3)} {unit}"
    return f"{n:.0f} B"


def gib(n: float) -> float:
    """Bytes in GiB (2**30)."""
    return n / GiB


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    """Aligned columns under a header and a dashed rule; columns in ``right`` are right-aligned (numbers)."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def label_table(rows: Sequence[tuple[str, str]]) -> str:
    """``label  value`` lines with the values aligned (a summary, no header)."""
    width = max((len(label) for label, _ in rows), default=0)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


__all__ = ["GiB", "KiB", "MiB", "TiB", "binary_bytes", "decimal_bytes", "gib", "label_table", "percent",
           "share_percent", "short_count", "significant", "text_table"]
