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
from dataclasses import dataclass, field
from typing import Any

from loralens.core.user_regex import user_pattern
from loralens.core.architectures import Architecture, LinearModule
from loralens.core.counting import lora_params, scaling
from loralens.core.adapter_file import adapter_file_bytes
from loralens.core.heads import SEQ_CLS_HEAD_NAMES
from loralens.core.peft_config import ALL_LINEAR, BIAS_MODES, LoraConfigSpec
from loralens.core.peft_moe import convert_for_fused_experts
from loralens.core.peft_extras import clashes, exclusion, modules_to_save, parameter_targets, task_modules, token_deltas
from loralens.errors import InvalidParameterError

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}

_LAYER_INDEX = re.compile(r".*?\.[^.]*\.(?P<idx>\d+)\.")  # PEFT: the first numbered segment is the layer index
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
    #: adapter_model.safetensors as PEFT writes it, by the model's dtype (core/adapter_file.py: on a bf16/fp16 model
    #: the LoRA tensors are float32)
    adapter_bytes: dict[str, int]
    lora_params: int = 0  # A and B of every adapted module
    dora_params: int = 0  # magnitude vectors
    bias_params: int = 0  # base-model biases made trainable by the bias mode
    target_modules: tuple[str, ...] | str = ()  # the targets used (PEFT's default when the spec had None)
    num_modules: int = 0  # adapted modules (also when ``modules`` was not built)
    saved_modules: tuple[tuple[str, int], ...] = ()  # modules_to_save copies (task heads included): name, params
    token_params: int = 0  # trainable_token_indices deltas
    tensor_bytes: dict[str, int] = field(default_factory=dict)  # the file's tensors alone (no header)


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
    """PEFT's check_target_module_exists for a regex str or a list of names (layers_to_transform, layers_pattern)."""
    if isinstance(targets, str):
        regex = user_pattern(targets, "target_modules")
        return lambda name: regex.fullmatch(name) is not None
    exact = set(targets)
    suffixes = tuple("." + t for t in targets)
    layers = spec.layers_to_transform
    using_layers = layers is not None and (not isinstance(layers, tuple) or len(layers) != 0)
    wanted = {layers} if isinstance(layers, int) else set(layers or ())
    patterns = [user_pattern(rf"(?:^|.*?\.){p}\.(?P<idx>\d+)\.", "layers_pattern", p) for p in spec.layers_pattern or ()]

    def match(name: str) -> bool:
        if name in exact:
            return True
        if not name.endswith(suffixes):
            return False
        if not using_layers:
            return True
        if patterns:
            found = next((f for f in (p.match(name) for p in patterns) if f is not None), None)
        else:
            found = _LAYER_INDEX.match(name)
        return found is not None and int(found.group("idx")) in wanted

    return match


def _all_linear(arch: Architecture, spec: LoraConfigSpec) -> list[LinearModule]:
    """PEFT's all-linear: every Linear/Conv1D but the output head; with SEQ_CLS and no output head, also
    without the top-level score (else classifier) layer."""
    skip = ""
    if spec.task_type == "SEQ_CLS" and arch.output_head is None:
        top = {m.name for m in arch.linear_modules} | set(arch.module_names)
        skip = next((n for n in SEQ_CLS_HEAD_NAMES if n in top), "")
    return [m for m in arch.linear_modules if not m.is_output_head and not m.conv and m.name != skip]


def _adapted_modules(arch: Architecture, spec: LoraConfigSpec, targets: tuple[str, ...] | str,
                     excluded: Callable[[str], bool] | None = None) -> list[LinearModule]:
    """The modules PEFT would wrap, in model order; embeddings become LinearModule-shaped entries
    (in = num_embeddings, out = embedding_dim, as LoRA's A (r x num) and B (dim x r))."""
    found = _matched_modules(arch, spec, targets)
    kept = [m for m in found if excluded is None or not excluded(m.name)]
    if found and not kept:
        raise InvalidParameterError(
            "No modules were targeted for adaptation. This might be caused by a combination of mismatched target "
            "modules and excluded modules. Please check your `target_modules` and `exclude_modules` configuration",
            where="exclude_modules")
    return kept


def _matched_modules(arch: Architecture, spec: LoraConfigSpec, targets: tuple[str, ...] | str) -> list[LinearModule]:
    if isinstance(targets, str) and targets.lower() == ALL_LINEAR:
        return _all_linear(arch, spec)
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


def count_lora(arch: Architecture, spec: LoraConfigSpec, *, with_modules: bool = True) -> LoraCount:
    """Count LoRA's trainable parameters on ``arch`` exactly as PEFT's get_peft_model would.

    ``with_modules=False`` skips building the per-module tuple (``modules`` is then empty): the same totals about
    three times faster, for sweeps over many settings.
    """
    spec = convert_for_fused_experts(arch, spec, lambda: [
        m.name.rsplit(".", 1)[-1] for m in _all_linear(arch, spec)])
    if spec.lora_bias and spec.use_dora:
        raise InvalidParameterError("The argument lora_bias=True is not supported for DoRA, please pass "
                                    "use_dora=False", where="lora_bias")
    only_parameters = spec.target_modules is None and bool(spec.target_parameters)
    targets: tuple[str, ...] | str = () if only_parameters else resolve_targets(arch, spec)
    saved_before, saved_after = task_modules(spec)
    adapted = _adapted_modules(arch, spec, targets, exclusion(spec, saved_before)) if targets else []
    params = parameter_targets(arch, spec)
    clashes(adapted, params)
    dora, bias_mode = spec.use_dora, spec.bias
    patterns = bool(spec.rank_pattern or spec.alpha_pattern)
    embeddings = {h.name for h in arch.other_modules if h.kind == "embedding"}
    modules: list[ModuleCount] = []
    lora_total = dora_total = adapted_bias = lora_bias = 0
    for m in adapted:
        if spec.lora_bias and m.name in embeddings:
            raise InvalidParameterError(f"lora_bias=True is not supported for Embedding ({m.name!r})",
                                        where="lora_bias")
        r, alpha = spec.module_rank_alpha(m.name) if patterns else (spec.r, spec.lora_alpha)
        lora = lora_params(m.out_features, m.in_features, r)
        magnitude = m.out_features if dora else 0
        bias = m.out_features if (m.bias and bias_mode != "none") else 0
        b_bias = m.out_features if spec.lora_bias else 0
        lora_total += lora
        dora_total += magnitude
        adapted_bias += bias
        lora_bias += b_bias
        if with_modules:
            modules.append(ModuleCount(m.name, m.in_features, m.out_features, r, alpha,
                                       scaling(r, alpha, spec.use_rslora),
                                       lora + magnitude + bias + b_bias, m.layer))
    param_total = 0
    for p in params:
        r, alpha = spec.module_rank_alpha(p.name)
        own = r * p.experts * (p.a + p.b)
        param_total += own
        if with_modules:
            found = _LAYER_INDEX.match(p.name + ".")
            modules.append(ModuleCount(p.name, p.b, p.a, r, alpha, scaling(r, alpha, spec.use_rslora), own,
                                       int(found.group("idx")) if found else None))
    if not adapted and not params:
        shown = list(targets) if isinstance(targets, tuple) else targets
        message = f"Target modules {shown} not found in the base model. Please check the target modules and try again."
        if spec.layers_to_transform is not None:
            layers = spec.layers_to_transform
            message += f" Note: You specified 'layers_to_transform': {list(layers) if isinstance(layers, tuple) else layers}."
        message += f" ({arch.short_name} has linear modules named {_module_names_hint(arch)})"
        raise InvalidParameterError(message, where="target_modules")
    adapted_names = {m.name for m in adapted}
    saved = modules_to_save(arch, saved_before + saved_after, adapted_names)
    tokens = token_deltas(arch, spec, adapted_names | {s.name for s in saved})
    saved_total = sum(s.params for s in saved)
    token_total = sum(rows * width for _, rows, width in tokens)
    bias_total = arch.total_bias_params - sum(s.biases for s in saved) if bias_mode == "all" else adapted_bias
    added = lora_total + dora_total + lora_bias + param_total + saved_total + token_total
    trainable = added + bias_total - sum(s.params for s in saved if s.nested)
    total = arch.total_params + added
    result = LoraCount(
        trainable=trainable,
        total=total,
        base_total=arch.total_params,
        percent=100.0 * trainable / total,
        modules=tuple(modules),
        adapter_bytes={},
        lora_params=lora_total + lora_bias + param_total,
        dora_params=dora_total,
        bias_params=bias_total,
        target_modules=targets,
        num_modules=len(adapted) + len(params),
        saved_modules=tuple((s.name, s.params) for s in saved),
        token_params=token_total,
    )
    files, tensors = adapter_file_bytes(arch, spec, adapted, params, tokens, [s.name for s in saved])
    object.__setattr__(result, "adapter_bytes", files)
    object.__setattr__(result, "tensor_bytes", tensors)
    return result


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
