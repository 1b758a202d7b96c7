"""`loralens params` with task heads and the LoraConfig fields beyond r/alpha/targets: PEFT's numbers
(measured with PEFT 0.21 / transformers 5 and reported in issue 10), the flags' names, and one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loralens.cli import main

BERT = {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2}
LLAMA3 = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
          "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192}


def params(tmp_path: Path, config: dict, *flags: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code = main(["params", "--config", str(path), "--json", *flags])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else {}), err


@pytest.mark.parametrize("config,trainable,total", [
    # PEFT (issue 10): BertForSequenceClassification with 3 labels, r=8: pooler + classifier
    ({**BERT, "architectures": ["BertForSequenceClassification"], "id2label": {"0": "a", "1": "b", "2": "c"}},
     297_219, 109_781_766),
    # OPT-125M with enable_bias false: transformers keeps the LayerNorm biases
    ({"model_type": "opt", "hidden_size": 768, "ffn_dim": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
      "vocab_size": 50272, "max_position_embeddings": 2048, "enable_bias": False}, 294_912, 125_451_264),
    # GPT-2 with add_cross_attention: the cross-attention blocks' c_attn are default targets too
    ({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257, "n_positions": 1024,
      "add_cross_attention": True}, 516_096, 153_322_752),
])
def test_issue_numbers(tmp_path: Path, config: dict, trainable: int, total: int,
                       capsys: pytest.CaptureFixture[str]) -> None:
    code, data, err = params(tmp_path, config, capsys=capsys)
    assert code == 0, err
    assert (data["trainable"], data["total"]) == (trainable, total)


def test_seq_cls_head_is_score_and_lm_head_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {**LLAMA3, "architectures": ["LlamaForSequenceClassification"]}
    code, data, _ = params(tmp_path, config, capsys=capsys)
    assert code == 0 and data["task"] == "seq_cls" and data["modules_to_save"] == [{"name": "score",
                                                                                      "params": 2 * 4096}]
    code, _, err = params(tmp_path, config, "--target", "lm_head", capsys=capsys)
    assert code == 2 and "not found" in err and err.count("\n") == 1
    code, data, _ = params(tmp_path, config, "--task", "causal_lm", capsys=capsys)
    assert code == 0 and data["modules_to_save"] == [] and data["trainable"] == 3_407_872


def test_unknown_head_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = params(tmp_path, {**LLAMA3, "architectures": ["LlamaForCausalLMWithValueHead"]}, capsys=capsys)
    assert code == 2 and "LlamaForCausalLMWithValueHead" in err and err.count("\n") == 1


@pytest.mark.parametrize("flags,field,value", [
    (["--exclude-modules", "layers.0.self_attn.q_proj"], "exclude_modules", ["layers.0.self_attn.q_proj"]),
    (["--modules-to-save", "lm_head"], "modules_to_save", ["lm_head"]),
    (["--trainable-token-indices", "[1, 2, 3]"], "trainable_token_indices", [1, 2, 3]),
    (["--rank-pattern", '{"q_proj": 4}'], "rank_pattern", {"q_proj": 4}),
    (["--alpha-pattern", '{"v_proj": 32}'], "alpha_pattern", {"v_proj": 32}),
    (["--lora-bias"], "lora_bias", True),
    (["--layers", "0,1", "--layers-pattern", "layers"], "layers_pattern", ["layers"]),
    (["--target-parameters", "self_attn.o_proj.weight"], "target_parameters", ["self_attn.o_proj.weight"]),
])
def test_flags_reach_the_spec(tmp_path: Path, flags: list[str], field: str, value: object,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, data, err = params(tmp_path, LLAMA3, *flags, capsys=capsys)
    assert code == 0, err
    assert data["lora_config"][field] == value


@pytest.mark.parametrize("flags,where", [
    (["--rank-pattern", "{q_proj: 4}"], "--rank-pattern"),
    (["--rank-pattern", '{"q_proj": 0}'], "rank_pattern"),
    (["--trainable-token-indices", "[-1]"], "--trainable-token-indices"),
    (["--target-parameters", "input_layernorm.weight"], "--target-parameters"),
    (["--lora-bias", "--dora"], "--lora-bias"),
    (["--target", "q_proj", "--exclude-modules", "q_proj"], "--exclude-modules"),
])
def test_bad_options_are_one_line(tmp_path: Path, flags: list[str], where: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = params(tmp_path, LLAMA3, *flags, capsys=capsys)
    assert code == 2 and where in err and err.count("\n") == 1 and "Traceback" not in err


FAMILIES = json.loads((Path(__file__).parent / "fixtures" / "peft_counts.json").read_text())["families"]


@pytest.mark.parametrize("family,target,kwargs", [
    ("mixtral", "w1,w3", {"target_modules": ["w1", "w3"]}),
    ("mixtral", "all-linear", {"target_modules": "all-linear"}),
    ("qwen3_moe", "all-linear", {"target_modules": "all-linear"}),
    ("qwen3_moe", "gate_proj,up_proj,down_proj", {"target_modules": ["gate_proj", "up_proj", "down_proj"]}),
])
def test_moe_expert_targets_equal_peft(tmp_path: Path, family: str, target: str, kwargs: dict,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """PEFT 0.21 rewrites the transformers-4 expert names into target_parameters: the CLI shows PEFT's count (the
    families fixture, written by PEFT on the same config)."""
    entry = FAMILIES[family]
    case = next(c for c in entry["cases"] if c["lora_config"] == kwargs)
    code, data, err = params(tmp_path, entry["config"], "--target", target, capsys=capsys)
    assert code == 0, err
    assert (data["trainable"], data["total"]) == (case["trainable"], case["total"])


def test_moe_half_of_a_fused_pair_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = params(tmp_path, FAMILIES["mixtral"]["config"], "--target", "w1", capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and "without also targeting w3" in err
