"""Every adapter kind PEFT saves, against PEFT: Conv1d/2d/3d LoRA and DoRA (spectra of the reshaped ΔW, resize
loaded back by PEFT, merge vs merge_and_unload), named adapters in subfolders, keys with the adapter name inside,
and LoRA on fused MoE experts (target_parameters) reported by name while the rest is read."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from adapter_helpers import FIXTURES, truncated
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModelForCausalLM

from loralens.adapters import inspect_adapter, load_adapter, merge_adapter, resize_adapter, write_adapter
from loralens.adapters.safetensors_io import load_arrays, save_arrays
from loralens.cli import main
from loralens.errors import AdapterError

pytestmark = pytest.mark.oracle


class Convs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(3, 6, 3)
        self.c2 = nn.Conv2d(3, 8, (3, 2))
        self.c3 = nn.Conv3d(2, 4, 2)
        self.lin = nn.Linear(4, 5)


def _save(tmp: Path, *, dora: bool, dtype: torch.dtype = torch.float32) -> tuple[Path, Path]:
    torch.manual_seed(0)
    model = Convs().to(dtype)
    (tmp / "base").mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "base" / "model.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft = get_peft_model(model, LoraConfig(r=3, lora_alpha=5, target_modules=["c1", "c2", "c3", "lin"],
                                                use_dora=dora, init_lora_weights=False))
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for _, param in peft.named_parameters():
                if param.requires_grad:
                    param.add_(torch.randn(param.shape, generator=gen).to(param.dtype) * 0.1)
        peft.save_pretrained(tmp / "adapter")
    return tmp / "base", tmp / "adapter"


def _peft(base: Path, adapter: Path, dtype: torch.dtype = torch.float32) -> PeftModel:
    model = Convs().to(dtype)
    model.load_state_dict(load_file(base / "model.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PeftModel.from_pretrained(model, adapter)


@pytest.mark.parametrize("dora", [False, True])
def test_conv_spectra_are_those_of_peft_s_reshaped_delta(tmp_path: Path, dora: bool) -> None:
    base, folder = _save(tmp_path, dora=dora)
    peft = _peft(base, folder)
    adapter = load_adapter(folder)
    assert {m.kind for m in adapter.modules} == {"conv1d", "conv2d", "conv3d", "linear"}
    for module, report in zip(adapter.modules, inspect_adapter(adapter).modules, strict=True):
        layer = peft.base_model.model.get_submodule(module.name)
        delta = layer.get_delta_weight("default").double().numpy()
        matrix = delta.reshape(delta.shape[0], -1)  # (out, in·prod(kernel))
        np.testing.assert_allclose(module.delta_weight(), matrix, rtol=1e-5, atol=1e-7 * np.abs(matrix).max())
        s = np.linalg.svd(matrix, compute_uv=False)[: module.r]
        np.testing.assert_allclose(report.singular_values, s, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("dora", [False, True])
def test_resized_conv_adapter_loads_in_peft_with_the_truncated_svd(tmp_path: Path, dora: bool) -> None:
    base, folder = _save(tmp_path, dora=dora)
    original = load_adapter(folder)
    out = write_adapter(resize_adapter(original, rank=2), tmp_path / "small")
    peft = _peft(base, out)
    for module in original.modules:
        layer = peft.base_model.model.get_submodule(module.name)
        assert layer.r["default"] == 2
        got = layer.get_delta_weight("default").double().numpy()
        expected = truncated(module.delta_weight(), 2)
        np.testing.assert_allclose(got.reshape(got.shape[0], -1), expected, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("dora", [False, True])
def test_conv_merge_equals_merge_and_unload(tmp_path: Path, dora: bool, dtype: torch.dtype) -> None:
    base, folder = _save(tmp_path, dora=dora, dtype=dtype)
    merge_adapter(folder, base, tmp_path / "merged")
    ours = load_file(tmp_path / "merged" / "model.safetensors")
    theirs = _peft(base, folder, dtype).merge_and_unload().state_dict()
    assert ours.keys() == theirs.keys()
    eps = torch.finfo(dtype).eps
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype
        # Conv products, DoRA norms and even this tiny 5x4 rank-3 Linear product are summed by torch in another
        # order (or with FMA, on AVX-512 machines) than by numpy: a few ulps. Bit-for-bit on real models is
        # test_adapters_merge_oracle.py.
        scale = theirs[key].abs().max().item()
        torch.testing.assert_close(ours[key], theirs[key], rtol=4 * eps, atol=4 * eps * scale, msg=key)


def test_named_adapters_are_listed_and_chosen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft = get_peft_model(Convs(), LoraConfig(r=2, target_modules=["lin"], init_lora_weights=False),
                              adapter_name="alpha")
        peft.add_adapter("beta", LoraConfig(r=3, target_modules=["lin", "c2"], init_lora_weights=False))
        peft.save_pretrained(tmp_path / "both")
    with pytest.raises(AdapterError, match=r"holds 2 named adapters \(alpha, beta\); choose one with --adapter"):
        load_adapter(tmp_path / "both")
    assert [m.r for m in load_adapter(tmp_path / "both", "beta").modules] == [3, 3]
    assert main(["inspect", str(tmp_path / "both"), "--adapter", "alpha", "--json"]) == 0
    assert [m["r"] for m in json.loads(capsys.readouterr().out)["modules"]] == [2]
    assert main(["inspect", str(tmp_path / "both"), "--adapter", "gamma"]) == 1
    assert "no adapter named 'gamma' here (it holds: alpha, beta)" in capsys.readouterr().err


def test_keys_with_the_adapter_name_inside_are_read(tmp_path: Path) -> None:
    """A raw PEFT state dict saved as is: lora_A.default.weight, lora_embedding_A.default, ..."""
    source = FIXTURES / "patterns"
    arrays = load_arrays(source / "adapter_model.safetensors")
    named = {}
    for key, value in arrays.items():
        for part in ("lora_A", "lora_B"):
            key = key.replace(f".{part}.weight", f".{part}.default.weight")
        for part in ("lora_embedding_A", "lora_embedding_B"):
            key = key.replace(f".{part}", f".{part}.default") if key.endswith(part) else key
        named[key] = value
    assert any(".default" in k for k in named) and named.keys() != arrays.keys()
    folder = tmp_path / "named"
    folder.mkdir()
    save_arrays(folder / "adapter_model.safetensors", named)
    (folder / "adapter_config.json").write_bytes((source / "adapter_config.json").read_bytes())
    ours, reference = load_adapter(folder), load_adapter(source)
    assert [m.name for m in ours.modules] == [m.name for m in reference.modules]
    for a, b in zip(ours.modules, reference.modules, strict=True):
        np.testing.assert_array_equal(a.delta_weight(), b.delta_weight())
    out = write_adapter(resize_adapter(ours, rank=2), tmp_path / "small")  # written under PEFT's own names
    model = AutoModelForCausalLM.from_pretrained(FIXTURES / "base_llama", dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft = PeftModel.from_pretrained(model, out)
    for module in ours.modules:
        assert peft.base_model.model.get_submodule(module.name).r["default"] == 2


def test_lora_on_fused_moe_experts_is_reported_by_name_and_the_rest_read(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    model = MixtralForCausalLM(MixtralConfig(vocab_size=64, hidden_size=32, intermediate_size=48,
                                             num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                                             num_local_experts=3, num_experts_per_tok=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False,
                                                target_parameters=["experts.gate_up_proj", "experts.down_proj"]))
        peft.save_pretrained(tmp_path / "moe")
    adapter = load_adapter(tmp_path / "moe")
    assert [m.name for m in adapter.modules] == ["model.layers.0.self_attn.q_proj"]
    assert {u.name for u in adapter.unsupported} == {"model.layers.0.mlp.experts",
                                                      "model.layers.0.mlp.experts.base_layer"}
    # each expert's ΔW and spectrum against PEFT's own ParamWrapper.get_delta_weight (E, ·, ·)
    report = {m.name: m for m in inspect_adapter(adapter).modules}
    wrappers = {"experts.base_layer": peft.base_model.model.model.layers[0].mlp.experts.base_layer,
                "experts": peft.base_model.model.model.layers[0].mlp.experts}
    for stem, wrapper in wrappers.items():
        delta = wrapper.get_delta_weight("default").detach().double().numpy()  # (E, out, in) or (E, in, out)
        stored = wrapper.get_param().shape
        for e in range(3):
            ours = next(m for m in adapter.experts if m.name == f"model.layers.0.mlp.{stem}[{e}]")
            theirs = delta[e] if delta[e].shape == (ours.out_features, ours.in_features) else delta[e].T
            assert delta[e].shape == tuple(stored[1:])
            np.testing.assert_allclose(ours.delta_weight(), theirs, rtol=1e-5, atol=1e-7 * np.abs(theirs).max())
            s = np.linalg.svd(theirs, compute_uv=False)[:4]
            np.testing.assert_allclose(report[ours.name].singular_values, s, rtol=1e-5, atol=1e-9)
    from safetensors import safe_open

    copy = write_adapter(adapter, tmp_path / "copy")  # written back whole: the fused factors too, byte for byte
    with safe_open(tmp_path / "moe" / "adapter_model.safetensors", "pt") as f, \
            safe_open(copy / "adapter_model.safetensors", "pt") as g:
        assert set(f.keys()) == set(g.keys())
        for key in f.keys():
            assert torch.equal(f.get_tensor(key), g.get_tensor(key)), key
    assert main(["inspect", str(tmp_path / "moe")]) == 0
    out = capsys.readouterr().out
    assert "module model.layers.0.mlp.experts: LoRA on a fused parameter" in out
    assert "model.layers.0.mlp.experts.base_layer[2]" in out  # resize: tests/oracle/test_experts_resize_oracle.py


@pytest.mark.parametrize("lora, save", [
    (dict(target_modules=["q_proj"], modules_to_save=["lm_head"]), {}),
    (dict(target_modules=["q_proj", "embed_tokens"]), {}),  # save_embedding_layers="auto" saves the whole matrix
    (dict(target_modules=["q_proj"], trainable_token_indices=[1, 2]), {}),
    (dict(target_modules=["q_proj"]), dict(save_embedding_layers=True)),
])
def test_inspect_reports_every_non_lora_tensor_with_its_share_of_the_file(tmp_path: Path, lora: dict,
                                                                         save: dict) -> None:
    from safetensors import safe_open
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        get_peft_model(model, LoraConfig(r=2, **lora)).save_pretrained(tmp_path / "a", **save)
    weights = tmp_path / "a" / "adapter_model.safetensors"
    with safe_open(weights, "pt") as f:  # the reference package's view of the file
        sizes = {k: f.get_tensor(k).numel() * f.get_tensor(k).element_size() for k in f.keys()}
    factors = {k for k in sizes if ".lora_" in k}
    report = inspect_adapter(load_adapter(tmp_path / "a"))
    assert {t.name: t.bytes for t in report.other_tensors} == {k: v for k, v in sizes.items() if k not in factors}
    total = weights.stat().st_size
    for t in report.other_tensors:
        assert t.share == pytest.approx(sizes[t.name] / total, rel=1e-12)
    assert report.other_tensors  # every case above saves something besides the factors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_fused_moe_experts_merge_equals_merge_and_unload(tmp_path: Path, dtype: torch.dtype) -> None:
    """A checkpoint holding the fused (E, ·, ·) parameters (the model's own state dict): merged expert by expert
    as PEFT's ParamWrapper.merge does (ΔW rounded to the dtype, then added), tensor for tensor."""
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    config = MixtralConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, num_local_experts=3, num_experts_per_tok=2)
    base = MixtralForCausalLM(config).to(dtype)
    state = {k: v.contiguous() for k, v in base.state_dict().items()}
    (tmp_path / "base").mkdir()
    save_file(state, tmp_path / "base" / "model.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False,
                                               target_parameters=["experts.gate_up_proj", "experts.down_proj"]))
        peft.save_pretrained(tmp_path / "moe")
    merge_adapter(tmp_path / "moe", tmp_path / "base", tmp_path / "merged")
    ours = load_file(tmp_path / "merged" / "model.safetensors")
    fresh = MixtralForCausalLM(config).to(dtype)
    fresh.load_state_dict(load_file(tmp_path / "base" / "model.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = PeftModel.from_pretrained(fresh, tmp_path / "moe").merge_and_unload().state_dict()
    assert ours.keys() == theirs.keys()
    assert not torch.equal(theirs["model.layers.1.mlp.experts.down_proj"], state["model.layers.1.mlp.experts.down_proj"])
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), (key, (ours[key].float() - theirs[key].float()).abs().max())


def test_experts_stored_apart_in_the_checkpoint_are_refused(tmp_path: Path) -> None:
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    base = MixtralForCausalLM(MixtralConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                                            num_attention_heads=4, num_key_value_heads=2, num_local_experts=3))
    base.save_pretrained(tmp_path / "base")  # transformers writes Mixtral's experts.N.w1/w2/w3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False,
                                        target_parameters=["experts.down_proj"])).save_pretrained(tmp_path / "moe")
    with pytest.raises(AdapterError, match="may store each expert apart"):
        merge_adapter(tmp_path / "moe", tmp_path / "base", tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
