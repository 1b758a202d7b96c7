"""The arithmetic of a merge: decoding stored tensors, applying a TensorPlan, and rounding as torch's ``.to(dtype)``.

merge_plan.py decides what happens to each base tensor; this module does it, in PEFT's order, so that the merged
values are the ones ``merge_and_unload`` produces in the base dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loralens.adapters.merge_plan import TensorPlan
from loralens.adapters.safetensors_io import (
    DTYPES,
    SafetensorsFile,
    TensorData,
    bf16_bits_to_float32,
    float32_to_bf16_bits,
)
from loralens.errors import AdapterError


def work_dtype(dtype: str) -> type:
    return np.float64 if dtype == "F64" else np.float32


def decode(data: TensorData, work: type) -> np.ndarray:
    """A TensorData as an array of ``work`` (exact widening; F64 -> float32 rounds once, as torch's copy_)."""
    stored = DTYPES[data.dtype]
    bits = np.frombuffer(memoryview(data.data).cast("B"), dtype=stored).reshape(data.shape)
    values = bf16_bits_to_float32(bits) if data.dtype == "BF16" else bits
    return values.astype(work)


def round_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to the stored dtype (nearest, ties to even) and widened back, as torch's .to(dtype)."""
    if dtype == "BF16":
        return bf16_bits_to_float32(float32_to_bf16_bits(values))
    if dtype == "F16":
        return values.astype(np.float16).astype(np.float32)
    return values.astype(work_dtype(dtype))


def read_whole(file: SafetensorsFile, key: str) -> np.ndarray:
    info = file.tensors[key]
    return file.array(key, work_dtype(info.dtype))


def apply_plan(target: TensorPlan, base_values: np.ndarray, dtype: str, merged_rows: Any) -> np.ndarray:
    """The new tensor (widened, already rounded to ``dtype``) from the base tensor's values, in PEFT's order."""
    work = work_dtype(dtype)
    w = base_values
    if target.replace is not None:
        w = round_to(decode(target.replace, work), dtype)
    if target.rows is not None:
        indices, rows = target.rows
        w = np.array(w, dtype=work, copy=True)
        w[indices] = round_to(decode(rows, work), dtype)
    for module in target.deltas:
        shape = w.shape  # a conv kernel is merged as its (out, in·prod(kernel)) matrix
        w = round_to(merged_rows(module, w.reshape(shape[0], -1), 0, dtype), dtype).reshape(shape)
    for module, bias in target.bias_of:
        w = round_to(w + decode(bias, work) * work(module.scaling), dtype)
    if target.experts:
        w = np.array(w, dtype=work, copy=True)
        for e, module, transposed in target.experts:  # PEFT: delta.to(param.dtype), then param += delta
            delta = (module.b.astype(work) @ module.a.astype(work)) * work(module.scaling)  # (out, in)
            w[e] = round_to(w[e] + round_to(delta.T if transposed else delta, dtype), dtype)
    return w


def check_finite(new: np.ndarray, old: np.ndarray, dtype: str, where: str) -> None:
    """Refuse a merged tensor that is NaN or Inf where the base was finite (an overflow in ΔW or in the dtype)."""
    bad = ~np.isfinite(new)
    if bad.any() and (bad & np.isfinite(old)).any():
        raise AdapterError(f"the merged values are not finite in {dtype} (ΔW overflows); refusing to write it",
                           where=where)
