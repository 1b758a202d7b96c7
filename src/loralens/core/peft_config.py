"""PEFT's LoraConfig as loralens reads it: one validated spec for counting, for adapter files and for the CLI.

Field names and defaults are PEFT's (peft/tuners/lora/config.py). ``LoraConfigSpec`` checks every field it holds
with a message naming it; ``spec_from_peft_config`` reads the dict of an adapter_config.json into the same spec,
so a config is validated by one set of rules wherever it comes from. The per-module rules live here too:
PEFT's pattern-key lookup (``pattern_key``) and the rank, alpha and scaling of one module (``module_rank_alpha``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from loralens.core.user_regex import user_pattern
from loralens.core.counting import scaling
from loralens.core.validation import check_float, check_int
from loralens.errors import InvalidParameterError

ALL_LINEAR = "all-linear"
BIAS_MODES = ("none", "lora_only", "all")
_LISTS = (list, tuple, set, frozenset)


def _check_names(field_name: str, value: object, *, allow_str: bool = True) -> tuple[str, ...] | str | None:
    """None, a regex string (or 'all-linear'), or a non-empty list of module names."""
    if value is None:
        return None
    if isinstance(value, str) and allow_str:
        if not value.strip():
            raise InvalidParameterError("must not be empty", where=field_name)
        if value.lower() != ALL_LINEAR:
            _compile(field_name, value)
        return value
    if not isinstance(value, _LISTS):
        kinds = "None, a module name list, a regex string or 'all-linear'" if allow_str else "None or a name list"
        raise InvalidParameterError(f"must be {kinds}, got {value!r}", where=field_name)
    names = tuple(value)
    if not names:
        raise InvalidParameterError("must name at least one module", where=field_name)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameterError(f"module names must be non-empty strings, got {name!r}", where=field_name)
    return names


def _compile(where: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as error:
        raise InvalidParameterError(f"{pattern!r} is not a valid regex ({error})", where=where) from None


def _check_pattern(field_name: str, pattern: object, is_rank: bool) -> dict[str, Any]:
    if pattern is None:
        return {}
    if not isinstance(pattern, Mapping):
        raise InvalidParameterError(f"must be a mapping of module name pattern -> value, got {pattern!r}",
                                    where=field_name)
    checked: dict[str, Any] = {}
    for key, value in pattern.items():
        if not isinstance(key, str) or not key:
            raise InvalidParameterError(f"keys must be non-empty strings, got {key!r}", where=field_name)
        _compile(f"{field_name}[{key!r}]", key)
        where = f"{field_name}[{key!r}]"
        checked[key] = check_int(where, value, 1) if is_rank else check_float(where, value)
    return checked


def _check_layers(value: object) -> tuple[int, ...] | int | None:
    if value is None:
        return None
    if isinstance(value, _LISTS):
        return tuple(check_int("layers_to_transform", i, 0) for i in value)
    return check_int("layers_to_transform", value, 0)


def _check_token_indices(value: object) -> tuple[int, ...] | dict[str, tuple[int, ...]] | None:
    """PEFT's trainable_token_indices: a list of token ids, or {module name: list of token ids}."""
    if value is None:
        return None
    where = "trainable_token_indices"
    if isinstance(value, Mapping):
        for name in value:
            if not isinstance(name, str) or not name:
                raise InvalidParameterError(f"keys must be module names, got {name!r}", where=where)
        return {name: _token_list(f"{where}[{name!r}]", ids) for name, ids in value.items()}
    return _token_list(where, value)


def _token_list(where: str, ids: object) -> tuple[int, ...]:
    if not isinstance(ids, _LISTS):
        raise InvalidParameterError(f"must be a list of token ids, got {ids!r}", where=where)
    return tuple(check_int(where, i, 0) for i in ids)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameterError(f"must be true or false, got {value!r}", where=name)
    return value


@dataclass(frozen=True)
class LoraConfigSpec:
    """The LoraConfig fields that decide what is trained and how it is scaled, with PEFT's names and defaults."""

    r: int = 8
    lora_alpha: float = 8
    target_modules: tuple[str, ...] | str | None = None
    exclude_modules: tuple[str, ...] | str | None = None
    use_rslora: bool = False
    use_dora: bool = False
    bias: str = "none"
    fan_in_fan_out: bool = False
    layers_to_transform: tuple[int, ...] | int | None = None
    layers_pattern: tuple[str, ...] | str | None = None
    rank_pattern: Mapping[str, int] = field(default_factory=dict)
    alpha_pattern: Mapping[str, float] = field(default_factory=dict)
    modules_to_save: tuple[str, ...] | None = None
    target_parameters: tuple[str, ...] | None = None
    trainable_token_indices: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None = None
    lora_bias: bool = False
    task_type: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "r", check_int("r", self.r, 1))
        set_(self, "lora_alpha", check_float("lora_alpha", self.lora_alpha))
        for flag in ("use_rslora", "use_dora", "fan_in_fan_out", "lora_bias"):
            _check_bool(flag, getattr(self, flag))
        for name in ("modules_to_save", "target_parameters"):
            set_(self, name, _check_names(name, getattr(self, name), allow_str=False))
        if self.target_parameters and isinstance(self.target_modules, _LISTS) and not len(self.target_modules):
            set_(self, "target_modules", ())  # PEFT: parameters only, no module targets
        else:
            set_(self, "target_modules", _check_names("target_modules", self.target_modules))
        set_(self, "exclude_modules", _check_names("exclude_modules", self.exclude_modules))
        if self.bias not in BIAS_MODES:
            raise InvalidParameterError(f"must be one of {', '.join(BIAS_MODES)}, got {self.bias!r}", where="bias")
        set_(self, "layers_to_transform", _check_layers(self.layers_to_transform))
        if self.layers_to_transform is not None and isinstance(self.target_modules, str):
            raise InvalidParameterError(
                "`layers_to_transform` cannot be used when `target_modules` is a str (a regex or 'all-linear')",
                where="layers_to_transform",
            )
        layers_pattern = self.layers_pattern
        if isinstance(layers_pattern, str):
            layers_pattern = (layers_pattern,)
        set_(self, "layers_pattern", _check_names("layers_pattern", layers_pattern, allow_str=False))
        set_(self, "rank_pattern", _check_pattern("rank_pattern", self.rank_pattern, True))
        set_(self, "alpha_pattern", _check_pattern("alpha_pattern", self.alpha_pattern, False))
        set_(self, "trainable_token_indices", _check_token_indices(self.trainable_token_indices))
        if self.task_type is not None and not isinstance(self.task_type, str):
            raise InvalidParameterError(f"must be a task name such as 'CAUSAL_LM', got {self.task_type!r}",
                                        where="task_type")

    def __hash__(self) -> int:  # the patterns are dicts: hash their items so that a spec can key a cache
        values = [getattr(self, f.name) for f in fields(self)]
        return hash(tuple(tuple(v.items()) if isinstance(v, Mapping) else v for v in values))

    def module_rank_alpha(self, module_path: str) -> tuple[int, float]:
        """r and lora_alpha of one module: the first matching rank_pattern / alpha_pattern key, else r, lora_alpha."""
        r_key = pattern_key(self.rank_pattern, module_path, "rank_pattern") if self.rank_pattern else None
        a_key = pattern_key(self.alpha_pattern, module_path, "alpha_pattern") if self.alpha_pattern else None
        r = self.rank_pattern[r_key] if r_key is not None else self.r
        alpha = self.alpha_pattern[a_key] if a_key is not None else self.lora_alpha
        return r, alpha

    def module_scaling(self, module_path: str) -> tuple[int, float, float]:
        """(r, alpha, scaling) of one module, scaling by PEFT's rule (``counting.scaling``)."""
        r, alpha = self.module_rank_alpha(module_path)
        return r, alpha, scaling(r, alpha, self.use_rslora)


def pattern_key(pattern_keys: Mapping[str, Any] | list[str] | tuple[str, ...], module_path: str,
                where: str = "rank_pattern / alpha_pattern") -> str | None:
    """PEFT's ``get_pattern_key``: the first key (in order) for which ``re.match(rf"(.*\\.)?({key})$", path)``.

    Keys were checked to be valid regexes when the spec was made, so there is no fallback that could disagree; the
    match is bounded in time (``user_regex``).
    """
    for key in pattern_keys:
        if user_pattern(rf"(.*\.)?({key})$", where, key).match(module_path):
            return key
    return None


#: adapter_config.json fields that are read into the spec (the others do not change what is trained)
SPEC_FIELDS = tuple(f.name for f in fields(LoraConfigSpec))


def spec_from_peft_config(config: Mapping[str, Any]) -> LoraConfigSpec:
    """The spec of an adapter_config.json's dict: its LoraConfig fields with PEFT's defaults for those absent.

    ``r`` and ``lora_alpha`` must be present (PEFT always writes them); InvalidParameterError names the field.
    """
    for name in ("r", "lora_alpha"):
        if config.get(name) is None:
            raise InvalidParameterError("is missing", where=name)
    values = {name: config[name] for name in SPEC_FIELDS if config.get(name) is not None}
    return LoraConfigSpec(**values)


__all__ = ["ALL_LINEAR", "BIAS_MODES", "SPEC_FIELDS", "LoraConfigSpec", "pattern_key", "spec_from_peft_config"]
