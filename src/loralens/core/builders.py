"""One builder per model family: config.json -> every module, under the names transformers gives them.

Each builder lists modules in model order, as ``model.named_modules()`` does, with ``ShapeBuilder.block`` for the
repeated transformer blocks. To add a family, write its builder here (or in a module beside it) and its record in
``core/families.py``; docs/CONTRIBUTING.md has the whole recipe.
"""

from __future__ import annotations

from loralens.core.model_shape import ConfigReader, ModelShape, ShapeBuilder


def llama_like(cfg: ConfigReader) -> ModelShape:
    """llama, mistral and qwen2: RMSNorm, rotary positions, gated MLP, grouped-query attention."""
    d = cfg.int("hidden_size")
    heads = cfg.int("num_attention_heads")
    kv = cfg.int("num_key_value_heads", default=heads)
    cfg.divide(heads, kv, "num_attention_heads / num_key_value_heads")
    head_dim = cfg.int("head_dim", default=0, low=0) or cfg.divide(d, heads, "hidden_size / num_attention_heads")
    n, ffn, vocab = cfg.int("num_hidden_layers"), cfg.int("intermediate_size"), cfg.int("vocab_size")
    model_type = cfg.model_type
    if model_type == "qwen2":
        qkv_bias, o_bias, mlp_bias = True, False, False
    elif model_type == "llama":
        qkv_bias = o_bias = cfg.bool("attention_bias", False)
        mlp_bias = cfg.bool("mlp_bias", False)
    else:
        qkv_bias = o_bias = mlp_bias = False
    tied = cfg.bool("tie_word_embeddings", False)
    b = ShapeBuilder()
    b.embedding("model.embed_tokens", vocab, d)
    for i in range(n):
        with b.block(f"model.layers.{i}.", i):
            b.dense("self_attn.q_proj", d, heads * head_dim, qkv_bias)
            b.dense("self_attn.k_proj", d, kv * head_dim, qkv_bias)
            b.dense("self_attn.v_proj", d, kv * head_dim, qkv_bias)
            b.dense("self_attn.o_proj", heads * head_dim, d, o_bias)
            b.dense("mlp.gate_proj", d, ffn, mlp_bias)
            b.dense("mlp.up_proj", d, ffn, mlp_bias)
            b.dense("mlp.down_proj", ffn, d, mlp_bias)
            b.norm("input_layernorm", d, kind="rmsnorm", bias=False)
            b.norm("post_attention_layernorm", d, kind="rmsnorm", bias=False)
    b.norm("model.norm", d, kind="rmsnorm", bias=False)
    b.dense("lm_head", d, vocab, False, output_head=True, shared=tied)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=tied,
                   max_position_embeddings=cfg.int("max_position_embeddings", default=0, low=0))


def gpt2(cfg: ConfigReader) -> ModelShape:
    """GPT-2: Conv1D layers (weights stored in x out, so fan_in_fan_out), fused c_attn, learned positions."""
    d, n, heads = cfg.int("n_embd", "hidden_size"), cfg.int("n_layer", "num_hidden_layers"), cfg.int("n_head")
    cfg.divide(d, heads, "n_embd / n_head")
    ffn, vocab = cfg.int("n_inner", default=4 * d), cfg.int("vocab_size")
    positions = cfg.int("n_positions", "max_position_embeddings")
    b = ShapeBuilder()
    b.embedding("transformer.wte", vocab, d)
    b.embedding("transformer.wpe", positions, d)
    for i in range(n):
        with b.block(f"transformer.h.{i}.", i):
            b.norm("ln_1", d)
            b.norm("ln_2", d)
            b.dense("attn.c_attn", d, 3 * d, True, fan_in_fan_out=True)
            b.dense("attn.c_proj", d, d, True, fan_in_fan_out=True)
            b.dense("mlp.c_fc", d, ffn, True, fan_in_fan_out=True)
            b.dense("mlp.c_proj", ffn, d, True, fan_in_fan_out=True)
    b.norm("transformer.ln_f", d)
    tied = cfg.bool("tie_word_embeddings", True)
    b.dense("lm_head", d, vocab, False, output_head=True, shared=tied)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                   tie_word_embeddings=tied)


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
                   tie_word_embeddings=True)


def opt(cfg: ConfigReader) -> ModelShape:
    """OPT: learned positions with an offset of 2, biased projections, optional project_in/out."""
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    cfg.divide(d, heads, "hidden_size / num_attention_heads")
    ffn, vocab, positions = cfg.int("ffn_dim"), cfg.int("vocab_size"), cfg.int("max_position_embeddings")
    proj = cfg.int("word_embed_proj_dim", default=d)
    bias, affine = cfg.bool("enable_bias", True), cfg.bool("layer_norm_elementwise_affine", True)
    b = ShapeBuilder()
    b.embedding("model.decoder.embed_tokens", vocab, proj)
    b.embedding("model.decoder.embed_positions", positions + 2, d)
    if cfg.bool("do_layer_norm_before", True) and not cfg.bool("_remove_final_layer_norm", False):
        b.norm("model.decoder.final_layer_norm", d, bias=bias, affine=affine)
    if proj != d:
        b.dense("model.decoder.project_out", d, proj, False)
        b.dense("model.decoder.project_in", proj, d, False)
    for i in range(n):
        with b.block(f"model.decoder.layers.{i}.", i):
            for x in ("k", "v", "q", "out"):
                b.dense(f"self_attn.{x}_proj", d, d, bias)
            b.dense("fc1", d, ffn, bias)
            b.dense("fc2", ffn, d, bias)
            b.norm("self_attn_layer_norm", d, bias=bias, affine=affine)
            b.norm("final_layer_norm", d, bias=bias, affine=affine)
    tied = cfg.bool("tie_word_embeddings", True)
    b.dense("lm_head", proj, vocab, False, output_head=True, shared=tied)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                   tie_word_embeddings=tied)


def bert(cfg: ConfigReader) -> ModelShape:
    """BERT as BertForMaskedLM: no pooler; the MLM head's decoder is tied to the word embeddings."""
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    cfg.divide(d, heads, "hidden_size / num_attention_heads")
    ffn, vocab, positions = cfg.int("intermediate_size"), cfg.int("vocab_size"), cfg.int("max_position_embeddings")
    b = ShapeBuilder()
    with b.block("bert.embeddings."):
        b.embedding("word_embeddings", vocab, d)
        b.embedding("position_embeddings", positions, d)
        b.embedding("token_type_embeddings", cfg.int("type_vocab_size", default=2), d)
        b.norm("LayerNorm", d)
    for i in range(n):
        with b.block(f"bert.encoder.layer.{i}.", i):
            for x in ("query", "key", "value"):
                b.dense(f"attention.self.{x}", d, d, True)
            b.dense("attention.output.dense", d, d, True)
            b.dense("intermediate.dense", d, ffn, True)
            b.dense("output.dense", ffn, d, True)
            b.norm("attention.output.LayerNorm", d)
            b.norm("output.LayerNorm", d)
    b.dense("cls.predictions.transform.dense", d, d, True)
    b.norm("cls.predictions.transform.LayerNorm", d)
    b.lone_bias("cls.predictions", vocab)
    # tied (the default): the decoder's weight is the word embeddings' and its bias is cls.predictions.bias;
    # untied (transformers 5): both are separate tensors
    tied = cfg.bool("tie_word_embeddings", True)
    b.dense("cls.predictions.decoder", d, vocab, True, output_head=True, shared=tied)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                   tie_word_embeddings=tied)


__all__ = ["bert", "gpt2", "gpt3", "llama_like", "opt"]
