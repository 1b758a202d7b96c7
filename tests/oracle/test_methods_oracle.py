"""Other PEFT methods' counts against PEFT itself on small models of every supported type (the formulas and
the presets without torch: tests/core/test_methods.py)."""

from __future__ import annotations

import warnings

import peft
import pytest
import torch
import transformers

from loralens.core.architectures import architecture_from_config
from loralens.core.methods import (
    compare_methods,
    count_adalora,
    count_ia3,
    count_prefix_tuning,
    count_prompt_tuning,
    count_vera,
)
from loralens.core.peft_config import LoraConfigSpec


# small configs of every supported model type (GQA and a head_dim that differs from hidden/heads included)
TINY = {
    "llama": dict(model_type="llama", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, vocab_size=101, max_position_embeddings=64),
    "llama_head_dim": dict(model_type="llama", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=24, vocab_size=101,
                           max_position_embeddings=64),
    "mistral": dict(model_type="mistral", hidden_size=64, intermediate_size=80, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=2, vocab_size=97, max_position_embeddings=64),
    "qwen2": dict(model_type="qwen2", hidden_size=48, intermediate_size=72, num_hidden_layers=3,
                  num_attention_heads=6, num_key_value_heads=2, vocab_size=89, max_position_embeddings=64,
                  tie_word_embeddings=True),
    "gpt2": dict(model_type="gpt2", n_embd=48, n_layer=2, n_head=4, vocab_size=91, n_positions=40),
    "opt": dict(model_type="opt", hidden_size=32, ffn_dim=56, num_hidden_layers=2, num_attention_heads=4,
                vocab_size=83, max_position_embeddings=40, word_embed_proj_dim=32),
    "bert": dict(model_type="bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=40, vocab_size=77, max_position_embeddings=40, type_vocab_size=2),
}


def _model(name: str):  # noqa: ANN202
    data = dict(TINY[name])
    config = transformers.AutoConfig.for_model(**data)
    cls = transformers.AutoModelForMaskedLM if data["model_type"] == "bert" else transformers.AutoModelForCausalLM
    with torch.device("meta"):
        return cls.from_config(config)


def _peft_trainable(name: str, config) -> int:  # noqa: ANN001
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peft.get_peft_model(_model(name), config)
    return model.get_nb_trainable_parameters()[0]


def _arch(name: str):  # noqa: ANN202
    return architecture_from_config(TINY[name])


def _targets(name: str) -> list[str]:
    return list({"gpt2": ["c_attn", "c_fc"], "bert": ["query", "value", "output.dense"],
                 "opt": ["q_proj", "fc1"]}.get(TINY[name]["model_type"], ["q_proj", "v_proj", "down_proj"]))


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(TINY))
def test_vera_matches_peft(name: str) -> None:
    targets = _targets(name)
    got = count_vera(_arch(name), LoraConfigSpec(r=4, target_modules=tuple(targets)), r=16)
    kwargs = {"fan_in_fan_out": True} if name == "gpt2" else {}
    assert got == _peft_trainable(name, peft.VeraConfig(r=16, target_modules=targets, **kwargs))


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(TINY))
def test_adalora_matches_peft(name: str) -> None:
    targets = _targets(name)
    got = count_adalora(_arch(name), LoraConfigSpec(r=3, target_modules=tuple(targets)), init_r=6)
    kwargs = {"fan_in_fan_out": True} if name == "gpt2" else {}
    config = peft.AdaLoraConfig(init_r=6, target_r=2, total_step=100, target_modules=targets, **kwargs)
    assert got == _peft_trainable(name, config)


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(TINY))
def test_ia3_defaults_match_peft(name: str) -> None:
    kwargs = {"fan_in_fan_out": True} if name == "gpt2" else {}
    task = "CAUSAL_LM" if name != "bert" else None
    assert count_ia3(_arch(name)) == _peft_trainable(name, peft.IA3Config(task_type=task, **kwargs))


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(TINY))
def test_prompt_and_prefix_tuning_match_peft(name: str) -> None:
    task = "CAUSAL_LM" if name != "bert" else "FEATURE_EXTRACTION"
    arch = _arch(name)
    assert count_prompt_tuning(arch, 7) == _peft_trainable(
        name, peft.PromptTuningConfig(task_type=task, num_virtual_tokens=7))
    assert count_prefix_tuning(arch, 5) == _peft_trainable(
        name, peft.PrefixTuningConfig(task_type=task, num_virtual_tokens=5))


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["llama", "gpt2", "bert"])
@pytest.mark.parametrize("bias", ["none", "all"])
def test_lora_family_rows_match_peft(name: str, bias: str) -> None:
    targets = _targets(name)
    spec = LoraConfigSpec(r=4, lora_alpha=8, target_modules=tuple(targets), bias=bias)
    rows = {m.key: m.trainable for m in compare_methods(_arch(name), spec)}
    kwargs = {"fan_in_fan_out": True} if name == "gpt2" else {}
    lora = _peft_trainable(name, peft.LoraConfig(r=4, target_modules=targets, bias=bias, **kwargs))
    dora = _peft_trainable(name, peft.LoraConfig(r=4, target_modules=targets, bias=bias, use_dora=True, **kwargs))
    assert rows["lora"] == rows["rslora"] == lora
    assert rows["dora"] == dora


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(TINY))
def test_full_and_bitfit_match_torch(name: str) -> None:
    model = _model(name)
    rows = {m.key: m.trainable for m in compare_methods(_arch(name), LoraConfigSpec(target_modules=("q_proj",))
                                                         if TINY[name]["model_type"] not in ("gpt2", "bert")
                                                         else LoraConfigSpec())}
    assert rows["full"] == sum(p.numel() for p in model.parameters())
    assert rows["bitfit"] == sum(p.numel() for n, p in model.named_parameters() if n.endswith("bias"))
