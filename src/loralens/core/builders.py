"""One builder per model family: config.json -> every module, under the names transformers gives them.

Each builder lists modules in model order, as ``model.named_modules()`` does, with ``ShapeBuilder.block`` for the
repeated transformer blocks, then the head that ``cfg.task`` asks for (core/heads.py). This module holds the
llama-style decoders (llama, mistral, mixtral, qwen2, qwen3, qwen3_moe, gemma, gemma2, gemma3_text) and phi3;
``builders_gpt`` the GPT-style ones, ``builders_encoders`` BERT, RoBERTa and ViT. To add a family, write its
builder in one of them and its record in ``core/families.py``; docs/CONTRIBUTING.md has the whole recipe.
"""

from __future__ import annotations

from loralens.core.heads import BASE, CAUSAL_LM, QA, SEQ_CLS, TOKEN_CLS
from loralens.core.model_shape import ConfigReader, ModelShape, ShapeBuilder
from loralens.errors import ConfigError

#: transformers' default head_dim when config.json has none (else hidden_size / num_attention_heads)
_HEAD_DIM_DEFAULT = {"qwen3": 128, "gemma": 256, "gemma2": 256, "gemma3_text": 256}
_TIED_DEFAULT = {"gemma", "gemma2", "gemma3_text"}
_QK_NORM = {"qwen3", "qwen3_moe", "gemma3_text"}  # RMSNorm of head_dim on queries and keys
_SANDWICH = {"gemma2", "gemma3_text"}  # pre_/post_feedforward_layernorm around the MLP
#: GenericForQuestionAnswering keeps the backbone under "transformer." in these (for backward compatibility)
_QA_AS_TRANSFORMER = {"llama", "qwen2", "qwen3", "qwen3_moe"}
_ATTENTION_BIAS = {"llama", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3_text"}  # config's attention_bias


def root(cfg: ConfigReader, prefix: str) -> str:
    """The backbone's prefix: none for the bare model (``LlamaModel``), else the head model's attribute."""
    return "" if cfg.task == BASE else prefix


def decoder_head(b: ShapeBuilder, cfg: ConfigReader, d: int, vocab: int, tied: bool, *,
                 token_head: str = "score") -> int:
    """The head of a decoder-only model: lm_head, score (sequence classification, no bias), a token classifier
    (``score`` in the llama family, ``classifier`` in GPT-2's), qa_outputs; nothing for the bare model.
    Returns num_labels (0 without a classifier)."""
    task = cfg.task
    if task == CAUSAL_LM:
        b.dense("lm_head", d, vocab, False, output_head=True, shared=tied)
        return 0
    if task == SEQ_CLS:
        labels = cfg.num_labels()
        b.dense("score", d, labels, False)
        return labels
    if task == TOKEN_CLS:
        labels = cfg.num_labels()
        b.dense(token_head, d, labels, True)
        return labels
    if task == QA:
        b.dense("qa_outputs", d, 2, True)
        return 2
    if task == BASE:
        return 0
    raise ConfigError(f"{cfg.model_type} has no {task} head", where=cfg.source)


def _moe_layer(cfg: ConfigReader, i: int) -> bool:
    if cfg.model_type == "mixtral":
        return True
    if cfg.model_type != "qwen3_moe":
        return False
    experts = cfg.int("num_experts", "num_local_experts", default=128, low=0)
    step = cfg.int("decoder_sparse_step", default=1)
    return i not in cfg.int_list("mlp_only_layers") and experts > 0 and (i + 1) % step == 0


def llama_like(cfg: ConfigReader) -> ModelShape:
    """The llama family: RMSNorm, rotary positions, gated MLP (or fused MoE experts), grouped-query attention."""
    model_type = cfg.model_type
    d = cfg.int("hidden_size")
    heads = cfg.int("num_attention_heads")
    kv = cfg.int("num_key_value_heads", default=heads)
    cfg.divide(heads, kv, "num_attention_heads / num_key_value_heads")
    head_dim = cfg.int("head_dim", default=_HEAD_DIM_DEFAULT.get(model_type, 0), low=0) or cfg.divide(
        d, heads, "hidden_size / num_attention_heads")
    n, ffn, vocab = cfg.int("num_hidden_layers"), cfg.int("intermediate_size"), cfg.int("vocab_size")
    if model_type == "qwen2":
        qkv_bias, o_bias = True, False
    elif model_type in _ATTENTION_BIAS:
        qkv_bias = o_bias = cfg.bool("attention_bias", False)
    else:
        qkv_bias = o_bias = False
    mlp_bias = cfg.bool("mlp_bias", False) if model_type == "llama" else False
    tied = cfg.bool("tie_word_embeddings", model_type in _TIED_DEFAULT)
    b = ShapeBuilder()
    prefix = "transformer." if cfg.task == QA and model_type in _QA_AS_TRANSFORMER else "model."
    with b.block(root(cfg, prefix)):
        b.embedding("embed_tokens", vocab, d)
        for i in range(n):
            with b.block(f"layers.{i}.", i):
                b.dense("self_attn.q_proj", d, heads * head_dim, qkv_bias)
                b.dense("self_attn.k_proj", d, kv * head_dim, qkv_bias)
                b.dense("self_attn.v_proj", d, kv * head_dim, qkv_bias)
                b.dense("self_attn.o_proj", heads * head_dim, d, o_bias)
                if model_type in _QK_NORM:
                    b.norm("self_attn.q_norm", head_dim, kind="rmsnorm", bias=False)
                    b.norm("self_attn.k_norm", head_dim, kind="rmsnorm", bias=False)
                if _moe_layer(cfg, i):
                    # transformers 5 writes num_local_experts for both (num_experts is qwen3_moe's alias)
                    experts = cfg.int("num_local_experts", "num_experts", default=8 if model_type == "mixtral"
                                      else 128)
                    width = ffn if model_type == "mixtral" else cfg.int("moe_intermediate_size", default=768)
                    b.param("mlp.gate", "weight", experts, d)
                    b.param("mlp.experts", "gate_up_proj", experts, 2 * width, d)
                    b.param("mlp.experts", "down_proj", experts, d, width)
                else:
                    b.dense("mlp.gate_proj", d, ffn, mlp_bias)
                    b.dense("mlp.up_proj", d, ffn, mlp_bias)
                    b.dense("mlp.down_proj", ffn, d, mlp_bias)
                b.norm("input_layernorm", d, kind="rmsnorm", bias=False)
                b.norm("post_attention_layernorm", d, kind="rmsnorm", bias=False)
                if model_type in _SANDWICH:
                    b.norm("pre_feedforward_layernorm", d, kind="rmsnorm", bias=False)
                    b.norm("post_feedforward_layernorm", d, kind="rmsnorm", bias=False)
        b.norm("norm", d, kind="rmsnorm", bias=False)
    labels = decoder_head(b, cfg, d, vocab, tied)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=tied,
                   max_position_embeddings=cfg.int("max_position_embeddings", default=0, low=0), task=cfg.task,
                   num_labels=labels)


def phi3(cfg: ConfigReader) -> ModelShape:
    """Phi-3 and Phi-4: llama's blocks with fused qkv_proj and gate_up_proj, no biases."""
    d, heads = cfg.int("hidden_size"), cfg.int("num_attention_heads")
    kv = cfg.int("num_key_value_heads", default=heads)
    head_dim = cfg.divide(d, heads, "hidden_size / num_attention_heads")
    n, ffn, vocab = cfg.int("num_hidden_layers"), cfg.int("intermediate_size"), cfg.int("vocab_size")
    tied = cfg.bool("tie_word_embeddings", False)
    b = ShapeBuilder()
    with b.block(root(cfg, "model.")):
        b.embedding("embed_tokens", vocab, d)
        for i in range(n):
            with b.block(f"layers.{i}.", i):
                b.dense("self_attn.o_proj", heads * head_dim, d, False)
                b.dense("self_attn.qkv_proj", d, (heads + 2 * kv) * head_dim, False)
                b.dense("mlp.gate_up_proj", d, 2 * ffn, False)
                b.dense("mlp.down_proj", ffn, d, False)
                b.norm("input_layernorm", d, kind="rmsnorm", bias=False)
                b.norm("post_attention_layernorm", d, kind="rmsnorm", bias=False)
        b.norm("norm", d, kind="rmsnorm", bias=False)
    labels = decoder_head(b, cfg, d, vocab, tied)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=tied,
                   max_position_embeddings=cfg.int("max_position_embeddings", default=0, low=0), task=cfg.task,
                   num_labels=labels)


__all__ = ["decoder_head", "llama_like", "phi3", "root"]
