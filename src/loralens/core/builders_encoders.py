"""Builders of the encoders: BERT, RoBERTa and ViT, each with the heads transformers gives them.

Same conventions as ``core/builders.py``. The pooler exists in the bare model and in BERT's sequence classifier;
RoBERTa's sequence classifier has its own two-layer ``classifier`` instead; the other heads have no pooler.
"""

from __future__ import annotations

from loralens.core.builders import root
from loralens.core.heads import BASE, IMAGE_CLS, MASKED_LM, QA, SEQ2SEQ_LM, SEQ_CLS, TOKEN_CLS
from loralens.core.model_shape import ConfigReader, ModelShape, ShapeBuilder
from loralens.errors import ConfigError


def _encoder_layers(b: ShapeBuilder, n: int, d: int, ffn: int) -> None:
    for i in range(n):
        with b.block(f"encoder.layer.{i}.", i):
            for x in ("query", "key", "value"):
                b.dense(f"attention.self.{x}", d, d, True)
            b.dense("attention.output.dense", d, d, True)
            b.dense("intermediate.dense", d, ffn, True)
            b.dense("output.dense", ffn, d, True)
            b.norm("attention.output.LayerNorm", d)
            b.norm("output.LayerNorm", d)


def _classifier_head(b: ShapeBuilder, cfg: ConfigReader, d: int) -> int:
    """token classification and question answering: one linear layer on the hidden states."""
    if cfg.task == TOKEN_CLS:
        labels = cfg.num_labels()
        b.dense("classifier", d, labels, True)
        return labels
    labels = cfg.num_labels()  # BERT's and RoBERTa's qa_outputs have num_labels outputs (2 by default)
    b.dense("qa_outputs", d, labels, True)
    return labels


def _bert_like(cfg: ConfigReader, prefix: str) -> ModelShape:
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    cfg.divide(d, heads, "hidden_size / num_attention_heads")
    ffn, vocab, positions = cfg.int("intermediate_size"), cfg.int("vocab_size"), cfg.int("max_position_embeddings")
    task, roberta = cfg.task, prefix == "roberta."
    tied = cfg.bool("tie_word_embeddings", True)
    b = ShapeBuilder()
    with b.block(root(cfg, prefix)):
        with b.block("embeddings."):
            b.embedding("word_embeddings", vocab, d)
            b.embedding("position_embeddings", positions, d)
            b.embedding("token_type_embeddings", cfg.int("type_vocab_size", default=2), d)
            b.norm("LayerNorm", d)
        _encoder_layers(b, n, d, ffn)
        if task == BASE or (task == SEQ_CLS and not roberta):
            b.dense("pooler.dense", d, d, True)
    labels = 0
    if task == MASKED_LM:
        # tied (the default): the decoder's weight is the word embeddings' and its bias is the head's lone bias;
        # untied: both are separate tensors
        head = "lm_head." if roberta else "cls.predictions."
        b.dense(head + ("dense" if roberta else "transform.dense"), d, d, True)
        b.norm(head + ("layer_norm" if roberta else "transform.LayerNorm"), d)
        b.lone_bias(head[:-1], vocab)
        b.dense(head + "decoder", d, vocab, True, output_head=True, shared=tied)
    elif task == SEQ_CLS:
        labels = cfg.num_labels()
        if roberta:
            b.dense("classifier.dense", d, d, True)
            b.dense("classifier.out_proj", d, labels, True)
        else:
            b.dense("classifier", d, labels, True)
    elif task in (TOKEN_CLS, QA):
        labels = _classifier_head(b, cfg, d)
    elif task != BASE:
        raise ConfigError(f"{cfg.model_type} has no {task} head", where=cfg.source)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=positions,
                   tie_word_embeddings=tied, task=task, num_labels=labels)


def bert(cfg: ConfigReader) -> ModelShape:
    """BERT: BertForMaskedLM (no pooler; the decoder tied to the word embeddings), the classifiers, BertModel."""
    return _bert_like(cfg, "bert.")


def roberta(cfg: ConfigReader) -> ModelShape:
    """RoBERTa: BERT's blocks under ``roberta.``, its own LM head (``lm_head``) and sequence classifier."""
    return _bert_like(cfg, "roberta.")


def _pair(cfg: ConfigReader, key: str, default: int) -> tuple[int, int]:
    value = cfg.data.get(key, default)
    if isinstance(value, list) and len(value) == 2:
        return ConfigReader({"a": value[0], "b": value[1]}, cfg.source).int("a"), ConfigReader(
            {"a": value[1]}, cfg.source).int("a")
    size = cfg.int(key, default=default)
    return size, size


def vit(cfg: ConfigReader) -> ModelShape:
    """ViT: a Conv2d patch embedding (LoRA-able; not part of "all-linear"), a class token and a position table
    (bare parameters), pre-norm blocks with q/k/v/o_proj and mlp.fc1/fc2; a pooler in ViTModel."""
    d, n, heads = cfg.int("hidden_size"), cfg.int("num_hidden_layers"), cfg.int("num_attention_heads")
    cfg.divide(d, heads, "hidden_size / num_attention_heads")
    ffn, channels = cfg.int("intermediate_size"), cfg.int("num_channels", default=3)
    (ih, iw), (ph, pw) = _pair(cfg, "image_size", 224), _pair(cfg, "patch_size", 16)
    patches = (ih // ph) * (iw // pw)
    qkv_bias = cfg.bool("qkv_bias", True)
    task = cfg.task
    b = ShapeBuilder()
    with b.block(root(cfg, "vit.")):
        b.param("embeddings", "cls_token", 1, 1, d)
        b.param("embeddings", "position_embeddings", 1, patches + 1, d)
        b.dense("embeddings.patch_embeddings.projection", channels * ph * pw, d, True, kernel=(channels, ph, pw))
        for i in range(n):
            with b.block(f"layers.{i}.", i):
                for x in "qkv":
                    b.dense(f"attention.{x}_proj", d, d, qkv_bias)
                b.dense("attention.o_proj", d, d, True)
                b.norm("layernorm_before", d)
                b.norm("layernorm_after", d)
                b.dense("mlp.fc1", d, ffn, True)
                b.dense("mlp.fc2", ffn, d, True)
        b.norm("layernorm", d)
        if task == BASE:
            b.dense("pooler.dense", d, cfg.int("pooler_output_size", default=d), True)
    labels = 0
    if task == IMAGE_CLS:
        labels = cfg.num_labels()
        b.dense("classifier", d, labels, True)
    elif task != BASE:
        raise ConfigError(f"{cfg.model_type} has no {task} head", where=cfg.source)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=0, max_position_embeddings=patches + 1,
                   tie_word_embeddings=False, task=task, num_labels=labels)


def _t5_stack(b: ShapeBuilder, cfg: ConfigReader, name: str, n: int, d: int, inner: int, ffn: int, vocab: int,
              gated: bool, buckets: int, heads: int) -> None:
    with b.block(name + "."):
        b.tied_embedding("embed_tokens", vocab, d)
        for i in range(n):
            with b.block(f"block.{i}.", i):
                sub = 0
                for attention in ("SelfAttention", "EncDecAttention") if name == "decoder" else ("SelfAttention",):
                    with b.block(f"layer.{sub}."):
                        for x in "qkv":
                            b.dense(f"{attention}.{x}", d, inner, False)
                        b.dense(f"{attention}.o", inner, d, False)
                        if i == 0 and attention == "SelfAttention":
                            b.embedding(f"{attention}.relative_attention_bias", buckets, heads)
                        b.norm("layer_norm", d, kind="rmsnorm", bias=False)
                    sub += 1
                with b.block(f"layer.{sub}."):
                    if gated:
                        b.dense("DenseReluDense.wi_0", d, ffn, False)
                        b.dense("DenseReluDense.wi_1", d, ffn, False)
                    else:
                        b.dense("DenseReluDense.wi", d, ffn, False)
                    b.dense("DenseReluDense.wo", ffn, d, False)
                    b.norm("layer_norm", d, kind="rmsnorm", bias=False)
        b.norm("final_layer_norm", d, kind="rmsnorm", bias=False)


def t5(cfg: ConfigReader) -> ModelShape:
    """T5 (encoder-decoder): ``shared`` embeddings (the encoder's and decoder's embed_tokens are the same weight),
    relative position biases in each stack's first block, ReLU or gated (v1.1: wi_0, wi_1) feed-forward,
    lm_head tied to ``shared`` unless tie_word_embeddings is false; T5Model has no lm_head."""
    d, heads, d_kv = cfg.int("d_model"), cfg.int("num_heads"), cfg.int("d_kv")
    n = cfg.int("num_layers")
    n_dec = cfg.int("num_decoder_layers", default=n)
    ffn, vocab = cfg.int("d_ff"), cfg.int("vocab_size")
    buckets = cfg.int("relative_attention_num_buckets", default=32)
    proj = cfg.data.get("feed_forward_proj", "relu")
    if not isinstance(proj, str):
        raise ConfigError(f"field 'feed_forward_proj' must be a string, got {proj!r}", where=cfg.source)
    gated = proj.startswith("gated-")
    tied = cfg.bool("tie_word_embeddings", True)
    b = ShapeBuilder()
    b.embedding("shared", vocab, d)
    _t5_stack(b, cfg, "encoder", n, d, heads * d_kv, ffn, vocab, gated, buckets, heads)
    _t5_stack(b, cfg, "decoder", n_dec, d, heads * d_kv, ffn, vocab, gated, buckets, heads)
    _seq2seq_head(b, cfg, "lm_head", d, vocab, tied)
    return b.shape(hidden_size=d, num_layers=n, intermediate_size=ffn, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=0,
                   tie_word_embeddings=tied, task=cfg.task)


def _seq2seq_head(b: ShapeBuilder, cfg: ConfigReader, name: str, d: int, vocab: int, tied: bool) -> None:
    """The encoder-decoders' two heads: the LM head (…ForConditionalGeneration) or none (the bare model)."""
    if cfg.task == SEQ2SEQ_LM:
        b.dense(name, d, vocab, False, output_head=True, shared=tied)
    elif cfg.task != BASE:
        raise ConfigError(f"{cfg.model_type} has no {cfg.task} head", where=cfg.source)


def _whisper_layer(b: ShapeBuilder, d: int, ffn: int, cross: bool) -> None:
    for attention in ("self_attn", "encoder_attn") if cross else ("self_attn",):
        b.dense(f"{attention}.k_proj", d, d, False)
        for x in ("v_proj", "q_proj", "out_proj"):
            b.dense(f"{attention}.{x}", d, d, True)
        b.norm(f"{attention}_layer_norm", d)
    b.dense("fc1", d, ffn, True)
    b.dense("fc2", ffn, d, True)
    b.norm("final_layer_norm", d)


def whisper(cfg: ConfigReader) -> ModelShape:
    """Whisper: an audio encoder (two Conv1d over the mel bins: LoRA-able, not "all-linear"; a frozen sinusoidal
    position table) and a text decoder with cross-attention; k_proj without bias; proj_out tied to embed_tokens."""
    d, vocab = cfg.int("d_model"), cfg.int("vocab_size")
    n_enc, n_dec = cfg.int("encoder_layers"), cfg.int("decoder_layers")
    heads = cfg.int("encoder_attention_heads")
    cfg.divide(d, heads, "d_model / encoder_attention_heads")
    cfg.divide(d, cfg.int("decoder_attention_heads"), "d_model / decoder_attention_heads")
    ffn_enc, ffn_dec = cfg.int("encoder_ffn_dim"), cfg.int("decoder_ffn_dim")
    mels = cfg.int("num_mel_bins", default=80)
    tied = cfg.bool("tie_word_embeddings", True)
    b = ShapeBuilder()
    with b.block(root(cfg, "model.")):
        with b.block("encoder."):
            b.dense("conv1", mels * 3, d, True, kernel=(mels, 3))
            b.dense("conv2", d * 3, d, True, kernel=(d, 3))
            b.embedding("embed_positions", cfg.int("max_source_positions", default=1500), d)
            for i in range(n_enc):
                with b.block(f"layers.{i}.", i):
                    _whisper_layer(b, d, ffn_enc, False)
            b.norm("layer_norm", d)
        with b.block("decoder."):
            b.embedding("embed_tokens", vocab, d)
            b.embedding("embed_positions", cfg.int("max_target_positions", default=448), d)
            for i in range(n_dec):
                with b.block(f"layers.{i}.", i):
                    _whisper_layer(b, d, ffn_dec, True)
            b.norm("layer_norm", d)
    _seq2seq_head(b, cfg, "proj_out", d, vocab, tied)
    return b.shape(hidden_size=d, num_layers=n_enc, intermediate_size=ffn_enc, num_attention_heads=heads,
                   num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=0,
                   tie_word_embeddings=tied, task=cfg.task)


__all__ = ["bert", "roberta", "t5", "vit", "whisper"]
