"""What every non-PEFT layout shares: a module that remembers how its factors were stored, and the ``Adapter``
built from such modules with a PEFT-style config (r / lora_alpha the most common values, rank_pattern /
alpha_pattern for the others) so that inspect, resize and the Inspector treat it like any adapter.

A conv LoRA (kohya, LyCORIS LoCon, PEFT's Conv2d) is exactly a matrix LoRA of the flattened kernel:
ΔW (out, in, kh, kw) = up (out, r) @ down (r, in·kh·kw), reshaped. ``conv_shape`` keeps (in, kh, kw) so a writer
can restore the 4-D tensors.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loralens.adapters.peft_format import DTYPE_NAMES, Adapter, AdapterModule
from loralens.adapters.safetensors_io import FLOAT_DTYPES, SafetensorsFile, TensorData, encode
from loralens.errors import AdapterError

#: a config key only loralens reads (never written to a file): a sentence about how the format was read
NOTE_KEY = "_loralens_note"


@dataclass(frozen=True, eq=False)
class ForeignModule(AdapterModule):
    """An AdapterModule read from a non-PEFT layout. ``conv_shape`` (in, kh, kw) for a conv LoRA, else ();
    ``alpha_dtype`` the safetensors dtype of a stored ``.alpha`` scalar (None: the file had none)."""

    conv_shape: tuple[int, ...] = ()
    alpha_dtype: str | None = None


def natural(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def check_float(file: SafetensorsFile, key: str) -> None:
    info = file.tensors[key]
    if info.dtype not in FLOAT_DTYPES:
        raise AdapterError(f"dtype {info.dtype} is not a floating type", where=file.where(key))


def read_scalar(file: SafetensorsFile, key: str) -> float:
    """A stored scalar (an ``.alpha``): shape () or (1,), floating."""
    check_float(file, key)
    info = file.tensors[key]
    if info.size != 1:
        raise AdapterError(f"must be a single number, got shape {list(info.shape)}", where=file.where(key))
    value = float(file.array(key, np.float64).reshape(-1)[0])
    if not math.isfinite(value):
        raise AdapterError(f"is {value}, not a finite number", where=file.where(key))
    return value


def store_type(dtype: str) -> type:
    return np.float64 if dtype == "F64" else np.float32


def factors(file: SafetensorsFile, down_key: str, up_key: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(A (r, in·kh·kw), B (out, r), conv_shape) from a down (r, in[, kh, kw]) and an up (out, r[, 1, 1]) tensor."""
    check_float(file, down_key)
    check_float(file, up_key)
    down, up = file.tensors[down_key], file.tensors[up_key]
    if len(down.shape) not in (2, 4):
        raise AdapterError(f"must be 2-D (linear) or 4-D (conv), got shape {list(down.shape)}",
                           where=file.where(down_key))
    if len(up.shape) != len(down.shape):
        raise AdapterError(f"shape {list(up.shape)} does not match the down/A tensor's {list(down.shape)}",
                           where=file.where(up_key))
    if len(up.shape) == 4 and tuple(up.shape[2:]) != (1, 1):
        raise AdapterError(f"a conv up/B tensor with a {up.shape[2]}x{up.shape[3]} kernel is not a product B·A; "
                           "loralens reads 1x1 up kernels only", where=file.where(up_key))
    if down.shape[0] != up.shape[1]:
        raise AdapterError(f"shape {list(down.shape)} has rank {down.shape[0]} but the up/B tensor "
                           f"{list(up.shape)} has {up.shape[1]}; they must agree", where=file.where(down_key))
    store = store_type(down.dtype)
    a = file.array(down_key, store)
    b = file.array(up_key, store)
    conv_shape = tuple(int(n) for n in down.shape[1:]) if len(down.shape) == 4 else ()
    return a.reshape(a.shape[0], -1), b.reshape(b.shape[0], b.shape[1]), conv_shape


def make_module(name: str, key: str, a: np.ndarray, b: np.ndarray, alpha: float, *, scaling: float | None = None,
                dtype: str, b_dtype: str, tensor_names: tuple[str, ...], conv_shape: tuple[int, ...] = (),
                alpha_dtype: str | None = None, kind: str | None = None) -> ForeignModule:
    r = int(a.shape[0])
    if r == 0:
        raise AdapterError("has rank 0", where=tensor_names[0])
    return ForeignModule(
        name=name, a=a, b=b, r=r, alpha=float(alpha), scaling=alpha / r if scaling is None else scaling,
        in_features=int(a.shape[1]), out_features=int(b.shape[0]),
        kind=kind or ("conv" if conv_shape else "linear"), key=key, dtype=dtype,
        tensor_names=tensor_names, b_dtype=b_dtype if b_dtype != dtype else None, conv_shape=conv_shape,
        alpha_dtype=alpha_dtype,
    )


def _most_common(values: list[Any]) -> Any:
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def synthesized_config(modules: Iterable[AdapterModule], **extra: Any) -> dict[str, Any]:
    """A PEFT-style config describing these modules: r / lora_alpha the most common, patterns for the rest
    (exact names, escaped), target_modules the full module paths."""
    modules = list(modules)
    r = _most_common([m.r for m in modules])
    alpha = _most_common([m.alpha for m in modules])
    config: dict[str, Any] = {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": number(alpha),
        "rank_pattern": {re.escape(m.name): m.r for m in modules if m.r != r},
        "alpha_pattern": {re.escape(m.name): number(m.alpha) for m in modules if m.alpha != alpha},
        # full module paths: PEFT matches a list entry by name or dotted suffix, so a leaf such as "0"
        # (to_out.0) would also catch containers (down_blocks.0)
        "target_modules": sorted({m.name for m in modules}),
    }
    config.update(extra)
    return config


def build_adapter(modules: list[ForeignModule], *, fmt: str, file: SafetensorsFile, path: Path | None,
                  name: str, note: str, other: Mapping[str, TensorData] | None = None,
                  config_extra: Mapping[str, Any] | None = None) -> Adapter:
    if not modules:
        raise AdapterError("holds no LoRA factors", where=file.label)
    modules.sort(key=lambda m: natural(m.name))
    seen: set[str] = set()
    for m in modules:
        if m.name in seen:
            raise AdapterError(f"module {m.name!r} appears twice", where=file.label)
        seen.add(m.name)
    dtypes = {d for m in modules for d in (m.dtype, m.b_dtype or m.dtype)}
    dtype = DTYPE_NAMES.get(next(iter(dtypes)), "mixed") if len(dtypes) == 1 else "mixed"
    config = synthesized_config(modules, **dict(config_extra or {}))
    config[NOTE_KEY] = note
    return Adapter(config=config, modules=tuple(modules), dtype=dtype, path=path, file_bytes=file.file_bytes,
                   name=name, other_tensors=dict(other or {}), metadata=dict(file.metadata), format=fmt)


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config without loralens' private keys (what may be written to adapter_config.json)."""
    return {k: v for k, v in config.items() if not k.startswith("_loralens")}


def scalar_tensor(value: float, dtype: str | None) -> TensorData:
    """An ``.alpha`` scalar in ``dtype`` if it holds the value exactly, else float32 (kohya reads it as float32)."""
    for candidate in ([dtype] if dtype else []) + ["F32"]:
        data = encode(np.array(value, dtype=np.float64), candidate)
        back = SafetensorsFile.from_bytes(_one(data)).array("x", np.float64).reshape(-1)[0]
        if back == value:
            return data
    return encode(np.array(value, dtype=np.float32), "F32")


def _one(data: TensorData) -> bytes:
    from loralens.adapters.safetensors_io import to_bytes

    return to_bytes({"x": data})


def factor_tensors(module: AdapterModule, *, conv: bool) -> tuple[TensorData, TensorData]:
    """(A/down, B/up) in their stored dtypes, 4-D again for a conv module."""
    a, b = module.a, module.b
    shape = getattr(module, "conv_shape", ())
    if conv and shape:
        a = a.reshape(a.shape[0], *shape)
        b = b.reshape(b.shape[0], b.shape[1], 1, 1)
    return encode(a, module.dtype), encode(b, module.b_dtype or module.dtype)
