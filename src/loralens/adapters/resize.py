"""Resize an adapter: each module's ΔW replaced by its best rank-k approximation (Eckart–Young), as PEFT tensors.

For ΔW = s·B A with thin SVD U S Vᵀ (from the r x r core, core/lowrank.py), the new factors are
B' = U_k √(S_k/|s|) and A' = sign(s) √(S_k/|s|) V_kᵀ, so s·B' A' = U_k S_k V_kᵀ exactly. Each module keeps its
scaling s; its new alpha follows PEFT's rule (alpha = s·k, or s·√k with rsLoRA). The config gets the most common
new rank as ``r`` and alpha as ``lora_alpha``, and rank_pattern / alpha_pattern entries for the modules that differ.
Storage keeps each tensor's dtype (bf16 stays bf16). DoRA magnitude vectors are kept as they are.
"""

from __future__ import annotations

import copy
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from loralens.core.blas import single_threaded_blas
from loralens.adapters.peft_format import PREFIX, Adapter, AdapterModule
from loralens.adapters.peft_write import adapter_tensors
from loralens.adapters.safetensors_io import _header
from loralens.core.counting import alpha_for_scaling
from loralens.core.lowrank import energy_kept, lowrank_svd, rank_for_energy, truncation_error
from loralens.core.peft_config import spec_from_peft_config
from loralens.core.validation import check_float, check_int
from loralens.errors import AdapterError, InvalidParameterError


@dataclass(frozen=True)
class ResizedModule:
    name: str
    r_before: int
    r_after: int
    alpha: float  # the new alpha
    scaling: float  # unchanged
    energy_kept: float  # fraction of ‖ΔW‖²_F kept
    error: float  # relative Frobenius error ‖ΔW - ΔW_k‖ / ‖ΔW‖
    delta_fro: float  # ‖ΔW‖_F before

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "r_before": self.r_before, "r_after": self.r_after, "alpha": self.alpha,
                "scaling": self.scaling, "energy_kept": self.energy_kept, "error": self.error,
                "delta_fro": self.delta_fro}


@dataclass(frozen=True, eq=False)
class ResizedAdapter:
    adapter: Adapter  # the resized adapter (write it with write_adapter or adapter_to_bytes)
    modules: tuple[ResizedModule, ...]
    parameters_before: int
    parameters_after: int
    rank: int | None
    energy: float | None
    adapter_before_bytes: int = 0

    @property
    def config(self) -> dict[str, Any]:
        return self.adapter.config

    @property
    def bytes_after(self) -> int:
        return self.adapter.file_bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "energy": self.energy,
            "r": self.config["r"],
            "lora_alpha": self.config["lora_alpha"],
            "rank_pattern": self.config.get("rank_pattern") or {},
            "alpha_pattern": self.config.get("alpha_pattern") or {},
            "parameters_before": self.parameters_before,
            "parameters_after": self.parameters_after,
            "bytes_before": self.adapter_before_bytes,
            "bytes_after": self.bytes_after,
            "modules": [m.to_json() for m in self.modules],
        }


def _lora_params(adapter: Adapter) -> int:
    return sum(m.parameters for m in adapter.modules + adapter.experts)


def _spectrum(module: AdapterModule) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """σ of ΔW = s·B A (descending) and its singular vectors (U, Vᵀ), from the r x r core."""
    if not (np.isfinite(module.a).all() and np.isfinite(module.b).all()):
        raise AdapterError("holds NaN or Inf values; cannot resize", where=module.tensor_names[0])
    if not module.finite:
        raise AdapterError(f"ΔW = scaling ({module.scaling:.3g}) x B A overflows; cannot resize",
                           where=module.tensor_names[0])
    with single_threaded_blas():
        u, s, vt = lowrank_svd(module.b, module.a, module.scaling)  # (out, r), (r,), (r, in)
    return s, (u, vt)


def _cut(module: AdapterModule, s: np.ndarray, factors: tuple[np.ndarray, np.ndarray], k: int,
         use_rslora: bool) -> AdapterModule:
    """The module's best rank-k factors (Eckart–Young), scaling kept, alpha by PEFT's rule."""
    (u, vt), scaling = factors, module.scaling
    if scaling == 0:
        new_a, new_b = module.a[:k], module.b[:, :k]
    else:
        root = np.sqrt(s[:k] / abs(scaling))  # (k,)
        new_b = u[:, :k] * root  # (out, k)
        new_a = np.sign(scaling) * root[:, None] * vt[:k]  # (k, in)
    alpha = alpha_for_scaling(scaling, k, use_rslora)
    alpha = float(round(alpha)) if abs(alpha - round(alpha)) < 1e-9 else float(alpha)
    store = np.float64 if module.dtype == "F64" else np.float32
    if not (np.isfinite(new_a.astype(store)).all() and np.isfinite(new_b.astype(store)).all()
            and math.isfinite(alpha)):
        raise AdapterError(f"the rank-{k} factors do not fit in {module.dtype}; cannot resize",
                           where=module.tensor_names[0])
    return replace(module, a=new_a.astype(store), b=new_b.astype(store), r=k, alpha=alpha)


@dataclass(frozen=True)
class RankChoice:
    """What a resize keeps of one module: the new rank, the share of ‖ΔW‖²_F kept and the relative error."""

    r_after: int
    energy_kept: float
    error: float  # ‖ΔW - ΔW_k‖_F / ‖ΔW‖_F (Eckart–Young: the tail of the spectrum)


def check_resize_target(rank: object, energy: object) -> tuple[int | None, float | None]:
    """Exactly one of a fixed rank (>= 1) or an energy fraction in (0, 1]."""
    if (rank is None) == (energy is None):
        raise InvalidParameterError("give exactly one of rank or energy", where="rank/energy")
    if rank is not None:
        return check_int("rank", rank, 1), None
    return None, check_float("energy", energy, 0.0, 1.0, low_open=True)


def choose_rank(s: np.ndarray, r: int, *, rank: int | None = None, energy: float | None = None) -> RankChoice:
    """The resize rule, for the command, the library and the Inspector's preview alike.

    A fixed ``rank`` never grows a module (r ≤ rank keeps everything); ``energy`` keeps the smallest rank whose
    leading singular values hold that share of the energy. ``s``: the module's singular values, descending.
    """
    k = min(r, rank) if rank is not None else min(r, rank_for_energy(s, energy))  # type: ignore[arg-type]
    kept = float(energy_kept(s)[k - 1]) if s.size else 1.0
    return RankChoice(k, kept, truncation_error(s, k))


def resize_adapter(adapter: Adapter, *, rank: int | None = None, energy: float | None = None) -> ResizedAdapter:
    """Pure and in memory: the adapter with every module cut to ``rank`` (at most its own r), or to the smallest
    rank keeping ``energy`` of its Frobenius energy. Nothing is written."""
    rank, energy = check_resize_target(rank, energy)
    expert_stems = {m.key.removeprefix(PREFIX) for m in adapter.experts}
    blocking = [u for u in adapter.unsupported if u.name not in expert_stems]
    if blocking:
        first = blocking[0]
        raise AdapterError(f"cannot resize module {first.name!r}: {first.reason}", where=first.where)
    use_rslora = adapter.spec.use_rslora
    new_modules: list[AdapterModule] = []
    reports: list[ResizedModule] = []
    for module in adapter.modules:
        s, factors = _spectrum(module)
        k = choose_rank(s, module.r, rank=rank, energy=energy).r_after
        new_modules.append(_cut(module, s, factors, k, use_rslora))
        reports.append(_report(module, s, k, new_modules[-1].alpha))
    new_experts = _resize_experts(adapter.experts, rank, energy, use_rslora, reports)
    config = _config_for(adapter.config, new_modules, new_experts)
    resized = Adapter(config=config, modules=tuple(new_modules), dtype=adapter.dtype, path=adapter.path,
                      file_bytes=0, name=adapter.name, other_tensors=adapter.other_tensors, metadata=adapter.metadata,
                      format=adapter.format, unsupported=adapter.unsupported, experts=tuple(new_experts))
    if adapter.format == "peft":
        tensors, metadata = adapter_tensors(resized), dict(adapter.metadata) or {"format": "pt"}
    else:  # another layout (adapters.formats) keeps its own: the size of the file it will write
        from loralens.adapters.formats import output_files

        tensors, metadata, _ = output_files(resized)
    size = len(_header(tensors, metadata)) + sum(t.nbytes for t in tensors.values())
    resized = replace(resized, file_bytes=size)
    return ResizedAdapter(adapter=resized, modules=tuple(reports), parameters_before=_lora_params(adapter),
                          parameters_after=_lora_params(resized), rank=rank, energy=energy,
                          adapter_before_bytes=adapter.file_bytes)


def _report(module: AdapterModule, s: np.ndarray, k: int, alpha: float) -> ResizedModule:
    choice = choose_rank(s, module.r, rank=k)
    return ResizedModule(name=module.name, r_before=module.r, r_after=k, alpha=alpha, scaling=module.scaling,
                         energy_kept=choice.energy_kept, error=choice.error, delta_fro=float(np.sqrt(np.sum(s**2))))


def _resize_experts(experts: tuple[AdapterModule, ...], rank: int | None, energy: float | None, use_rslora: bool,
                    reports: list[ResizedModule]) -> list[AdapterModule]:
    """Fused MoE experts (PEFT's ParamWrapper) hold one r for all their experts, and a rank_pattern key names a
    parameter path, not the wrapper: every expert of the wrappers that may hold the same parameters
    (``parameters_wrapped``) keeps one rank, the largest any of them needs (``choose_rank``)."""
    spectra = [_spectrum(m) for m in experts]
    shared: dict[tuple[str, ...], int] = {}
    for module, (s, _) in zip(experts, spectra, strict=True):
        k = choose_rank(s, module.r, rank=rank, energy=energy).r_after
        group = module.parameters_wrapped or (module.key,)
        shared[group] = max(shared.get(group, 0), k)
    cut = []
    for module, (s, factors) in zip(experts, spectra, strict=True):
        k = shared[module.parameters_wrapped or (module.key,)]
        if rank is not None:
            k = min(k, module.r)
        cut.append(_cut(module, s, factors, k, use_rslora))
        reports.append(_report(module, s, k, cut[-1].alpha))
    return cut


def _most_common(values: list[Any]) -> Any:
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)  # first of the most common, stable


def _config_for(original: dict[str, Any], modules: list[AdapterModule],
                experts: list[AdapterModule] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """r / lora_alpha = the most common values; rank_pattern / alpha_pattern for the modules that differ (an
    expert's wrapper by the parameter paths PEFT matches, ``parameters_wrapped``)."""
    config = copy.deepcopy(original)
    named = {m.name: m for m in modules}
    for expert in experts:
        for path in expert.parameters_wrapped:
            named[path] = expert
    modules = list(named.values())
    r = _most_common([m.r for m in modules])
    alpha = _most_common([m.alpha for m in modules])
    for escape in (False, True):
        key = re.escape if escape else (lambda name: name)
        config["r"] = r
        config["lora_alpha"] = int(alpha) if float(alpha).is_integer() else alpha
        config["rank_pattern"] = {key(n): m.r for n, m in named.items() if m.r != r}
        config["alpha_pattern"] = {key(n): (int(m.alpha) if float(m.alpha).is_integer() else m.alpha)
                                   for n, m in named.items() if m.alpha != alpha}
        spec = spec_from_peft_config(config)
        if all(spec.module_rank_alpha(n) == (m.r, m.alpha) for n, m in named.items()):
            return config
    raise AdapterError("cannot express the new ranks with rank_pattern (module names overlap)", where="rank_pattern")
