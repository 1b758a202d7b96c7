"""The formats commands end to end: convert, combine, extract, and inspect / resize on non-PEFT files; every
refusal is one line on stderr with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import FIXTURES
from formats_helpers import BASE, kohya_file, rand, tuned_model
from safetensors.numpy import save_file

from loralens.adapters import load_adapter
from loralens.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_and_resize_a_kohya_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kohya_file(tmp_path / "lora.safetensors")
    code, out, _ = run(capsys, "inspect", tmp_path / "lora.safetensors")
    assert code == 0 and "format        kohya: kohya sd-scripts layout" in out
    code, out, _ = run(capsys, "inspect", tmp_path / "lora.safetensors", "--json")
    assert json.loads(out)["summary"]["format"] == "kohya"
    code, out, _ = run(capsys, "resize", tmp_path / "lora.safetensors", "--rank", "2", "-o", tmp_path / "s.safetensors")
    assert code == 0 and "(kohya)" in out
    assert load_adapter(tmp_path / "s.safetensors").format == "kohya"
    code, _, err = run(capsys, "resize", tmp_path / "lora.safetensors", "--rank", "2", "-o", tmp_path / "s.safetensors")
    assert code == 1 and err.count("\n") == 1 and "already exists" in err


def test_convert_reports_and_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kohya_file(tmp_path / "lora.safetensors")
    code, _, err = run(capsys, "convert", tmp_path / "lora.safetensors", "--to", "peft", "-o", tmp_path / "p")
    assert code == 1 and err.count("\n") == 1 and "pass --component NAME" in err and not (tmp_path / "p").exists()
    code, out, _ = run(capsys, "convert", tmp_path / "lora.safetensors", "--to", "peft", "--component",
                       "text_encoder", "-o", tmp_path / "p", "--json")
    report = json.loads(out)
    assert code == 0 and report["to"] == "peft" and len(report["dropped"]) == 3 and report["tensors_written"] == 2
    code, out, _ = run(capsys, "convert", FIXTURES / "plain", "--to", "kohya", "-o", tmp_path / "k.safetensors")
    assert code == 0 and "lora_te_model_layers_0_self_attn_q_proj" in out
    loha = tmp_path / "loha.safetensors"
    save_file({"lora_unet_x.hada_w1_a": rand(8, 4)}, str(loha))
    code, _, err = run(capsys, "convert", loha, "--to", "peft", "-o", tmp_path / "x")
    assert code == 1 and err == (f"loralens: error: {loha}: lora_unet_x.hada_w1_a: this is a LyCORIS LoHa file; "
                                 "loralens reads LoRA factors only\n")
    code, _, err = run(capsys, "inspect", tmp_path / "lora.safetensors", "--alpha", "4")
    assert code == 2 and err.count("\n") == 1 and "--alpha" in err


def test_combine_and_extract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "combine", FIXTURES / "plain", FIXTURES / "bf16", "--weights", "0.5", "0.5",
                       "--method", "svd", "--rank", "2", "-o", tmp_path / "c", "--json")
    report = json.loads(out)
    assert code == 0 and report["r"] == 2 and all(0 < m["energy_kept"] <= 1 for m in report["modules"])
    assert load_adapter(tmp_path / "c").config["lora_alpha"] == 2
    code, _, err = run(capsys, "combine", FIXTURES / "plain", FIXTURES / "bf16", "--weights", "1", "-o",
                       tmp_path / "d")
    assert code == 2 and "2 weights" not in err and "1 weights for 2 adapters" in err
    tuned = tuned_model(tmp_path)
    code, out, _ = run(capsys, "extract", "--base", BASE, "--tuned", tuned, "--rank", "3", "-o", tmp_path / "e")
    assert code == 0 and "4 modules extracted" in out
    extracted = load_adapter(tmp_path / "e")
    assert extracted.config["r"] == 3 and np.isfinite(extracted.modules[0].a).all()


def test_export_gguf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", "gguf", FIXTURES / "plain", "--base-config",
                       FIXTURES / "base_llama" / "config.json", "-o", tmp_path / "a.gguf")
    assert code == 0 and "llama.cpp LoRA for llama, alpha 8" in out and (tmp_path / "a.gguf").is_file()
    code, _, err = run(capsys, "export", "gguf", FIXTURES / "patterns", "--base-config",
                       FIXTURES / "base_llama" / "config.json", "-o", tmp_path / "b.gguf")
    assert code == 1 and err.count("\n") == 1 and "embeddings or lm_head" in err


def test_combine_ties_and_the_refused_dare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "combine", FIXTURES / "plain", FIXTURES / "plain", "--weights", "0.5", "0.5",
                       "--method", "ties", "--density", "0.4", "-o", tmp_path / "t")
    assert code == 0 and "ties of 2 adapters" in out
    code, _, err = run(capsys, "combine", FIXTURES / "plain", FIXTURES / "plain", "--weights", "1", "1",
                       "--method", "dare_linear", "--density", "0.4", "-o", tmp_path / "d")
    assert code != 0 and "torch.bernoulli" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()
    code, _, err = run(capsys, "combine", FIXTURES / "plain", FIXTURES / "plain", "--weights", "1", "1",
                       "--density", "0.4", "-o", tmp_path / "s")
    assert code != 0 and "--density" in err and not (tmp_path / "s").exists()
