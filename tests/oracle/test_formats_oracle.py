"""Formats, convert and combine against PEFT itself: PEFT's add_weighted_adapter on the tiny LLaMA fixtures, and
PEFT loading what loralens wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from adapter_helpers import FIXTURES
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from transformers import AutoModelForCausalLM

from loralens.adapters import load_adapter, write_adapter
from loralens.adapters.combine import combine_adapters
from loralens.adapters.convert import convert

W = [0.7, -0.4]


def base() -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(FIXTURES / "base_llama", dtype=torch.float32)


def peft_deltas(model: PeftModel, adapter: str) -> dict[str, np.ndarray]:
    """ΔW of every LoRA layer holding ``adapter``, in (out, in) orientation (embeddings transposed back)."""
    out = {}
    for name, layer in model.base_model.model.named_modules():
        if isinstance(layer, LoraLayer) and (adapter in layer.lora_A or adapter in layer.lora_embedding_A):
            delta = layer.get_delta_weight(adapter).detach().double().numpy()
            out[name] = delta.T if adapter in layer.lora_embedding_A else delta
    return out


def peft_combined(names: list[str], method: str, rank: int | None) -> PeftModel:
    model = PeftModel.from_pretrained(base(), FIXTURES / names[0], adapter_name="a0")
    for i, name in enumerate(names[1:], 1):
        model.load_adapter(FIXTURES / name, adapter_name=f"a{i}")
    kwargs = {"svd_rank": rank} if rank else {}
    model.add_weighted_adapter([f"a{i}" for i in range(len(names))], W, "c", combination_type=method, **kwargs)
    return model


@pytest.mark.oracle
@pytest.mark.parametrize("names,method,rank", [
    (["plain", "bf16"], "linear", None),
    (["plain", "bf16"], "cat", None),
    (["plain", "patterns"], "cat", None),
    (["plain", "bf16"], "svd", 3),
    (["plain", "patterns"], "svd", None),
])
def test_combine_matches_add_weighted_adapter(tmp_path: Path, names: list[str], method: str, rank: int | None) -> None:
    model = peft_combined(names, method, rank)
    theirs = peft_deltas(model, "c")
    ours = combine_adapters([load_adapter(FIXTURES / n) for n in names], W, method=method, rank=rank)
    config = model.peft_config["c"]
    assert ours.adapter.config["r"] == config.r and ours.adapter.config["lora_alpha"] == config.lora_alpha
    assert set(ours.adapter.config["target_modules"]) == set(config.target_modules)
    ours_by = {m.name: m for m in ours.adapter.modules}
    assert set(ours_by) == set(theirs)
    for name, delta in theirs.items():
        np.testing.assert_allclose(ours_by[name].delta_weight(), delta, atol=2e-6, err_msg=name)
    if method != "svd":  # linear and cat: the same factors, not only the same product
        for name, layer in model.base_model.model.named_modules():
            if isinstance(layer, LoraLayer) and "c" in layer.lora_A:
                np.testing.assert_allclose(ours_by[name].a, layer.lora_A["c"].weight.detach().numpy(), atol=1e-6)
                np.testing.assert_allclose(ours_by[name].b, layer.lora_B["c"].weight.detach().numpy(), atol=1e-6)
    # what loralens wrote loads in PEFT with the same ΔW
    out = write_adapter(ours.adapter, tmp_path / "combined")
    loaded = PeftModel.from_pretrained(base(), out, adapter_name="x")
    for name, delta in peft_deltas(loaded, "x").items():
        np.testing.assert_allclose(delta, theirs[name], atol=2e-6, err_msg=name)


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["plain", "bf16"])
def test_peft_to_kohya_to_peft_loads_in_peft_with_the_same_delta(tmp_path: Path, name: str) -> None:
    original = PeftModel.from_pretrained(base(), FIXTURES / name, adapter_name="o")
    kohya = write_adapter(convert(load_adapter(FIXTURES / name), "kohya").adapter, tmp_path / "k.safetensors")
    back = write_adapter(convert(load_adapter(kohya), "peft").adapter, tmp_path / "p")
    loaded = PeftModel.from_pretrained(base(), back, adapter_name="b")
    theirs, ours = peft_deltas(original, "o"), peft_deltas(loaded, "b")
    assert set(ours) == set(theirs)
    for module, delta in theirs.items():
        np.testing.assert_array_equal(ours[module], delta)


@pytest.mark.oracle
def test_bare_weights_load_in_peft_as_peft_s_default_alpha(tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes((FIXTURES / "plain" / "adapter_model.safetensors").read_bytes())
    out = write_adapter(load_adapter(folder), tmp_path / "peft")
    from peft import LoraConfig

    assert LoraConfig().lora_alpha == 8  # the default loralens assumes, from PEFT itself
    loaded = PeftModel.from_pretrained(base(), out, adapter_name="x")
    for layer in loaded.base_model.model.modules():
        if isinstance(layer, LoraLayer) and "x" in layer.lora_A:
            assert layer.lora_alpha["x"] == 8


@pytest.mark.oracle
def test_extracted_adapter_loads_in_peft_and_merges_back_to_tuned(tmp_path: Path) -> None:
    from formats_helpers import BASE, tuned_model

    from loralens.adapters.extract import extract_lora

    tuned = tuned_model(tmp_path)
    result = extract_lora(BASE, tuned, rank=3)
    out = write_adapter(result.adapter, tmp_path / "lora")
    model = PeftModel.from_pretrained(base(), out, adapter_name="x")
    ours = {m.name: m for m in result.adapter.modules}
    for name, delta in peft_deltas(model, "x").items():
        np.testing.assert_allclose(delta, ours[name].delta_weight(), atol=1e-6)
    merged = model.merge_and_unload().state_dict()
    target = AutoModelForCausalLM.from_pretrained(tuned, dtype=torch.float32).state_dict()
    start = base().state_dict()
    for report in result.modules:
        key = report.name + ".weight"
        d = (target[key] - start[key]).double()
        err = float(torch.linalg.norm(merged[key].double() - target[key].double()) / torch.linalg.norm(d))
        assert err == pytest.approx(report.error, rel=1e-2, abs=1e-5), key
