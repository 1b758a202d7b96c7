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

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loralens.core.architectures import Architecture, LinearModule
from loralens.core.validation import check_float, check_int
from loralens.errors import InvalidParameterError

ALL_LINEAR = "all-linear"
BIAS_MODES = ("none", "lora_only", "all")
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}

_LAYER_INDEX = re.compile(r".*?\.[^.]*\.(?P<idx>\d+)\.")  # PEFT: the first numbered segment is the layer index


def _check_names(field_name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidParameterError(
            f"must be None, a module name list, a regex string or 'all-linear', got {value!r}", where=field_name
        )
    names = tuple(value)
    if not names:
        raise InvalidParameterError("must name at least one module", where=field_name)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameterError(f"module names must be non-empty strings, got {name!r}", where=field_name)
    return names


def _check_pattern(field_name: str, pattern: Mapping[Any, Any], is_rank: bool) -> dict[str, Any]:
    if not isinstance(pattern, Mapping):
        raise InvalidParameterError(f"must be a mapping of module name pattern -> value, got {pattern!r}",
                                    where=field_name)
    checked: dict[str, Any] = {}
    for key, value in pattern.items():
        if not isinstance(key, str) or not key:
            raise InvalidParameterError(f"keys must be non-empty strings, got {key!r}", where=field_name)
        try:
            re.compile(key)
        except re.error as error:
            raise InvalidParameterError(f"key {key!r} is not a valid regex ({error})", where=field_name) from None
        where = f"{field_name}[{key!r}]"
        checked[key] = check_int(where, value, 1) if is_rank else check_float(where, value, 0.0, low_open=True)
    return checked


@dataclass(frozen=True)
class LoraConfigSpec:
    """The LoraConfig fields that decide the count, with PEFT's names and defaults."""

    r: int = 8
    lora_alpha: float = 8
    target_modules: tuple[str, ...] | str | None = None
    use_rslora: bool = False
    use_dora: bool = False
    bias: str = "none"
    layers_to_transform: tuple[int, ...] | int | None = None
    rank_pattern: Mapping[str, int] = field(default_factory=dict)
    alpha_pattern: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "r", check_int("r", self.r, 1))
        set_(self, "lora_alpha", check_float("lora_alpha", self.lora_alpha, 0.0, low_open=True))
        for flag in ("use_rslora", "use_dora"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidParameterError(f"must be True or False, got {getattr(self, flag)!r}", where=flag)
        targets = self.target_modules
        if isinstance(targets, str):
            if not targets.strip():
                raise InvalidParameterError("must not be empty", where="target_modules")
            if targets.lower() != ALL_LINEAR:
                try:
                    re.compile(targets)
                except re.error as error:
                    raise InvalidParameterError(f"{targets!r} is not a valid regex ({error})",
                                                where="target_modules") from None
        elif targets is not None:
            set_(self, "target_modules", _check_names("target_modules", targets))
        if self.bias not in BIAS_MODES:
            raise InvalidParameterError(f"must be one of {', '.join(BIAS_MODES)}, got {self.bias!r}", where="bias")
        layers = self.layers_to_transform
        if layers is not None:
            if isinstance(layers, (list, tuple, set, frozenset)):
                layers = tuple(check_int("layers_to_transform", i, 0) for i in layers)
            else:
                layers = check_int("layers_to_transform", layers, 0)
            set_(self, "layers_to_transform", layers)
            if isinstance(targets, str):
                raise InvalidParameterError(
                    "`layers_to_transform` cannot be used when `target_modules` is a str (a regex or 'all-linear')",
                    where="layers_to_transform",
                )
        set_(self, "rank_pattern", _check_pattern("rank_pattern", self.rank_pattern, True))
        set_(self, "alpha_pattern", _check_pattern("alpha_pattern", self.alpha_pattern, False))

    def __hash__(self) -> int:  # the patterns are dicts: hash their items so a spec can key a cache
        return hash((self.r, self.lora_alpha, self.target_modules, self.use_rslora, self.use_dora, self.bias,
                     self.layers_to_transform, tuple(self.rank_pattern.items()), tuple(self.alpha_pattern.items())))

    def scaling(self, r: int, alpha: float) -> float:
        return alpha / math.sqrt(r) if self.use_rslora else alpha / r


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
        return [m for m in arch.linear_modules if not m.is_output_head]
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


def _pattern_value(pattern: Mapping[str, Any], name: str, default: Any) -> Any:
    for key in pattern:
        if re.match(rf"(.*\.)?({key})$", name):
            return pattern[key]
    return default


def _module_names_hint(arch: Architecture) -> str:
    leaves = dict.fromkeys(m.name.rsplit(".", 1)[-1] for m in arch.linear_modules)
    return ", ".join(leaves)


def count_lora(arch: Architecture, spec: LoraConfigSpec, *, with_modules: bool = True) -> LoraCount:
    """Count LoRA's trainable parameters on ``arch`` exactly as PEFT's get_peft_model would.

    ``with_modules=False`` skips building the per-module tuple (``modules`` is then empty): the same totals about
    three times faster, for sweeps over many settings.
    """
    targets = resolve_targets(arch, spec)
    dora, bias_mode = spec.use_dora, spec.bias
    rank_pattern, alpha_pattern = spec.rank_pattern, spec.alpha_pattern
    modules: list[ModuleCount] = []
    lora_total = dora_total = adapted_bias = matched = 0
    for m in _adapted_modules(arch, spec, targets):
        r = _pattern_value(rank_pattern, m.name, spec.r) if rank_pattern else spec.r
        alpha = _pattern_value(alpha_pattern, m.name, spec.lora_alpha) if alpha_pattern else spec.lora_alpha
        lora = r * (m.in_features + m.out_features)
        magnitude = m.out_features if dora else 0
        bias = m.out_features if (m.bias and bias_mode != "none") else 0
        lora_total += lora
        dora_total += magnitude
        adapted_bias += bias
        matched += 1
        if with_modules:
            scaling = alpha / math.sqrt(r) if spec.use_rslora else alpha / r
            modules.append(ModuleCount(m.name, m.in_features, m.out_features, r, alpha, scaling,
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
