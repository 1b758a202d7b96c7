"""``loralens memory`` and ``loralens methods``: tables, one JSON object, one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest

from loralens.cli import main
from loralens.core.architectures import get_architecture
from loralens.core.memory import estimate_memory
from loralens.core.methods import compare_methods
from loralens.core.peft_config import LoraConfigSpec


def run(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_memory_json_matches_the_library(capsys) -> None:  # noqa: ANN001
    code, out, _ = run(capsys, "memory", "--model", "llama-2-7b", "--method", "qlora", "--batch-size", "4",
                       "--seq-len", "1024", "--gradient-checkpointing", "--rank", "16", "--target", "all-linear",
                       "--json")
    assert code == 0
    data = json.loads(out)
    expected = estimate_memory(get_architecture("llama-2-7b"), LoraConfigSpec(r=16, target_modules="all-linear"),
                               method="qlora", batch_size=4, seq_len=1024, gradient_checkpointing=True)
    assert data["method"] == "qlora" and data["base"] == "nf4"
    assert data["per_device"] == expected.per_device.as_dict()
    assert set(data["per_device"]) == {"weights", "gradients", "optimizer", "activations", "overhead", "total"}
    assert sum(v for k, v in data["per_device"].items() if k != "total") == data["per_device"]["total"]


def test_memory_sharding_divides(capsys) -> None:  # noqa: ANN001
    _, one, _ = run(capsys, "memory", "--model", "gpt2", "--method", "full", "--json")
    _, four, _ = run(capsys, "memory", "--model", "gpt2", "--method", "full", "--gpus", "4", "--sharding", "zero2",
                     "--json")
    a, b = json.loads(one)["per_device"], json.loads(four)["per_device"]
    assert b["optimizer"] == -(-a["optimizer"] // 4) and b["gradients"] == -(-a["gradients"] // 4)
    assert b["weights"] == a["weights"]


def test_memory_table(capsys) -> None:  # noqa: ANN001
    code, out, _ = run(capsys, "memory", "--model", "mistral-7b", "--method", "full")
    assert code == 0
    for word in ("weights", "gradients", "optimizer", "activations", "overhead", "total", "fits on one card"):
        assert word in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "-1"], "--batch-size: must be from 1"),
        (["--batch-size", "two"], "--batch-size: must be a whole number, got 'two'"),
        (["--seq-len", "0"], "--seq-len: must be from 1"),
        (["--gpus", "0"], "--gpus: must be from 1"),
        (["--sharding", "zero3"], "--sharding: zero3 shards over several GPUs"),
        (["--method", "full", "--base", "nf4"], "--base: full fine-tuning trains every weight"),
        (["--optimizer", "lion"], "invalid choice: 'lion'"),
        (["--rank", "0"], "--rank: must be at least 1"),
        (["--target", "nope"], "--target: Target modules ['nope'] not found"),
    ],
)
def test_memory_bad_input_is_one_line_exit_2(capsys, argv: list[str], message: str) -> None:  # noqa: ANN001
    code, out, err = run(capsys, "memory", "--model", "llama-2-7b", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_memory_unknown_model_suggests(capsys) -> None:  # noqa: ANN001
    code, _, err = run(capsys, "memory", "--model", "llama-2-7", "--method", "full")
    assert code == 2 and "did you mean" in err and err.count("\n") == 1


def test_methods_json_matches_the_library(capsys) -> None:  # noqa: ANN001
    code, out, _ = run(capsys, "methods", "--model", "Qwen/Qwen2.5-0.5B", "--rank", "4", "--target", "q_proj,v_proj",
                       "--virtual-tokens", "10", "--json")
    assert code == 0
    data = json.loads(out)
    spec = LoraConfigSpec(r=4, target_modules=("q_proj", "v_proj"))
    expected = compare_methods(get_architecture("qwen2.5-0.5b"), spec, num_virtual_tokens=10)
    assert data["methods"] == [m.as_dict() for m in expected]
    assert [m["key"] for m in data["methods"]][:4] == ["full", "lora", "rslora", "dora"]


def test_methods_table_and_errors(capsys) -> None:  # noqa: ANN001
    code, out, _ = run(capsys, "methods", "--model", "gpt2")
    assert code == 0 and "VeRA" in out and "Prefix tuning" in out and "BitFit" in out
    code, _, err = run(capsys, "methods", "--model", "gpt2", "--virtual-tokens", "0")
    assert code == 2 and err.startswith("loralens: error: --virtual-tokens: must be from 1")
