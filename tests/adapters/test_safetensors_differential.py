"""loralens' safetensors reader against the reference package, on generated files and mutations of them.

For every file: loralens accepts it (SafetensorsFile.from_bytes and .open) exactly when the reference does
(safetensors.deserialize, which safetensors.numpy.load runs first, and safe_open, which validates the whole header
when it opens); then names, dtypes, shapes, bytes and metadata agree, and every tensor the reference gives as a
numpy array is the same array from loralens. Nothing but AdapterError may come out of loralens.

Decided where the two differ on purpose: the reference's numpy side has no bfloat16 or float8 (ml_dtypes is not
installed), loralens widens BF16 to float32 and gives float8 as its uint8 bits; the 4- and 6-bit dtypes are valid
files for both, and loralens' array() refuses them like the reference. More than MAX_OBJECTS JSON objects is
loralens' own limit (test_safetensors_io.py); these generated headers stay far below it.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import SafetensorError, safe_open

from loralens.adapters.safetensors_io import SafetensorsFile
from loralens.errors import AdapterError

# The reference's dtypes and bits per element, written out here rather than taken from the code under test.
BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
        "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32,
        "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64}
SUB_BYTE = ("F4", "F6_E2M3", "F6_E3M2")
RUN = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])


class Raw(str):
    """JSON text put in as it is (NaN, 1e400, "\\ud800", deep nesting: what json.dumps cannot write)."""


class Obj(list):
    """A JSON object as (key, value) pairs, so a key can appear twice."""


def dump(value: object, ascii_only: bool, space: str) -> str:
    if isinstance(value, Raw):
        return value
    if isinstance(value, Obj):
        return "{" + f",{space}".join(f"{dump(k, ascii_only, space)}:{space}{dump(v, ascii_only, space)}"
                                      for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + f",{space}".join(dump(v, ascii_only, space) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def file_bytes(header: object, data: bytes, ascii_only: bool = True, space: str = "", pad: str = "") -> bytes:
    text = (dump(header, ascii_only, space) + pad).encode("utf-8", "surrogatepass")
    return struct.pack("<Q", len(text)) + text + data


# --- valid files --------------------------------------------------------------------------------------------------

names = st.text(st.characters(exclude_categories=("Cs",)), max_size=6)
SPECS = st.dictionaries(names.filter(lambda n: n != "__metadata__"),
                        st.tuples(st.sampled_from(tuple(BITS)), st.lists(st.integers(0, 4), max_size=3)), max_size=5)
FORMS = ("object", "object", "object", "array", "dtype-object", "extra-key")
EXTRA = (1, "y", None, [1.5, {"z": []}])
META = st.none() | st.just("null") | st.dictionaries(names, names, max_size=3)
SEEDS = st.integers(0, 2**32)
FORMAT = st.tuples(st.booleans(), st.sampled_from(("", " ")), st.text(" \t\r\n", max_size=9))


@st.composite
def valid_files(draw: st.DrawFn) -> tuple[Obj, bytes, bool, str, str]:
    """A header (as pairs) and data the reference accepts, in any header order and any data order."""
    rnd = random.Random(draw(SEEDS))  # the orders and forms: far cheaper than a hypothesis draw per choice
    sized = []
    for name, (dtype, shape) in draw(SPECS).items():
        count = int(np.prod(shape))
        if count * BITS[dtype] % 8:
            shape = [*shape, 4]  # whole bytes for the 4- and 6-bit types
            count *= 4
        sized.append((name, dtype, shape, count * BITS[dtype] // 8))
    offsets, position = {}, 0
    for name, _, _, size in rnd.sample(sized, len(sized)):
        offsets[name], position = [position, position + size], position + size
    header = Obj()
    for name, dtype, shape, _ in rnd.sample(sized, len(sized)):
        form = rnd.choice(FORMS)
        if form == "array":
            header.append((name, [dtype, shape, offsets[name]]))
            continue
        entry = Obj([("dtype", Obj([(dtype, None)]) if form == "dtype-object" else dtype), ("shape", shape),
                     ("data_offsets", offsets[name])])
        if form == "extra-key":
            entry.insert(rnd.randrange(4), ("x", rnd.choice(EXTRA)))
        header.append((name, entry))
    metadata = draw(META)
    if metadata is not None:
        meta = None if metadata == "null" else Obj(metadata.items())
        header.insert(rnd.randrange(len(header) + 1), ("__metadata__", meta))
    return header, rnd.randbytes(position), *draw(FORMAT)


# --- mutations ----------------------------------------------------------------------------------------------------

# Strategies are built once here: hypothesis spends most of its time building them if it is done per draw.
bad_ints = st.sampled_from((-1, 2**64 - 1, 2**64, 2**63, 2**32, -(2**63))) | st.integers(0, 40)
odd_values = st.sampled_from((None, True, 0, 1.5, "8", [], {}, Raw("-0"), Raw("0.0"), Raw("1e2"), Raw("4E0")))
number_literals = st.builds(
    lambda sign, whole, fraction, exponent: Raw(sign + whole + fraction + exponent),
    st.sampled_from(("", "-")),
    st.just("0") | st.from_regex(r"[1-9][0-9]{0,30}", fullmatch=True)
    | st.integers(300, 330).map(lambda n: "1" + "0" * n) | st.just("17976931348623157" + "0" * 292),
    st.sampled_from(("", ".5", ".0", ".000001", ".99999999999999999999999")),
    st.sampled_from(("", "e308", "e309", "E+308", "e-400", "e99999999999", "e-99999999999", "e2147483647",
                     "e2147483648", "e-2147483648")) | st.integers(-330, 330).map(lambda n: f"e{n}"),
)
odd_json = st.sampled_from((Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw('"\\ud800"'), Raw('"\\udc00x"'),
                            Raw('"\\ud83d\\ude00"'), Raw('"\\\\ud800"'), Raw('"\\u0000"'), Raw('"\x7f"'))) \
    | number_literals | st.integers(120, 130).map(lambda n: Raw("[" * n + "]" * n))
EDITS = st.sampled_from(("offsets", "offset-shift", "shape", "dtype", "duplicate-entry", "duplicate-field",
                         "drop-field", "entry", "metadata", "metadata-value", "duplicate-metadata", "odd-value", "top",
                         "swap-offsets", "new-entry", "move", "move", "copy-offsets"))
TOPS = st.sampled_from((Raw("[]"), Raw("null"), Raw('"x"'), Raw("1"), Raw("[{}]")))
METADATA = odd_values | st.just(Obj([("a", "b"), ("a", "c")]))
METADATA_VALUES = odd_values | odd_json | bad_ints
NEW_DTYPES = st.sampled_from((*BITS, "f32", "Q4", "", "BF16 "))
SHAPES = st.lists(bad_ints, max_size=4) | odd_values | st.sampled_from(([2**32, 2**32, 0], [0, 2**32, 2**32], [[1]]))
OFFSETS = st.lists(bad_ints, min_size=2, max_size=2) | st.lists(bad_ints, max_size=3) | odd_values
BAD_DTYPES = st.sampled_from(("f32", "Q4", "", "F32 ", "bf16", ["F32"], Obj([("F32", 1)]),
                              Obj([("F32", None), ("F16", None)]), Obj(), 17, None)) | st.sampled_from(tuple(BITS))
FIELDS = st.sampled_from(("dtype", "shape", "data_offsets"))
ODD_KEYS = st.sampled_from(("x", "dtype", "shape", "data_offsets"))
SHIFTS = st.integers(-3, 3)
MOVES = st.integers(-8, 8) | st.sampled_from((2**63, 2**64 - 9))
BYTE_EDITS = st.sampled_from(("flip", "flip", "cut", "append", "length", "pad"))
BYTES = st.sampled_from((0, 32, 9, 10, 34, 44, 58, 91, 92, 93, 123, 125, 0x7F, 0xC3, 0xFF)) | st.integers(0, 255)
LENGTHS = st.sampled_from((0, 2, 100_000_000, 100_000_001, 2**63, 2**64 - 1))
VALID_FILES = valid_files()
TWICE = st.integers(0, 2)
PADS = st.text(" \t\r\n\x00\x0c\x0b\xa0", min_size=1, max_size=4)  # whitespace the JSON allows, and not


def _pick(draw: st.DrawFn, items: list | int) -> object:
    """An item of ``items`` (or an index below it): an index drawn, so no strategy is built per call."""
    count = items if isinstance(items, int) else len(items)
    index = draw(st.integers(0, count - 1))
    return index if isinstance(items, int) else items[index]


def _entries(header: Obj) -> list[int]:
    return [i for i, (k, _) in enumerate(header) if k != "__metadata__"]


def _fields(entry: object) -> dict:
    if isinstance(entry, Obj):
        return dict(entry)
    return dict(zip(("dtype", "shape", "data_offsets"), entry)) if isinstance(entry, list) else {}


def _is_pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)


def json_edit(draw: st.DrawFn, header: Obj) -> Obj:
    """One change to the header's structure: wrong types, bad offsets, duplicates, odd JSON."""
    if not isinstance(header, Obj):  # already not an object
        return header
    header = Obj(header)
    entries = _entries(header)
    kind = draw(EDITS)
    if kind == "top":
        return draw(TOPS)
    if kind == "metadata":
        return Obj([*header, ("__metadata__", draw(METADATA))])
    if kind == "metadata-value":
        return Obj([*header, ("__metadata__", Obj([("k", draw(METADATA_VALUES))]))])
    if kind == "duplicate-metadata":
        return Obj([("__metadata__", None), *header, ("__metadata__", Obj())])
    if kind == "new-entry":
        entry = Obj([("dtype", draw(NEW_DTYPES)), ("shape", draw(SHAPES)), ("data_offsets", draw(OFFSETS))])
        return Obj([*header, (draw(names), entry)])
    if not entries:
        return Obj([*header, ("w", draw(odd_values))])
    index = _pick(draw, entries)
    name, entry = header[index]
    fields = _fields(entry)
    if kind == "duplicate-entry":
        copy = Obj(fields.items())
        if draw(st.booleans()) and _is_pair(fields.get("data_offsets")):  # the copy's data somewhere else
            begin, end = fields["data_offsets"]
            move = draw(MOVES)
            copy = Obj([*((k, v) for k, v in copy if k != "data_offsets"), ("data_offsets", [begin + move, end + move])])
        header.insert(_pick(draw, len(header) + 1), (name, copy if draw(st.booleans()) else draw(odd_values)))
        return header
    if kind == "swap-offsets" and len(entries) > 1:
        other = _pick(draw, entries)
        fields_b = _fields(header[other][1])
        fields["data_offsets"], fields_b["data_offsets"] = fields_b.get("data_offsets"), fields.get("data_offsets")
        header[other] = (header[other][0], Obj(fields_b.items()))
    elif kind == "offsets":
        fields["data_offsets"] = draw(OFFSETS)
    elif kind == "move" and _is_pair(fields.get("data_offsets")):  # same size elsewhere: gaps, overlaps, order
        begin, end = fields["data_offsets"]
        move = draw(MOVES)
        fields["data_offsets"] = [begin + move, end + move]
    elif kind == "copy-offsets":  # overlaps, or empty tensors sharing an offset
        fields["data_offsets"] = _fields(header[_pick(draw, entries)][1]).get("data_offsets")
    elif kind == "offset-shift" and _is_pair(fields.get("data_offsets")):
        begin, end = fields["data_offsets"]
        fields["data_offsets"] = [begin + draw(SHIFTS), end + draw(SHIFTS)]
    elif kind == "shape":
        fields["shape"] = draw(SHAPES)
    elif kind == "dtype":
        fields["dtype"] = draw(BAD_DTYPES)
    elif kind == "odd-value":
        fields[draw(ODD_KEYS)] = draw(odd_json)
    elif kind == "drop-field" and fields:
        del fields[_pick(draw, sorted(fields))]
    elif kind == "entry":
        values = list(fields.values())
        header[index] = (name, draw(odd_values) if draw(st.booleans()) else _pick(draw, [values[:2], [*values, 1]]))
        return header
    pairs = Obj(fields.items())
    if kind == "duplicate-field":
        key = draw(FIELDS)
        pairs.append((key, fields.get(key, 1)))
    header[index] = (name, pairs)
    return header


def byte_edit(draw: st.DrawFn, content: bytes) -> bytes:
    """One change to the bytes: a flip (mostly in the header), a cut, trailing data, a new header length."""
    data = bytearray(content)
    header_end = min(len(data), 8 + int.from_bytes(content[:8], "little"))
    kind = draw(BYTE_EDITS)
    if kind == "flip" and data:
        data[_pick(draw, header_end if header_end and draw(st.booleans()) else len(data))] = draw(BYTES)
    elif kind == "cut":
        data = data[: _pick(draw, len(data) + 1)]
    elif kind == "append":
        data += draw(st.binary(min_size=1, max_size=9))
    elif kind == "length" and len(data) >= 8:
        length = int.from_bytes(data[:8], "little")
        new = draw(LENGTHS) if draw(st.booleans()) else min(2**64 - 1, max(0, length + draw(st.integers(-9, 9))))
        data[:8] = struct.pack("<Q", new)
    elif kind == "pad" and len(data) >= 8 and header_end == 8 + int.from_bytes(data[:8], "little"):
        pad = draw(PADS).encode()
        data = bytearray(struct.pack("<Q", header_end - 8 + len(pad))) + data[8:header_end] + pad + data[header_end:]
    return bytes(data)


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    header, data, ascii_only, space, pad = draw(VALID_FILES)
    for _ in range(draw(TWICE)):
        header = json_edit(draw, header)
    content = file_bytes(header, data, ascii_only, space, pad)
    for _ in range(draw(TWICE)):
        content = byte_edit(draw, content)
    return content


@st.composite
def layouts(draw: st.DrawFn) -> bytes:
    """Tensors of the right sizes placed anywhere (in order or not, gapped, overlapping, repeated names), the data
    a little shorter or longer than they cover: the rules on covering the data exactly."""
    rnd = random.Random(draw(SEEDS))
    sizes = [rnd.choice((0, 1, 2, 3, 4, 8)) for _ in range(rnd.randint(1, 4))]
    total, header = sum(sizes), Obj()
    order = rnd.sample(range(len(sizes)), len(sizes))
    begins = [sum(sizes[j] for j in order[: order.index(i)]) for i in range(len(sizes))]  # a valid layout
    for i, size in enumerate(sizes):
        begin = begins[i] if rnd.random() < 0.6 else rnd.randint(0, total + 2)
        header.append((f"t{rnd.randint(0, 5) if rnd.random() < 0.2 else i}",
                       Obj([("dtype", "U8"), ("shape", [size]), ("data_offsets", [begin, begin + size])])))
    rnd.shuffle(header)
    return file_bytes(header, bytes(max(0, total + rnd.choice((0, 0, 0, -1, 1, 2)))))


# --- the comparison -----------------------------------------------------------------------------------------------


def reference(content: bytes, path: Path) -> tuple[dict, dict, dict] | None:
    """What the reference reads: tensors (dtype, shape, bytes), metadata and numpy arrays (None where its numpy side
    has no such dtype or shape); None if it refuses the file."""
    try:
        items = safetensors.deserialize(content)
    except SafetensorError:
        items = None
    try:
        with safe_open(path, framework="numpy") as f:
            metadata, arrays = f.metadata(), {}
            for name in f.keys():
                try:
                    arrays[name] = f.get_tensor(name)
                except Exception:  # numpy has no bfloat16/float8 here, or not this many dimensions
                    arrays[name] = None
    except SafetensorError:
        assert items is None, "the reference's two readers disagree"
        with pytest.raises(SafetensorError):
            safetensors.numpy.load(content)
        return None
    assert items is not None, "the reference's two readers disagree"
    try:  # numpy.load validates the same way, then makes arrays
        loaded = safetensors.numpy.load(content)
    except (KeyError, ValueError, TypeError):  # a dtype its numpy table lacks, a shape numpy cannot take
        loaded = {}
    for name, array in loaded.items():
        assert arrays[name] is not None and arrays[name].tobytes() == array.tobytes()
    tensors = {name: (v["dtype"], tuple(v["shape"]), bytes(v["data"])) for name, v in items}
    return tensors, metadata or {}, arrays


def check(content: bytes, path: Path) -> bool:
    """Assert loralens agrees with the reference on this file; return whether the file was valid."""
    path.unlink(missing_ok=True)  # ext4 flushes a file that is truncated and rewritten: 10 ms, not 0.1
    path.write_bytes(content)
    theirs = reference(content, path)
    try:
        ours = SafetensorsFile.from_bytes(content, "upload")
    except AdapterError as error:
        assert theirs is None, f"loralens refuses a file the reference reads: {error}"
        assert error.where is not None and error.where.startswith("upload") and "\n" not in str(error)
        with pytest.raises(AdapterError) as same:
            SafetensorsFile.open(path)
        assert same.value.message == error.message
        return False
    assert theirs is not None, "loralens reads a file the reference refuses"
    tensors, metadata, arrays = theirs
    assert {n: (i.dtype, i.shape, ours.raw(n).tobytes()) for n, i in ours.tensors.items()} == tensors
    assert ours.metadata == metadata
    assert SafetensorsFile.open(path).tensors == ours.tensors
    for name, array in arrays.items():
        dtype = tensors[name][0]
        try:
            mine = ours.array(name)
        except AdapterError:
            assert array is None, f"loralens cannot make the array the reference makes for {name!r}"
            continue
        assert dtype not in SUB_BYTE and mine.shape == tensors[name][1]
        if dtype == "BF16":  # widened: the pattern is the float32's high half
            assert mine.dtype == np.float32
            assert (mine.view(np.uint32) >> 16).astype("<u2").tobytes() == tensors[name][2]
            assert not (mine.view(np.uint32) & 0xFFFF).any()
        elif dtype.startswith("F8"):  # the bits
            assert mine.dtype == np.uint8 and mine.tobytes() == tensors[name][2]
        else:
            assert array is not None, f"loralens makes an array the reference cannot for {name!r}"
            assert (mine.dtype, mine.shape, mine.tobytes()) == (array.dtype, array.shape, array.tobytes())
    return True


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("differential") / "x.safetensors"


@settings(RUN, max_examples=200)
@given(VALID_FILES)
def test_generated_files_read_the_same(path: Path, parts: tuple) -> None:
    assert check(file_bytes(*parts), path)


@settings(RUN, max_examples=1200)
@given(mutated_files())
def test_mutated_files_are_accepted_and_read_exactly_as_the_reference_does(path: Path, content: bytes) -> None:
    check(content, path)


@settings(RUN, max_examples=250)
@given(odd_json, st.sampled_from(["x", "y"]))
def test_odd_json_inside_an_entry_is_judged_like_the_reference(path: Path, value: Raw, key: str) -> None:
    """Numbers near the float range (serde's parser, not Python's), NaN, surrogate escapes, depth."""
    header = Obj([("w", Obj([("dtype", "U8"), ("shape", [1]), ("data_offsets", [0, 1]), (key, value)]))])
    check(file_bytes(header, b"\x01"), path)


@settings(RUN, max_examples=400)
@given(layouts())
def test_data_must_be_covered_exactly_as_the_reference_requires(path: Path, content: bytes) -> None:
    check(content, path)
