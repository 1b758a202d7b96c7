"""Real model architectures: a table of presets keyed by Hugging Face id, and config.json -> modules.

Each architecture lists its linear layers under the module names PEFT sees (``model.layers.0.self_attn.q_proj``,
``transformer.h.0.attn.c_attn``, ``bert.encoder.layer.0.attention.self.query``) with their shapes, and every other
parameter holder (embeddings, norms, a lone bias) so that the total and the count of all biases are exact.
Tied weights are counted once, as ``model.parameters()`` does. Shapes follow PEFT: W is (out_features, in_features).

The supported config.json model types and everything known about each are the records of ``core/families.py``;
their builders (config -> modules) are in ``core/builders.py``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralens.core.families import FAMILIES, SUPPORTED_MODEL_TYPES, Family, get_family
from loralens.core.heads import BASE, resolve_task
from loralens.core.model_shape import ConfigReader, LinearModule, ModelShape, ParamHolder
from loralens.errors import ConfigError


@dataclass(frozen=True)
class Architecture(ModelShape):
    """A model's shape (its builder's ``ModelShape``), named: where it comes from and which family it is."""

    hf_id: str = ""
    short_name: str = ""
    model_type: str = ""
    display_name: str = ""
    source: str = ""  # where the hyper-parameters come from

    @property
    def total_bias_params(self) -> int:
        """Every parameter named ``*.bias`` (what PEFT's bias="all" makes trainable)."""
        return sum(m.out_features for m in self.linear_modules if m.bias and not m.shared) + sum(
            h.bias for h in self.other_modules
        )

    @property
    def family(self) -> Family:
        """The model family's record (PEFT's constants for this type, the memory model's facts)."""
        return FAMILIES[self.model_type]

    @property
    def output_head(self) -> str | None:
        return next((m.name for m in self.linear_modules if m.is_output_head), None)

    @functools.cached_property
    def module_names(self) -> tuple[str, ...]:
        """Every module's name (linear, embeddings, norms, the modules holding bare parameters, containers)."""
        leaves = [m.name for m in self.linear_modules] + [
            h.module if h.kind == "param" else h.name for h in self.other_modules]
        names: dict[str, None] = {}
        for name in leaves:
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                names.setdefault(".".join(parts[:end]), None)
        return tuple(names)

    @functools.cached_property
    def other_module_index(self) -> dict[str, tuple[tuple[str, ParamHolder | None], ...]]:
        """Every module that is not linear, by the last part of its name: the parameter holders (embeddings, norms)
        and the containers (``model.layers.0.self_attn``: None), which a target may also match in PEFT."""
        holders = {h.name: h for h in self.other_modules if h.kind != "param"}
        linear = {m.name: m for m in self.linear_modules}
        names: dict[str, ParamHolder | None] = dict(holders)
        params = [h.name for h in self.other_modules if h.kind == "param"]
        for name in (*holders, *linear, *params):
            parts = name.split(".")
            for end in range(1, len(parts)):
                prefix = ".".join(parts[:end])
                if prefix not in linear:
                    names.setdefault(prefix, None)
        index: dict[str, list[tuple[str, ParamHolder | None]]] = {}
        for name, holder in names.items():
            index.setdefault(name.rsplit(".", 1)[-1], []).append((name, holder))
        return {leaf: tuple(entries) for leaf, entries in index.items()}


# ----------------------------------------------------------------------------------------------------------------
# config.json -> Architecture


def architecture_from_config(
    path_or_dict: str | os.PathLike[str] | Mapping[str, Any],
    *,
    hf_id: str = "",
    short_name: str = "",
    display_name: str = "",
    task: str | None = None,
) -> Architecture:
    """Build an Architecture from a Hugging Face config.json (a path or the parsed dict).

    The head is the config's ``architectures[0]`` (``BertForSequenceClassification``: pooler + classifier) or
    ``task`` (core/heads.py ``TASKS``) when given; a model class the family does not build is refused by name.
    """
    if isinstance(path_or_dict, Mapping):
        data, source = path_or_dict, "config"
    else:
        source = str(path_or_dict)
        try:
            text = Path(path_or_dict).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("no such file", where=source) from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot be read ({error.__class__.__name__})", where=source) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"not valid JSON ({error.msg} at line {error.lineno})", where=source) from None
        if not isinstance(data, dict):
            raise ConfigError("must hold a JSON object", where=source)
    family = get_family(data.get("model_type"), source)
    if task is None and data.get("architectures") == [family.base_class] and family.base_class:
        task = BASE
    shape = family.build(ConfigReader(data, source, resolve_task(data, family.tasks, family.model_type, source,
                                                                 task)))
    if not hf_id:
        hf_id = str(data.get("_name_or_path") or data.get("name_or_path") or source)
    if not short_name and hf_id == source and source != "config":
        path = Path(source)  # .../Llama-3.2-1B/config.json -> Llama-3.2-1B
        short_name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
    return Architecture(
        hf_id=hf_id,
        short_name=short_name or hf_id.rsplit("/", 1)[-1],
        model_type=family.model_type,
        display_name=display_name or short_name or hf_id.rsplit("/", 1)[-1],
        source=source,
        **{f.name: getattr(shape, f.name) for f in dataclasses.fields(ModelShape)},
    )


# ----------------------------------------------------------------------------------------------------------------
# Presets: data files (src/loralens/data/models/*.json), each preset with its config.json values and the published
# parameter count that tests/core/test_presets.py holds its total to


@dataclass(frozen=True)
class Published:
    """A model's published size: ``params`` within ``tolerance`` (the rounding of the figure), and where from."""

    params: float
    tolerance: float
    source: str


#: data file name (without .json) -> its presets' ids; "gpt2-bert-opt-gpt3" holds the first ten (the lessons' set)
PRESET_GROUPS: dict[str, list[str]] = {}


def _load_presets() -> tuple[dict[str, tuple[str, str, dict[str, Any]]], dict[str, Published]]:
    from importlib.resources import files

    configs: dict[str, tuple[str, str, dict[str, Any]]] = {}
    published: dict[str, Published] = {}
    PRESET_GROUPS.clear()
    folder = files("loralens") / "data" / "models"
    # the first ten presets first (the order of the Models page's list and of the lessons' table), then by file name
    for entry in sorted(folder.iterdir(), key=lambda e: (e.name != "gpt2-bert-opt-gpt3.json", e.name)):
        if not entry.name.endswith(".json"):
            continue
        group = PRESET_GROUPS.setdefault(entry.name.removesuffix(".json"), [])
        for preset in json.loads(entry.read_text(encoding="utf-8"))["presets"]:
            hf_id = preset["hf_id"]
            group.append(hf_id)
            configs[hf_id] = (preset["short_name"], preset["display_name"], preset["config"])
            published[hf_id] = Published(*preset["published"])
    return configs, published


PRESET_CONFIGS, PUBLISHED = _load_presets()  # hf_id: (short name, display name, config); hf_id: Published
PRESETS: dict[str, Architecture] = {
    hf_id: architecture_from_config(cfg, hf_id=hf_id, short_name=short, display_name=display)
    for hf_id, (short, display, cfg) in PRESET_CONFIGS.items()
}
_BY_NAME: dict[str, Architecture] = {
    **{a.hf_id.lower(): a for a in PRESETS.values()},
    **{a.short_name.lower(): a for a in PRESETS.values()},
}


def get_architecture(name: str) -> Architecture:
    """A preset by Hugging Face id or short name (case-insensitive); ConfigError with close names otherwise."""
    if not isinstance(name, str):
        raise ConfigError(f"model must be a name, got {name!r}", where="model")
    found = _BY_NAME.get(name.strip().lower())
    if found is not None:
        return found
    key = name.strip().lower()
    candidates = list(_BY_NAME)
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.5)
    close += [c for c in candidates if key and key in c and c not in close][: 3 - len(close)]
    originals = {k: (a.hf_id if k == a.hf_id.lower() else a.short_name) for k, a in _BY_NAME.items()}
    hint = f"; did you mean {', '.join(repr(originals[c]) for c in close)}?" if close else ""
    if key.endswith(".json") or os.path.isfile(name):
        hint = "; that looks like a file: pass a config.json with --config (architecture_from_config)"
    return_names = ", ".join(a.short_name for a in PRESETS.values())
    raise ConfigError(f"unknown model {name!r}{hint} (known: {return_names}; or pass a config.json)", where="model")


__all__ = [
    "Architecture",
    "LinearModule",
    "ParamHolder",
    "PRESETS",
    "PRESET_CONFIGS",
    "PRESET_GROUPS",
    "PUBLISHED",
    "Published",
    "SUPPORTED_MODEL_TYPES",
    "architecture_from_config",
    "get_architecture",
]
