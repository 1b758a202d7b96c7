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

from loralens.core import builders, builders_encoders, builders_gpt
from loralens.core.heads import BASE, CAUSAL_LM, IMAGE_CLS, MASKED_LM, QA, SEQ2SEQ_LM, SEQ_CLS, TOKEN_CLS
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
    #: the heads the builder makes (core/heads.py), the first when config.json names no ``architectures``
    tasks: tuple[str, ...] = ()
    #: the bare model's class (``LlamaModel``): ``architectures: ["LlamaModel"]`` is the head-less model
    base_class: str = ""


_DECODER = (CAUSAL_LM, SEQ_CLS, TOKEN_CLS, QA, BASE)
_ENCODER = (MASKED_LM, SEQ_CLS, TOKEN_CLS, QA, BASE)
_LLAMA = {"gated_mlp": True, "rope": True, "kv_heads_in_config": True, "tasks": _DECODER}
_NO_QA = {**_LLAMA, "tasks": (CAUSAL_LM, SEQ_CLS, TOKEN_CLS, BASE)}
_QV = ("q_proj", "v_proj")
_IA3_QV = (("q_proj", "v_proj", "down_proj"), ("down_proj",))
_IA3_KV = (("k_proj", "v_proj", "down_proj"), ("down_proj",))
_FUSED = ("query_key_value",)


def _f(model_type: str, build: Builder, lora: tuple[str, ...], ia3: tuple[tuple[str, ...], tuple[str, ...]],
       base_class: str, **facts: object) -> Family:
    return Family(model_type, build, lora, ia3[0], ia3[1], base_class=base_class, **facts)  # type: ignore[arg-type]


FAMILIES: dict[str, Family] = {
    family.model_type: family
    for family in (
        _f("llama", builders.llama_like, _QV, _IA3_KV, "LlamaModel", **_LLAMA),
        _f("mistral", builders.llama_like, _QV, _IA3_KV, "MistralModel", **_LLAMA),
        # MoE: experts are fused 3-D parameters (target_parameters), the router a bare weight; PEFT's IA3 default
        # for mixtral names w2, which transformers 5 no longer has
        _f("mixtral", builders.llama_like, _QV, (("k_proj", "v_proj", "w2"), ("w2",)), "MixtralModel", **_LLAMA),
        _f("qwen2", builders.llama_like, _QV, _IA3_QV, "Qwen2Model", **_LLAMA),
        _f("qwen3", builders.llama_like, _QV, _IA3_QV, "Qwen3Model", **_LLAMA),
        _f("qwen3_moe", builders.llama_like, (), ((), ()), "Qwen3MoeModel", **_LLAMA),  # PEFT has no default
        _f("gemma", builders.llama_like, _QV, _IA3_QV, "GemmaModel", **_NO_QA),
        _f("gemma2", builders.llama_like, _QV, _IA3_QV, "Gemma2Model", **_NO_QA),
        _f("gemma3_text", builders.llama_like, _QV, _IA3_QV, "Gemma3TextModel",
           **{**_LLAMA, "tasks": (CAUSAL_LM, BASE)}),  # its classifier is the multimodal Gemma3's
        _f("phi3", builders.phi3, (), ((), ()), "Phi3Model", **_NO_QA),  # PEFT has no default targets
        # GPT-2's tanh GELU (HF NewGELUActivation) keeps x, x^3's input, tanh, 0.5x, 1 + tanh and fc2's input: 5
        _f("gpt2", builders_gpt.gpt2, ("c_attn",), (("c_attn", "mlp.c_proj"), ("mlp.c_proj",)), "GPT2Model",
           dropout=(True, True), mlp_tensors=5, tasks=_DECODER),
        # OPT's ReLU keeps only its output, which is fc2's input; no attention-probability dropout by default
        _f("opt", builders_gpt.opt, _QV, (("q_proj", "k_proj", "fc2"), ("fc2",)), "OPTModel",
           dropout=(True, False), mlp_tensors=1, tasks=(CAUSAL_LM, SEQ_CLS, QA, BASE)),
        _f("gpt_neox", builders_gpt.gpt_neox, _FUSED, (("query_key_value", "dense_4h_to_h"), ("dense_4h_to_h",)),
           "GPTNeoXModel", rope=True, mlp_tensors=2, tasks=_DECODER),
        _f("falcon", builders_gpt.falcon, _FUSED, (("query_key_value", "dense_4h_to_h"), ("dense_4h_to_h",)),
           "FalconModel", rope=True, mlp_tensors=2, tasks=_DECODER),
        _f("bloom", builders_gpt.bloom, _FUSED, (("query_key_value", "mlp.dense_4h_to_h"), ("mlp.dense_4h_to_h",)),
           "BloomModel", mlp_tensors=2, tasks=_DECODER),
        _f("bert", builders_encoders.bert, ("query", "value"), (("key", "value", "output.dense"), ("output.dense",)),
           "BertModel", dropout=(True, True), mlp_tensors=2, head_transform_tensors=3, tasks=_ENCODER),
        _f("roberta", builders_encoders.roberta, ("query", "value"),
           (("key", "value", "output.dense"), ("output.dense",)), "RobertaModel", dropout=(True, True),
           mlp_tensors=2, head_transform_tensors=3, tasks=_ENCODER),
        # T5: ReLU (v1.0) or gated GELU (v1.1) feed-forward; no dropout masks counted (dropout_rate 0.1 in t5-base)
        _f("t5", builders_encoders.t5, ("q", "v"), (("k", "v", "wo"), ("wo",)), "T5Model", mlp_tensors=2,
           dropout=(True, True), tasks=(SEQ2SEQ_LM, BASE)),
        _f("whisper", builders_encoders.whisper, (), ((), ()), "WhisperModel", mlp_tensors=2, dropout=(False, False),
           tasks=(SEQ2SEQ_LM, BASE)),  # PEFT has no default targets for whisper
        _f("vit", builders_encoders.vit, (), ((), ()), "ViTModel", mlp_tensors=2, tasks=(BASE, IMAGE_CLS)),
        # not in transformers: the LoRA paper's GPT-3 with llama's names; LoRA's Wq, Wv; IA3 borrows llama's names
        _f("gpt3", builders_gpt.gpt3, _QV, _IA3_KV, "", dropout=(True, True), mlp_tensors=2, public=False,
           tasks=(CAUSAL_LM,)),
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
