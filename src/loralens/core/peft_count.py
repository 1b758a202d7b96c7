"""Trainable-parameter counting that matches PEFT's ``get_peft_model(...).get_nb_trainable_parameters()``.

The rules, from huggingface/peft (tuners/tuners_utils.py ``check_target_module_exists``,
``_maybe_include_all_linear_layers``, ``_mark_only_adapters_as_trainable``; utils/other.py ``get_pattern_key``;
utils/constants.py ``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING``; tuners/lora/layer.py and dora.py):

- ``target_modules`` a list: a module is adapted when its full name equals an entry, or ends with "." + entry.
  With ``layers_to_transform`` the suffix matches are kept only in the listed layers (the first number after
  a "<name>." segment of the key); an exact full-name match ignores ``layers_to_transform``, as in PEFT.
- a str: ``re.fullmatch`` against the full name; "all-linear" (any case): every linear/Conv1D layer except the
  output head. A str cannot be combined with ``layers_to_transform`` (PEFT's LoraConfig refuses it).
- None: PEFT's default targets for the model type.
- r and lora_alpha per module: the first key of ``rank_pattern`` / ``alpha_pattern`` (in insertion order) with
  ``re.match(rf"(.*\\.)?({key})$", name)``; otherwise r / lora_alpha. scaling = alpha / r (alpha / sqrt(r) rsLoRA).
- each adapted module trains A (r x in) and B (out x r); DoRA adds a magnitude vector of out_features.
- bias "lora_only": the biases of the adapted modules become trainable; "all": every ``*.bias`` of the model.
- PEFT's "all params" = the base model (tied weights once) + the LoRA A, B and DoRA magnitudes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loralens.core.architectures import Architecture, LinearModule
from loralens.core.counting import lora_params, scaling
from loralens.core.peft_config import ALL_LINEAR, BIAS_MODES, LoraConfigSpec
from loralens.errors import InvalidParameterError

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}

_LAYER_INDEX = re.compile(r".*?\.[^.]*\.(?P<idx>\d+)\.")  # PEFT: the first numbered segment is the layer index
#: spec fields that change what PEFT trains but that this module does not count yet: refused, never ignored
_NOT_COUNTED = ("exclude_modules", "layers_pattern", "modules_to_save", "target_parameters", "trainable_token_indices")
#: task types for which PEFT adds the classifier head to modules_to_save
_HEAD_TASKS = ("SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS")


@dataclass(frozen=True, slots=True)
class ModuleCount:
    """One adapted module: its shape, rank, alpha, scaling and trainable parameters."""

    name: str
    in_features: int
    out_features: int
    r: int
    alpha: float
    scaling: float
    params: int  # r·(in + out) [+ out for the DoRA magnitude] [+ its bias when bias mode makes it trainable]
    layer: int | None = None


@dataclass(frozen=True)
class LoraCount:
    """PEFT's numbers for one model and one LoRA config."""

    trainable: int  # PEFT's "trainable params"
    total: int  # PEFT's "all params": base_total + LoRA A, B (+ DoRA magnitudes)
    base_total: int  # the base model, tied weights once
    percent: float  # 100 · trainable / total, PEFT's "trainable%"
    modules: tuple[ModuleCount, ...]
    adapter_bytes: dict[str, int]  # tensor bytes of the saved adapter (all trainable tensors) by dtype
    lora_params: int = 0  # A and B of every adapted module
    dora_params: int = 0  # magnitude vectors
    bias_params: int = 0  # base-model biases made trainable by the bias mode
    target_modules: tuple[str, ...] | str = ()  # the targets used (PEFT's default when the spec had None)
    num_modules: int = 0  # adapted modules (also when ``modules`` was not built)


@dataclass(frozen=True, slots=True)
class ModuleGroup:
    """Adapted modules of one kind (same name once the layer index is removed, same shape, r and scaling)."""

    name: str  # e.g. "model.layers.*.self_attn.q_proj"
    in_features: int
    out_features: int
    count: int
    r: int
    alpha: float
    scaling: float
    params: int  # summed over the group
    layers: tuple[int, ...] = ()


def resolve_targets(arch: Architecture, spec: LoraConfigSpec) -> tuple[str, ...] | str:
    """The target_modules PEFT would use: the spec's, or PEFT's default for the model type."""
    if spec.target_modules is not None:
        return spec.target_modules
    if not arch.family.lora_targets:
        raise InvalidParameterError(
            f"no default target modules for model type {arch.model_type!r}: please specify target_modules",
            where="target_modules",
        )
    return arch.family.lora_targets


_KIND_TEXT = {"layernorm": "a LayerNorm", "rmsnorm": "an RMSNorm", "bias": "a module with a lone bias vector"}


def _name_matcher(spec: LoraConfigSpec, targets: tuple[str, ...] | str) -> Callable[[str], bool]:
    """PEFT's check_target_module_exists for a regex str or a list of names (with layers_to_transform)."""
    if isinstance(targets, str):
        regex = re.compile(targets)
        return lambda name: regex.fullmatch(name) is not None
    exact = set(targets)
    suffixes = tuple("." + t for t in targets)
    layers = spec.layers_to_transform
    using_layers = layers is not None and (not isinstance(layers, tuple) or len(layers) != 0)
    wanted = {layers} if isinstance(layers, int) else set(layers or ())

    def match(name: str) -> bool:
        if name in exact:
            return True
        if not name.endswith(suffixes):
            return False
        if not using_layers:
            return True
        found = _LAYER_INDEX.match(name)
        return found is not None and int(found.group("idx")) in wanted

    return match


def _adapted_modules(arch: Architecture, spec: LoraConfigSpec, targets: tuple[str, ...] | str) -> list[LinearModule]:
    """The modules PEFT would wrap, in model order; embeddings become LinearModule-shaped entries
    (in = num_embeddings, out = embedding_dim, as LoRA's A (r x num) and B (dim x r))."""
    if isinstance(targets, str) and targets.lower() == ALL_LINEAR:
        return [m for m in arch.linear_modules if not m.is_output_head and not m.conv]
    match = _name_matcher(spec, targets)
    adapted = [m for m in arch.linear_modules if match(m.name)]
    index = arch.other_module_index
    if isinstance(targets, str):
        candidates = [entry for entries in index.values() for entry in entries]
    else:
        leaves = dict.fromkeys(t.rsplit(".", 1)[-1] for t in targets)
        candidates = [entry for leaf in leaves for entry in index.get(leaf, ())]
    embeddings = []
    for name, holder in candidates:
        if not match(name):
            continue
        if holder is None or holder.kind != "embedding":
            kind = "a module that holds other modules" if holder is None else _KIND_TEXT.get(holder.kind, holder.kind)
            raise InvalidParameterError(
                f"Target module {name!r} is not supported: it is {kind}. LoRA adapts linear layers (nn.Linear, "
                "Conv1D) and embeddings; choose their names", where="target_modules")
        embeddings.append(LinearModule(name, holder.shape[0], holder.shape[1], False, layer=None))
    return embeddings + adapted


def _module_names_hint(arch: Architecture) -> str:
    leaves = dict.fromkeys(m.name.rsplit(".", 1)[-1] for m in arch.linear_modules)
    return ", ".join(leaves)


def _refuse_uncounted(spec: LoraConfigSpec) -> None:
    """A field that changes PEFT's count but is not modelled here is refused by name (never silently ignored)."""
    for name in _NOT_COUNTED:
        if getattr(spec, name) is not None:
            raise InvalidParameterError("changes what PEFT trains and is not counted by loralens yet", where=name)
    if spec.lora_bias:
        raise InvalidParameterError("changes what PEFT trains and is not counted by loralens yet", where="lora_bias")
    if spec.task_type in _HEAD_TASKS:
        raise InvalidParameterError(f"{spec.task_type} adds the task head to modules_to_save, which loralens does "
                                    "not count yet", where="task_type")


#: PEFT 0.21 rewrites the LoRA config of these types for transformers 5's fused experts
#: (peft/utils/transformers_weight_conversion.py): v4 module names -> target_parameters
_MOE_RENAMED = {"mixtral": ("gate", "w1", "w2", "w3"), "qwen3_moe": ("gate", "gate_proj", "up_proj", "down_proj")}


def _refuse_moe_conversion(arch: Architecture, spec: LoraConfigSpec) -> None:
    """Where PEFT would turn target_modules into target_parameters on fused experts: refused by name."""
    renamed = _MOE_RENAMED.get(arch.model_type)
    if renamed is None:
        return
    targets = spec.target_modules
    if targets is None:
        raise InvalidParameterError(
            "No `target_modules` passed but also no `target_parameters` found (PEFT 0.21 on transformers 5's "
            f"{arch.model_type}: its default targets are dropped); name the modules", where="target_modules")
    hit = targets if isinstance(targets, str) else next(
        (t for t in targets if any(t == old or t.endswith("." + old) for old in renamed)), None)
    if hit is not None:
        raise InvalidParameterError(
            f"{hit!r}: on {arch.model_type} PEFT rewrites it for the fused experts of transformers 5 (into "
            "target_parameters with doubled ranks), which loralens does not count yet; name the attention "
            "modules (q_proj, k_proj, v_proj, o_proj)", where="target_modules")


def count_lora(arch: Architecture, spec: LoraConfigSpec, *, with_modules: bool = True) -> LoraCount:
    """Count LoRA's trainable parameters on ``arch`` exactly as PEFT's get_peft_model would.

    ``with_modules=False`` skips building the per-module tuple (``modules`` is then empty): the same totals about
    three times faster, for sweeps over many settings.
    """
    _refuse_uncounted(spec)
    _refuse_moe_conversion(arch, spec)
    targets = resolve_targets(arch, spec)
    dora, bias_mode = spec.use_dora, spec.bias
    patterns = bool(spec.rank_pattern or spec.alpha_pattern)
    modules: list[ModuleCount] = []
    lora_total = dora_total = adapted_bias = matched = 0
    for m in _adapted_modules(arch, spec, targets):
        r, alpha = spec.module_rank_alpha(m.name) if patterns else (spec.r, spec.lora_alpha)
        lora = lora_params(m.out_features, m.in_features, r)
        magnitude = m.out_features if dora else 0
        bias = m.out_features if (m.bias and bias_mode != "none") else 0
        lora_total += lora
        dora_total += magnitude
        adapted_bias += bias
        matched += 1
        if with_modules:
            modules.append(ModuleCount(m.name, m.in_features, m.out_features, r, alpha,
                                       scaling(r, alpha, spec.use_rslora),
                                       lora + magnitude + bias, m.layer))
    if not matched:
        shown = list(targets) if isinstance(targets, tuple) else targets
        message = f"Target modules {shown} not found in the base model. Please check the target modules and try again."
        if spec.layers_to_transform is not None:
            layers = spec.layers_to_transform
            message += f" Note: You specified 'layers_to_transform': {list(layers) if isinstance(layers, tuple) else layers}."
        message += f" ({arch.short_name} has linear modules named {_module_names_hint(arch)})"
        raise InvalidParameterError(message, where="target_modules")
    bias_total = arch.total_bias_params if bias_mode == "all" else adapted_bias
    trainable = lora_total + dora_total + bias_total
    total = arch.total_params + lora_total + dora_total
    return LoraCount(
        trainable=trainable,
        total=total,
        base_total=arch.total_params,
        percent=100.0 * trainable / total,
        modules=tuple(modules),
        adapter_bytes={dtype: trainable * size for dtype, size in DTYPE_BYTES.items()},
        lora_params=lora_total,
        dora_params=dora_total,
        bias_params=bias_total,
        target_modules=targets,
        num_modules=matched,
    )


_INDEX_SEGMENT = re.compile(r"\.(\d+)\.")


def group_modules(modules: Sequence[ModuleCount]) -> tuple[ModuleGroup, ...]:
    """Aggregate per-module counts by kind: the layer number becomes "*" ("model.layers.*.self_attn.q_proj")."""
    groups: dict[tuple[Any, ...], list[ModuleCount]] = {}
    for m in modules:
        pattern = _INDEX_SEGMENT.sub(".*.", m.name, count=1) if m.layer is not None else m.name
        groups.setdefault((pattern, m.in_features, m.out_features, m.r, m.alpha, m.scaling), []).append(m)
    return tuple(
        ModuleGroup(key[0], key[1], key[2], len(ms), key[3], key[4], key[5], sum(m.params for m in ms),
                    tuple(m.layer for m in ms if m.layer is not None))
        for key, ms in groups.items()
    )


__all__ = [
    "ALL_LINEAR",
    "BIAS_MODES",
    "LoraConfigSpec",
    "LoraCount",
    "ModuleCount",
    "ModuleGroup",
    "count_lora",
    "group_modules",
    "resolve_targets",
]
