"""The safetensors reader and writer, checked against the safetensors package (with torch: tests/oracle/)."""

from __future__ import annotations

import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import bad_safetensors
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
import safetensors
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from loralens.adapters.safetensors_header import DTYPE_BITS, MAX_HEADER, MAX_OBJECTS
from loralens.adapters.safetensors_io import (
    SafetensorsFile,
    bf16_bits_to_float32,
    encode,
    float32_to_bf16_bits,
    save_arrays,
    to_bytes,
    write_file,
)
from loralens.errors import AdapterError



NUMPY_DTYPES = (np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
                np.float16, np.float32, np.float64, np.complex64)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.dictionaries(st.text(max_size=6), st.tuples(st.sampled_from(NUMPY_DTYPES),
                                                      array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)),
                       max_size=5),
       st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=5), min_size=1, max_size=3), st.data())
def test_we_write_the_bytes_the_reference_writes(specs: dict, metadata: dict[str, str] | None,
                                                 data: st.DataObject) -> None:
    """Same tensor order (dtype, then name), JSON text (UTF-8 names, serde's escapes) and padding. With 2+ metadata
    keys the reference's order is random (a Rust HashMap), so there only the parsed header must agree."""
    values = {name: data.draw(arrays(dtype, shape)) for name, (dtype, shape) in specs.items()}
    ours = to_bytes({n: encode(v) for n, v in values.items()}, metadata)
    theirs = safetensors.numpy.save(values, metadata)
    if metadata is None or len(metadata) == 1:
        assert ours == theirs
    else:
        size = int.from_bytes(ours[:8], "little")
        assert ours[:8] == theirs[:8] and ours[8 + size:] == theirs[8 + size:]
        parsed = [json.loads(b[8:8 + size], object_pairs_hook=list) for b in (ours, theirs)]
        assert [p for p in parsed[0] if p[0] != "__metadata__"] == [p for p in parsed[1] if p[0] != "__metadata__"]
        assert [dict(dict(p)["__metadata__"]) for p in parsed] == [metadata, metadata]
    back = safetensors.numpy.load(ours)  # and the reference reads ours back exactly
    assert {n: (a.dtype, a.shape, a.tobytes()) for n, a in back.items()} == \
        {n: (v.dtype, v.shape, v.tobytes()) for n, v in values.items()}


def test_bfloat16_nan_stays_nan_and_ties_go_to_even() -> None:
    values = np.array([np.nan, -np.nan, 1 + 2**-8, 1 + 3 * 2**-8, np.inf, -np.inf], dtype=np.float32)
    back = bf16_bits_to_float32(float32_to_bf16_bits(values))
    assert np.isnan(back[:2]).all()
    assert back[2] == 1.0  # tie between 1 and 1 + 2^-7 -> even (1.0)
    assert back[3] == 1 + 2**-6  # tie between 1 + 2^-7 and 1 + 2^-6 -> even (1 + 2^-6)
    assert back[4] == np.inf and back[5] == -np.inf


# --- malformed files: each gets one exact message naming the file (and the tensor) ---------------------------

GOOD_ENTRY = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
DEEP = b"[" * 126 + b"]" * 126


def _raw(text: bytes, data: bytes = b"") -> bytes:
    """A header given as JSON text (for what json.dumps cannot write: duplicate keys, NaN, bad escapes)."""
    return bad_safetensors(text, data)


# (id, file, where after the file name, the whole message). The reference refuses every one of them too.
MALFORMED = [
    ("empty-file", b"", "", "truncated file: 0 bytes, too short for the 8-byte header length"),
    ("truncated", b"\x01\x02\x03", "", "truncated file: 3 bytes, too short for the 8-byte header length"),
    ("header-over-limit", bad_safetensors({"w": GOOD_ENTRY}, bytes(16), header_len=100_000_001), "",
     "header length 100,000,001 is over the limit of 100,000,000 bytes"),
    ("header-too-long", bad_safetensors({"w": GOOD_ENTRY}, bytes(16), header_len=10_000), "",
     "header length 10,000 is larger than the file (89 bytes): truncated or not safetensors"),
    ("empty-header", struct.pack("<Q", 0), "", "header is not JSON (Expecting value: line 1 column 1 (char 0))"),
    ("not-utf8", _raw(b'{"\xff": 1}'), "", "header is not UTF-8 (invalid start byte at byte 2)"),
    ("not-json", bad_safetensors(b"{not json", bytes(16)), "",
     "header is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("nul-padding", _raw(b"{}\0\0\0\0\0\0"), "", "header is not JSON (Extra data: line 1 column 3 (char 2))"),
    ("not-object", bad_safetensors(b"[1, 2]"), "", "header is not a JSON object, got [1, 2]"),
    ("nan", _raw(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": NaN}}', bytes(8)), "",
     "header is not JSON the reference accepts (NaN is not JSON)"),
    ("number-out-of-range", _raw(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": 1e309}}',
                                 bytes(8)), "", "header is not JSON the reference accepts (number out of range: 1e309)"),
    ("lone-surrogate", _raw(b'{"\\ud800": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', bytes(8)), "",
     "header is not JSON (a \\u escape is a lone surrogate)"),
    ("too-deep", _raw(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": ' + DEEP + b"}}",
                      bytes(8)), ": w", "header is nested deeper than 127 levels"),
    ("metadata-not-object", bad_safetensors({"__metadata__": False, "w": F32_2}, bytes(8)), "",
     "__metadata__ is not a JSON object"),
    ("metadata-not-string", bad_safetensors({"__metadata__": {"n": 1}, "w": F32_2}, bytes(8)), "",
     "__metadata__ value of 'n' is not a string, got 1"),
    ("metadata-twice", _raw(b'{"__metadata__": {}, "__metadata__": {}}'), "", "header has __metadata__ twice"),
    ("field-twice", _raw(b'{"w": {"dtype": "F32", "dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', bytes(8)),
     ": w", "header entry has dtype twice"),
    ("missing-fields", bad_safetensors({"w": {"dtype": "F32"}}), ": w",
     "header entry needs dtype, shape and data_offsets"),
    ("entry-null", bad_safetensors({"w": None}), ": w",
     "header entry must be an object with dtype, shape and data_offsets, got null"),
    ("unknown-dtype", bad_safetensors({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}}, bytes(2)), ": w",
     f"unknown dtype 'Q4' (known: {', '.join(DTYPE_BITS)})"),
    ("bad-shape", bad_safetensors({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, bytes(8)), ": w",
     'shape must be a list of integers in [0, 2**64), got "2"'),
    ("float-offset", _raw(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8]}}', bytes(8)), ": w",
     "data_offsets must be [begin, end], integers in [0, 2**64), got [0.0, 8]"),
    ("negative-zero", _raw(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [-0, 8]}}', bytes(8)), ": w",
     "data_offsets must be [begin, end], integers in [0, 2**64), got [-0, 8]"),
    ("three-offsets", bad_safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]}}, bytes(8)),
     ": w", "data_offsets must be [begin, end], integers in [0, 2**64), got [0, 8, 8]"),
    ("reversed-offsets", bad_safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(16)),
     ": w", "data_offsets [8, 0] run backwards"),
    ("out-of-bounds", bad_safetensors({"w": GOOD_ENTRY}, bytes(8)), ": w",
     "data_offsets [0, 16] run past the end of the data (8 bytes): truncated file or bad offsets"),
    ("shape-overflow", bad_safetensors({"w": {"dtype": "U8", "shape": [2**32, 2**32, 0], "data_offsets": [0, 0]}}),
     ": w", "shape [4294967296, 4294967296, 0] of U8 overflows 64 bits"),
    ("partial-byte", bad_safetensors({"w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, bytes(2)), ": w",
     "shape [3] of F4 does not fill whole bytes"),
    ("size-mismatch", bad_safetensors({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, bytes(16)),
     ": w", "data_offsets [0, 16] hold 16 bytes but shape [3] of F32 needs 12"),
    ("overlap", bad_safetensors({"a": GOOD_ENTRY, "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
                                bytes(16)), ": b", "data overlaps tensor 'a'"),
    ("empty-inside-other", bad_safetensors({"a": F32_2, "z": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}},
                                           bytes(8)), ": z", "data overlaps tensor 'a'"),
    ("gap", bad_safetensors({"a": F32_2, "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}, bytes(20)),
     ": b", "data_offsets [12, 20] leave a gap of 4 unused bytes after tensor 'a'"),
    ("gap-at-start", bad_safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)), ": w",
     "data_offsets [4, 12] leave a gap of 4 unused bytes at the start of the data"),
    ("trailing-data", bad_safetensors({"w": GOOD_ENTRY}, bytes(20)), "",
     "4 bytes after the end of the last tensor's data (the reference refuses trailing data)"),
    ("data-without-tensors", bad_safetensors({}, bytes(3)), "",
     "3 bytes after the end of the last tensor's data (the reference refuses trailing data)"),
    # Python's json (and the reference) keep the last "a"; its data then leaves the first 8 bytes unused.
    ("duplicate-name", _raw(b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
                            b'"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}', bytes(16)), ": a",
     "data_offsets [8, 16] leave a gap of 8 unused bytes at the start of the data"),
    ("duplicate-name-first-bad", _raw(b'{"a": null, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}',
                                      bytes(8)), ": a",
     "header entry must be an object with dtype, shape and data_offsets, got null"),
    ("unprintable-name", bad_safetensors({"a\nb": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8)),
     ": 'a\\nb'", "data_offsets [8, 0] run backwards"),
]


@pytest.mark.parametrize("content, where, message", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_file_gets_an_exact_message(tmp_path: Path, content: bytes, where: str, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(AdapterError) as info:
        SafetensorsFile.open(path)
    assert (info.value.where, info.value.message) == (f"{path}{where}", message)
    with pytest.raises(AdapterError) as from_bytes:
        SafetensorsFile.from_bytes(content, "upload.safetensors")
    assert str(from_bytes.value) == f"upload.safetensors{where}: {message}"
    assert "\n" not in str(from_bytes.value)
    with pytest.raises(SafetensorError):  # the corpus says nothing the reference does not say
        safetensors.deserialize(content)
    with pytest.raises(SafetensorError):
        safe_open(path, framework="numpy")


# Odd but valid files: the reference reads each, so loralens does too (name -> (dtype, shape, bytes)).
ODD_BUT_VALID = [
    ("no-tensors", _raw(b"{}      "), {}),
    ("metadata-null", _raw(b'{"__metadata__": null}'), {}),
    ("padded-with-whitespace", _raw(b' \n{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}\t\r ',
                                    b"\x07"), {"w": ("U8", (1,), b"\x07")}),
    ("entry-as-array", _raw(b'{"w": ["U8", [2], [0, 2]]}', b"ab"), {"w": ("U8", (2,), b"ab")}),
    ("dtype-as-object", _raw(b'{"w": {"dtype": {"U8": null}, "shape": [2], "data_offsets": [0, 2]}}', b"ab"),
     {"w": ("U8", (2,), b"ab")}),
    ("unknown-keys", _raw(b'{"w": {"dtype": "U8", "x": [1e308, -0, {"y": "\\ud83d\\ude00"}], "shape": [], '
                          b'"data_offsets": [0, 1]}}', b"a"), {"w": ("U8", (), b"a")}),
    ("duplicate-name-last-wins", _raw(b'{"w": {"dtype": "U8", "shape": [9], "data_offsets": [0, 9]}, '
                                      b'"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"a"),
     {"w": ("U8", (1,), b"a")}),
    ("empty-tensors-share-an-offset", bad_safetensors({"a": F32_2, "y": {"dtype": "F32", "shape": [0],
                                                       "data_offsets": [8, 8]}, "z": {"dtype": "I8", "shape": [3, 0],
                                                                                      "data_offsets": [8, 8]}},
                                                      bytes(8)),
     {"a": ("F32", (2,), bytes(8)), "y": ("F32", (0,), b""), "z": ("I8", (3, 0), b"")}),
    ("huge-dims-with-a-zero", bad_safetensors({"w": {"dtype": "U8", "shape": [0, 2**32, 2**32],
                                                     "data_offsets": [0, 0]}}), {"w": ("U8", (0, 2**32, 2**32), b"")}),
    ("f4-and-c64", bad_safetensors({"c": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]},
                                    "f": {"dtype": "F4", "shape": [2], "data_offsets": [8, 9]}}, bytes(9)),
     {"c": ("C64", (1,), bytes(8)), "f": ("F4", (2,), b"\0")}),
]


@pytest.mark.parametrize("content, expected", [c[1:] for c in ODD_BUT_VALID], ids=[c[0] for c in ODD_BUT_VALID])
def test_odd_but_valid_files_are_read_like_the_reference(content: bytes, expected: dict) -> None:
    file = SafetensorsFile.from_bytes(content)
    assert {n: (i.dtype, i.shape, file.raw(n).tobytes()) for n, i in file.tensors.items()} == expected
    theirs = {n: (v["dtype"], tuple(v["shape"]), bytes(v["data"])) for n, v in safetensors.deserialize(content)}
    assert theirs == expected


def test_a_header_at_the_size_limit_is_read() -> None:
    content = _raw(b"{}" + b" " * (MAX_HEADER - 2))
    assert SafetensorsFile.from_bytes(content).tensors == {}
    assert safetensors.deserialize(content) == []


def test_absurdly_many_objects_are_refused_while_parsing() -> None:
    """loralens' own limit (the reference has none): refused before the objects pile up."""
    many = b",".join([b"{}"] * MAX_OBJECTS)
    with pytest.raises(AdapterError) as info:
        SafetensorsFile.from_bytes(_raw(b'{"w": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0], "x": [%s]}}'
                                        % many), "many")
    assert str(info.value) == f"many: header has more than {MAX_OBJECTS:,} JSON objects (one per tensor): " \
                              "over loralens' limit"


def test_a_tensor_numpy_cannot_hold_is_an_adapter_error() -> None:
    file = SafetensorsFile.from_bytes(ODD_BUT_VALID[-1][1], "odd")
    with pytest.raises(AdapterError, match="^odd: f: dtype F4 packs elements in fewer than 8 bits"):
        file.array("f")
    assert file.array("c").dtype == np.complex64
    wide = SafetensorsFile.from_bytes(ODD_BUT_VALID[-2][1], "wide")  # numpy refuses the shape, zero-sized or not
    with pytest.raises(AdapterError, match=r"^wide: w: shape \[0, 4294967296, 4294967296\] cannot be a numpy array"):
        wide.array("w")
    with pytest.raises(AdapterError, match="^wide: nope: no such tensor"):
        wide.array("nope")


def test_a_real_file_cut_short_is_reported(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    save_arrays(good, {"a": np.ones((4, 4), np.float32), "b": np.ones(3, np.float32)})
    data = good.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:-4])
    with pytest.raises(AdapterError, match="run past the end of the data"):
        SafetensorsFile.open(cut)
    cut.write_bytes(data[:20])
    with pytest.raises(AdapterError, match="header length .* is larger than the file"):
        SafetensorsFile.open(cut)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="file not found"):
        SafetensorsFile.open(tmp_path / "nope.safetensors")
    with pytest.raises(AdapterError, match="is a folder"):
        SafetensorsFile.open(tmp_path)


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 4096 x 4096 tensor (64 MiB as float32) per dtype."""
    folder = tmp_path_factory.mktemp("big")
    values = np.ones((4096, 4096), np.float32)
    for dtype in ("F32", "F16", "BF16"):
        write_file(folder / f"{dtype}.safetensors", {"w": encode(values, dtype)})
    return {dtype: folder / f"{dtype}.safetensors" for dtype in ("F32", "F16", "BF16")}


@pytest.mark.parametrize("dtype, target", [("F32", None), ("F32", np.float64), ("F16", np.float32), ("F16", None),
                                           ("BF16", None), ("BF16", np.float64)])
def test_array_makes_one_copy_the_size_of_its_result(big_files: dict[str, Path], dtype: str, target: type) -> None:
    """Read from a memory map, the result should be the only big allocation (tracemalloc sees numpy's buffers)."""
    file = SafetensorsFile.open(big_files[dtype])
    tracemalloc.start()
    try:
        out = file.array("w", target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.dtype == (target or (np.float16 if dtype == "F16" else np.float32))
    assert peak <= 1.1 * out.nbytes + (1 << 20), f"peak {peak / out.nbytes:.2f}x the result"
    assert out[0, 0] == 1 and out[-1, -1] == 1


REAL_ADAPTER = (Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "rslora"
                / "adapter_model.safetensors").read_bytes()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(REAL_ADAPTER) - 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, len(REAL_ADAPTER)))
def test_corrupted_files_raise_adapter_error_or_read_cleanly(flips: list[tuple[int, int]], cut: int) -> None:
    """Random byte changes (mostly in the header, where they matter) and truncations: never another exception."""
    from loralens.adapters import load_adapter_from_bytes

    data = bytearray(REAL_ADAPTER[:cut] if cut % 3 == 0 else REAL_ADAPTER)
    header_end = 8 + int.from_bytes(REAL_ADAPTER[:8], "little")
    for position, value in flips:
        if data:
            data[position % min(len(data), header_end)] = value
    config = b'{"r": 8, "lora_alpha": 16, "use_rslora": true}'
    try:
        load_adapter_from_bytes(config, bytes(data), name="fuzz")
    except AdapterError as error:
        assert error.where and error.where.startswith("fuzz/")
