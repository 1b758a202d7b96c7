"""Checks shared by every entry point: one exact message per mistake, naming the parameter."""

from __future__ import annotations

import math
from numbers import Integral, Real

from loralens.errors import InvalidParameterError


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int, or raise InvalidParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        if isinstance(value, Real) and float(value).is_integer():
            value = int(value)
        else:
            raise InvalidParameterError(f"must be a whole number, got {value!r}", where=name)
    value = int(value)
    if low is not None and value < low or high is not None and value > high:
        raise InvalidParameterError(f"must be {_range_text(low, high)}, got {value:,}", where=name)
    return value


def check_float(
    name: str, value: object, low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> float:
    """Return ``value`` as a finite float in [low, high] (or (low, high] with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise InvalidParameterError(f"must be a finite number, got {value!r}", where=name)
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or high is not None and value > high:
        parts = [] if low is None else [f"greater than {low:g}" if low_open else f"at least {low:g}"]
        parts += [] if high is None else [f"at most {high:g}"]
        raise InvalidParameterError(f"must be {' and '.join(parts)}, got {value:g}", where=name)
    return value


def _range_text(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"from {low:,} to {high:,}"
    if low is not None:
        return f"at least {low:,}"
    return f"at most {high:,}"
