"""PEFT 0.21's rewrite of a LoRA config for transformers 5's fused experts (mixtral, qwen3_moe).

From peft/utils/transformers_weight_conversion.py (``_convert_peft_config_moe``, ``_resolve_string_target_modules``),
applied by ``inject_adapter`` before the default targets are filled in:

- a str ``target_modules`` is first resolved to leaf names: "all-linear" -> the leaves of the linear layers (not the
  output head) plus every v4 name of the mapping; a regex -> the leaves of every module and parameter key it
  fullmatches, plus each v4 expert name whose reconstructed key (``<experts container>.<v4 name>``) it fullmatches;
  a key excluded by exclude_modules or the user's modules_to_save does not match.
- each entry equal to a v4 name, or ending with "." + it, moves to ``target_parameters`` under its v5 name
  (router ``gate`` -> ``gate.weight``; mixtral ``w1``/``w3`` -> ``gate_up_proj``, ``w2`` -> ``down_proj``; qwen3_moe
  ``gate_proj``/``up_proj`` -> ``gate_up_proj``, ``down_proj`` -> ``down_proj``); the rest stay target_modules.
- one of the two fused projections without the other: ValueError; both: ``rank_pattern`` and ``alpha_pattern``
  get ``.*\\.gate_up_proj`` -> 2 r and 2 lora_alpha (set on the dicts, so an existing key keeps its place).
- target_modules None becomes an empty set: PEFT's default targets are never applied, so with no
  target_parameters PEFT raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from loralens.core.architectures import Architecture
from loralens.core.peft_config import ALL_LINEAR, LoraConfigSpec
from loralens.core.peft_extras import exclusion, task_modules
from loralens.core.user_regex import user_pattern
from loralens.errors import InvalidParameterError

#: v4 module name -> v5 parameter name (transformers_weight_conversion._MOE_TARGET_MODULE_MAPPING, in its order)
MOE_MAPPING: dict[str, dict[str, str]] = {
    "mixtral": {"gate": "gate.weight", "w1": "gate_up_proj", "w3": "gate_up_proj", "w2": "down_proj"},
    "qwen3_moe": {"gate": "gate.weight", "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj",
                  "down_proj": "down_proj"},
}
_FUSED = {"mixtral": ("w1", "w3"), "qwen3_moe": ("gate_proj", "up_proj")}
_FUSED_KEY = r".*\.gate_up_proj"


def _parameter_keys(arch: Architecture) -> list[str]:
    keys = []
    for m in arch.linear_modules:
        if not m.shared:
            keys.append(m.name + ".weight")
            if m.bias:
                keys.append(m.name + ".bias")
    for h in arch.other_modules:
        if h.kind == "param":
            keys.append(h.name)
        elif h.kind == "bias":
            keys.append(h.name + ".bias")
        else:
            keys.append(h.name + ".weight")
            if getattr(h, "bias", 0):
                keys.append(h.name + ".bias")
    return keys


def _resolve_regex(arch: Architecture, spec: LoraConfigSpec, mapping: dict[str, str]) -> set[str]:
    regex = user_pattern(str(spec.target_modules), "target_modules")
    excluded = exclusion(spec, task_modules(spec)[0])  # PEFT's check returns a falsy _ExcludedModule for these
    hit = (lambda key: regex.fullmatch(key) is not None) if excluded is None else (  # noqa: E731
        lambda key: not excluded(key) and regex.fullmatch(key) is not None)
    params = _parameter_keys(arch)
    matched = {key.rsplit(".", 1)[-1] for key in ("", *arch.module_names, *params) if hit(key)}
    containers: dict[str, list[str]] = {}
    for key in params:
        container, _, leaf = key.rpartition(".")
        containers.setdefault(leaf, []).append(container)
    for old, new in mapping.items():
        if old not in matched and any(hit(f"{c}.{old}") for c in containers.get(new, ())):
            matched.add(old)
    return matched


def convert_for_fused_experts(arch: Architecture, spec: LoraConfigSpec,
                              linear_leaves: Callable[[], list[str]]) -> LoraConfigSpec:
    """``spec`` as PEFT rewrites it for ``arch`` (unchanged for other model types); ``linear_leaves``: the leaf
    names "all-linear" selects."""
    mapping = MOE_MAPPING.get(arch.model_type)
    if mapping is None:
        return spec
    targets = spec.target_modules
    if targets is None and not spec.target_parameters:
        raise InvalidParameterError(
            "No `target_modules` passed but also no `target_parameters` found (PEFT 0.21 on transformers 5's "
            f"{arch.model_type}: its default targets are dropped); name the modules", where="target_modules")
    if isinstance(targets, str):
        if targets.lower() == ALL_LINEAR:
            resolved = set(linear_leaves()) | set(mapping)
        else:
            resolved = _resolve_regex(arch, spec, mapping)
        if not resolved:
            return spec  # PEFT leaves it for its own not-found error
        names: set[str] | tuple[str, ...] = resolved
    else:
        names = targets or ()
    parameters = set(spec.target_parameters or ())
    remaining: list[str] = []
    fused_present: set[str] = set()
    for target in names:
        old = next((o for o in mapping if target == o or target.endswith("." + o)), None)
        if old is None:
            remaining.append(target)
            continue
        parameters.add(mapping[old])
        if old in _FUSED[arch.model_type]:
            fused_present.add(old)
    fused = _FUSED[arch.model_type]
    rank_pattern, alpha_pattern = dict(spec.rank_pattern), dict(spec.alpha_pattern)
    if 0 < len(fused_present) < len(fused):
        raise InvalidParameterError(
            f"Cannot convert PEFT target(s) {', '.join(sorted(fused_present))} without also targeting "
            f"{', '.join(sorted(set(fused) - fused_present))} because they are fused into gate_up_proj.",
            where="target_modules")
    if len(fused_present) == len(fused):
        rank_pattern[_FUSED_KEY] = spec.r * len(fused)
        alpha_pattern[_FUSED_KEY] = spec.lora_alpha * len(fused)
    if not remaining and not parameters:
        return spec  # an empty list: unchanged, PEFT's own error
    return dataclasses.replace(
        spec, target_modules=tuple(sorted(remaining)) if remaining else None,
        target_parameters=tuple(sorted(parameters)) or None, rank_pattern=rank_pattern, alpha_pattern=alpha_pattern)


__all__ = ["MOE_MAPPING", "convert_for_fused_experts"]
