"""Live oracle for the families added after the first six, their variant flags and the task heads.

Each config is what transformers writes (``AutoConfig.for_model(...).to_dict()``), tiny (2-3 blocks, hidden 64),
so that every family and every flag that changes the module list is built by transformers itself on the meta
device: loralens must give the same total, the same biases and the same linear modules, and PEFT's count on the
whole LoRA grid (tests/oracle/_peft_oracle.lora_grid).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from _peft_oracle import arch_digest_lines, build_meta_model, linear_digest_lines, lora_grid, model_facts, peft_count
from transformers import AutoConfig

from loralens.core.architectures import architecture_from_config
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora
from loralens.errors import InvalidParameterError

pytestmark = pytest.mark.oracle

_D = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4,
      "vocab_size": 100}
_KV = {**_D, "num_key_value_heads": 2}
_TOK = {"pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0}

#: name -> (model_type, fields): every new family and every flag that changes the module list
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "qwen3": ("qwen3", {**_KV, "head_dim": 24}),
    "qwen3-tied-bias": ("qwen3", {**_KV, "head_dim": 16, "tie_word_embeddings": True, "attention_bias": True}),
    "qwen3_moe": ("qwen3_moe", {**_KV, "head_dim": 16, "num_experts": 4, "num_experts_per_tok": 2,
                                "moe_intermediate_size": 32}),
    "qwen3_moe-sparse-step": ("qwen3_moe", {**_KV, "head_dim": 16, "num_experts": 4, "num_experts_per_tok": 2,
                                            "moe_intermediate_size": 32, "decoder_sparse_step": 2,
                                            "mlp_only_layers": [0]}),
    "mixtral": ("mixtral", {**_KV, "num_local_experts": 4, "num_experts_per_tok": 2}),
    "mixtral-head_dim": ("mixtral", {**_KV, "num_local_experts": 3, "head_dim": 8}),
    "gemma": ("gemma", {**_KV, "head_dim": 16}),
    "gemma-untied": ("gemma", {**_KV, "head_dim": 32, "tie_word_embeddings": False}),
    "gemma2": ("gemma2", {**_KV, "head_dim": 16}),
    "gemma3_text": ("gemma3_text", {**_KV, "head_dim": 16}),
    "phi3": ("phi3", {**_KV, **_TOK}),
    "gpt_neox": ("gpt_neox", dict(_D)),
    "gpt_neox-nobias-tied": ("gpt_neox", {**_D, "attention_bias": False, "tie_word_embeddings": True}),
    "falcon-7b-like": ("falcon", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                  "vocab_size": 100}),
    "falcon-40b-like": ("falcon", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                   "num_kv_heads": 2, "new_decoder_architecture": True, "vocab_size": 100}),
    "falcon-new-one-ln": ("falcon", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                     "num_kv_heads": 2, "new_decoder_architecture": True,
                                     "num_ln_in_parallel_attn": 1, "vocab_size": 100}),
    "falcon-sequential-bias": ("falcon", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                          "multi_query": False, "parallel_attn": False, "bias": True,
                                          "ffn_hidden_size": 80, "vocab_size": 100, "tie_word_embeddings": False}),
    "bloom": ("bloom", {"hidden_size": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100}),
    "roberta": ("roberta", {**_D, "max_position_embeddings": 34, "type_vocab_size": 1, **_TOK}),
    "vit": ("vit", {**_D, "image_size": 32, "patch_size": 8}),
    "vit-no-qkv-bias": ("vit", {**_D, "image_size": 24, "patch_size": 8, "qkv_bias": False, "num_channels": 1}),
    "opt-no-bias": ("opt", {"hidden_size": 64, "ffn_dim": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
                            "vocab_size": 100, "max_position_embeddings": 32, "enable_bias": False}),
    "gpt2-cross-attention": ("gpt2", {"n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100,
                                      "n_positions": 32, "add_cross_attention": True, **_TOK}),
    "t5": ("t5", {"d_model": 64, "d_kv": 8, "d_ff": 96, "num_layers": 2, "num_heads": 4, "vocab_size": 100}),
    "t5-v1.1-gated-untied": ("t5", {"d_model": 64, "d_kv": 16, "d_ff": 80, "num_layers": 2, "num_decoder_layers": 3,
                                    "num_heads": 4, "vocab_size": 100, "feed_forward_proj": "gated-gelu",
                                    "tie_word_embeddings": False, "relative_attention_num_buckets": 16}),
    "whisper": ("whisper", {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
                            "decoder_attention_heads": 4, "encoder_ffn_dim": 96, "decoder_ffn_dim": 80,
                            "vocab_size": 100, "num_mel_bins": 8, "max_source_positions": 30,
                            "max_target_positions": 20, **_TOK, "decoder_start_token_id": 0}),
    "llama-untied-headdim": ("llama", {**_KV, "head_dim": 8, "tie_word_embeddings": False}),
}

#: heads: name -> (base config above, the model class config.json names)
HEADS = {
    "bert-seqcls": ("bert", "BertForSequenceClassification"),
    "bert-tokcls": ("bert", "BertForTokenClassification"),
    "bert-qa": ("bert", "BertForQuestionAnswering"),
    "bert-base": ("bert", "BertModel"),
    "roberta-seqcls": ("roberta", "RobertaForSequenceClassification"),
    "roberta-tokcls": ("roberta", "RobertaForTokenClassification"),
    "roberta-base": ("roberta", "RobertaModel"),
    "llama-seqcls": ("llama-untied-headdim", "LlamaForSequenceClassification"),
    "llama-tokcls": ("llama-untied-headdim", "LlamaForTokenClassification"),
    "llama-qa": ("llama-untied-headdim", "LlamaForQuestionAnswering"),
    "llama-base": ("llama-untied-headdim", "LlamaModel"),
    "qwen3-seqcls": ("qwen3", "Qwen3ForSequenceClassification"),
    "mistral-seqcls": ("mixtral", "MixtralForSequenceClassification"),
    "gemma2-tokcls": ("gemma2", "Gemma2ForTokenClassification"),
    "phi3-seqcls": ("phi3", "Phi3ForSequenceClassification"),
    "gpt2-seqcls": ("gpt2-cross-attention", "GPT2ForSequenceClassification"),
    "gpt2-tokcls": ("gpt2-cross-attention", "GPT2ForTokenClassification"),
    "gpt2-qa": ("gpt2-cross-attention", "GPT2ForQuestionAnswering"),
    "opt-seqcls": ("opt-no-bias", "OPTForSequenceClassification"),
    "opt-qa": ("opt-no-bias", "OPTForQuestionAnswering"),
    "neox-seqcls": ("gpt_neox", "GPTNeoXForSequenceClassification"),
    "neox-tokcls": ("gpt_neox", "GPTNeoXForTokenClassification"),
    "falcon-seqcls": ("falcon-7b-like", "FalconForSequenceClassification"),
    "falcon-tokcls": ("falcon-7b-like", "FalconForTokenClassification"),
    "bloom-qa": ("bloom", "BloomForQuestionAnswering"),
    "vit-imagecls": ("vit", "ViTForImageClassification"),
    "t5-base-model": ("t5", "T5Model"),
    "whisper-base-model": ("whisper", "WhisperModel"),
}
BASES = {**CONFIGS, "bert": ("bert", {**_D, "max_position_embeddings": 32})}


def config_json(name: str) -> dict[str, Any]:
    """The config.json transformers writes for a CONFIGS or HEADS entry (HEADS: 3 labels)."""
    if name in HEADS:
        base, cls = HEADS[name]
        model_type, fields = BASES[base]
        fields = {**fields, "architectures": [cls], "num_labels": 3}
    else:
        model_type, fields = BASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = AutoConfig.for_model(model_type, **fields).to_dict()
    return config


ALL = [*CONFIGS, *HEADS]


@pytest.mark.parametrize("name", ALL)
def test_model_equals_transformers(name: str) -> None:
    config = config_json(name)
    arch = architecture_from_config(config)
    model = build_meta_model(config)
    facts = model_facts(model)
    assert sorted(arch_digest_lines(arch)) == sorted(linear_digest_lines(model))
    assert arch.total_params == facts["total"]
    assert arch.total_bias_params == facts["bias_total"]


GRID = [(name, i) for name in ALL for i in range(10)]


@pytest.mark.parametrize("name,index", GRID, ids=[f"{n}-{i}" for n, i in GRID])
def test_lora_grid_equals_peft(name: str, index: int) -> None:
    config = config_json(name)
    arch = architecture_from_config(config)
    kwargs = lora_grid(arch)[index]
    model = build_meta_model(config)
    try:
        theirs = peft_count(model, kwargs)
    except ValueError as error:  # no default targets for the type, nothing matched (the bare model's layers), ...
        with pytest.raises(InvalidParameterError):
            count_lora(arch, LoraConfigSpec(**kwargs))
        print(f"both refuse: {error}")
        return
    mine = count_lora(arch, LoraConfigSpec(**kwargs))
    assert (mine.trainable, mine.total) == (theirs["trainable"], theirs["total"])
    # PEFT names a ParamWrapper (mixtral's, qwen3_moe's rewritten experts) by its module: compared by total above
    own = {m.name for m in arch.linear_modules} | {h.name for h in arch.other_modules if h.kind == "embedding"}
    keep = (lambda n: n in own) if arch.model_type in ("mixtral", "qwen3_moe") else (lambda n: True)  # noqa: E731
    assert {m.name: (m.r, m.scaling, m.params) for m in mine.modules if keep(m.name)} == {
        n: (m["r"], m["scaling"], m["params"]) for n, m in theirs["modules"].items() if keep(n)}
