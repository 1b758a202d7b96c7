"""A strict safetensors reader and a writer, numpy only (no torch, no ml_dtypes).

Format: 8 bytes little-endian unsigned header length N, then N bytes of JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the data; offsets
are relative to the first byte after the header. The reader accepts exactly the files the reference
``safetensors`` package (0.8) accepts (rules in safetensors_header.py; tests/adapters/test_safetensors_differential.py
compares the two on mutated files); everything else raises AdapterError whose ``where`` names the file (and the
tensor). The writer lays files out as the reference does (tensors by dtype, widest first, then by name), so the
bytes are the same.

Reading is bounded: the header length is checked against the limit before the header is read, tensors are views of
a memory map (or the given bytes) and ``array()`` makes one copy the size of its result.

bfloat16 is read by widening its 16-bit pattern into the high half of a float32 (exact), and written with
round-to-nearest-even. That avoids an extra dependency (ml_dtypes) for the one conversion we need.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from loralens.adapters.safetensors_header import DTYPE_BITS, MAX_HEADER, nbytes, parse_header, tensor_where
from loralens.errors import AdapterError

# safetensors dtype name -> numpy storage dtype. BF16 is stored as uint16 bit patterns, the 8-bit floats as uint8.
# F4 and F6_* pack elements in fewer than 8 bits: files holding them are read, but array() refuses them.
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "F8_E4M3": np.dtype(np.uint8),
    "F8_E5M2": np.dtype(np.uint8),
    "F8_E8M0": np.dtype(np.uint8),
    "F8_E4M3FNUZ": np.dtype(np.uint8),
    "F8_E5M2FNUZ": np.dtype(np.uint8),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"),
    "C64": np.dtype("<c8"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
    "F64": np.dtype("<f8"),
}
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
_NUMPY_TO_NAME = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64",
                  np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
                  np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL",
                  np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32", np.dtype(np.uint64): "U64",
                  np.dtype(np.complex64): "C64"}
_RANK = {name: rank for rank, name in enumerate(DTYPE_BITS)}  # the reference's dtype order
_CHUNK = 1 << 20  # elements widened at a time when BF16 goes to a type other than float32


@dataclass(frozen=True)
class TensorInfo:
    """One header entry; ``start``/``end`` are absolute byte positions in the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class TensorData:
    """A tensor ready to write: safetensors dtype name, shape and its little-endian bytes (any buffer)."""

    dtype: str
    shape: tuple[int, ...]
    data: object  # bytes, memoryview or a contiguous numpy array

    @property
    def nbytes(self) -> int:
        return memoryview(self.data).nbytes  # type: ignore[arg-type]


class SafetensorsFile:
    """A parsed, validated safetensors file. Tensors are read lazily from a memory map (or the given bytes)."""

    def __init__(self, buffer: np.ndarray, label: str) -> None:
        self.label = label
        self._buffer = np.asarray(buffer, dtype=np.uint8)  # the whole file; a plain view, even of a memmap
        self.tensors, self.metadata = _parse(self._buffer, label)

    @classmethod
    def open(cls, path: str | Path) -> SafetensorsFile:
        path = Path(path)
        label = str(path)
        try:
            size = path.stat().st_size
            buffer = np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
        except FileNotFoundError:
            raise AdapterError("file not found", where=label) from None
        except IsADirectoryError:
            raise AdapterError("is a folder, expected a .safetensors file", where=label) from None
        except (OSError, ValueError) as error:  # ValueError: mmap of something that is not a regular file
            raise AdapterError(f"cannot read: {getattr(error, 'strerror', None) or error}", where=label) from None
        return cls(buffer, label)

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "upload") -> SafetensorsFile:
        return cls(np.frombuffer(data, dtype=np.uint8), label)

    @property
    def file_bytes(self) -> int:
        return int(self._buffer.size)

    def keys(self) -> list[str]:
        return list(self.tensors)

    def where(self, name: str) -> str:
        return tensor_where(self.label, name)

    def _info(self, name: str) -> TensorInfo:
        info = self.tensors.get(name)
        if info is None:
            raise AdapterError("no such tensor in the file", where=self.where(name))
        return info

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes (uint8 view, no copy)."""
        info = self._info(name)
        return self._buffer[info.start : info.end]

    def tensor_data(self, name: str) -> TensorData:
        info = self._info(name)
        return TensorData(info.dtype, info.shape, self.raw(name))

    def array(self, name: str, dtype: np.dtype | type | None = None) -> np.ndarray:
        """The tensor as a numpy array (a fresh copy, the only allocation). BF16 is widened to float32 exactly.

        ``dtype`` converts floating tensors (e.g. np.float32); other tensors keep their type.
        """
        info = self._info(name)
        stored = DTYPES.get(info.dtype)
        if stored is None:
            raise AdapterError(f"dtype {info.dtype} packs elements in fewer than 8 bits, which numpy cannot hold; "
                               "use the raw bytes", where=self.where(name))
        bits = self.raw(name).view(stored)
        try:
            bits = bits.reshape(info.shape)
        except (ValueError, OverflowError, TypeError) as error:  # more dimensions, or larger ones, than numpy allows
            raise AdapterError(f"shape {list(info.shape)} cannot be a numpy array ({error})",
                               where=self.where(name)) from None
        if info.dtype == "BF16":
            target = np.dtype(np.float32 if dtype is None else dtype)
            return bf16_bits_to_float32(bits) if target == np.float32 else _widen_bf16(bits, target)
        target = np.dtype(dtype) if dtype is not None and info.dtype in FLOAT_DTYPES else stored.newbyteorder("=")
        return bits.astype(target)  # one copy, also from little-endian storage to the machine's order


def _widen_bf16(bits: np.ndarray, target: np.dtype) -> np.ndarray:
    """BF16 to a type other than float32, through a float32 buffer of _CHUNK elements (not a full-size one)."""
    out = np.empty(bits.shape, dtype=target)
    flat_in, flat_out = bits.reshape(-1), out.reshape(-1)
    for begin in range(0, flat_in.size, _CHUNK):
        flat_out[begin : begin + _CHUNK] = bf16_bits_to_float32(flat_in[begin : begin + _CHUNK])
    return out


def _parse(buffer: np.ndarray, label: str) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    size = int(buffer.size)
    if size < 8:
        raise AdapterError(f"truncated file: {size} bytes, too short for the 8-byte header length", where=label)
    header_len = int.from_bytes(buffer[:8].tobytes(), "little")
    if header_len > MAX_HEADER:  # before anything else is read
        raise AdapterError(f"header length {header_len:,} is over the limit of {MAX_HEADER:,} bytes", where=label)
    if header_len > size - 8:
        raise AdapterError(
            f"header length {header_len:,} is larger than the file ({size:,} bytes): truncated or not safetensors",
            where=label,
        )
    data_start = 8 + header_len
    entries, metadata = parse_header(memoryview(buffer[8:data_start]), size - data_start, label)
    tensors = {e.name: TensorInfo(e.name, e.dtype, e.shape, data_start + e.begin, data_start + e.end)
               for e in entries}
    return tensors, metadata


# --- bfloat16 -------------------------------------------------------------------------------------------------


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """uint16 bfloat16 patterns -> float32 (exact): the pattern is the float32's high half.

    Same as ``(bits.astype(np.uint32) << 16).view(np.float32)`` in one pass, without the temporary (10x faster).
    """
    out = np.empty(np.shape(bits), dtype=np.uint32)
    np.left_shift(bits, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


def float32_to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """float -> uint16 bfloat16 patterns, rounding to nearest, ties to even; NaN stays a (quiet) NaN."""
    x = np.ascontiguousarray(values, dtype=np.float32)
    u = x.view(np.uint32)
    rounded = ((u + (((u >> 16) & 1) + np.uint32(0x7FFF))) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = ((u[nan] >> 16) | 0x0040).astype(np.uint16)  # keep sign, force a quiet NaN
    return rounded


def encode(array: np.ndarray, dtype: str | None = None) -> TensorData:
    """An array as a TensorData in ``dtype`` (a safetensors name; default from the array's own dtype)."""
    array = np.asarray(array)
    if dtype is None:
        dtype = _NUMPY_TO_NAME.get(array.dtype.newbyteorder("="))  # a big-endian array is stored little-endian
        if dtype is None:
            raise AdapterError(f"cannot store numpy dtype {array.dtype} in safetensors", where="write")
    if dtype == "BF16":
        data = float32_to_bf16_bits(array)
    elif dtype in DTYPES:
        data = np.ascontiguousarray(array, dtype=DTYPES[dtype])
    else:
        raise AdapterError(f"cannot write dtype {dtype!r}", where="write")
    return TensorData(dtype, tuple(int(n) for n in array.shape), data.reshape(-1).view(np.uint8))


def _layout(tensors: Mapping[str, TensorData]) -> list[tuple[str, TensorData]]:
    """The tensors in the reference's order (dtype, widest first, then name), each size-checked."""
    for name, tensor in tensors.items():
        need = nbytes(tensor.dtype, tensor.shape) if tensor.dtype in DTYPE_BITS else None
        if tensor.nbytes != need:
            raise AdapterError(f"has {tensor.nbytes} bytes, shape {list(tensor.shape)} of {tensor.dtype} needs {need}",
                               where=name)
    return sorted(tensors.items(), key=lambda item: (-_RANK[item[1].dtype], item[0]))


def _header(tensors: Mapping[str, TensorData], metadata: Mapping[str, str] | None) -> bytes:
    return header_bytes([(n, t.dtype, t.shape) for n, t in _layout(tensors)], metadata)


def header_bytes(entries: Iterable[tuple[str, str, tuple[int, ...]]], metadata: Mapping[str, str] | None) -> bytes:
    """The 8-byte length and the JSON header for tensors (name, dtype, shape) laid out in this order.

    The JSON is what the reference writes: compact, UTF-8 (not \\u escapes), ``__metadata__`` first (left out
    when empty), padded with spaces to a multiple of 8 bytes.
    """
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dtype, shape in entries:
        need = nbytes(dtype, shape) if dtype in DTYPE_BITS else None
        if need is None:
            raise AdapterError(f"cannot write shape {list(shape)} of dtype {dtype!r}", where=name)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + need]}
        offset += need
    try:
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise AdapterError("a tensor name or metadata text holds a lone surrogate, which is not UTF-8",
                           where="write") from None
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes, as the reference does
    if len(text) > MAX_HEADER:
        raise AdapterError(f"header would be {len(text):,} bytes, over the limit of {MAX_HEADER:,}", where="write")
    return struct.pack("<Q", len(text)) + text


def write_stream(stream: BinaryIO, tensors: Mapping[str, TensorData], metadata: Mapping[str, str] | None = None) -> int:
    """Write a safetensors file to an open binary stream; return the number of bytes written."""
    layout = _layout(tensors)
    head = header_bytes([(n, t.dtype, t.shape) for n, t in layout], metadata)
    stream.write(head)
    total = len(head)
    for _, tensor in layout:
        stream.write(memoryview(tensor.data).cast("B"))  # type: ignore[arg-type]
        total += tensor.nbytes
    return total


def write_file(path: str | Path, tensors: Mapping[str, TensorData], metadata: Mapping[str, str] | None = None) -> int:
    with open(path, "wb") as stream:
        return write_stream(stream, tensors, metadata)


def to_bytes(tensors: Mapping[str, TensorData], metadata: Mapping[str, str] | None = None) -> bytes:
    layout = _layout(tensors)
    head = header_bytes([(n, t.dtype, t.shape) for n, t in layout], metadata)
    return head + b"".join(memoryview(t.data).cast("B").tobytes() for _, t in layout)  # type: ignore[arg-type]


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray], dtypes: Mapping[str, str] | None = None,
                metadata: Mapping[str, str] | None = None) -> int:
    """Convenience: write numpy arrays (each in ``dtypes[name]`` if given, e.g. "BF16")."""
    dtypes = dtypes or {}
    return write_file(path, {n: encode(a, dtypes.get(n)) for n, a in arrays.items()}, metadata)


def load_arrays(path: str | Path, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Convenience: read every tensor (or ``names``) as numpy arrays (BF16 widened to float32)."""
    file = SafetensorsFile.open(path)
    return {n: file.array(n) for n in (names if names is not None else file.keys())}
