"""Combine PEFT adapters as PEFT's ``LoraModel.add_weighted_adapter`` does (tuners/lora/model.py), from the factors.

With weights w_j and each module's scaling s_j (PEFT's ``target.scaling[adapter]``):

- ``linear`` (all adapters of one r): A = Σ sign(w_j s_j)·√|w_j s_j|·A_j, B = Σ √|w_j s_j|·B_j. This is not
  Σ w_j s_j B_j A_j (the cross terms stay): it is PEFT's rule, reproduced.
- ``cat``: A = [w_1 s_1 A_1; w_2 s_2 A_2; …], B = [B_1 B_2 …] — exactly Σ w_j s_j B_j A_j. Rank Σ r_j (each
  adapter's largest r, rank_pattern included); a module missing from some adapters keeps zero rows.
- ``ties`` (all adapters of one r, a ``density``): PEFT's ``merge_utils.ties`` applied to the factors, A and B
  apart, with the weights of ``linear``: each A_j (B_j) keeps its int(density·size) largest |values| (torch.topk;
  refused when equal values straddle the cut, where topk's choice is unspecified), the majority sign per entry
  (``total``: the sign of the sum of the kept values, ≥ 0 counting as +; ``frequency``: of the count of signs), then
  the weighted kept values of the majority sign averaged over how many there are. dare_* methods are refused: PEFT
  draws their masks from torch's random generator.
- ``svd``: the best rank-N approximation of Σ w_j s_j B_j A_j (N = ``rank``, default the largest r): B = U_N S_N,
  A = V_Nᵀ. PEFT takes a dense SVD of the d×k sum; here it is the SVD of the stacked factors through their
  (Σr)×(Σr) core (core/lowrank.py), which has the same leading singular triplets. The energy kept is reported.

The new adapter takes adapters[0]'s config with r = lora_alpha = the new rank (scaling 1), target_modules the union
(or the regexes joined with '|'), rank_pattern and alpha_pattern cleared — as PEFT writes it. Refused as PEFT
refuses (different r for linear, mixed target_modules types), and refused where PEFT's result would not be the sum
it means: use_rslora (lora_alpha = r would scale it by √r), DoRA.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loralens.adapters.formats.common import ForeignModule, natural, public_config
from loralens.adapters.peft_format import PREFIX, Adapter, AdapterModule
from loralens.core.blas import single_threaded_blas
from loralens.core.lowrank import energy_kept, lowrank_svd
from loralens.errors import AdapterError, InvalidParameterError

METHODS = ("linear", "cat", "svd", "ties")
#: PEFT's methods that loralens does not reproduce, with why (named in the refusal)
NOT_REPRODUCED = {
    m: "PEFT draws its DARE masks with torch.bernoulli (torch's random generator), so no other program writes "
       "the same adapter" for m in ("dare_linear", "dare_ties", "dare_linear_svd", "dare_ties_svd")}
NOT_REPRODUCED.update({m: "not implemented in loralens" for m in ("ties_svd", "magnitude_prune",
                                                                  "magnitude_prune_svd")})
SIGN_METHODS = ("total", "frequency")


@dataclass(frozen=True)
class CombinedModule:
    name: str
    adapters: int  # how many inputs hold this module
    r: int
    energy_kept: float | None  # svd: share of ‖Σ w s B A‖²_F kept; None for linear / cat

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "adapters": self.adapters, "r": self.r, "energy_kept": self.energy_kept}


@dataclass(frozen=True, eq=False)
class Combined:
    adapter: Adapter
    method: str
    rank: int
    modules: tuple[CombinedModule, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "r": self.rank, "modules": [m.to_json() for m in self.modules]}


def _max_rank(adapter: Adapter) -> int:
    patterns = adapter.spec.rank_pattern
    return max(adapter.spec.r, *patterns.values()) if patterns else adapter.spec.r


def _check(adapters: list[Adapter], weights: list[float], method: str, rank: int | None) -> tuple[str, int]:
    if method in NOT_REPRODUCED:
        raise InvalidParameterError(f"{method!r} is refused: {NOT_REPRODUCED[method]}", where="--method")
    if method not in METHODS:
        raise InvalidParameterError(f"must be one of {', '.join(METHODS)}, got {method!r}", where="--method")
    if not adapters:
        raise InvalidParameterError("give at least one adapter", where="adapters")
    if len(weights) != len(adapters):
        raise InvalidParameterError(f"{len(weights)} weights for {len(adapters)} adapters", where="--weights")
    for w in weights:
        if not math.isfinite(w):
            raise InvalidParameterError(f"must be finite numbers, got {w}", where="--weights")
    if rank is not None and (method != "svd" or rank < 1):
        raise InvalidParameterError("a positive --rank goes with --method svd only", where="--rank")
    for adapter in adapters:
        where = f"{adapter.name}: adapter_config.json"
        if adapter.format not in ("peft", "peft-weights"):
            raise AdapterError(f"is a {adapter.format} adapter; combine PEFT adapters (loralens convert --to peft)",
                               where=adapter.name)
        if adapter.spec.use_rslora:
            raise AdapterError("use_rslora: PEFT's add_weighted_adapter writes lora_alpha = r, which under rsLoRA "
                               "scales the result by √r; refusing", where=f"{where}: use_rslora")
        if any(m.magnitude is not None for m in adapter.modules):
            raise AdapterError("DoRA adapters cannot be combined from their factors", where=f"{where}: use_dora")
        if adapter.spec.target_parameters:
            raise AdapterError("add_weighted_adapter does not support target_parameters",
                               where=f"{where}: target_parameters")
        for key in adapter.other_tensors:  # an adapted embedding's base weights (PEFT saves them) are kept
            if not key.endswith(".base_layer.weight"):
                raise AdapterError("is not a LoRA factor (modules_to_save?); combining it is not defined",
                                   where=f"{adapter.name}: {key}")
    method = "linear" if len(adapters) == 1 else method  # as PEFT: one adapter can only be merged linearly
    ranks = [_max_rank(a) for a in adapters]
    if method in ("linear", "ties"):
        if len(set(ranks)) != 1:
            raise AdapterError(f"All adapters must have the same r value when using combination_type {method} "
                               f"(got r = {', '.join(map(str, ranks))})", where=f"--method {method}")
        return method, ranks[0]
    if method == "cat":
        return method, sum(ranks)
    return method, rank or max(ranks)


def _target_modules(adapters: list[Adapter]) -> Any:
    values = [a.config.get("target_modules") for a in adapters]
    kinds = {type(v) is str for v in values}
    if len(kinds) > 1:
        raise AdapterError("all adapter configs should follow the same target modules type. Combining adapters "
                           "with `target_modules` type being a mix of list/set and string is not supported.",
                           where="target_modules")
    if isinstance(values[0], str):
        return "|".join(f"({v})" for v in values)
    return sorted(set().union(*(set(v or []) for v in values)))


def combine_adapters(adapters: list[Adapter], weights: list[float], *, method: str = "svd",
                     rank: int | None = None, name: str = "combined", density: float | None = None,
                     majority_sign_method: str = "total") -> Combined:
    """The combined adapter (in memory, a PEFT adapter; write it with write_adapter) and a report per module.
    ``density`` and ``majority_sign_method`` go with ``ties`` (PEFT's arguments of the same names)."""
    weights = [float(w) for w in weights]
    if method in NOT_REPRODUCED:
        raise InvalidParameterError(f"{method!r} is refused: {NOT_REPRODUCED[method]}", where="--method")
    if method == "ties" or density is not None:
        if method != "ties":
            raise InvalidParameterError("--density goes with --method ties only", where="--density")
        if density is None or not (isinstance(density, (int, float)) and 0 <= density <= 1):
            raise InvalidParameterError(f"must be a number in [0, 1] for ties, got {density!r}", where="--density")
        if majority_sign_method not in SIGN_METHODS:
            raise InvalidParameterError(f"must be one of {', '.join(SIGN_METHODS)}, got {majority_sign_method!r}",
                                        where="--majority-sign-method")
    method, new_rank = _check(adapters, weights, method, rank)
    if method != "ties" and density is not None:  # one adapter: PEFT's linear
        raise InvalidParameterError("ties needs two adapters or more", where="--method ties")
    by_name: dict[str, list[tuple[AdapterModule, float]]] = {}
    first: dict[str, AdapterModule] = {}
    for adapter, w in zip(adapters, weights, strict=True):
        for m in adapter.modules:
            shape = (m.kind, m.in_features, m.out_features, m.fan_in_fan_out)
            if m.name in first and (first[m.name].kind, first[m.name].in_features, first[m.name].out_features,
                                    first[m.name].fan_in_fan_out) != shape:
                raise AdapterError("has a different shape or kind in another adapter", where=f"{adapter.name}: "
                                   f"{m.name}")
            first.setdefault(m.name, m)
            by_name.setdefault(m.name, []).append((m, w))
    modules: list[ForeignModule] = []
    reports: list[CombinedModule] = []
    with single_threaded_blas():
        for mod_name in sorted(by_name, key=natural):
            parts = by_name[mod_name]
            if method == "ties":
                a, b, kept = (*_ties_one(mod_name, parts, new_rank, float(density), majority_sign_method), None)
            else:
                a, b, kept = _combine_one(mod_name, parts, method, new_rank)
            ref = first[mod_name]
            modules.append(ForeignModule(
                name=mod_name, a=a.astype(np.float32), b=b.astype(np.float32), r=new_rank, alpha=float(new_rank),
                scaling=1.0, in_features=ref.in_features, out_features=ref.out_features,
                fan_in_fan_out=ref.fan_in_fan_out, kind=ref.kind, key=PREFIX + mod_name, dtype="F32"))
            reports.append(CombinedModule(mod_name, len(parts), new_rank, kept))
    config = public_config(copy.deepcopy(adapters[0].config))
    config.update(r=new_rank, lora_alpha=new_rank, target_modules=_target_modules(adapters), alpha_pattern={},
                  rank_pattern={})
    other: dict[str, Any] = {}
    for adapter in adapters:
        for key, tensor in adapter.other_tensors.items():
            other.setdefault(key, tensor)  # the base model's own weights: the first copy
    out = Adapter(config=config, modules=tuple(modules), dtype="float32", path=None, file_bytes=0, name=name,
                  metadata={"format": "pt"}, format="peft", other_tensors=other)
    return Combined(adapter=out, method=method, rank=new_rank, modules=tuple(reports))


def _combine_one(name: str, parts: list[tuple[AdapterModule, float]], method: str,
                 new_rank: int) -> tuple[np.ndarray, np.ndarray, float | None]:
    ref = parts[0][0]
    d_in, d_out = ref.a.shape[1], ref.b.shape[0]
    if method == "linear":
        a = np.zeros((new_rank, d_in))
        b = np.zeros((d_out, new_rank))
        for m, w in parts:
            if m.r != new_rank:
                raise AdapterError(f"has r = {m.r} (rank_pattern), not {new_rank}; PEFT's linear combination needs "
                                   "one r", where=name)
            ws = w * m.scaling
            root = math.sqrt(abs(ws))
            a += (root if ws >= 0 else -root) * m.a.astype(np.float64)
            b += root * m.b.astype(np.float64)
        return a, b, None
    a_cat = np.concatenate([w * m.scaling * m.a.astype(np.float64) for m, w in parts], axis=0)  # (Σr, in)
    b_cat = np.concatenate([m.b.astype(np.float64) for m, _ in parts], axis=1)  # (out, Σr)
    if method == "cat":
        a = np.zeros((new_rank, d_in))
        b = np.zeros((d_out, new_rank))
        a[: a_cat.shape[0]] = a_cat
        b[:, : b_cat.shape[1]] = b_cat
        return a, b, None
    u, s, vt = lowrank_svd(b_cat, a_cat)  # (out, Σr), (Σr,), (Σr, in): the SVD of Σ w s B A
    k = min(new_rank, s.size)
    if new_rank > min(d_in, d_out):
        raise AdapterError(f"--rank {new_rank} is larger than min(out, in) = {min(d_in, d_out)}", where=name)
    a = np.zeros((new_rank, d_in))
    b = np.zeros((d_out, new_rank))
    a[:k] = vt[:k]
    b[:, :k] = u[:, :k] * s[:k]
    kept = float(energy_kept(s)[k - 1]) if s.size else 1.0
    return a, b, kept


def _ties_one(name: str, parts: list[tuple[AdapterModule, float]], r: int, density: float,
              sign_method: str) -> tuple[np.ndarray, np.ndarray]:
    """PEFT's ``ties`` on the A factors and on the B factors (``_generalized_task_arithmetic_weighted_adapter``),
    in float32 as PEFT computes on float32 factors."""
    for m, _ in parts:
        if m.r != r:
            raise AdapterError(f"has r = {m.r} (rank_pattern), not {r}; PEFT's ties combination needs one r",
                               where=name)
        if m.dtype != "F32" or (m.b_dtype or "F32") != "F32":
            raise AdapterError(f"is stored in {m.dtype}; ties is reproduced on float32 factors only (its top-k cut "
                               "and sign election depend on the dtype PEFT computes in)", where=name)
    roots = [math.sqrt(abs(w * m.scaling)) for m, w in parts]
    signs = [1.0 if w * m.scaling >= 0 else -1.0 for m, w in parts]
    a = _ties([m.a for m, _ in parts], [s * q for s, q in zip(signs, roots, strict=True)], density, sign_method,
              f"{name}: lora_A")
    b = _ties([m.b for m, _ in parts], roots, density, sign_method, f"{name}: lora_B")
    return a, b


def _ties(tensors: list[np.ndarray], weights: list[float], density: float, sign_method: str,
          where: str) -> np.ndarray:
    pruned = np.stack([_magnitude_prune(t.astype(np.float32), density, where) for t in tensors])  # (n, ...)
    sign = np.sign(pruned)
    if sign_method == "total":
        votes = pruned[0].copy()
        for t in pruned[1:]:  # float32, in order (torch's sum over dim 0 of a stack)
            votes = votes + t
    else:
        votes = sign.sum(axis=0)
    majority = np.where(votes >= 0, np.float32(1), np.float32(-1))
    mask = sign == majority
    w = np.asarray(weights, dtype=np.float32).reshape((-1,) + (1,) * (pruned.ndim - 1))
    weighted = pruned * w
    mixed = (weighted * mask).sum(axis=0, dtype=np.float32)
    return (mixed / np.maximum(mask.sum(axis=0), 1).astype(np.float32)).astype(np.float64)


def _magnitude_prune(t: np.ndarray, density: float, where: str) -> np.ndarray:
    """PEFT's ``magnitude_based_pruning``: the k = int(density·size) largest |values| kept, the rest zero."""
    if density >= 1:
        return t
    k = int(density * t.size)
    flat = np.abs(t).reshape(-1)
    if k == 0:
        return np.zeros_like(t)
    order = np.argsort(-flat, kind="stable")
    if k < flat.size and flat[order[k - 1]] == flat[order[k]]:
        raise AdapterError(f"equal values {float(flat[order[k]])!r} straddle the density cut (k = {k}): which one "
                           "torch.topk keeps is not specified", where=where)
    mask = np.zeros(flat.size, dtype=bool)
    mask[order[:k]] = True
    return np.where(mask.reshape(t.shape), t, np.float32(0))
