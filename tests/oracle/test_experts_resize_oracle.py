"""Resize of LoRA on fused MoE experts (PEFT's target_parameters / ParamWrapper), against PEFT: the resized adapter
loads with PeftModel.from_pretrained, every wrapper gets the rank and scaling loralens wrote (rank_pattern keys
name the parameter path PEFT matches), and its get_delta_weight equals the float64 truncated SVD of each expert's
ΔW."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from loralens.adapters import load_adapter, resize_adapter, write_adapter
from loralens.cli import main

pytestmark = pytest.mark.oracle


def _mixtral():
    from transformers import MixtralConfig, MixtralForCausalLM

    config = MixtralConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                           num_attention_heads=4, num_key_value_heads=2, num_local_experts=3, num_experts_per_tok=2)
    return lambda: MixtralForCausalLM(config)


def _qwen3_moe():
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    config = Qwen3MoeConfig(vocab_size=64, hidden_size=32, intermediate_size=64, moe_intermediate_size=24,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                            num_experts=4, num_experts_per_tok=2, decoder_sparse_step=1, mlp_only_layers=[])
    return lambda: Qwen3MoeForCausalLM(config)


def _save(tmp: Path, build, lora: dict) -> Path:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft = get_peft_model(build(), LoraConfig(init_lora_weights=False, **lora))
        peft.save_pretrained(tmp / "moe")
    return tmp / "moe"


def _wrappers(peft: PeftModel) -> dict[str, torch.nn.Module]:
    return {name.removeprefix("base_model.model."): m for name, m in peft.named_modules()
            if type(m).__name__ == "ParamWrapper"}


def _truncated(delta: np.ndarray, k: int) -> np.ndarray:
    u, s, vt = np.linalg.svd(delta, full_matrices=False)
    return (u[:, :k] * s[:k]) @ vt[:k]


@pytest.mark.parametrize("build, lora, target", [
    (_mixtral, dict(r=4, lora_alpha=8, target_modules=["q_proj"],
                    target_parameters=["experts.gate_up_proj", "experts.down_proj"]), dict(rank=2)),
    (_mixtral, dict(r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj"],
                    target_parameters=["experts.down_proj"], rank_pattern={"q_proj": 3}), dict(energy=0.8)),
    (_qwen3_moe, dict(r=5, lora_alpha=16, target_modules=["o_proj"],
                      target_parameters=["mlp.experts.gate_up_proj", "mlp.experts.down_proj"],
                      rank_pattern={"layers.1.mlp.experts.down_proj": 3}), dict(energy=0.7)),
], ids=["mixtral-rank", "mixtral-rslora-energy", "qwen3_moe-pattern-energy"])
def test_resized_experts_load_in_peft_with_the_truncated_svd_per_expert(tmp_path: Path, build, lora: dict,
                                                                       target: dict) -> None:
    build = build()
    source = _save(tmp_path, build, lora)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = _wrappers(PeftModel.from_pretrained(build(), source))
    adapter = load_adapter(source)
    resized = resize_adapter(adapter, **target)
    out = write_adapter(resized, tmp_path / "out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        after = _wrappers(PeftModel.from_pretrained(build(), out))
    assert before.keys() == after.keys() and before
    ranks = {m.name: m.r_after for m in resized.modules}
    changed = 0
    for stem, wrapper in after.items():
        old = before[stem].get_delta_weight("default").detach().double().numpy()  # (E, ·, ·)
        new = wrapper.get_delta_weight("default").detach().double().numpy()
        k = wrapper.r["default"]
        assert {ranks[f"{stem}[{e}]"] for e in range(old.shape[0])} == {k}  # what loralens reported, PEFT loaded
        assert wrapper.scaling["default"] == pytest.approx(before[stem].scaling["default"], rel=1e-12)
        changed += k < before[stem].r["default"]
        for e in range(old.shape[0]):
            expected = _truncated(old[e], k)
            np.testing.assert_allclose(new[e], expected, rtol=0, atol=2e-6 * np.abs(old[e]).max())
            if "energy" in target:  # the smallest shared rank keeping the energy in every expert of the wrapper
                s = np.linalg.svd(old[e], compute_uv=False)
                assert np.sum(s[:k] ** 2) / np.sum(s**2) >= target["energy"] - 1e-9
    assert changed  # the case really cuts something
    assert main(["inspect", str(out)]) == 0


def test_resize_cli_on_experts_writes_a_config_peft_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _save(tmp_path, _mixtral(), dict(r=4, target_modules=["q_proj"],
                                               target_parameters=["experts.gate_up_proj", "experts.down_proj"]))
    assert main(["resize", str(source), "--rank", "3", "-o", str(tmp_path / "o")]) == 0
    config = json.loads((tmp_path / "o" / "adapter_config.json").read_text())
    assert config["r"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrappers = _wrappers(PeftModel.from_pretrained(_mixtral()(), tmp_path / "o"))
    assert {w.parameter_name: w.r["default"] for w in wrappers.values()} == {"gate_up_proj": 3, "down_proj": 3}


def test_wrappers_whose_parameters_differ_in_rank_pattern_are_refused_by_name(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Which of two parameters of one module a nested ParamWrapper holds is not in the file: with different
    rank_pattern values for them, each of which fits the rows of lora_A (E·r), loralens cannot tell each wrapper's
    r, so it reads the rest and names them (PEFT saves r=2 for gate_up_proj, 3 experts: 6 rows, which r=3 fits too,
    as 2 experts)."""
    source = _save(tmp_path, _mixtral(), dict(r=3, target_modules=["q_proj"], rank_pattern={"gate_up_proj": 2},
                                               target_parameters=["experts.gate_up_proj", "experts.down_proj"]))
    adapter = load_adapter(source)
    assert [m.name for m in adapter.modules] == ["model.layers.0.self_attn.q_proj"]
    # down_proj (r=3, 9 rows, which r=2 does not fit) is told apart; gate_up_proj (6 rows) is not
    assert {m.name for m in adapter.experts} == {f"model.layers.0.mlp.experts[{e}]" for e in range(3)}
    assert {m.parameters_wrapped for m in adapter.experts} == {("model.layers.0.mlp.experts.down_proj",)}
    refused = [u for u in adapter.unsupported if "values differ" in u.reason]
    assert [u.name for u in refused] == ["model.layers.0.mlp.experts.base_layer"]
    assert main(["resize", str(source), "--rank", "2", "-o", str(tmp_path / "o")]) == 1
    assert "cannot resize module 'model.layers.0.mlp.experts.base_layer'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_merge_with_a_rank_pattern_on_one_expert_parameter_equals_merge_and_unload(tmp_path: Path) -> None:
    """rank_pattern on a parameter path (down_proj r=2, gate_up_proj r=5, 3 experts: 6 and 15 rows, each fitting
    one r only): read with PEFT's r and alpha per wrapper, merged tensor for tensor as merge_and_unload."""
    from safetensors.torch import load_file, save_file
    from transformers import MixtralConfig, MixtralForCausalLM

    from loralens.adapters import merge_adapter

    config = MixtralConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                           num_attention_heads=4, num_key_value_heads=2, num_local_experts=3, num_experts_per_tok=2)
    torch.manual_seed(0)
    base = MixtralForCausalLM(config)
    (tmp_path / "base").mkdir()
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, tmp_path / "base" / "model.safetensors")
    source = _save(tmp_path, lambda: base, dict(r=5, lora_alpha=10, target_modules=["q_proj"],
                                                rank_pattern={"down_proj": 2}, alpha_pattern={"down_proj": 3},
                                                target_parameters=["experts.gate_up_proj", "experts.down_proj"]))
    adapter = load_adapter(source)
    assert not [u for u in adapter.unsupported if not u.name.endswith(("experts", "experts.base_layer"))]
    assert {(m.r, m.alpha) for m in adapter.experts} == {(5, 10), (2, 3)}
    merge_adapter(source, tmp_path / "base", tmp_path / "merged")
    ours = load_file(tmp_path / "merged" / "model.safetensors")
    fresh = MixtralForCausalLM(config)
    fresh.load_state_dict(load_file(tmp_path / "base" / "model.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = PeftModel.from_pretrained(fresh, source).merge_and_unload().state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
