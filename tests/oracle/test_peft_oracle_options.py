"""Live oracle for the LoraConfig fields beyond the grid, the task types' heads, and the saved file's size.

Counts: PEFT's get_nb_trainable_parameters() on the meta device (configs of test_peft_oracle_families). File sizes:
the adapter_model.safetensors PEFT's save_pretrained writes for a tiny model on the CPU (fp32 and bf16), byte for
byte. Every case where PEFT raises must make loralens refuse (InvalidParameterError), never count.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from _peft_oracle import build_meta_model, build_model, peft_count
from peft import LoraConfig, get_peft_model
from test_peft_oracle_families import config_json

from loralens.core.architectures import architecture_from_config
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora
from loralens.errors import InvalidParameterError

pytestmark = pytest.mark.oracle

CASES: list[tuple[str, dict[str, Any]]] = [
    ("bert-seqcls", {"task_type": "SEQ_CLS"}),
    ("bert-seqcls", {"task_type": "SEQ_CLS", "bias": "all"}),
    ("bert-seqcls", {"task_type": "SEQ_CLS", "target_modules": "all-linear", "use_dora": True}),
    ("roberta-seqcls", {"task_type": "SEQ_CLS", "target_modules": "all-linear"}),
    ("llama-seqcls", {"task_type": "SEQ_CLS", "target_modules": "all-linear", "bias": "all"}),
    ("gpt2-seqcls", {"task_type": "SEQ_CLS"}),
    ("opt-seqcls", {"task_type": "SEQ_CLS", "target_modules": ["q_proj", "score"]}),
    ("bert-tokcls", {"task_type": "TOKEN_CLS"}),
    ("bert-tokcls", {"task_type": "TOKEN_CLS", "target_modules": "all-linear"}),
    ("gpt2-tokcls", {"task_type": "TOKEN_CLS", "bias": "lora_only"}),
    ("llama-qa", {"task_type": "QUESTION_ANS", "target_modules": ["q_proj", "v_proj"]}),
    ("bert-qa", {"task_type": "QUESTION_ANS"}),
    ("qwen3-tied-bias", {"target_modules": ["q_proj"], "modules_to_save": ["lm_head"]}),
    ("qwen3-tied-bias", {"target_modules": ["q_proj"], "modules_to_save": ["embed_tokens"], "bias": "all"}),
    ("qwen3", {"target_modules": ["q_proj", "k_proj"], "modules_to_save": ["q_proj"]}),
    ("qwen3", {"target_modules": ["q_proj"], "modules_to_save": ["q_proj"]}),
    ("bert", {"modules_to_save": ["cls"]}),
    ("bert", {"modules_to_save": ["output", "dense"]}),  # nested wrappers: each copy trains
    ("bert", {"modules_to_save": ["output", "dense"], "bias": "all"}),
    ("bert", {"modules_to_save": ["attention", "dense"]}),  # grandparent wrapper: PEFT only updates it
    ("bert", {"modules_to_save": ["layer", "LayerNorm"], "target_modules": ["pooler.dense"]}),
    ("bert", {"modules_to_save": ["encoder", "output.dense", "self"], "target_modules": ["pooler.dense"]}),
    ("bert", {"modules_to_save": ["output", "dense"], "target_modules": ["intermediate.dense"]}),
    ("bert", {"modules_to_save": ["cls", "decoder"]}),
    ("qwen3-tied-bias", {"target_modules": ["q_proj"], "trainable_token_indices": [1, 2, 3]}),
    ("qwen3", {"target_modules": ["q_proj"], "trainable_token_indices": [1, 2, 3]}),
    ("qwen3", {"target_modules": ["q_proj"], "trainable_token_indices": {"embed_tokens": [1, 2], "lm_head": [3]}}),
    ("qwen3", {"target_modules": ["q_proj"], "lora_bias": True}),
    ("gpt2-cross-attention", {"target_modules": "all-linear", "lora_bias": True}),
    ("qwen3", {"target_modules": ["q_proj", "embed_tokens"], "lora_bias": True}),
    ("qwen3", {"target_modules": ["q_proj"], "lora_bias": True, "use_dora": True}),
    ("qwen3", {"target_modules": ["q_proj"], "target_parameters": ["o_proj.weight"]}),
    ("qwen3", {"target_modules": ["q_proj"], "target_parameters": ["input_layernorm.weight"]}),
    ("qwen3", {"target_modules": ["o_proj"], "target_parameters": ["o_proj.weight"]}),
    ("mixtral", {"target_modules": ["q_proj"], "target_parameters": ["experts.gate_up_proj", "experts.down_proj",
                                                                     "gate.weight"], "rank_pattern": {"down_proj": 2}}),
    ("mixtral", {"target_parameters": ["experts.gate_up_proj"], "lora_alpha": 32}),
    ("mixtral", {"target_modules": [], "target_parameters": ["experts.down_proj"]}),  # parameters only
    ("qwen3", {"target_modules": []}),  # nothing targeted at all
    ("mixtral", {"target_modules": ["q_proj"], "target_parameters": ["experts.gate_up_proj"], "lora_bias": True}),
    ("mixtral", {"target_parameters": ["experts.gate_up_proj"], "use_dora": True}),
    ("mixtral", {"target_parameters": ["nothing_here"]}),
    ("qwen3_moe", {"target_modules": ["k_proj"], "target_parameters": ["mlp.experts.down_proj"]}),
    ("mixtral", {}),
    ("mixtral", {"target_modules": "all-linear"}),
    # PEFT 0.21 rewrites v4 expert names into target_parameters (fused gate_up: doubled r and alpha)
    ("mixtral", {"target_modules": ["w1", "w3"]}),
    ("mixtral", {"target_modules": ["w1"]}),
    ("mixtral", {"target_modules": ["w2", "q_proj"], "r": 4, "lora_alpha": 8}),
    ("mixtral", {"target_modules": ["gate", "experts.w1", "experts.w3"], "lora_alpha": 16}),
    ("mixtral", {"target_modules": ["w1", "w3"], "rank_pattern": {"gate_up_proj": 4}}),
    ("mixtral", {"target_modules": ["w1", "w3", "o_proj"], "rank_pattern": {"o_proj": 2}, "use_rslora": True}),
    ("mixtral", {"target_modules": r".*\.(w1|w3)"}),
    ("mixtral", {"target_modules": r".*layers\.0\..*\.(w2|q_proj)"}),
    ("mixtral", {"target_modules": r".*\.(w1|v_proj)"}),
    ("mixtral", {"target_modules": ["w1", "w3"], "use_dora": True}),
    ("mixtral", {"target_modules": "all-linear", "target_parameters": ["experts.down_proj"], "r": 2}),
    ("qwen3_moe", {}),
    ("qwen3_moe", {"target_modules": ["gate_proj", "up_proj", "down_proj"]}),
    ("qwen3_moe", {"target_modules": "all-linear"}),
    ("qwen3_moe", {"target_modules": ["up_proj"]}),
    ("qwen3_moe", {"target_modules": r".*\.(gate|q_proj)"}),
    ("qwen3_moe", {"target_modules": r".*mlp.*"}),
    ("qwen3_moe", {"target_modules": r".*\.q_proj", "exclude_modules": ["down_proj", "gate_proj", "up_proj"]}),
    ("qwen3_moe", {"target_modules": r".*\.q_proj", "exclude_modules": r".*experts\.(gate|up)_proj"}),
    ("mixtral", {"target_modules": r".*\.k_proj", "modules_to_save": ["gate"]}),
    ("mixtral", {"target_modules": r".*\.k_proj", "modules_to_save": ["w1", "w3"]}),
    ("mixtral", {"target_modules": ".*"}),
    ("mixtral", {"target_modules": r"model\.layers\.1\.mlp\.experts\.w2"}),
    ("mixtral", {"target_modules": "q_proj"}),
    ("mixtral", {"target_modules": ["w2", "q_proj"], "layers_to_transform": [0]}),
    ("mixtral", {"target_modules": ["model.layers.0.mlp.experts.w2", "q_proj"]}),  # down_proj of every layer
    ("mixtral", {"target_modules": ["gate"], "bias": "all"}),
    ("mixtral", {"target_modules": ["w1", "w3"], "modules_to_save": ["lm_head"],
                 "exclude_modules": ["layers.0.mlp.experts.w1"]}),
    ("qwen3", {"target_modules": ["q_proj", "o_proj"], "exclude_modules": ["layers.0.self_attn.o_proj"]}),
    ("qwen3", {"target_modules": "all-linear", "exclude_modules": r".*\.1\..*"}),
    ("qwen3", {"target_modules": ["q_proj"], "exclude_modules": ["q_proj"]}),
    ("qwen3", {"target_modules": ["q_proj", "o_proj"], "layers_to_transform": [1], "layers_pattern": "layers"}),
    ("qwen3", {"target_modules": ["q_proj", "o_proj"], "layers_to_transform": [0, 2], "layers_pattern": ["h", "layers"]}),
    ("gpt2-cross-attention", {"target_modules": ["c_attn"], "layers_to_transform": 1, "layers_pattern": "h"}),
    ("vit", {"target_modules": ["projection", "q_proj"], "use_dora": True}),
    ("vit-imagecls", {"target_modules": ["q_proj"], "modules_to_save": ["classifier"]}),
    ("t5", {"target_modules": ["q", "v", "embed_tokens"], "use_dora": True}),
    ("whisper", {"target_modules": ["conv1", "conv2", "q_proj", "v_proj"], "use_dora": True, "bias": "all"}),
    ("whisper", {"target_modules": "all-linear", "modules_to_save": ["embed_positions"]}),
    ("whisper", {"target_modules": ["q_proj", "embed_tokens"], "r": 4}),
    ("t5", {"target_modules": ["shared", "wo"], "bias": "all"}),
    ("t5-v1.1-gated-untied", {"target_modules": "all-linear", "modules_to_save": ["lm_head"]}),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_count_equals_peft_or_both_refuse(name: str, kwargs: dict[str, Any]) -> None:
    config = config_json(name)
    arch = architecture_from_config(config)
    try:
        theirs = peft_count(build_meta_model(config), copy.deepcopy(kwargs))
    except (ValueError, TypeError) as error:
        with pytest.raises(InvalidParameterError):
            count_lora(arch, LoraConfigSpec(**kwargs))
        print(f"both refuse: {error}")
        return
    mine = count_lora(arch, LoraConfigSpec(**kwargs))
    assert (mine.trainable, mine.total) == (theirs["trainable"], theirs["total"])


def _real_model(config: dict[str, Any], dtype: torch.dtype) -> torch.nn.Module:
    return build_model(config, meta=False).to(dtype)


SAVE_CASES = [c for c in CASES if c[0] not in ("qwen3_moe",)] + [
    ("qwen3", {"target_modules": ["q_proj", "embed_tokens"], "use_dora": True}),
    ("qwen3", {"target_modules": ["embed_tokens", "lm_head"]}),
    ("qwen3-tied-bias", {"target_modules": ["lm_head"]}),
    ("qwen3-tied-bias", {"target_modules": r".*embed_tokens"}),
    ("gpt2-cross-attention", {"target_modules": ["wte", "c_fc"], "use_dora": True}),
    ("bert", {"bias": "all"}),
    ("bert-seqcls", {"task_type": "SEQ_CLS", "bias": "lora_only"}),
    ("bert", {"modules_to_save": ["cls"], "bias": "all"}),  # the copy's nested biases keep ".default."
    ("mixtral", {"target_parameters": ["experts.gate_up_proj", "experts.down_proj"], "r": 2}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name,kwargs", SAVE_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SAVE_CASES)])
def test_adapter_bytes_equal_the_file_peft_writes(name: str, kwargs: dict[str, Any], dtype: torch.dtype,
                                                  tmp_path: Path) -> None:
    config = config_json(name)
    arch = architecture_from_config(config)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = get_peft_model(_real_model(config, dtype), LoraConfig(**copy.deepcopy(kwargs)))
            model.save_pretrained(tmp_path)
    except (ValueError, TypeError):
        with pytest.raises(InvalidParameterError):
            count_lora(arch, LoraConfigSpec(**kwargs))
        return
    mine = count_lora(arch, LoraConfigSpec(**kwargs))
    size = (tmp_path / "adapter_model.safetensors").stat().st_size
    assert mine.adapter_bytes["fp32" if dtype == torch.float32 else "bf16"] == size
