"""`loralens params`: table and JSON output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loralens.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_params_table_for_llama_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["params", "--model", "meta-llama/Llama-2-7b-hf"], capsys)
    assert code == 0 and err == ""
    # PEFT: "trainable params: 4,194,304 || all params: 6,742,609,920 || trainable%: 0.0622"
    assert "4,194,304" in out and "6,742,609,920" in out and "0.0622%" in out
    assert "model.layers.*.self_attn.q_proj" in out and "model.layers.*.self_attn.v_proj" in out
    assert "16.0 MiB fp32" in out


def test_params_json_has_the_documented_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["params", "--model", "gpt3", "--rank", "4", "--target", "q_proj,v_proj", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["trainable"] == 18_874_368  # the LoRA paper's r=4 on Wq, Wv
    assert data["tensor_bytes"] == {"fp32": 75_497_472, "bf16": 75_497_472, "fp16": 75_497_472}  # LoRA in fp32
    assert data["adapter_bytes"]["fp16"] > data["tensor_bytes"]["fp16"]  # + the safetensors header
    assert data["total"] == data["base_total"] + 18_874_368
    assert data["percent"] == pytest.approx(100 * 18_874_368 / data["total"])
    assert [m["name"] for m in data["modules"]] == ["model.layers.*.self_attn.q_proj", "model.layers.*.self_attn.v_proj"]
    q = data["modules"][0]
    assert {k: q[k] for k in ("in_features", "out_features", "count", "r", "scaling", "params")} == {
        "in_features": 12288, "out_features": 12288, "count": 96, "r": 4, "scaling": 2.0, "params": 9_437_184}


def test_params_all_options(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["params", "--model", "gpt2", "-r", "16", "--alpha", "32", "--target", "all-linear", "--dora",
            "--bias", "all", "--rslora", "--json"]
    data = json.loads(run(argv, capsys)[1])
    # PEFT 0.x on GPT-2 with this config: trainable 2,544,384 / all 126,882,048 (see tests/oracle)
    assert (data["trainable"], data["total"]) == (2_544_384, 126_882_048)
    assert data["modules"][0]["scaling"] == 8.0  # 32 / sqrt(16)
    data = json.loads(run(["params", "--model", "gpt2", "--target", "c_attn", "--layers", "0-2,5", "--json",
                           "--all-modules"], capsys)[1])
    assert [m["name"] for m in data["modules"]] == [f"transformer.h.{i}.attn.c_attn" for i in (0, 1, 2, 5)]
    assert all(m["count"] == 1 for m in data["modules"])


def test_params_regex_target(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(run(["params", "--model", "opt-125m", "--target", r".*\.(q|v)_proj", "--json"], capsys)[1])
    assert data["num_modules"] == 24


def test_params_from_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    data = json.loads(run(["params", "--config", str(path), "--json"], capsys)[1])
    assert data["base_total"] == 7_241_732_096
    assert data["trainable"] == 32 * 8 * ((4096 + 4096) + (4096 + 1024))  # q and v (GQA: v is 4096 -> 1024)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "llama2-7b"], "model: unknown model 'llama2-7b'; did you mean 'llama-2-7b'"),
        (["--model", "gpt2", "--rank", "0"], "--rank: must be at least 1, got 0"),
        (["--model", "gpt2", "--rank", "-3"], "--rank: must be at least 1"),
        (["--model", "gpt2", "--rank", "eight"], "--rank: must be a whole number, got 'eight'"),
        (["--model", "gpt2", "--alpha", "x"], "--alpha: must be a number, got 'x'"),
        (["--model", "gpt2", "--target", "q_proj"], "--target: Target modules ['q_proj'] not found in the base model"),
        (["--model", "gpt2", "--layers", "0,x"], "--layers: expected layer numbers"),
        (["--model", "gpt2", "--layers", "12", "--target", "c_attn"], "--layers: gpt2 has layers 0 to 11, got 12"),
        (["--model", "gpt2", "--bias", "some"], "invalid choice: 'some'"),
        ([], "one of the arguments --model --config is required"),
    ],
)
def test_params_bad_input_is_one_line_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["params", *argv], capsys)
    assert code == 2 and out == ""
    assert err.startswith("loralens: error: ") and err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize(
    "content,message",
    [
        ("{oops", "not valid JSON"),
        ('{"model_type": "llama"}', "missing field 'hidden_size'"),
        ('{"model_type": "mamba"}', "unsupported model_type 'mamba'; supported: llama, mistral, mixtral, qwen2"),
    ],
)
def test_params_bad_config_file(tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    code, _, err = run(["params", "--config", str(path)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"loralens: error: {path}: " in err and message in err


def test_params_entry_point_has_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "loralens", "params", "--model", "nope"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("loralens: error: model: unknown model 'nope'")
