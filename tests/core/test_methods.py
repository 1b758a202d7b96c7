"""Other PEFT methods' counts: formulas by hand, every preset, refusals (against PEFT itself:
tests/oracle/test_methods_oracle.py)."""

from __future__ import annotations

import dataclasses

import pytest

from loralens.core.architectures import PRESETS, get_architecture
from loralens.core.methods import (
    METHOD_KEYS,
    compare_methods,
    count_houlsby,
    count_prefix_tuning,
    count_vera,
)
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora
from loralens.errors import InvalidParameterError


def test_houlsby_formula_by_hand() -> None:
    arch = get_architecture("bert-base-uncased")
    # Houlsby et al. 2019: m = 64 on BERT-base: 12 layers x 2 adapters x (2*768*64 + 64 + 768)
    assert count_houlsby(arch, 64) == 12 * 2 * (2 * 768 * 64 + 64 + 768) == 2_379_264


def test_prefix_tuning_uses_the_kv_width_for_gqa() -> None:
    arch = get_architecture("llama-3-8b")  # 8 KV heads of 128: token_dim 1024
    assert count_prefix_tuning(arch, 20) == 20 * 32 * 2 * 1024


@pytest.mark.parametrize("hf_id", list(PRESETS))
def test_every_preset_has_every_method(hf_id: str) -> None:
    arch = PRESETS[hf_id]
    # PEFT has no usable default targets for phi3, qwen3_moe and whisper, and drops mixtral's (transformers 5)
    explicit = {"phi3": ("o_proj",), "qwen3_moe": ("o_proj",), "mixtral": ("o_proj",), "whisper": ("out_proj",)}
    spec = LoraConfigSpec(r=8, target_modules=explicit.get(arch.model_type))
    rows = compare_methods(arch, spec)
    assert [m.key for m in rows] == [k for k in METHOD_KEYS if k != "ia3" or arch.family.ia3_targets]
    counts = {m.key: m.trainable for m in rows}
    assert counts["full"] == arch.total_params
    assert counts["lora"] == count_lora(arch, spec).trainable
    assert next(m.percent for m in rows if m.key == "lora") == count_lora(arch, spec).percent  # one definition
    assert 0 < counts["vera"] < counts["lora"] < counts["dora"] < counts["full"]
    assert all(m.formula and 0 <= m.percent <= 100 for m in rows)
    assert (counts["bitfit"] == 0) == (arch.model_type in ("llama", "mistral", "mixtral", "qwen3", "qwen3_moe",
                                                           "gemma2", "gemma3_text", "phi3", "t5"))  # no biases


def test_bad_sizes_name_their_parameter() -> None:
    arch = get_architecture("gpt2")
    with pytest.raises(InvalidParameterError, match="num_virtual_tokens"):
        compare_methods(arch, num_virtual_tokens=0)
    with pytest.raises(InvalidParameterError, match="adapter_size"):
        compare_methods(arch, adapter_size=-3)
    with pytest.raises(InvalidParameterError, match="vera_r"):
        count_vera(arch, r=0)


def test_rslora_changes_scaling_not_count() -> None:
    arch = get_architecture("llama-2-7b")
    spec = LoraConfigSpec(r=16, lora_alpha=16)
    rows = {m.key: m for m in compare_methods(arch, dataclasses.replace(spec, use_rslora=True))}
    assert rows["rslora"].trainable == rows["lora"].trainable == 16 * 32 * 2 * (4096 + 4096)
