"""Adapters against PEFT and transformers themselves: reading, resizing, writing and merging real adapters.

The torch-free adapter tests (tests/adapters/) compare with fixtures PEFT wrote; these load the results back into
PEFT and transformers live.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from adapter_helpers import BASE_OF, FIXTURES, tree_digest, truncated
from hypothesis import given
from hypothesis import strategies as st
from peft import PeftModel
from peft.utils.other import get_pattern_key
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from loralens.adapters import (
    adapter_to_bytes,
    load_adapter,
    merge_adapter,
    resize_adapter,
    sample_adapter_path,
    write_adapter,
)
from loralens.adapters.safetensors_io import load_arrays, save_arrays
from loralens.core.peft_config import pattern_key


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["rslora", "patterns", "gpt2", "dora"])
def test_rank_alpha_scaling_match_a_live_peft_model(name: str) -> None:
    adapter = load_adapter(FIXTURES / name)
    base = AutoModelForCausalLM.from_pretrained(FIXTURES / BASE_OF[name], dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, FIXTURES / name)
    for module in adapter.modules:
        layer = peft_model.base_model.model.get_submodule(module.name)
        assert module.r == layer.r["default"], module.name
        assert module.alpha == layer.lora_alpha["default"], module.name
        assert module.scaling == pytest.approx(layer.scaling["default"], rel=1e-15), module.name
        assert module.fan_in_fan_out == bool(getattr(layer, "fan_in_fan_out", False))
        if module.magnitude is not None:
            np.testing.assert_array_equal(module.magnitude,
                                          layer.lora_magnitude_vector["default"].weight.detach().numpy())
    assert {m.r for m in adapter.modules} >= ({2, 4, 8} if name == "patterns" else set())


@given(st.lists(st.sampled_from(["q_proj", "v_proj", "layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj",
                                 "self_attn.q_proj", "layers.1.*.q_proj", "proj", "embed_tokens"]),
                max_size=4, unique=True),
       st.sampled_from(["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj",
                        "model.layers.10.self_attn.v_proj", "model.embed_tokens", "model.layers.1.mlp.up_proj"]))
def test_pattern_matching_is_peft_s(keys: list[str], path: str) -> None:
    ours = pattern_key(keys, path)
    assert (ours if ours is not None else path) == get_pattern_key(keys, path)


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["patterns", "bf16", "dora"])
def test_write_adapter_round_trips_and_peft_loads_it(tmp_path: Path, name: str) -> None:
    adapter = load_adapter(FIXTURES / name)
    before = tree_digest(FIXTURES / name)
    out = write_adapter(adapter, tmp_path / "copy")
    assert tree_digest(FIXTURES / name) == before
    # same tensors, same dtypes, byte for byte
    from safetensors import safe_open

    with safe_open(FIXTURES / name / "adapter_model.safetensors", "pt") as f, \
            safe_open(out / "adapter_model.safetensors", "pt") as g:
        assert set(f.keys()) == set(g.keys())
        for key in f.keys():
            assert torch.equal(f.get_tensor(key), g.get_tensor(key)), key
    assert json.loads((out / "adapter_config.json").read_text()) == adapter.config
    files = adapter_to_bytes(adapter)
    assert files["adapter_model.safetensors"] == (out / "adapter_model.safetensors").read_bytes()
    base = AutoModelForCausalLM.from_pretrained(FIXTURES / BASE_OF[name], dtype=torch.float32)
    PeftModel.from_pretrained(base, out)  # loads without complaint


@pytest.mark.oracle
def test_peft_loads_the_shipped_sample_and_agrees_on_every_delta() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=128, intermediate_size=256, num_hidden_layers=8,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=False)
    peft_model = PeftModel.from_pretrained(LlamaForCausalLM(config), sample_adapter_path())
    adapter = load_adapter(sample_adapter_path())
    for module in adapter.modules:
        layer = peft_model.base_model.model.get_submodule(module.name)
        expected = layer.get_delta_weight("default").double().numpy()
        np.testing.assert_allclose(module.delta_weight(), expected, rtol=1e-5, atol=1e-7 * np.abs(expected).max())
        assert module.scaling == layer.scaling["default"]


@pytest.mark.oracle
@pytest.mark.parametrize("name, kwargs", [("plain", {"rank": 2}), ("rslora", {"energy": 0.9}),
                                          ("patterns", {"rank": 3}), ("gpt2", {"energy": 0.97}),
                                          ("dora", {"rank": 1}), ("bf16", {"rank": 2})])
def test_peft_loads_the_resized_adapter_and_gets_the_truncated_svd(tmp_path: Path, name: str, kwargs: dict) -> None:
    original = load_adapter(FIXTURES / name)
    resized = resize_adapter(original, **kwargs)
    out = write_adapter(resized, tmp_path / "small")
    base = AutoModelForCausalLM.from_pretrained(FIXTURES / BASE_OF[name], dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, out)
    # bf16 storage rounds each factor to 8 significant bits
    rtol = 2e-2 if name == "bf16" else 1e-5
    for module, report in zip(original.modules, resized.modules, strict=True):
        k = report.r_after
        expected = truncated(module.delta_weight(), k)  # float64 full SVD of the original ΔW (out, in)
        layer = peft_model.base_model.model.get_submodule(module.name)
        assert layer.r["default"] == k
        got = layer.get_delta_weight("default").double().numpy()
        if module.fan_in_fan_out or module.kind == "embedding":
            got = got.T
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=0, atol=rtol * scale, err_msg=module.name)
        assert layer.scaling["default"] == pytest.approx(module.scaling, rel=1e-12)
        s = np.linalg.svd(module.delta_weight(), compute_uv=False)[: module.r]
        assert report.error == pytest.approx(np.linalg.norm(module.delta_weight() - expected) / np.linalg.norm(s),
                                             rel=1e-6, abs=1e-12)
        assert report.energy_kept == pytest.approx(np.sum(s[:k] ** 2) / np.sum(s**2), rel=1e-9)


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["plain", "gpt2", "dora"])
def test_transformers_loads_the_merged_model_and_it_equals_peft_s(tmp_path: Path, name: str) -> None:
    base = FIXTURES / (BASE_OF[name] + ("_sharded" if name == "plain" else ""))
    merge_adapter(FIXTURES / name, base, tmp_path / "m")
    ours = AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.float32).state_dict()
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), FIXTURES / name)
    theirs = peft.merge_and_unload().state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-6, atol=1e-7, msg=key)


@pytest.mark.parametrize("dtype", ["BF16", "F16"])
def test_16_bit_base_stays_16_bit_and_rounds_like_torch(tmp_path: Path, dtype: str) -> None:
    base = tmp_path / "base"
    base.mkdir()
    arrays = load_arrays(FIXTURES / "base_llama" / "model.safetensors")
    save_arrays(base / "model.safetensors", arrays, {k: dtype for k in arrays})
    merge_adapter(FIXTURES / "plain", base, tmp_path / "m")
    torch_dtype = torch.bfloat16 if dtype == "BF16" else torch.float16
    with safe_open(base / "model.safetensors", "pt") as f, safe_open(tmp_path / "m" / "model.safetensors", "pt") as g:
        for module in load_adapter(FIXTURES / "plain").modules:
            key = module.name + ".weight"
            w = f.get_tensor(key)
            delta = torch.from_numpy(module.b) @ torch.from_numpy(module.a) * module.scaling
            expected = (w.float() + delta).to(torch_dtype)  # PEFT: weight.data += delta (one rounding)
            got = g.get_tensor(key)
            assert got.dtype == torch_dtype
            assert torch.equal(got, expected), key
