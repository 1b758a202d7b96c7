"""What a merge does to each base tensor, decided (and every refusal raised) before anything is written.

PEFT's ``PeftModel.from_pretrained(base, adapter).merge_and_unload()`` applies, per base tensor:

- a saved copy replaces it (``from_pretrained`` loads it into the base parameter, cast to the base dtype):
  ``modules_to_save`` copies (``<module>.weight``), trained biases (``bias="all"`` / ``"lora_only"``: ``<m>.bias``,
  ``<m>.base_layer.bias``), and the embedding copies ``save_embedding_layers`` writes (``<m>.base_layer.weight``);
- trainable tokens (``<m>.token_adapter.trainable_tokens_delta``, the new rows): ``W[indices] = rows``;
- LoRA / DoRA factors: ``W += s·B A`` (rounded to the base dtype once per module);
- ``lora_bias``: ``bias += s·lora_B.bias``.

Checkpoint keys may differ from module names: tied output embeddings (a head tied to the input embedding has no
key of its own: its changes go to the embedding's key, as PEFT changes the one shared parameter) and transformers'
saved-key renames (GPT-NeoX: module ``lm_head``, key ``embed_out.weight``). Anything else makes the merge refuse,
naming the tensor: a copy whose shape differs from the base (a resized vocabulary), a task head the base does not
hold, a modules_to_save copy of a tied head (PEFT unties it, which a tied checkpoint cannot store), combinations
whose order PEFT leaves to its module walk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loralens.adapters.peft_format import PREFIX, Adapter, AdapterModule
from loralens.adapters.safetensors_io import FLOAT_DTYPES, TensorData
from loralens.errors import AdapterError

#: saved checkpoint key prefixes that transformers maps to other module names ({module prefix: key prefix})
CHECKPOINT_RENAMES = {"lm_head.": "embed_out."}  # GPT-NeoX (transformers 5 names the module lm_head)
#: names of input embeddings a tied output head shares its weight with
INPUT_EMBEDDINGS = ("embed_tokens.weight", "wte.weight", "embed_in.weight", "word_embeddings.weight",
                    "tok_embeddings.weight", "shared.weight")
OUTPUT_HEADS = ("lm_head.weight", "embed_out.weight")
_TOKENS = ".token_adapter.trainable_tokens_delta"


@dataclass
class TensorPlan:
    """Everything that changes one base tensor, in the order PEFT applies it."""

    key: str
    replace: TensorData | None = None  # a saved copy loaded over the base tensor
    replace_from: str = ""  # the adapter tensor it comes from
    rows: tuple[np.ndarray, TensorData] | None = None  # trainable tokens: (indices, new rows)
    deltas: list[AdapterModule] = field(default_factory=list)
    bias_of: list[tuple[AdapterModule, TensorData]] = field(default_factory=list)  # lora_bias
    new_shape: tuple[int, ...] | None = None  # a saved embedding copy with another vocabulary size
    experts: list[tuple[int, AdapterModule, bool]] = field(default_factory=list)  # (e, ΔW_e, stored (in, out))

    @property
    def streamable(self) -> bool:
        """Only one module's ΔW: merged a block of rows at a time."""
        return (self.replace is None and self.rows is None and not self.bias_of and len(self.deltas) == 1
                and not self.experts)


@dataclass(frozen=True)
class BaseView:
    keys: dict[str, tuple[str, tuple[int, ...]]]  # key -> (dtype, shape)
    config: dict[str, Any]

    @property
    def tied(self) -> bool:
        value = self.config.get("tie_word_embeddings")
        if value is None and isinstance(self.config.get("text_config"), dict):
            value = self.config["text_config"].get("tie_word_embeddings")
        return bool(value)


def read_base_config(folder: Path | None) -> dict[str, Any]:
    if folder is None or not (folder / "config.json").is_file():
        return {}
    try:
        data = json.loads((folder / "config.json").read_bytes()[: 1 << 22].decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _tied_partner(key: str, base: BaseView) -> str | None:
    """The input embedding key a tied head ``key`` (absent from the checkpoint) is stored under, if tied."""
    if not base.tied or not any(key == h or key.endswith("." + h) for h in OUTPUT_HEADS):
        return None
    found = [k for k in base.keys if any(k == e or k.endswith("." + e) for e in INPUT_EMBEDDINGS)]
    return found[0] if len(found) == 1 else None


def resolve_key(name: str, base: BaseView, where: str, *, what: str) -> tuple[str, bool]:
    """(checkpoint key, through a tied head?) for the tensor ``name`` (a module path + .weight/.bias)."""
    keys = base.keys
    if name in keys:
        return name, False
    for module_prefix, key_prefix in CHECKPOINT_RENAMES.items():
        for cut in (name.find(module_prefix),):
            if cut == 0 or (cut > 0 and name[cut - 1] == "."):
                renamed = name[:cut] + key_prefix + name[cut + len(module_prefix):]
                if renamed in keys:
                    return renamed, False
    matches = [k for k in keys if k.endswith("." + name)] or [k for k in keys if name.endswith("." + k)]
    if len(matches) == 1:
        return matches[0], False
    partner = _tied_partner(name, base)
    if partner is not None:
        return partner, True
    if base.tied is False and any(name.endswith(h) for h in OUTPUT_HEADS) and _has_embedding(base):
        hint = " (the head may be tied to the input embedding, but config.json does not say tie_word_embeddings)"
    else:
        hint = ""
    raise AdapterError(f"{what} has no tensor {name!r} in the base model{hint}", where=where)


def _has_embedding(base: BaseView) -> bool:
    return any(any(k.endswith(e) for e in INPUT_EMBEDDINGS) for k in base.keys)


def plan_merge(adapter: Adapter, base: BaseView, adapter_label: str) -> dict[str, TensorPlan]:
    """key -> TensorPlan for every base tensor the merge changes; AdapterError (one line) for anything it cannot
    apply exactly as PEFT does."""
    plans: dict[str, TensorPlan] = {}
    spec = adapter.spec

    def plan(key: str) -> TensorPlan:
        return plans.setdefault(key, TensorPlan(key))

    def where(tensor: str) -> str:
        return f"{adapter_label}: {tensor}"

    by_key = {m.key: m for m in adapter.modules}
    tied_copies: list[tuple[str, str, TensorData]] = []
    expert_stems = {m.key for m in adapter.experts}
    for first in adapter.unsupported:
        if PREFIX + first.name not in expert_stems and first.name not in expert_stems:
            raise AdapterError(f"cannot merge module {first.name!r}: {first.reason}", where=first.where)
    _plan_experts(adapter, base, plan, where)
    for name, data in adapter.other_tensors.items():
        short = name[len(PREFIX):] if name.startswith(PREFIX) else name
        if data.dtype not in FLOAT_DTYPES:
            raise AdapterError(f"dtype {data.dtype} is not a floating type; cannot merge it", where=where(name))
        if short.endswith(".lora_B.bias"):
            stem = name[: -len(".lora_B.bias")]
            module = by_key.get(stem)
            if module is None:
                raise AdapterError("lora_B.bias without lora_A and lora_B", where=where(name))
            if not spec.lora_bias:
                raise AdapterError("lora_B.bias is saved but adapter_config.json has lora_bias false",
                                   where=where(name))
            key, tied = resolve_key(module.name + ".bias", base, where(name), what="lora_bias: the base layer")
            _check_shape(base, key, data.shape, where(name), tied=tied)
            plan(key).bias_of.append((module, data))
            continue
        if short.endswith(_TOKENS):
            module_name = short[: -len(_TOKENS)]
            key, _ = resolve_key(module_name + ".weight", base, where(name), what="trainable tokens")
            indices = _token_indices(spec.trainable_token_indices, module_name, where(name))
            shape = base.keys[key][1]
            if len(data.shape) != 2 or data.shape != (len(indices), shape[1] if len(shape) == 2 else -1):
                raise AdapterError(f"shape {list(data.shape)} does not fit {len(indices)} token rows of {key!r} "
                                   f"{list(shape)}", where=where(name))
            if indices and (min(indices) < 0 or max(indices) >= shape[0]):
                raise AdapterError(f"token index {max(indices)} is outside the {shape[0]} rows of {key!r}",
                                   where=where(name))
            if len(set(indices)) != len(indices):
                raise AdapterError("trainable_token_indices repeats a token id", where=where(name))
            target = plan(key)
            if target.rows is not None:
                raise AdapterError(f"two trainable-token adapters change {key!r}; not supported", where=where(name))
            target.rows = (np.asarray(indices, dtype=np.int64), data)
            continue
        base_name = short.replace(".base_layer.", ".")
        through_base_layer = base_name != short
        key, tied = resolve_key(base_name, base, where(name), what="saved copy")
        if tied and not through_base_layer:
            tied_copies.append((name, key, data))  # allowed only as the very same tensor as the embedding's copy
            continue
        resized = _check_shape(base, key, data.shape, where(name), tied=tied, may_resize=True)
        target = plan(key)
        target.new_shape = tuple(data.shape) if resized else None
        if target.replace is not None:
            raise AdapterError(f"a second saved copy of {key!r} (after {target.replace_from!r}); not supported",
                               where=where(name))
        target.replace, target.replace_from = data, name

    for module in adapter.modules:
        tensor = module.tensor_names[0]
        if module.kind not in ("linear", "embedding") and not module.kernel:
            raise AdapterError(f"merging a {module.kind} LoRA module is not supported", where=where(tensor))
        key, _ = resolve_key(module.name + ".weight", base, where(tensor), what=f"adapted module {module.name!r}")
        dtype, shape = base.keys[key]
        if key in plans and plans[key].new_shape is not None:  # a resized vocabulary: ΔW fits the new rows
            shape = plans[key].new_shape
        expected = ((module.in_features, module.out_features) if module.fan_in_fan_out or module.kind == "embedding"
                    else (module.out_features, module.in_features // max(1, int(np.prod(module.kernel))),
                          *module.kernel) if module.kernel else (module.out_features, module.in_features))
        if shape != expected:
            raise AdapterError(f"base shape {list(shape)} of {key!r} does not match the adapter's {list(expected)}",
                               where=where(tensor))
        if dtype not in FLOAT_DTYPES:
            raise AdapterError(f"base tensor {key!r} has dtype {dtype}, not a floating type", where=where(tensor))
        target = plan(key)
        if target.deltas and (module.magnitude is not None or target.deltas[0].magnitude is not None):
            raise AdapterError(f"two DoRA/LoRA modules change the one tied tensor {key!r}; not supported",
                               where=where(tensor))
        target.deltas.append(module)

    tied_copies_check(plans, tied_copies, adapter_label)
    check_vocabulary(plans, base, adapter_label)
    for key, target in plans.items():
        if target.rows is not None and (target.deltas or target.replace is not None):
            raise AdapterError("trainable tokens together with LoRA or a saved copy of the same tensor are not "
                               "supported", where=f"{adapter_label}: {key}")
    return plans


def _is_vocabulary(key: str) -> bool:
    return any(key == e or key.endswith("." + e) for e in INPUT_EMBEDDINGS + OUTPUT_HEADS)


def _plan_experts(adapter: Adapter, base: BaseView, plan: Any, where: Any) -> None:
    """Fused MoE experts (PEFT's ParamWrapper): each wrapper's parameter is the base tensor of its module with the
    shape (E, out, in) or (E, in, out) (unique, else refused); ΔW_e goes into slice e, as PEFT's merge does."""
    groups: dict[str, list[AdapterModule]] = {}
    for module in adapter.experts:
        groups.setdefault(module.key, []).append(module)
    used: dict[str, str] = {}
    for stem, experts in groups.items():
        path = stem.removeprefix(PREFIX)
        while path.endswith(".base_layer"):
            path = path[: -len(".base_layer")]
        first = experts[0]
        count, out, inp = len(experts), first.out_features, first.in_features
        label = where(first.tensor_names[0])
        if out == inp:
            raise AdapterError(f"fused experts of a square ({out} x {inp}) parameter: which way PEFT stores them "
                               "is not in the files; not supported", where=label)
        found = [(k, shape[1:] == (inp, out)) for k, (dtype, shape) in base.keys.items()
                 if k.startswith(path + ".") and "." not in k[len(path) + 1:] and dtype in FLOAT_DTYPES
                 and len(shape) == 3 and shape[0] == count and shape[1:] in ((out, inp), (inp, out))
                 and k not in used]
        if len(found) != 1:
            what = "no" if not found else f"{len(found)} ({', '.join(k for k, _ in found)})"
            hint = ("; the checkpoint may store each expert apart (e.g. Mixtral's experts.N.w1/w2/w3, which "
                    "transformers fuses when it loads): not supported" if not found else "")
            raise AdapterError(f"{what} fused base tensor of {path!r} fits {count} experts of {out} x {inp}{hint}",
                               where=label)
        key, transposed = found[0]
        used[key] = stem
        target = plan(key)
        if target.replace is not None or target.rows is not None or target.deltas:
            raise AdapterError(f"fused experts and another change of {key!r} are not supported", where=label)
        target.experts.extend((e, module, transposed) for e, module in enumerate(experts))


def _check_shape(base: BaseView, key: str, shape: tuple[int, ...], where: str, *, tied: bool,
                 may_resize: bool = False) -> bool:
    """True when the copy resizes a vocabulary (an embedding or head with other rows, same columns)."""
    base_dtype, base_shape = base.keys[key]
    if base_dtype not in FLOAT_DTYPES:
        raise AdapterError(f"base tensor {key!r} has dtype {base_dtype}, not a floating type", where=where)
    if (may_resize and _is_vocabulary(key) and len(shape) == 2 and len(base_shape) == 2
            and shape[1] == base_shape[1] and shape[0] != base_shape[0]):
        return True
    if tuple(shape) != tuple(base_shape):
        rows = (f"; a resized vocabulary ({shape[0]} rows here, {base_shape[0]} in the base) is not supported"
                if len(shape) == 2 and len(base_shape) == 2 and shape[1] == base_shape[1] else "")
        raise AdapterError(f"shape {list(shape)} differs from the base's {key!r} {list(base_shape)}{rows}",
                           where=where)
    return False


def tied_copies_check(plans: dict[str, TensorPlan], copies: list[tuple[str, str, TensorData]], label: str) -> None:
    """A saved copy of a tied head is fine when it is the embedding's own saved copy (a tied model's state dict
    holds the one tensor under both names); a different one is a modules_to_save copy PEFT unties."""
    for name, key, data in copies:
        partner = plans.get(key)
        same = (partner is not None and partner.replace is not None and partner.replace.dtype == data.dtype
                and tuple(partner.replace.shape) == tuple(data.shape)
                and bytes(memoryview(partner.replace.data).cast("B")) == bytes(memoryview(data.data).cast("B")))
        if not same:
            raise AdapterError(f"is a modules_to_save copy of a head tied to {key!r}; PEFT's merged model unties "
                               "them, which this tied checkpoint cannot hold", where=f"{label}: {name}")


def vocabulary_rows(plans: dict[str, TensorPlan]) -> int | None:
    """The new vocabulary size when the merge resizes the embeddings (all resized copies agree), else None."""
    rows = {p.new_shape[0] for p in plans.values() if p.new_shape is not None}
    return rows.pop() if len(rows) == 1 else None


def check_vocabulary(plans: dict[str, TensorPlan], base: BaseView, label: str) -> None:
    resized = {k: p.new_shape for k, p in plans.items() if p.new_shape is not None}
    if not resized:
        return
    rows = {shape[0] for shape in resized.values()}
    if len(rows) != 1:
        raise AdapterError(f"the saved embeddings resize the vocabulary to different sizes ({sorted(rows)})",
                           where=f"{label}: {', '.join(sorted(resized))}")
    others = [k for k in base.keys if _is_vocabulary(k) and k not in resized and not base.tied]
    if others:
        raise AdapterError(f"resizes the vocabulary to {rows.pop()} rows but not {others[0]!r}: PEFT's merged "
                           "model would hold the new rows your resize_token_embeddings gave it, and the adapter "
                           "does not hold them",
                           where=f"{label}: {next(iter(resized))}")
    old = {base.keys[k][1][0] for k in resized}
    vocab = _config_vocab(base.config)
    if vocab is None or vocab not in old:
        raise AdapterError(f"resizes the vocabulary but the base's config.json has vocab_size {vocab} (not "
                           f"{sorted(old)}); cannot rewrite it", where=f"{label}: {next(iter(resized))}")


def _config_vocab(config: dict[str, Any]) -> int | None:
    for holder in (config, config.get("text_config")):
        if isinstance(holder, dict) and isinstance(holder.get("vocab_size"), int):
            return int(holder["vocab_size"])
    return None


def resized_config(raw: bytes, rows: int) -> bytes:
    """config.json with vocab_size set to the merged vocabulary (where it is written), as transformers writes it."""
    config = json.loads(raw.decode("utf-8"))
    for holder in (config, config.get("text_config")):
        if isinstance(holder, dict) and isinstance(holder.get("vocab_size"), int):
            holder["vocab_size"] = rows
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _token_indices(value: object, module_name: str, where: str) -> list[int]:
    if value is None:
        raise AdapterError("trainable tokens are saved but adapter_config.json has no trainable_token_indices",
                           where=where)
    if isinstance(value, dict):
        found = [v for k, v in value.items() if module_name == k or module_name.endswith("." + k)]
        if len(found) != 1:
            raise AdapterError(f"trainable_token_indices names no single entry for {module_name!r}", where=where)
        value = found[0]
    return [int(i) for i in value]  # type: ignore[union-attr]
