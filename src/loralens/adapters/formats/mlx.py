"""Apple MLX-LM adapters: ``adapters.safetensors`` + an adapter_config.json with ``lora_parameters``.

mlx_lm/tuner/lora.py: ``LoRALinear`` holds ``lora_a`` (in, r) and ``lora_b`` (r, out), transposed against PEFT,
and adds ``scale · (x @ lora_a) @ lora_b``; so PEFT's A = lora_aᵀ (r, in), B = lora_bᵀ (out, r) and the scaling is
``lora_parameters.scale`` itself (no alpha / r). ``LoRAEmbedding`` (lora_a (num_embeddings, r), lora_b (r, dim),
ΔW = scale · lora_a @ lora_b added to the (num_embeddings, dim) table) maps the same way onto PEFT's
lora_embedding_A/B. Refused by name: DoRA (``fine_tune_type: dora``, ``.m``), full fine-tunes, and the 3-D
mixture-of-experts factors of ``LoRASwitchLinear``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from loralens.adapters.formats.common import ForeignModule, build_adapter, check_float, make_module, number
from loralens.adapters.peft_format import Adapter
from loralens.adapters.safetensors_io import SafetensorsFile, TensorData, encode
from loralens.errors import AdapterError

FORMAT = "mlx"
WEIGHTS = "adapters.safetensors"
CONFIG = "adapter_config.json"
EMBEDDING_LEAVES = ("embed_tokens", "wte", "word_embeddings", "tok_embeddings")


def is_mlx_config(raw: bytes) -> bool:
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and "lora_parameters" in config and "r" not in config


def _parameters(config: Mapping[str, Any], where: str) -> tuple[int, float]:
    kind = config.get("fine_tune_type", "lora")
    if kind == "dora":
        raise AdapterError("this is an MLX-LM DoRA adapter; loralens reads LoRA factors only",
                           where=f"{where}: fine_tune_type")
    if kind != "lora":
        raise AdapterError(f"fine_tune_type {kind!r} is not a LoRA adapter", where=f"{where}: fine_tune_type")
    params = config.get("lora_parameters")
    if not isinstance(params, Mapping):
        raise AdapterError("must be an object with rank and scale", where=f"{where}: lora_parameters")
    rank, scale = params.get("rank"), params.get("scale")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise AdapterError(f"must be a positive integer, got {rank!r}", where=f"{where}: lora_parameters.rank")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise AdapterError(f"must be a number, got {scale!r}", where=f"{where}: lora_parameters.scale")
    return rank, float(scale)


def alpha_for(scale: float, r: int) -> float:
    """An alpha with alpha / r == scale exactly in float64 (scale·r, or a neighbour of it), so a PEFT or kohya
    file written from it scales exactly as MLX does."""
    guess = scale * r
    for candidate in (guess, math.nextafter(guess, math.inf), math.nextafter(guess, -math.inf)):
        if candidate / r == scale:
            return candidate
    return guess  # convert refuses it by name (scaling is not alpha/r)


def read_mlx(config_raw: bytes, config_label: str, file: SafetensorsFile, path: Path | None, name: str) -> Adapter:
    try:
        config = json.loads(config_raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise AdapterError(f"is not valid JSON ({error})", where=config_label) from None
    rank, scale = _parameters(config, config_label)
    parts: dict[str, dict[str, str]] = {}
    for key in file.keys():
        stem, _, leaf = key.rpartition(".")
        if leaf == "m":
            raise AdapterError("this is an MLX-LM DoRA adapter; loralens reads LoRA factors only",
                               where=file.where(key))
        if leaf not in ("lora_a", "lora_b"):
            raise AdapterError("is not an MLX-LM LoRA factor (lora_a / lora_b)", where=file.where(key))
        parts.setdefault(stem, {})[leaf] = key
    modules: list[ForeignModule] = []
    for stem, roles in parts.items():
        if len(roles) != 2:
            have = next(iter(roles.values()))
            raise AdapterError("has no matching " + ("lora_b" if "lora_a" in roles else "lora_a"),
                               where=file.where(have))
        a_info, b_info = file.tensors[roles["lora_a"]], file.tensors[roles["lora_b"]]
        for info in (a_info, b_info):
            check_float(file, info.name)
            if len(info.shape) != 2:
                raise AdapterError(f"has shape {list(info.shape)}; loralens reads 2-D lora_a/lora_b only "
                                   "(3-D factors are MLX's mixture-of-experts LoRASwitchLinear)",
                                   where=file.where(info.name))
        if a_info.shape[1] != b_info.shape[0]:
            raise AdapterError(f"shape {list(a_info.shape)} (in, r) and lora_b {list(b_info.shape)} (r, out) "
                               "disagree on the rank", where=file.where(a_info.name))
        if a_info.shape[1] != rank:
            raise AdapterError(f"has rank {a_info.shape[1]} but lora_parameters.rank is {rank}",
                               where=file.where(a_info.name))
        store = np.float64 if a_info.dtype == "F64" else np.float32
        a = np.ascontiguousarray(file.array(a_info.name, store).T)  # (r, in)
        b = np.ascontiguousarray(file.array(b_info.name, store).T)  # (out, r)
        kind = "embedding" if stem.rsplit(".", 1)[-1] in EMBEDDING_LEAVES else "linear"
        modules.append(make_module(stem, stem, a, b, alpha_for(scale, rank), scaling=scale, dtype=a_info.dtype,
                                   b_dtype=b_info.dtype, tensor_names=(a_info.name, b_info.name), kind=kind))
    note = f"MLX-LM layout (lora_a/lora_b transposed against PEFT), scale {number(scale)} used as the scaling"
    extra = {"mlx_config": config}
    return build_adapter(modules, fmt=FORMAT, file=file, path=path, name=name, note=note, config_extra=extra)


def mlx_files(modules: list | tuple, mlx_config: Mapping[str, Any]) -> tuple[dict[str, TensorData], dict[str, Any]]:
    """(tensors, adapter_config.json) in MLX-LM's layout; one rank and one scale for every module, as MLX needs."""
    ranks = {m.r for m in modules}
    scales = {m.scaling for m in modules}
    if len(ranks) != 1 or len(scales) != 1:
        raise AdapterError(f"MLX-LM adapters have one rank and one scale for every module; these modules have "
                           f"ranks {sorted(ranks)} and scalings {sorted(scales)}", where="lora_parameters")
    tensors: dict[str, TensorData] = {}
    for m in modules:
        if m.magnitude is not None or getattr(m, "conv_shape", ()):
            raise AdapterError("DoRA and conv modules have no place in the MLX-LM LoRA layout", where=m.name)
        tensors[f"{m.key}.lora_a"] = encode(np.ascontiguousarray(m.a.T), m.dtype)
        tensors[f"{m.key}.lora_b"] = encode(np.ascontiguousarray(m.b.T), m.b_dtype or m.dtype)
    config = json.loads(json.dumps(dict(mlx_config)))
    params = dict(config.get("lora_parameters") or {})
    params["rank"] = ranks.pop()
    params["scale"] = number(scales.pop())
    config["lora_parameters"] = params
    config.setdefault("fine_tune_type", "lora")
    return tensors, config
