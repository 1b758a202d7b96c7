"""One record per model family: everything loralens knows about a ``model_type``, in one table.

A record holds the builder (config.json -> modules), PEFT's per-type constants (default LoRA targets, IA3 targets
and feed-forward modules, whether prefix tuning sizes by the KV heads) and the facts the memory model needs (gated
MLP, rotary embeddings, dropout, how many MLP-wide tensors autograd keeps, extra head activations).

Adding a family: one record here, one builder in ``core/builders.py``, one preset config in ``data/models/``, then
regenerate the PEFT fixtures (``scripts/generate_peft_count_fixtures.py``). docs/CONTRIBUTING.md has the recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loralens.core import builders
from loralens.core.model_shape import ConfigReader, ModelShape
from loralens.errors import ConfigError

Builder = Callable[[ConfigReader], ModelShape]


@dataclass(frozen=True)
class Family:
    """What one ``model_type`` is and how PEFT and the memory model treat it."""

    model_type: str
    build: Builder
    #: PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING entry (target_modules=None uses it)
    lora_targets: tuple[str, ...]
    #: PEFT's IA3 default target_modules and feedforward_modules
    ia3_targets: tuple[str, ...]
    ia3_feedforward: tuple[str, ...]
    #: the config has num_key_value_heads, which PEFT's prefix tuning then sizes its key/value width by
    kv_heads_in_config: bool = False
    #: memory model: SwiGLU-style gate (4 MLP-wide tensors kept), rotary embeddings, (hidden, attention) dropout
    gated_mlp: bool = False
    rope: bool = False
    dropout: tuple[bool, bool] = (False, False)
    #: MLP-wide tensors autograd keeps per layer when not the gated (4) or plain-GELU (2) case
    mlp_tensors: int | None = None
    #: activations of the head's transform kept for backward, in units of e*s*b*h (BERT's MLM head: 3)
    head_transform_tensors: int = 0
    #: shown in ``--config`` help and errors; False for internal types (the GPT-3 preset)
    public: bool = True


_LLAMA_MEMORY = {"gated_mlp": True, "rope": True, "kv_heads_in_config": True}

FAMILIES: dict[str, Family] = {
    family.model_type: family
    for family in (
        Family("llama", builders.llama_like, ("q_proj", "v_proj"), ("k_proj", "v_proj", "down_proj"),
               ("down_proj",), **_LLAMA_MEMORY),
        Family("mistral", builders.llama_like, ("q_proj", "v_proj"), ("k_proj", "v_proj", "down_proj"),
               ("down_proj",), **_LLAMA_MEMORY),
        Family("qwen2", builders.llama_like, ("q_proj", "v_proj"), ("q_proj", "v_proj", "down_proj"),
               ("down_proj",), **_LLAMA_MEMORY),
        # GPT-2's tanh GELU (HF NewGELUActivation) keeps x, x^3's input, tanh, 0.5x, 1 + tanh and fc2's input: 5
        Family("gpt2", builders.gpt2, ("c_attn",), ("c_attn", "mlp.c_proj"), ("mlp.c_proj",),
               dropout=(True, True), mlp_tensors=5),
        # OPT's ReLU keeps only its output, which is fc2's input; no attention-probability dropout by default
        Family("opt", builders.opt, ("q_proj", "v_proj"), ("q_proj", "k_proj", "fc2"), ("fc2",),
               dropout=(True, False), mlp_tensors=1),
        Family("bert", builders.bert, ("query", "value"), ("key", "value", "output.dense"), ("output.dense",),
               dropout=(True, True), mlp_tensors=2, head_transform_tensors=3),
        # not in transformers: the LoRA paper's GPT-3 with llama's names; LoRA's Wq, Wv; IA3 borrows llama's names
        Family("gpt3", builders.gpt3, ("q_proj", "v_proj"), ("k_proj", "v_proj", "down_proj"), ("down_proj",),
               dropout=(True, True), mlp_tensors=2, public=False),
    )
}

SUPPORTED_MODEL_TYPES = tuple(f.model_type for f in FAMILIES.values() if f.public)


def get_family(model_type: object, where: str) -> Family:
    """The record for ``model_type``; ConfigError naming ``where`` (the config file) and the supported types."""
    if model_type is None:
        raise ConfigError("missing field 'model_type'", where=where)
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise ConfigError(f"unsupported model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}",
                          where=where)
    return family


__all__ = ["FAMILIES", "SUPPORTED_MODEL_TYPES", "Family", "get_family"]
