"""Parse and validate a safetensors header exactly as the reference ``safetensors`` package (0.8) does.

The reference is Rust: serde_json into ``{"__metadata__": {str: str} | null, name: TensorInfo}`` then
``Metadata::validate``. Python's json is more lenient, so its results are checked against serde's rules:

- JSON: no NaN/Infinity; numbers serde's float parser finds out of range are refused (its own algorithm, below,
  not Python's, which differs near 1.8e308); no lone surrogate escapes; at most 127 nested levels.
- duplicate keys: a duplicate ``__metadata__`` or a duplicate dtype/shape/data_offsets inside an entry is an
  error; a duplicate tensor name or metadata key keeps the last (every duplicate entry must still be well-typed).
- an entry is an object (unknown keys ignored) or a 3-element array [dtype, shape, data_offsets]; a dtype is a
  name or ``{name: null}``; shape and offsets are integers in [0, 2**64).
- the data is covered exactly: sorted by offsets, tensors follow each other from 0 with no gap or overlap and
  the last one ends at the end of the file; shape x bits must not overflow 64 bits and must fill whole bytes.

One deliberate difference: a header of more than MAX_OBJECTS JSON objects is refused while it is parsed, so a
hostile 100 MB header cannot make gigabytes of Python objects.
"""

from __future__ import annotations

import gc
import json
import math
import re
from dataclasses import dataclass

from loralens.errors import AdapterError

MAX_HEADER = 100_000_000  # the reference's limit on the header length
MAX_DEPTH = 127  # serde_json refuses 128 nested arrays/objects
MAX_OBJECTS = 250_000  # our own guard (the reference has none): one object per tensor, ~750 bytes of memory each
U64 = (1 << 64) - 1
# Every dtype the reference knows, in its order (the writer sorts by it), with the bits per element.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32,
    "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
_POW10 = [float(f"1e{i}") for i in range(309)]
_SURROGATE_ESCAPE = re.compile(r"\\+u[dD][89a-fA-F]")  # an odd run of backslashes makes it an escape
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Entry:
    """One tensor as the header gives it; offsets are relative to the data."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


class _Refused(Exception):
    """A JSON detail the reference refuses, raised from inside json.loads."""


class _TooMany(Exception):
    """More than MAX_OBJECTS objects, raised from inside json.loads."""


class _Obj(list):
    """A JSON object kept as its (key, value) pairs, duplicates included."""


class _Num:
    """A JSON number that is not an integer in [0, 2**64): valid JSON, never a valid shape or offset."""

    __slots__ = ("literal",)

    def __init__(self, literal: str) -> None:
        self.literal = literal if len(literal) <= 24 else literal[:21] + "..."


def element_count(shape: tuple[int, ...] | list[int]) -> int | None:
    """The product of ``shape``, or None if it overflows 64 bits, folded left like the reference (so
    [2**40, 2**40, 0] overflows before it reaches the 0)."""
    count = 1
    for n in shape:
        count *= n
        if count > U64:
            return None
        if count == 0:
            break  # stays 0
    return count


def nbytes(dtype: str, shape: tuple[int, ...] | list[int]) -> int | None:
    """Bytes for ``shape`` of ``dtype``, or None where the reference refuses it (64-bit overflow, partial byte)."""
    count = element_count(shape)
    bits = None if count is None else count * DTYPE_BITS[dtype]
    return bits // 8 if bits is not None and bits <= U64 and bits % 8 == 0 else None


def parse_header(text: memoryview, data_size: int, label: str) -> tuple[list[Entry], dict[str, str]]:
    """The validated tensors (header order, last duplicate wins) and metadata, or AdapterError naming the fault."""
    enabled = gc.isenabled()
    gc.disable()  # parsing makes many small containers and no cycles; the collector would run over them again and again
    try:
        return _parse(text, data_size, label)
    finally:
        if enabled:
            gc.enable()


def _parse(text: memoryview, data_size: int, label: str) -> tuple[list[Entry], dict[str, str]]:
    raw = _decode(text, label)
    if not isinstance(raw, _Obj):
        raise AdapterError(f"header is not a JSON object, got {_show(raw)}", where=label)
    metadata: dict[str, str] | None = None
    seen_metadata = False
    entries: dict[str, Entry] = {}
    for name, value in raw:
        if name == "__metadata__":
            if seen_metadata:
                raise AdapterError("header has __metadata__ twice", where=label)
            seen_metadata, metadata = True, _metadata(value, label)
        else:
            entries[name] = _entry(name, value, label)  # a repeated name keeps the last, as the reference does
    _check_layout(list(entries.values()), data_size, label)
    return list(entries.values()), metadata or {}


def tensor_where(label: str, name: str) -> str:
    """``label: name``; a name that is empty or not printable is quoted so the message stays one line."""
    return f"{label}: {name}" if name.isprintable() and name else f"{label}: {name!r}"


# --- JSON, held to serde_json's rules ---------------------------------------------------------------------------


def _decode(text: memoryview, label: str) -> object:
    try:
        string = str(text, "utf-8")
    except UnicodeDecodeError as error:
        raise AdapterError(f"header is not UTF-8 ({error.reason} at byte {error.start})", where=label) from None
    objects = 0

    def pairs(items: list[tuple[str, object]]) -> _Obj:
        nonlocal objects
        objects += 1
        if objects > MAX_OBJECTS:  # stop before a hostile header fills memory with Python objects
            raise _TooMany
        return _Obj(items)

    decoder = json.JSONDecoder(object_pairs_hook=pairs, parse_int=_integer, parse_float=_float,
                               parse_constant=_constant)
    try:
        value = decoder.decode(string)
    except _Refused as error:
        raise AdapterError(f"header is not JSON the reference accepts ({error})", where=label) from None
    except _TooMany:
        raise AdapterError(f"header has more than {MAX_OBJECTS:,} JSON objects (one per tensor): over loralens' "
                           "limit", where=label) from None
    except RecursionError:
        raise AdapterError(f"header is nested deeper than {MAX_DEPTH} levels", where=label) from None
    except MemoryError:
        raise AdapterError("header is too large to parse in memory", where=label) from None
    except ValueError as error:
        raise AdapterError(f"header is not JSON ({error})", where=label) from None
    if "\\u" in string and any(len(m.group()) % 2 == 0 for m in _SURROGATE_ESCAPE.finditer(string)):  # rare
        _check_strings(value, label)
    return value


def _integer(literal: str) -> int | _Num:
    if literal[0] != "-" and (len(literal) < 20 or (len(literal) == 20 and int(literal) <= U64)):
        return int(literal)
    digits = literal.lstrip("-")
    significand, used = 0, 0
    for char in digits:  # serde keeps the digits that fit in 64 bits, the rest only raise the exponent
        if _overflows(significand, int(char)):
            break
        significand, used = significand * 10 + int(char), used + 1
    if used < len(digits) and not _finite(significand, len(digits) - used):
        raise _Refused(f"number out of range: {_Num(literal).literal}")
    return _Num(literal)


def _float(literal: str) -> _Num:
    """serde_json's parse (without float_roundtrip), to refuse exactly the literals it finds out of range."""
    match = re.fullmatch(r"-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?)(\d+))?", literal)
    assert match is not None  # Python's scanner only hands over valid JSON numbers
    whole, fraction, sign, power = match.groups()
    significand, exponent = 0, 0
    for index, char in enumerate(whole):
        if _overflows(significand, int(char)):
            exponent = len(whole) - index  # serde only counts the integer digits past 64 bits
            break
        significand = significand * 10 + int(char)
    for char in fraction or "":
        if _overflows(significand, int(char)):
            break  # serde drops the remaining fraction digits
        significand, exponent = significand * 10 + int(char), exponent - 1
    if power is not None:
        value = 0
        for char in power:
            if value >= 214748364 and (value > 214748364 or int(char) > 7):  # past i32: zero or out of range
                if significand and sign != "-":
                    raise _Refused(f"number out of range: {_Num(literal).literal}")
                return _Num(literal)
            value = value * 10 + int(char)
        exponent = max(-(1 << 31), min((1 << 31) - 1, exponent - value if sign == "-" else exponent + value))
    if not _finite(significand, exponent):
        raise _Refused(f"number out of range: {_Num(literal).literal}")
    return _Num(literal)


def _overflows(significand: int, digit: int) -> bool:
    return significand >= U64 // 10 and (significand > U64 // 10 or digit > U64 % 10)


def _finite(significand: int, exponent: int) -> bool:
    value = float(significand)
    while True:
        if abs(exponent) <= 308:
            if exponent >= 0:
                return not math.isinf(value * _POW10[exponent])
            return True
        if value == 0.0:
            return True
        if exponent >= 0:
            return False
        value, exponent = value / 1e308, exponent + 308


def _constant(name: str) -> None:
    raise _Refused(f"{name} is not JSON")


def _check_strings(value: object, label: str) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise AdapterError("header is not JSON (a \\u escape is a lone surrogate)", where=label)
        elif isinstance(item, _Obj):
            stack.extend(k for k, _ in item)
            stack.extend(v for _, v in item)
        elif isinstance(item, list):
            stack.extend(item)


def _depth(value: object) -> int:
    """Nesting depth of a JSON value (a scalar is 0)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, list):  # _Obj too
            deepest = max(deepest, level + 1)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((v[1] if isinstance(item, _Obj) else v, level + 1) for v in item)
    return deepest


# --- the typed structure ----------------------------------------------------------------------------------------


def _metadata(value: object, label: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, _Obj):
        raise AdapterError("__metadata__ is not a JSON object", where=label)
    for key, text in value:
        if not isinstance(text, str):
            raise AdapterError(f"__metadata__ value of {key!r} is not a string, got {_show(text)}", where=label)
    return dict(value)  # a repeated key keeps the last, as the reference does


def _entry(name: str, value: object, label: str) -> Entry:
    if isinstance(value, _Obj):
        fields: dict[str, object] = {}
        for key, item in value:
            if key in ("dtype", "shape", "data_offsets"):
                if key in fields:
                    raise _bad(f"header entry has {key} twice", label, name)
                fields[key] = item
            elif _depth(item) + 2 > MAX_DEPTH:  # unknown keys are ignored, but still parsed by the reference
                raise _bad(f"header is nested deeper than {MAX_DEPTH} levels", label, name)
        if len(fields) < 3:
            raise _bad("header entry needs dtype, shape and data_offsets", label, name)
        dtype, shape, offsets = fields["dtype"], fields["shape"], fields["data_offsets"]
    elif isinstance(value, list) and len(value) == 3:
        dtype, shape, offsets = value
    else:
        raise _bad(f"header entry must be an object with dtype, shape and data_offsets, got {_show(value)}",
                   label, name)
    if isinstance(dtype, _Obj) and len(dtype) == 1 and dtype[0][1] is None:
        dtype = dtype[0][0]  # serde also reads an enum written as {"F32": null}
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        shown = repr(dtype) if isinstance(dtype, str) else _show(dtype)
        raise _bad(f"unknown dtype {shown} (known: {', '.join(DTYPE_BITS)})", label, name)
    if not (isinstance(shape, list) and not isinstance(shape, _Obj) and all(map(_is_u64, shape))):
        raise _bad(f"shape must be a list of integers in [0, 2**64), got {_show(shape)}", label, name)
    if not (isinstance(offsets, list) and not isinstance(offsets, _Obj) and len(offsets) == 2
            and all(map(_is_u64, offsets))):
        raise _bad(f"data_offsets must be [begin, end], integers in [0, 2**64), got {_show(offsets)}",
                   label, name)
    return Entry(name, dtype, tuple(shape), offsets[0], offsets[1])


def _bad(message: str, label: str, name: str) -> AdapterError:
    return AdapterError(message, where=tensor_where(label, name))


def _check_layout(entries: list[Entry], data_size: int, label: str) -> None:
    for entry in entries:
        where = tensor_where(label, entry.name)
        if entry.end < entry.begin:
            raise AdapterError(f"data_offsets [{entry.begin:,}, {entry.end:,}] run backwards", where=where)
        if entry.end > data_size:
            raise AdapterError(
                f"data_offsets [{entry.begin:,}, {entry.end:,}] run past the end of the data ({data_size:,} bytes): "
                "truncated file or bad offsets", where=where)
        need = nbytes(entry.dtype, entry.shape)
        if need is None:
            count = element_count(entry.shape)
            fits = count is not None and count * DTYPE_BITS[entry.dtype] <= U64
            problem = "does not fill whole bytes" if fits else "overflows 64 bits"
            raise AdapterError(f"shape {_show(list(entry.shape))} of {entry.dtype} {problem}", where=where)
        if entry.end - entry.begin != need:
            raise AdapterError(
                f"data_offsets [{entry.begin:,}, {entry.end:,}] hold {entry.end - entry.begin:,} bytes but shape "
                f"{list(entry.shape)} of {entry.dtype} needs {need:,}", where=where)
    reached, previous = 0, None
    for entry in sorted(entries, key=lambda e: (e.begin, e.end)):
        where = tensor_where(label, entry.name)
        if entry.begin < reached:
            raise AdapterError(f"data overlaps tensor {previous.name!r}", where=where)  # type: ignore[union-attr]
        if entry.begin > reached:
            after = f"after tensor {previous.name!r}" if previous else "at the start of the data"
            raise AdapterError(f"data_offsets [{entry.begin:,}, {entry.end:,}] leave a gap of "
                               f"{entry.begin - reached:,} unused bytes {after}", where=where)
        reached, previous = entry.end, entry
    if reached != data_size:
        raise AdapterError(f"{data_size - reached:,} bytes after the end of the last tensor's data (the reference "
                           "refuses trailing data)", where=label)


def _is_u64(value: object) -> bool:
    return type(value) is int and 0 <= value <= U64


def _show(value: object) -> str:
    """A short JSON-like rendering of a parsed value, for a one-line message."""
    text = _text(value, 0)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: object, level: int) -> str:
    if isinstance(value, list):
        if level >= 3:
            return "{...}" if isinstance(value, _Obj) else "[...]"
        if isinstance(value, _Obj):
            return "{" + ", ".join(f"{json.dumps(k)[:20]}: {_text(v, level + 1)}" for k, v in value[:4]) + \
                (", ...}" if len(value) > 4 else "}")
        return "[" + ", ".join(_text(v, level + 1) for v in value[:8]) + (", ...]" if len(value) > 8 else "]")
    if isinstance(value, _Num):
        return value.literal
    if isinstance(value, str):
        return json.dumps(value[:20] + ("..." if len(value) > 20 else ""))
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)
