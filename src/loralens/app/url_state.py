"""Page state <-> URL query parameters, through a declared schema.

Every page declares its parameters once (name, type, default, range); ``parse_query`` turns a query string
into valid values plus one message per value it had to clamp or replace, and ``to_query`` writes values back,
so that a shared link reproduces the exact view. Pure Python: no NiceGUI import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One URL parameter: ``kind`` is int, float, bool or str; ``choices`` limits a str."""

    name: str
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None


def _clamp(param: Param, value: float) -> tuple[float, str | None]:
    if param.low is not None and value < param.low:
        return param.low, f"must be at least {param.low:g}; using {param.low:g}"
    if param.high is not None and value > param.high:
        return param.high, f"must be at most {param.high:g}; using {param.high:g}"
    return value, None


def parse_value(param: Param, text: str) -> tuple[Any, str | None]:
    """One parameter's value from its text, and a message when the text was not used as given."""
    text = text.strip()
    if param.kind is bool:
        if text.lower() in TRUE_WORDS:
            return True, None
        if text.lower() in FALSE_WORDS:
            return False, None
        return param.default, f"expected true or false, got {text!r}; using {str(param.default).lower()}"
    if param.kind is str:
        if param.choices is None or text in param.choices:
            return text, None
        return param.default, f"expected one of {', '.join(param.choices)}, got {text!r}; using {param.default}"
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        return param.default, f"expected a number, got {text!r}; using {param.default:g}"
    if param.kind is int:
        rounded = round(number)
        clamped, note = _clamp(param, rounded)
        if note is None and rounded != number:
            note = f"must be a whole number; using {int(clamped)}"
        return int(clamped), note
    clamped, note = _clamp(param, number)
    return float(clamped), note


def parse_query(schema: Sequence[Param], query: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Values for every parameter of ``schema`` (defaults where absent) and messages naming each bad one."""
    values: dict[str, Any] = {}
    messages: list[str] = []
    for param in schema:
        if param.name not in query:
            values[param.name] = param.default
            continue
        values[param.name], note = parse_value(param, str(query[param.name]))
        if note:
            messages.append(f"URL parameter {param.name}: {note}")
    return values, messages


def format_value(value: Any) -> str:
    """A value as it is written in a URL: true/false, integers without '.0', floats as short as exact."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_query(schema: Sequence[Param], values: Mapping[str, Any]) -> str:
    """The query string (without '?') for ``values``, in schema order."""
    return urlencode({p.name: format_value(values[p.name]) for p in schema if p.name in values})
