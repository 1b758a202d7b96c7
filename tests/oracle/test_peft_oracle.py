"""Live oracle: loralens against transformers' own models (meta device) and PEFT's own count.

Every preset's total and linear modules are compared at full size (cheap on the meta device). The LoRA grid
(defaults, all-linear, regex, DoRA, bias modes, layers_to_transform, rank/alpha patterns, rsLoRA, output head) runs
on each preset with its blocks cut to 3 (PEFT's wrapping of the 70B/175B models takes seconds per setting; the
count of a block does not depend on how many there are). The full-size grid is in tests/fixtures/peft_counts.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from _peft_oracle import (
    GPT3_AS_OPT_NAMES,
    arch_digest_lines,
    build_meta_model,
    digest,
    hf_config_dict,
    linear_digest_lines,
    lora_grid,
    model_facts,
    module_key,
    peft_count,
    rename_targets,
)
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, GPT2Config, LlamaConfig, MistralConfig, OPTConfig, Qwen2Config

from loralens.core.architectures import PRESET_CONFIGS, PRESETS, architecture_from_config
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora
from loralens.errors import InvalidParameterError

pytestmark = pytest.mark.oracle
sys.path.insert(0, str(Path(__file__).parents[1] / "core"))
from test_peft_count import moe_rewritten  # noqa: E402


def _gpt3_linear_lines(arch) -> list[str]:  # noqa: ANN001
    lines = []
    for m in arch.linear_modules:
        name = (m.name.replace("model.layers.", "model.decoder.layers.").replace("o_proj", "out_proj")
                .replace("mlp.up_proj", "fc1").replace("mlp.down_proj", "fc2"))
        lines.append(f"{name} {m.in_features} {m.out_features} {m.bias}")
    return lines


@pytest.mark.parametrize("hf_id", list(PRESETS))
def test_preset_equals_transformers_model(hf_id: str) -> None:
    arch = PRESETS[hf_id]
    facts = model_facts(build_meta_model(hf_config_dict(hf_id)))
    if arch.model_type == "gpt3":
        assert arch.total_params == facts["total"] - 2 * arch.hidden_size  # OPT's 2 extra position rows
        assert digest(_gpt3_linear_lines(arch)) == facts["linear_digest"]
    else:
        assert arch.total_params == facts["total"]
        assert digest(arch_digest_lines(arch)) == facts["linear_digest"]
    assert arch.total_bias_params == facts["bias_total"]


# config.json as transformers writes it (to_dict), including variants the presets do not exercise
CONFIGS = {
    "llama-biases-headdim": LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, head_dim=24, vocab_size=100,
                                        attention_bias=True, mlp_bias=True, tie_word_embeddings=True),
    "mistral": MistralConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=1, vocab_size=100),
    "qwen2-untied": Qwen2Config(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                                num_key_value_heads=2, vocab_size=100, tie_word_embeddings=False),
    "gpt2-n_inner": GPT2Config(n_embd=64, n_layer=2, n_head=4, n_inner=80, vocab_size=100, n_positions=32,
                               bos_token_id=0, eos_token_id=0),
    "opt-350m-like": OPTConfig(hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                               vocab_size=100, max_position_embeddings=32, word_embed_proj_dim=32,
                               do_layer_norm_before=False),
    "bert-untied": BertConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              vocab_size=100, max_position_embeddings=32, tie_word_embeddings=False),
    "bert-one-type": BertConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                vocab_size=100, max_position_embeddings=32, type_vocab_size=1),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_config_json_as_transformers_writes_it(name: str, tmp_path: Path) -> None:
    config = CONFIGS[name].to_dict()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    arch = architecture_from_config(path)
    model = build_meta_model(config)
    facts = model_facts(model)
    assert arch.total_params == facts["total"]
    assert arch.total_bias_params == facts["bias_total"]
    assert sorted(arch_digest_lines(arch)) == sorted(linear_digest_lines(model))
    kwargs = {"r": 4, "target_modules": "all-linear", "use_dora": True, "bias": "all"}
    mine = count_lora(arch, LoraConfigSpec(**kwargs))
    theirs = peft_count(model, kwargs)
    assert (mine.trainable, mine.total) == (theirs["trainable"], theirs["total"])


LAYERS_KEY = {"gpt2": "n_layer", "llama": "num_hidden_layers", "mistral": "num_hidden_layers",
              "qwen2": "num_hidden_layers", "opt": "num_hidden_layers", "bert": "num_hidden_layers",
              "gpt3": "num_hidden_layers"}
CASES = [(hf_id, i) for hf_id in PRESETS for i in range(len(lora_grid(PRESETS[hf_id])))]


@pytest.mark.parametrize("hf_id,index", CASES, ids=[f"{h}-{i}" for h, i in CASES])
def test_lora_grid_equals_peft(hf_id: str, index: int) -> None:
    config = hf_config_dict(hf_id, num_layers=3)  # what transformers builds (GPT-3: as OPT)
    short, display, own = PRESET_CONFIGS[hf_id]
    arch = architecture_from_config({**own, LAYERS_KEY.get(own["model_type"], "num_hidden_layers"): 3}, hf_id=hf_id)
    rename = GPT3_AS_OPT_NAMES if arch.model_type == "gpt3" else {}
    kwargs = lora_grid(arch)[index]
    try:
        theirs = peft_count(build_meta_model(config), rename_targets(kwargs, rename))
    except ValueError:  # PEFT has no (usable) default targets: mixtral on transformers 5, phi3, qwen3_moe
        with pytest.raises(InvalidParameterError):
            count_lora(arch, LoraConfigSpec(**kwargs))
        return
    mine = count_lora(arch, LoraConfigSpec(**kwargs))
    offset = 2 * arch.hidden_size if arch.model_type == "gpt3" else 0
    assert (mine.trainable, mine.total) == (theirs["trainable"], theirs["total"] - offset)
    if moe_rewritten(arch.model_type, kwargs):  # PEFT names the ParamWrappers by their module
        return
    assert {module_key(m.name, rename): (m.r, m.scaling, m.params) for m in mine.modules} == {
        module_key(n, rename): (m["r"], m["scaling"], m["params"]) for n, m in theirs["modules"].items()}


@pytest.mark.parametrize("targets", [["nonexistent"], ["q_proj"]])
def test_targets_matching_nothing_fail_in_both(targets: list[str]) -> None:
    config = hf_config_dict("openai-community/gpt2", num_layers=2)
    with pytest.raises(ValueError, match="not found in the base model"):
        get_peft_model(build_meta_model(config), LoraConfig(target_modules=targets))
    with pytest.raises(InvalidParameterError, match="not found in the base model"):
        count_lora(architecture_from_config(config), LoraConfigSpec(target_modules=targets))


EMBEDDING_CASES = [
    ("openai-community/gpt2", {"target_modules": ["wte", "c_attn"]}),
    ("openai-community/gpt2", {"target_modules": ["wpe"], "r": 4, "use_dora": True, "bias": "all"}),
    ("facebook/opt-125m", {"target_modules": ["embed_positions", "embed_tokens"], "use_dora": True,
                           "bias": "lora_only"}),
    ("google-bert/bert-base-uncased", {"target_modules": r".*_embeddings", "use_dora": True}),
    ("meta-llama/Meta-Llama-3-8B", {"target_modules": ["embed_tokens", "lm_head"], "r": 16}),
]


@pytest.mark.parametrize("hf_id,kwargs", EMBEDDING_CASES)
def test_embedding_targets_equal_peft(hf_id: str, kwargs: dict) -> None:
    config = hf_config_dict(hf_id, num_layers=2)
    mine = count_lora(architecture_from_config(config), LoraConfigSpec(**kwargs))
    theirs = peft_count(build_meta_model(config), kwargs)
    assert (mine.trainable, mine.total) == (theirs["trainable"], theirs["total"])
    assert {m.name: (m.r, m.params) for m in mine.modules} == {
        n: (m["r"], m["params"]) for n, m in theirs["modules"].items()}


@pytest.mark.parametrize("targets", [["ln_1"], ["attn"], r".*h\.0\..*", ["h"]])
def test_targets_matching_an_unsupported_module_fail_in_both(targets: list[str] | str) -> None:
    config = hf_config_dict("openai-community/gpt2", num_layers=2)
    with pytest.raises(ValueError, match="is not supported"):
        get_peft_model(build_meta_model(config), LoraConfig(target_modules=targets))
    with pytest.raises(InvalidParameterError, match="is not supported"):
        count_lora(architecture_from_config(config), LoraConfigSpec(target_modules=targets))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"r": 4, "target_modules": ["c_attn"]},
        {"r": 2, "target_modules": "all-linear", "use_dora": True, "bias": "all"},
        {"r": 3, "target_modules": ["c_fc", "wte"], "bias": "lora_only"},
    ],
)
def test_adapter_bytes_equal_the_tensor_bytes_of_peft_saved_file(kwargs: dict, tmp_path: Path) -> None:
    import struct
    import warnings

    import torch
    from transformers import AutoModelForCausalLM

    config = GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=64, n_positions=16, bos_token_id=0,
                        eos_token_id=0)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(AutoModelForCausalLM.from_config(config), LoraConfig(**kwargs))
        model.save_pretrained(tmp_path)
    data = (tmp_path / "adapter_model.safetensors").read_bytes()
    header_len = struct.unpack("<Q", data[:8])[0]
    mine = count_lora(architecture_from_config(config.to_dict()), LoraConfigSpec(**kwargs))
    assert len(data) - 8 - header_len == mine.tensor_bytes["fp32"]
    assert len(data) == mine.adapter_bytes["fp32"]
