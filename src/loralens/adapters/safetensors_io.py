"""A strict safetensors reader and a writer, numpy only (no torch, no ml_dtypes).

Format: 8 bytes little-endian unsigned header length N, then N bytes of JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the data; offsets
are relative to the first byte after the header. Every malformed case raises AdapterError whose ``where`` names
the file (and the tensor), so a user sees exactly what is wrong.

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

from loralens.errors import AdapterError

# safetensors dtype name -> (numpy storage dtype, item size). BF16 is stored as uint16 bit patterns.
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "F8_E4M3": np.dtype(np.uint8),
    "F8_E5M2": np.dtype(np.uint8),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
    "F64": np.dtype("<f8"),
}
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
_NUMPY_TO_NAME = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64",
                  np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
                  np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}
MAX_HEADER = 100_000_000  # the safetensors library's own limit


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
        self._buffer = buffer  # uint8, the whole file
        self.tensors, self.metadata = _parse(buffer, label)

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
        except OSError as error:
            raise AdapterError(f"cannot read: {error.strerror or error}", where=label) from None
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
        return f"{self.label}: {name}"

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes (uint8 view, no copy)."""
        info = self.tensors[name]
        return self._buffer[info.start : info.end]

    def tensor_data(self, name: str) -> TensorData:
        info = self.tensors[name]
        return TensorData(info.dtype, info.shape, self.raw(name))

    def array(self, name: str, dtype: np.dtype | type | None = None) -> np.ndarray:
        """The tensor as a numpy array (a fresh copy). BF16 is widened to float32 exactly.

        ``dtype`` converts floating tensors (e.g. np.float32); integer tensors keep their type.
        """
        info = self.tensors[name]
        raw = self.raw(name)
        stored = raw.view(DTYPES[info.dtype]).reshape(info.shape)
        if info.dtype == "BF16":
            out = bf16_bits_to_float32(stored)
        else:
            out = np.array(stored, dtype=stored.dtype.newbyteorder("="))
        if dtype is not None and info.dtype in FLOAT_DTYPES:
            out = out.astype(dtype, copy=False)
        return out


def _parse(buffer: np.ndarray, label: str) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    size = int(buffer.size)
    if size < 8:
        raise AdapterError(f"truncated file: {size} bytes, too short for the 8-byte header length", where=label)
    (header_len,) = struct.unpack("<Q", buffer[:8].tobytes())
    if header_len > size - 8:
        raise AdapterError(
            f"header length {header_len:,} is larger than the file ({size:,} bytes): truncated or not safetensors",
            where=label,
        )
    if header_len > MAX_HEADER:
        raise AdapterError(f"header length {header_len:,} is over the limit of {MAX_HEADER:,} bytes", where=label)
    try:
        header = json.loads(buffer[8 : 8 + header_len].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise AdapterError(f"header is not JSON ({error})", where=label) from None
    if not isinstance(header, dict):
        raise AdapterError(f"header is not a JSON object (got {type(header).__name__})", where=label)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise AdapterError("__metadata__ is not a JSON object", where=label)
    data_start = 8 + header_len
    data_size = size - data_start
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        where = f"{label}: {name}"
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise AdapterError("header entry needs dtype, shape and data_offsets", where=where)
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise AdapterError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})", where=where)
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            raise AdapterError(f"shape must be a list of non-negative integers, got {shape!r}", where=where)
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)):
            raise AdapterError(f"data_offsets must be [begin, end], got {offsets!r}", where=where)
        begin, end = offsets
        if end < begin:
            raise AdapterError(f"data_offsets [{begin}, {end}] end before they begin", where=where)
        if end > data_size:
            raise AdapterError(
                f"data_offsets [{begin:,}, {end:,}] run past the end of the data ({data_size:,} bytes): "
                "truncated file or bad offsets",
                where=where,
            )
        need = math.prod(shape) * DTYPES[dtype].itemsize
        if end - begin != need:
            raise AdapterError(
                f"data_offsets [{begin:,}, {end:,}] hold {end - begin:,} bytes but shape {shape} of {dtype} "
                f"needs {need:,}",
                where=where,
            )
        tensors[name] = TensorInfo(name, dtype, tuple(shape), data_start + begin, data_start + end)
    previous: TensorInfo | None = None
    for info in sorted(tensors.values(), key=lambda t: (t.start, t.end)):
        if previous is not None and info.start < previous.end and info.nbytes and previous.nbytes:
            raise AdapterError(f"data overlaps tensor {previous.name!r}", where=f"{label}: {info.name}")
        if info.nbytes:
            previous = info
    return tensors, {str(k): str(v) for k, v in metadata.items()}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
        if array.dtype not in _NUMPY_TO_NAME:
            raise AdapterError(f"cannot store numpy dtype {array.dtype} in safetensors", where="write")
        dtype = _NUMPY_TO_NAME[array.dtype]
    if dtype == "BF16":
        data = float32_to_bf16_bits(array)
    elif dtype in DTYPES:
        data = np.ascontiguousarray(array, dtype=DTYPES[dtype])
    else:
        raise AdapterError(f"cannot write dtype {dtype!r}", where="write")
    return TensorData(dtype, tuple(int(n) for n in array.shape), data.reshape(-1).view(np.uint8))


def _header(tensors: Mapping[str, TensorData], metadata: Mapping[str, str] | None) -> bytes:
    for name, tensor in tensors.items():
        need = math.prod(tensor.shape) * DTYPES[tensor.dtype].itemsize
        if tensor.nbytes != need:
            raise AdapterError(f"has {tensor.nbytes} bytes, shape {list(tensor.shape)} needs {need}", where=name)
    return header_bytes([(n, t.dtype, t.shape) for n, t in tensors.items()], metadata)


def header_bytes(entries: Iterable[tuple[str, str, tuple[int, ...]]], metadata: Mapping[str, str] | None) -> bytes:
    """The 8-byte length and the JSON header for tensors (name, dtype, shape) laid out in this order."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dtype, shape in entries:
        need = math.prod(shape) * DTYPES[dtype].itemsize
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + need]}
        offset += need
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes, as the safetensors library does
    return struct.pack("<Q", len(text)) + text


def write_stream(stream: BinaryIO, tensors: Mapping[str, TensorData], metadata: Mapping[str, str] | None = None) -> int:
    """Write a safetensors file to an open binary stream; return the number of bytes written."""
    head = _header(tensors, metadata)
    stream.write(head)
    total = len(head)
    for tensor in tensors.values():
        stream.write(memoryview(tensor.data).cast("B"))  # type: ignore[arg-type]
        total += tensor.nbytes
    return total


def write_file(path: str | Path, tensors: Mapping[str, TensorData], metadata: Mapping[str, str] | None = None) -> int:
    with open(path, "wb") as stream:
        return write_stream(stream, tensors, metadata)


def to_bytes(tensors: Mapping[str, TensorData], metadata: Mapping[str, str] | None = None) -> bytes:
    head = _header(tensors, metadata)
    return head + b"".join(memoryview(t.data).cast("B").tobytes() for t in tensors.values())  # type: ignore[arg-type]


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray], dtypes: Mapping[str, str] | None = None,
                metadata: Mapping[str, str] | None = None) -> int:
    """Convenience: write numpy arrays (each in ``dtypes[name]`` if given, e.g. "BF16")."""
    dtypes = dtypes or {}
    return write_file(path, {n: encode(a, dtypes.get(n)) for n, a in arrays.items()}, metadata)


def load_arrays(path: str | Path, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Convenience: read every tensor (or ``names``) as numpy arrays (BF16 widened to float32)."""
    file = SafetensorsFile.open(path)
    return {n: file.array(n) for n in (names if names is not None else file.keys())}
