"""Builders of the GPT-style decoders: GPT-2, the LoRA paper's GPT-3, OPT, GPT-NeoX, Falcon and BLOOM.

Same conventions as ``core/builders.py``: modules in model order under transformers' names, then the head.
"""

from __future__ import annotations

from loralens.core.builders import decoder_head, root
from loralens.core.model_shape import ConfigReader, ModelShape, ShapeBuilder


def gpt2(cfg: ConfigReader) -> ModelShape:
    """GPT-2: Conv1D layers (weights stored in x out, so fan_in_fan_out), fused c_attn, learned positions;
    ``add_cross_attention`` adds a cross-attention (c_attn to 2 x hidden, q_attn, c_proj) and its LayerNorm."""
    d, n, heads = cfg.int("n_embd", "hidden_size"), cfg.int("n_layer", "num_hidden_layers"), cfg.int("n_head")
    cfg.divide(d, heads, "n_embd / n_head")
    ffn, vocab = cfg.int("n_inner", default=4 * d), cfg.int("vocab_size")
    positions = cfg.int("n_positions", "max_position_embeddings")
    cross = cfg.bool("add_cross_attention", False)
    b = ShapeBuilder()
    with b.block(root(cfg, "transformer.")):
        b.embedding("wte", vocab, d)
        b.embedding("wpe", positions, d)
        for i in range(n):
            with b.block(f"h.{i}.", i):
                b.norm("ln_1", d)
                b.norm("ln_2", d)
                b.dense("attn.c_attn", d, 3 * d, True, fan_in_fan_out=True)
                b.dense("attn.c_proj", d, d, True, fan_in_fan_out=True)
                if cross:
                    b.dense("crossattention.c_attn", d, 2 * d, True, fan_in_fan_out=True)
                    b.dense("crossattention.q_attn", d, d, True, fan_in_fan_out=True)
                    b.dense("crossattention.c_proj", d, d, True, fan_in_fan_out=True)
                    b.norm("ln_cross_attn", d)
                b.dense("mlp.c_fc", d, ffn, True, fan_in_fan_out=True)
                b.dense("mlp.c_proj", ffn, d, True, fan_in_fan_out=True)
        b.norm("ln_f", d)
    tied = cfg.bool("tie_word_embeddings", True)
    labels = decoder_head(b, cfg, d, vocab, tied, token_head="classifier")
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                   tie_word_embeddings=tied, task=cfg.task, num_labels=labels)


def gpt3(cfg: ConfigReader) -> ModelShape:
    """GPT-3 (Brown et al. 2020) with llama-style names: separate q, k, v, o and a two-matrix MLP (up, down)."""
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    ffn, vocab = cfg.int("intermediate_size", default=4 * d), cfg.int("vocab_size")
    positions = cfg.int("max_position_embeddings")
    b = ShapeBuilder()
    b.embedding("model.embed_tokens", vocab, d)
    b.embedding("model.embed_positions", positions, d)
    for i in range(n):
        with b.block(f"model.layers.{i}.", i):
            for x in "qkvo":
                b.dense(f"self_attn.{x}_proj", d, d, True)
            b.dense("mlp.up_proj", d, ffn, True)
            b.dense("mlp.down_proj", ffn, d, True)
            b.norm("input_layernorm", d)
            b.norm("post_attention_layernorm", d)
    b.norm("model.norm", d)
    b.dense("lm_head", d, vocab, False, output_head=True, shared=True)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                   tie_word_embeddings=True, task=cfg.task)


def opt(cfg: ConfigReader) -> ModelShape:
    """OPT: learned positions with an offset of 2, biased projections (``enable_bias``; the LayerNorms keep
    their biases either way), optional project_in/out."""
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    cfg.divide(d, heads, "hidden_size / num_attention_heads")
    ffn, vocab, positions = cfg.int("ffn_dim"), cfg.int("vocab_size"), cfg.int("max_position_embeddings")
    proj = cfg.int("word_embed_proj_dim", default=d)
    bias, affine = cfg.bool("enable_bias", True), cfg.bool("layer_norm_elementwise_affine", True)
    b = ShapeBuilder()
    with b.block(root(cfg, "model.") + "decoder."):
        b.embedding("embed_tokens", vocab, proj)
        b.embedding("embed_positions", positions + 2, d)
        if cfg.bool("do_layer_norm_before", True) and not cfg.bool("_remove_final_layer_norm", False):
            b.norm("final_layer_norm", d, affine=affine)
        if proj != d:
            b.dense("project_out", d, proj, False)
            b.dense("project_in", proj, d, False)
        for i in range(n):
            with b.block(f"layers.{i}.", i):
                for x in ("k", "v", "q", "out"):
                    b.dense(f"self_attn.{x}_proj", d, d, bias)
                b.dense("fc1", d, ffn, bias)
                b.dense("fc2", ffn, d, bias)
                b.norm("self_attn_layer_norm", d, affine=affine)
                b.norm("final_layer_norm", d, affine=affine)
    tied = cfg.bool("tie_word_embeddings", True)
    labels = decoder_head(b, cfg, proj, vocab, tied)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                   tie_word_embeddings=tied, task=cfg.task, num_labels=labels)


def gpt_neox(cfg: ConfigReader) -> ModelShape:
    """GPT-NeoX (Pythia): fused query_key_value, LayerNorms with biases, biased MLP; ``attention_bias``."""
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    cfg.divide(d, heads, "hidden_size / num_attention_heads")
    ffn, vocab = cfg.int("intermediate_size"), cfg.int("vocab_size")
    attn_bias = cfg.bool("attention_bias", True)
    b = ShapeBuilder()
    with b.block(root(cfg, "gpt_neox.")):
        b.embedding("embed_in", vocab, d)
        for i in range(n):
            with b.block(f"layers.{i}.", i):
                b.norm("input_layernorm", d)
                b.norm("post_attention_layernorm", d)
                b.dense("attention.query_key_value", d, 3 * d, attn_bias)
                b.dense("attention.dense", d, d, attn_bias)
                b.dense("mlp.dense_h_to_4h", d, ffn, True)
                b.dense("mlp.dense_4h_to_h", ffn, d, True)
        b.norm("final_layer_norm", d)
    tied = cfg.bool("tie_word_embeddings", False)
    labels = decoder_head(b, cfg, d, vocab, tied, token_head="classifier")
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, tie_word_embeddings=tied,
                   max_position_embeddings=cfg.int("max_position_embeddings", default=0, low=0), task=cfg.task,
                   num_labels=labels)


def falcon(cfg: ConfigReader) -> ModelShape:
    """Falcon: multi-query (7B), grouped (new_decoder_architecture: 40B/180B) or full attention; parallel or
    sequential blocks with one or two LayerNorms; optional biases."""
    d = cfg.int("hidden_size", "n_embed")
    n, heads = cfg.int("num_hidden_layers", "n_layer"), cfg.int("num_attention_heads", "n_head")
    head_dim = cfg.divide(d, heads, "hidden_size / num_attention_heads")
    kv = cfg.int("num_kv_heads", default=heads)
    new_arch, multi_query = cfg.bool("new_decoder_architecture", False), cfg.bool("multi_query", True)
    parallel, bias = cfg.bool("parallel_attn", True), cfg.bool("bias", False)
    ffn, vocab = cfg.int("ffn_hidden_size", default=4 * d), cfg.int("vocab_size")
    num_ln = cfg.int("num_ln_in_parallel_attn", default=2 if new_arch else 1)
    if new_arch:
        qkv = (2 * kv + heads) * head_dim
    elif multi_query:
        qkv, kv = d + 2 * head_dim, 1
    else:
        qkv = 3 * d
    b = ShapeBuilder()
    with b.block(root(cfg, "transformer.")):
        b.embedding("word_embeddings", vocab, d)
        for i in range(n):
            with b.block(f"h.{i}.", i):
                b.dense("self_attention.query_key_value", d, qkv, bias)
                b.dense("self_attention.dense", d, d, bias)
                b.dense("mlp.dense_h_to_4h", d, ffn, bias)
                b.dense("mlp.dense_4h_to_h", ffn, d, bias)
                if not parallel:
                    b.norm("post_attention_layernorm", d)
                    b.norm("input_layernorm", d)
                elif num_ln == 2:
                    b.norm("ln_attn", d)
                    b.norm("ln_mlp", d)
                else:
                    b.norm("input_layernorm", d)
        b.norm("ln_f", d)
    tied = cfg.bool("tie_word_embeddings", True)
    labels = decoder_head(b, cfg, d, vocab, tied, token_head="classifier")
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=tied,
                   max_position_embeddings=cfg.int("max_position_embeddings", default=0, low=0), task=cfg.task,
                   num_labels=labels)


def bloom(cfg: ConfigReader) -> ModelShape:
    """BLOOM: ALiBi (no position table), a LayerNorm after the embeddings, biased fused query_key_value."""
    d = cfg.int("hidden_size", "n_embed")
    n, heads = cfg.int("n_layer", "num_hidden_layers"), cfg.int("n_head", "num_attention_heads")
    cfg.divide(d, heads, "hidden_size / n_head")
    vocab = cfg.int("vocab_size")
    b = ShapeBuilder()
    with b.block(root(cfg, "transformer.")):
        b.embedding("word_embeddings", vocab, d)
        b.norm("word_embeddings_layernorm", d)
        for i in range(n):
            with b.block(f"h.{i}.", i):
                b.norm("input_layernorm", d)
                b.dense("self_attention.query_key_value", d, 3 * d, True)
                b.dense("self_attention.dense", d, d, True)
                b.norm("post_attention_layernorm", d)
                b.dense("mlp.dense_h_to_4h", d, 4 * d, True)
                b.dense("mlp.dense_4h_to_h", 4 * d, d, True)
        b.norm("ln_f", d)
    tied = cfg.bool("tie_word_embeddings", True)
    labels = decoder_head(b, cfg, d, vocab, tied, token_head="classifier")
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=4 * d, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, tie_word_embeddings=tied, max_position_embeddings=0,
                   task=cfg.task, num_labels=labels)


__all__ = ["bloom", "falcon", "gpt2", "gpt3", "gpt_neox", "opt"]
