"""Real model architectures: a table of presets keyed by Hugging Face id, and config.json -> modules.

Each architecture lists its linear layers under the module names PEFT sees (``model.layers.0.self_attn.q_proj``,
``transformer.h.0.attn.c_attn``, ``bert.encoder.layer.0.attention.self.query``) with their shapes, and every other
parameter holder (embeddings, norms, a lone bias) so that the total and the count of all biases are exact.
Tied weights are counted once, as ``model.parameters()`` does. Shapes follow PEFT: W is (out_features, in_features).

Supported config.json model types: llama, mistral, qwen2, gpt2, opt, bert (built as BertForMaskedLM, which is what
the bert preset is), plus the internal ``gpt3`` type of the GPT-3 175B preset (not in transformers: the LoRA
paper's dimensions with GPT-2's layout of biases and norms, and separate q, k, v, o projections).
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralens.errors import ConfigError


@dataclass(frozen=True, slots=True)
class LinearModule:
    """One linear layer (nn.Linear, or GPT-2's Conv1D with ``fan_in_fan_out``)."""

    name: str
    in_features: int
    out_features: int
    bias: bool
    fan_in_fan_out: bool = False
    is_output_head: bool = False  # excluded from "all-linear", as PEFT does
    shared: bool = False  # weight (and bias) are another module's tensors (tied output head): not counted again
    layer: int | None = None  # the transformer block index, or None outside the blocks

    @property
    def weight_params(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True, slots=True)
class ParamHolder:
    """A module with parameters that is not linear: an embedding, a norm, or a lone bias vector."""

    name: str
    kind: str  # "embedding" | "layernorm" | "rmsnorm" | "bias"
    weight: int  # number of weight parameters (0 for a lone bias)
    bias: int  # number of bias parameters
    shape: tuple[int, ...] = ()  # (num_embeddings, embedding_dim) for an embedding


def _embedding(name: str, rows: int, dim: int) -> ParamHolder:
    return ParamHolder(name, "embedding", rows * dim, 0, (rows, dim))


@dataclass(frozen=True)
class Architecture:
    """A model's shape, its linear modules under PEFT's names, and its exact parameter count."""

    hf_id: str
    short_name: str
    model_type: str
    hidden_size: int
    num_layers: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    linear_modules: tuple[LinearModule, ...]
    total_params: int  # tied embeddings counted once
    other_modules: tuple[ParamHolder, ...] = ()
    tie_word_embeddings: bool = False
    display_name: str = ""
    source: str = ""  # where the hyper-parameters come from

    @property
    def total_bias_params(self) -> int:
        """Every parameter named ``*.bias`` (what PEFT's bias="all" makes trainable)."""
        return sum(m.out_features for m in self.linear_modules if m.bias and not m.shared) + sum(
            h.bias for h in self.other_modules
        )

    @property
    def output_head(self) -> str | None:
        return next((m.name for m in self.linear_modules if m.is_output_head), None)

    @functools.cached_property
    def other_module_index(self) -> dict[str, tuple[tuple[str, ParamHolder | None], ...]]:
        """Every module that is not linear, by the last part of its name: the parameter holders (embeddings, norms)
        and the containers (``model.layers.0.self_attn``: None), which a target may also match in PEFT."""
        holders = {h.name: h for h in self.other_modules}
        linear = {m.name: m for m in self.linear_modules}
        names: dict[str, ParamHolder | None] = dict(holders)
        for name in (*holders, *linear):
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


class _Cfg:
    """Reads fields of one config.json, raising ConfigError that names the file and the field."""

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        self.data, self.source = data, source

    def int(self, *keys: str, default: int | None = None, low: int = 1) -> int:
        for key in keys:
            if key in self.data and self.data[key] is not None:
                value = self.data[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ConfigError(
                        f"field '{key}' must be a whole number of at least {low}, got {value!r}", where=self.source
                    )
                return value
        if default is None:
            raise ConfigError(f"missing field '{keys[0]}'", where=self.source)
        return default

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"field '{key}' must be true or false, got {value!r}", where=self.source)
        return value


def _divide(cfg: _Cfg, numerator: int, denominator: int, what: str) -> int:
    if numerator % denominator:
        raise ConfigError(f"{what}: {numerator} is not divisible by {denominator}", where=cfg.source)
    return numerator // denominator


def _llama_family(cfg: _Cfg, model_type: str) -> dict[str, Any]:
    """llama, mistral and qwen2: RMSNorm, rotary positions, gated MLP, grouped-query attention."""
    d = cfg.int("hidden_size")
    heads = cfg.int("num_attention_heads")
    kv = cfg.int("num_key_value_heads", default=heads)
    _divide(cfg, heads, kv, "num_attention_heads / num_key_value_heads")
    head_dim = cfg.int("head_dim", default=0, low=0) or _divide(cfg, d, heads, "hidden_size / num_attention_heads")
    n, ffn, vocab = cfg.int("num_hidden_layers"), cfg.int("intermediate_size"), cfg.int("vocab_size")
    if model_type == "qwen2":
        qkv_bias, o_bias, mlp_bias = True, False, False
    elif model_type == "llama":
        qkv_bias = o_bias = cfg.bool("attention_bias", False)
        mlp_bias = cfg.bool("mlp_bias", False)
    else:
        qkv_bias = o_bias = mlp_bias = False
    tied = cfg.bool("tie_word_embeddings", False)
    linear, other = [], [_embedding("model.embed_tokens", vocab, d)]
    for i in range(n):
        p = f"model.layers.{i}."
        linear += [
            LinearModule(p + "self_attn.q_proj", d, heads * head_dim, qkv_bias, layer=i),
            LinearModule(p + "self_attn.k_proj", d, kv * head_dim, qkv_bias, layer=i),
            LinearModule(p + "self_attn.v_proj", d, kv * head_dim, qkv_bias, layer=i),
            LinearModule(p + "self_attn.o_proj", heads * head_dim, d, o_bias, layer=i),
            LinearModule(p + "mlp.gate_proj", d, ffn, mlp_bias, layer=i),
            LinearModule(p + "mlp.up_proj", d, ffn, mlp_bias, layer=i),
            LinearModule(p + "mlp.down_proj", ffn, d, mlp_bias, layer=i),
        ]
        other += [ParamHolder(p + "input_layernorm", "rmsnorm", d, 0),
                  ParamHolder(p + "post_attention_layernorm", "rmsnorm", d, 0)]
    other.append(ParamHolder("model.norm", "rmsnorm", d, 0))
    linear.append(LinearModule("lm_head", d, vocab, False, is_output_head=True, shared=tied))
    return dict(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=tied,
                max_position_embeddings=cfg.int("max_position_embeddings", default=0, low=0),
                linear_modules=linear, other_modules=other)


def _gpt2(cfg: _Cfg, model_type: str) -> dict[str, Any]:
    """GPT-2: Conv1D layers (weights stored in x out, so fan_in_fan_out), fused c_attn, learned positions."""
    d, n, heads = cfg.int("n_embd", "hidden_size"), cfg.int("n_layer", "num_hidden_layers"), cfg.int("n_head")
    _divide(cfg, d, heads, "n_embd / n_head")
    ffn, vocab = cfg.int("n_inner", default=4 * d), cfg.int("vocab_size")
    positions = cfg.int("n_positions", "max_position_embeddings")
    linear = []
    other = [_embedding("transformer.wte", vocab, d),
             _embedding("transformer.wpe", positions, d)]
    for i in range(n):
        p = f"transformer.h.{i}."
        other += [ParamHolder(p + "ln_1", "layernorm", d, d), ParamHolder(p + "ln_2", "layernorm", d, d)]
        linear += [
            LinearModule(p + "attn.c_attn", d, 3 * d, True, True, layer=i),
            LinearModule(p + "attn.c_proj", d, d, True, True, layer=i),
            LinearModule(p + "mlp.c_fc", d, ffn, True, True, layer=i),
            LinearModule(p + "mlp.c_proj", ffn, d, True, True, layer=i),
        ]
    other.append(ParamHolder("transformer.ln_f", "layernorm", d, d))
    tied = cfg.bool("tie_word_embeddings", True)
    linear.append(LinearModule("lm_head", d, vocab, False, is_output_head=True, shared=tied))
    return dict(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                tie_word_embeddings=tied, linear_modules=linear, other_modules=other)


def _gpt3(cfg: _Cfg, model_type: str) -> dict[str, Any]:
    """GPT-3 (Brown et al. 2020) with llama-style names: separate q, k, v, o and a two-matrix MLP (up, down)."""
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    ffn, vocab = cfg.int("intermediate_size", default=4 * d), cfg.int("vocab_size")
    positions = cfg.int("max_position_embeddings")
    linear = []
    other = [_embedding("model.embed_tokens", vocab, d),
             _embedding("model.embed_positions", positions, d)]
    for i in range(n):
        p = f"model.layers.{i}."
        linear += [LinearModule(p + f"self_attn.{x}_proj", d, d, True, layer=i) for x in "qkvo"]
        linear += [LinearModule(p + "mlp.up_proj", d, ffn, True, layer=i),
                   LinearModule(p + "mlp.down_proj", ffn, d, True, layer=i)]
        other += [ParamHolder(p + "input_layernorm", "layernorm", d, d),
                  ParamHolder(p + "post_attention_layernorm", "layernorm", d, d)]
    other.append(ParamHolder("model.norm", "layernorm", d, d))
    linear.append(LinearModule("lm_head", d, vocab, False, is_output_head=True, shared=True))
    return dict(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                tie_word_embeddings=True, linear_modules=linear, other_modules=other)


def _opt(cfg: _Cfg, model_type: str) -> dict[str, Any]:
    """OPT: learned positions with an offset of 2, biased projections, optional project_in/out."""
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    _divide(cfg, d, heads, "hidden_size / num_attention_heads")
    ffn, vocab, positions = cfg.int("ffn_dim"), cfg.int("vocab_size"), cfg.int("max_position_embeddings")
    proj = cfg.int("word_embed_proj_dim", default=d)
    bias, affine = cfg.bool("enable_bias", True), cfg.bool("layer_norm_elementwise_affine", True)
    norm_bias = d if affine and bias else 0
    norm = ("layernorm", d if affine else 0, norm_bias)
    linear = []
    other = [_embedding("model.decoder.embed_tokens", vocab, proj),
             _embedding("model.decoder.embed_positions", positions + 2, d)]
    if cfg.bool("do_layer_norm_before", True) and not cfg.bool("_remove_final_layer_norm", False):
        other.append(ParamHolder("model.decoder.final_layer_norm", *norm))
    if proj != d:
        linear += [LinearModule("model.decoder.project_out", d, proj, False),
                   LinearModule("model.decoder.project_in", proj, d, False)]
    for i in range(n):
        p = f"model.decoder.layers.{i}."
        linear += [LinearModule(p + f"self_attn.{x}_proj", d, d, bias, layer=i) for x in ("k", "v", "q", "out")]
        linear += [LinearModule(p + "fc1", d, ffn, bias, layer=i), LinearModule(p + "fc2", ffn, d, bias, layer=i)]
        other += [ParamHolder(p + "self_attn_layer_norm", *norm), ParamHolder(p + "final_layer_norm", *norm)]
    tied = cfg.bool("tie_word_embeddings", True)
    linear.append(LinearModule("lm_head", proj, vocab, False, is_output_head=True, shared=tied))
    return dict(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                tie_word_embeddings=tied, linear_modules=linear, other_modules=other)


def _bert(cfg: _Cfg, model_type: str) -> dict[str, Any]:
    """BERT as BertForMaskedLM: no pooler; the MLM head's decoder is tied to the word embeddings."""
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    _divide(cfg, d, heads, "hidden_size / num_attention_heads")
    ffn, vocab, positions = cfg.int("intermediate_size"), cfg.int("vocab_size"), cfg.int("max_position_embeddings")
    types = cfg.int("type_vocab_size", default=2)
    e = "bert.embeddings."
    other = [_embedding(e + "word_embeddings", vocab, d),
             _embedding(e + "position_embeddings", positions, d),
             _embedding(e + "token_type_embeddings", types, d),
             ParamHolder(e + "LayerNorm", "layernorm", d, d)]
    linear = []
    for i in range(n):
        p = f"bert.encoder.layer.{i}."
        linear += [LinearModule(p + f"attention.self.{x}", d, d, True, layer=i) for x in ("query", "key", "value")]
        linear += [LinearModule(p + "attention.output.dense", d, d, True, layer=i),
                   LinearModule(p + "intermediate.dense", d, ffn, True, layer=i),
                   LinearModule(p + "output.dense", ffn, d, True, layer=i)]
        other += [ParamHolder(p + "attention.output.LayerNorm", "layernorm", d, d),
                  ParamHolder(p + "output.LayerNorm", "layernorm", d, d)]
    linear.append(LinearModule("cls.predictions.transform.dense", d, d, True))
    other += [ParamHolder("cls.predictions.transform.LayerNorm", "layernorm", d, d),
              ]
    other.append(ParamHolder("cls.predictions", "bias", 0, vocab))
    # tied (the default): the decoder's weight is the word embeddings' and its bias is cls.predictions.bias;
    # untied (transformers 5): both are separate tensors
    tied = cfg.bool("tie_word_embeddings", True)
    linear.append(LinearModule("cls.predictions.decoder", d, vocab, True, is_output_head=True, shared=tied))
    return dict(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                tie_word_embeddings=tied, linear_modules=linear, other_modules=other)


BUILDERS: dict[str, Callable[[_Cfg, str], dict[str, Any]]] = {
    "llama": _llama_family,
    "mistral": _llama_family,
    "qwen2": _llama_family,
    "gpt2": _gpt2,
    "opt": _opt,
    "bert": _bert,
    "gpt3": _gpt3,
}
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "gpt2", "opt", "bert")


def _total(linear: list[LinearModule], other: list[ParamHolder]) -> int:
    counted = sum(m.weight_params + (m.out_features if m.bias else 0) for m in linear if not m.shared)
    return counted + sum(h.weight + h.bias for h in other)


def architecture_from_config(
    path_or_dict: str | os.PathLike[str] | Mapping[str, Any],
    *,
    hf_id: str = "",
    short_name: str = "",
    display_name: str = "",
) -> Architecture:
    """Build an Architecture from a Hugging Face config.json (a path or the parsed dict)."""
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
    model_type = data.get("model_type")
    if model_type is None:
        raise ConfigError("missing field 'model_type'", where=source)
    if model_type not in BUILDERS:
        raise ConfigError(
            f"unsupported model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}", where=source
        )
    fields = BUILDERS[model_type](_Cfg(data, source), model_type)
    if not hf_id:
        hf_id = str(data.get("_name_or_path") or data.get("name_or_path") or source)
    if not short_name and hf_id == source and source != "config":
        path = Path(source)  # .../Llama-3.2-1B/config.json -> Llama-3.2-1B
        short_name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
    total = _total(fields["linear_modules"], fields["other_modules"])
    return Architecture(
        hf_id=hf_id,
        short_name=short_name or hf_id.rsplit("/", 1)[-1],
        model_type=model_type,
        total_params=total,
        display_name=display_name or short_name or hf_id.rsplit("/", 1)[-1],
        source=source,
        **{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()},
    )


# ----------------------------------------------------------------------------------------------------------------
# Presets: hyper-parameters copied from each model's config.json on the Hugging Face Hub (GPT-3: the paper, Table 2.1)

_LLAMA2 = {"model_type": "llama", "vocab_size": 32000, "max_position_embeddings": 4096}
PRESET_CONFIGS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # hf_id: (short name, display name, config)
    "openai-community/gpt2": ("gpt2", "GPT-2 (124M)", {
        "model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257, "n_positions": 1024}),
    "google-bert/bert-base-uncased": ("bert-base-uncased", "BERT base uncased (BertForMaskedLM)", {
        "model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2}),
    "facebook/opt-125m": ("opt-125m", "OPT-125M", {
        "model_type": "opt", "hidden_size": 768, "ffn_dim": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
        "vocab_size": 50272, "max_position_embeddings": 2048, "word_embed_proj_dim": 768}),
    "Qwen/Qwen2.5-0.5B": ("qwen2.5-0.5b", "Qwen2.5-0.5B", {
        "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
        "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
        "max_position_embeddings": 32768, "tie_word_embeddings": True}),
    "meta-llama/Llama-2-7b-hf": ("llama-2-7b", "Llama 2 7B", {
        **_LLAMA2, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32}),
    "meta-llama/Llama-2-13b-hf": ("llama-2-13b", "Llama 2 13B", {
        **_LLAMA2, "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40,
        "num_attention_heads": 40, "num_key_value_heads": 40}),
    "meta-llama/Llama-2-70b-hf": ("llama-2-70b", "Llama 2 70B", {
        **_LLAMA2, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
        "num_attention_heads": 64, "num_key_value_heads": 8}),
    "meta-llama/Meta-Llama-3-8B": ("llama-3-8b", "Llama 3 8B", {
        "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192}),
    "mistralai/Mistral-7B-v0.1": ("mistral-7b", "Mistral 7B v0.1", {
        "model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
        "max_position_embeddings": 32768}),
    "gpt-3-175b": ("gpt3", "GPT-3 175B (LoRA paper; not on the Hub)", {
        "model_type": "gpt3", "hidden_size": 12288, "num_hidden_layers": 96, "num_attention_heads": 96,
        "intermediate_size": 4 * 12288, "vocab_size": 50257, "max_position_embeddings": 2048}),
}

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
    "SUPPORTED_MODEL_TYPES",
    "architecture_from_config",
    "get_architecture",
]
