"""What is in an adapter: per-module spectra from the r x r core, and a summary of the whole file."""

from __future__ import annotations

import json

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from loralens.core.blas import single_threaded_blas
from loralens.adapters.peft_format import PREFIX, Adapter, AdapterModule
from loralens.core.lowrank import effective_rank, energy_kept, numerical_rank, singular_values

_LAYER = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")


@dataclass(frozen=True, eq=False)
class ModuleReport:
    name: str
    layer: int | None
    module_type: str
    kind: str
    in_features: int
    out_features: int
    r: int
    alpha: float
    scaling: float
    delta_fro: float  # ‖scaling · B A‖_F
    singular_values: np.ndarray  # (r,) descending
    numerical_rank: int
    effective_rank: float
    energy: np.ndarray  # (r,) cumulative fraction of Σσ² kept at rank 1..r
    a_norm: float
    b_norm: float
    nonfinite: bool
    dora: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layer": self.layer,
            "module_type": self.module_type,
            "kind": self.kind,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "r": self.r,
            "alpha": _num(self.alpha),
            "scaling": _num(self.scaling),
            "delta_fro": _num(self.delta_fro),
            "singular_values": [_num(v) for v in self.singular_values],
            "numerical_rank": self.numerical_rank,
            "effective_rank": _num(self.effective_rank),
            "energy": [_num(v) for v in self.energy],
            "a_norm": _num(self.a_norm),
            "b_norm": _num(self.b_norm),
            "nonfinite": self.nonfinite,
            "dora": self.dora,
        }


@dataclass(frozen=True)
class AdapterSummary:
    modules: int
    parameters: int
    bytes: int
    dtype: str
    base_model: str | None
    peft_version: str | None
    r: int
    alpha: float
    use_rslora: bool
    use_dora: bool
    target_modules: list[str] | str | None
    nonfinite: list[str]
    ranks: list[int]  # distinct module ranks, ascending
    name: str = "adapter"
    format: str = "peft"  # the layout the adapter was read from (adapters.formats)
    format_note: str = ""  # how that layout's scaling was read

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "modules": self.modules,
            "parameters": self.parameters,
            "bytes": self.bytes,
            "dtype": self.dtype,
            "base_model": self.base_model,
            "peft_version": self.peft_version,
            "r": self.r,
            "alpha": _num(self.alpha),
            "use_rslora": self.use_rslora,
            "use_dora": self.use_dora,
            "target_modules": self.target_modules,
            "ranks": self.ranks,
            "nonfinite": self.nonfinite,
            "format": self.format,
            "format_note": self.format_note,
        }


@dataclass(frozen=True)
class OtherTensor:
    """A tensor of the file that is not a LoRA factor: what it is, and its share of the file."""

    name: str
    what: str
    dtype: str
    shape: tuple[int, ...]
    bytes: int
    share: float  # of the file's bytes

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "what": self.what, "dtype": self.dtype, "shape": list(self.shape),
                "bytes": self.bytes, "share": self.share}


@dataclass(frozen=True, eq=False)
class AdapterReport:
    summary: AdapterSummary
    modules: tuple[ModuleReport, ...]
    other_tensors: tuple[OtherTensor, ...] = ()
    unsupported: tuple[dict[str, Any], ...] = ()  # {"name", "reason", "tensors", "bytes"}: modules not read

    def to_json(self) -> dict[str, Any]:
        """The exact object ``loralens inspect --json`` prints (NaN/Inf become null)."""
        return {"summary": self.summary.to_json(), "modules": [m.to_json() for m in self.modules],
                "other_tensors": [t.to_json() for t in self.other_tensors], "unsupported": list(self.unsupported)}


def describe_tensor(name: str) -> str:
    """What PEFT saved this non-LoRA tensor for (from its key, as PEFT's save_pretrained names it)."""
    short = name.removeprefix(PREFIX)
    if short.endswith(".lora_B.bias"):
        return "lora_bias (trained bias of lora_B)"
    if short.endswith(".token_adapter.trainable_tokens_delta"):
        return "trainable tokens (new rows)"
    if ".base_layer." in short:
        return "copy of the base layer (save_embedding_layers, or a trained bias)"
    if short.endswith(".bias"):
        return "trained bias (bias='all' / 'lora_only')"
    if any(short.endswith(e) for e in ("embed_tokens.weight", "wte.weight", "embed_in.weight", "lm_head.weight",
                                       "embed_out.weight", "word_embeddings.weight")):
        return "whole embedding or head (modules_to_save or save_embedding_layers)"
    return "modules_to_save copy (e.g. a task head)"


def other_tensors(adapter: Adapter) -> tuple[OtherTensor, ...]:
    total = max(1, adapter.file_bytes)
    rows = [OtherTensor(name, describe_tensor(name), data.dtype, tuple(data.shape), data.nbytes, data.nbytes / total)
            for name, data in adapter.other_tensors.items()]
    return tuple(sorted(rows, key=lambda t: (-t.bytes, t.name)))


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def parse_layer(name: str) -> int | None:
    """The first purely numeric path component (model.layers.3.self_attn.q_proj -> 3), else None."""
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


def _fro(x: np.ndarray) -> float:
    """‖x‖_F without BLAS (numpy's norm calls a threaded dot, slow on a busy machine for these sizes)."""
    return float(np.sqrt(np.sum(np.square(x, dtype=np.float64))))


def inspect_module(module: AdapterModule) -> ModuleReport:
    finite = module.finite  # no NaN/Inf, and ΔW far inside float64 (no LAPACK call on an overflow)
    r = module.a.shape[0]
    if finite:
        s = singular_values(module.b, module.a, module.scaling)  # (r,) via the r x r core
        energy = energy_kept(s)
        num_rank = numerical_rank(s, (module.out_features, module.in_features))
        eff_rank = effective_rank(s)
        delta_fro = float(np.sqrt(np.sum(s.astype(np.float64) ** 2)))
    else:
        s = np.full(r, np.nan)
        energy = np.full(r, np.nan)
        num_rank, eff_rank, delta_fro = 0, float("nan"), float("nan")
    return ModuleReport(
        name=module.name,
        layer=parse_layer(module.name),
        module_type=module.name.split("[")[0].removesuffix(".base_layer").rsplit(".", 1)[-1],  # experts[3] -> experts
        kind=module.kind,
        in_features=module.in_features,
        out_features=module.out_features,
        r=module.r,
        alpha=module.alpha,
        scaling=module.scaling,
        delta_fro=delta_fro,
        singular_values=s,
        numerical_rank=num_rank,
        effective_rank=eff_rank,
        energy=energy,
        a_norm=_fro(module.a),
        b_norm=_fro(module.b),
        nonfinite=not finite,
        dora=module.magnitude is not None,
    )


def _nonfinite_tensors(module: AdapterModule) -> list[str]:
    arrays = [module.a, module.b] + ([module.magnitude] if module.magnitude is not None else [])
    bad = [name for name, array in zip(module.tensor_names, arrays, strict=False) if not np.isfinite(array).all()]
    return bad or [f"{module.name} (scaling x |B| x |A| overflows)"]


def inspect_adapter(adapter: Adapter) -> AdapterReport:
    """Analyse every module (spectra from the r x r core, never the d x k product) and summarise the adapter."""
    with single_threaded_blas():
        reports = tuple(inspect_module(m) for m in adapter.modules + adapter.experts)
    nonfinite = [name for m, rep in zip(adapter.modules + adapter.experts, reports, strict=True) if rep.nonfinite
                 for name in _nonfinite_tensors(m)]
    parameters = sum(m.parameters for m in adapter.modules + adapter.experts)
    parameters += sum(int(np.prod(t.shape)) for t in adapter.other_tensors.values())
    config = adapter.config
    summary = AdapterSummary(
        modules=len(reports),
        parameters=int(parameters),
        bytes=adapter.file_bytes,
        dtype=adapter.dtype,
        base_model=_as_text(config.get("base_model_name_or_path")),
        peft_version=_as_text(config.get("peft_version")),
        r=int(config["r"]),
        alpha=float(config["lora_alpha"]),
        use_rslora=bool(config.get("use_rslora", False)),
        use_dora=bool(config.get("use_dora", False)) or any(m.magnitude is not None for m in adapter.modules),
        target_modules=config.get("target_modules"),
        nonfinite=nonfinite,
        ranks=sorted({m.r for m in adapter.modules + adapter.experts}),
        name=adapter.name,
        format=adapter.format,
        format_note=_format_note(adapter),
    )
    expert_stems = {m.key.removeprefix(PREFIX) for m in adapter.experts}
    unsupported = tuple({"name": u.name, "reason": u.reason, "tensors": list(u.tensors), "bytes": u.bytes,
                         "inspected": u.name in expert_stems} for u in adapter.unsupported)
    return AdapterReport(summary=summary, modules=reports, other_tensors=other_tensors(adapter),
                         unsupported=unsupported)


def _as_text(value: object) -> str | None:
    """An informational config field as text: a number or list there (NaN included) is shown as written, never
    passed on as a value that JSON output cannot hold."""
    return value if value is None or isinstance(value, str) else json.dumps(value)


def _format_note(adapter: Adapter) -> str:
    from loralens.adapters.formats import describe

    return describe(adapter)
