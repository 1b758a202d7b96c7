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
    low_open: bool = False  # low itself is out of range (a learning rate > 0)


def _clamp(param: Param, value: float) -> tuple[float, str | None]:
    if param.low_open and param.low is not None and value <= param.low:
        return param.default, f"must be greater than {param.low:g}; using {param.default:g}"
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


#: Every page takes ``embed``: 1 hides the header so that the page fits a course site's iframe.
EMBED = Param("embed", bool, False)


@dataclass(frozen=True)
class PageQuery:
    """What a page's URL asks for: valid values for its schema, the embed flag, and one message per problem."""

    values: dict[str, Any]
    embed: bool
    messages: list[str]


def read_query(schema: Sequence[Param], query: Mapping[str, str]) -> PageQuery:
    """Parse a page's query: its own parameters, ``embed``, and a message for each parameter it does not read
    (a typo in a shared link is reported, not silently ignored)."""
    params = (*schema, EMBED)
    values, messages = parse_query(params, query)
    known = {p.name for p in params}
    reads = ", ".join(p.name for p in params)
    messages += [f"URL parameter {name}: not used by this page (it reads {reads}); ignored"
                 for name in query if name not in known]
    embed = bool(values.pop(EMBED.name))
    return PageQuery(values, embed, messages)


def embed_of(query: Mapping[str, str]) -> bool:
    """The embed flag alone (a bad value reads as False; ``read_query`` reports it)."""
    return bool(parse_value(EMBED, str(query.get(EMBED.name, "0")))[0])


def page_url(path: str, query: str = "", embed: bool = False) -> str:
    """``path?query``, with ``embed=1`` added when the page is embedded (so a link never leaves embed mode)."""
    parts = [part for part in (query, "embed=1" if embed else "") if part]
    return path + ("?" + "&".join(parts) if parts else "")
