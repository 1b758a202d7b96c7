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


def sd15_kohya_file(path: Path) -> None:
    """A kohya SD 1.5 LoRA (UNet attention, feed-forward, proj_in, a resnet conv and time_emb_proj, CLIP text
    encoder), each module with its own alpha."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(5)
    modules = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (32, 32, 4),
               "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_out_0": (32, 32, 4),
               "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_0_proj": (64, 32, 8),
               "lora_unet_mid_block_attentions_0_proj_in": (32, 32, 4),
               "lora_unet_up_blocks_1_resnets_0_time_emb_proj": (32, 16, 2),
               "lora_te_text_model_encoder_layers_0_self_attn_q_proj": (16, 16, 2),
               "lora_te_text_model_encoder_layers_0_mlp_fc1": (64, 16, 2)}
    tensors = {}
    for i, (stem, (out, inp, r)) in enumerate(modules.items()):
        tensors[f"{stem}.lora_down.weight"] = rng.standard_normal((r, inp)).astype(np.float32)
        tensors[f"{stem}.lora_up.weight"] = rng.standard_normal((out, r)).astype(np.float32)
        tensors[f"{stem}.alpha"] = np.array(r / (1 + i % 3), np.float32)
    tensors["lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight"] = rng.standard_normal((4, 6, 3, 3)).astype(
        np.float32)
    tensors["lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight"] = rng.standard_normal((10, 4, 1, 1)).astype(
        np.float32)
    tensors["lora_unet_down_blocks_0_resnets_0_conv1.alpha"] = np.array(1.0, np.float32)
    save_file(tensors, str(path))


@pytest.mark.oracle
def test_kohya_to_diffusers_names_and_alphas_match_diffusers_own_conversion(tmp_path: Path) -> None:
    """diffusers' StableDiffusionPipeline.lora_state_dict converts a kohya file (lora_conversion_utils) and its
    convert_*_to_peft give the module paths PEFT sees: loralens' names and alphas must be the same."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils.state_dict_utils import StateDictType, convert_state_dict_to_peft, convert_unet_state_dict_to_peft

    path = tmp_path / "sd15.safetensors"
    sd15_kohya_file(path)
    state, alphas = StableDiffusionPipeline.lora_state_dict(str(path))
    unet = convert_unet_state_dict_to_peft({k[5:]: v for k, v in state.items() if k.startswith("unet.")})
    te = convert_state_dict_to_peft({k[13:]: v for k, v in state.items() if k.startswith("text_encoder.")},
                                    original_type=StateDictType.DIFFUSERS_OLD)
    theirs: dict[str, dict[str, np.ndarray]] = {}
    for component, converted in (("unet", unet), ("text_encoder", te)):
        for key, tensor in converted.items():
            stem, role = key.rsplit(".lora_", 1)
            theirs.setdefault(f"{component}.{stem}", {})[role[0]] = tensor.numpy()

    def module_of(alpha_key: str) -> str:
        key = alpha_key[: -len(".alpha")]
        component, rest = key.split(".", 1)
        if rest.endswith(".down.weight"):  # the alpha of a legacy down tensor: convert that key's name
            probe = {rest: torch.zeros(1)}
            name = next(iter((convert_unet_state_dict_to_peft(probe) if component == "unet" else
                              convert_state_dict_to_peft(probe, original_type=StateDictType.DIFFUSERS_OLD))))
            return f"{component}.{name.rsplit('.lora_', 1)[0]}"
        return key

    their_alpha = {module_of(k): v for k, v in alphas.items()}
    ours = convert(load_adapter(path), "diffusers").adapter
    assert {m.name for m in ours.modules} == set(theirs) == set(their_alpha)
    for m in ours.modules:
        np.testing.assert_array_equal(m.a.reshape(theirs[m.name]["A"].shape), theirs[m.name]["A"])
        np.testing.assert_array_equal(m.b.reshape(theirs[m.name]["B"].shape), theirs[m.name]["B"])
        assert m.alpha == their_alpha[m.name], m.name


@pytest.mark.oracle
def test_diffusers_reads_the_metadata_loralens_writes(tmp_path: Path) -> None:
    """diffusers' own lora_state_dict returns the lora_adapter_metadata config; PEFT's LoraConfig built from it
    gives every module the rank and alpha loralens read from the kohya file."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils.other import get_pattern_key

    path = tmp_path / "sd15.safetensors"
    sd15_kohya_file(path)
    source = load_adapter(path)
    out = write_adapter(convert(source, "diffusers").adapter, tmp_path / "d.safetensors")
    state, _, metadata = StableDiffusionPipeline.lora_state_dict(str(out), return_lora_metadata=True)
    assert state and all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in state)
    names = dict(convert(source, "diffusers").report.mapped)
    for m in source.modules:
        component, inner = names[m.name].split(".", 1)
        config = LoraConfig(**{k.split(".", 1)[1]: v for k, v in metadata.items() if k.startswith(component + ".")})
        r_key = get_pattern_key(config.rank_pattern.keys(), inner)
        a_key = get_pattern_key(config.alpha_pattern.keys(), inner)
        r = config.rank_pattern.get(r_key, config.r)
        alpha = config.alpha_pattern.get(a_key, config.lora_alpha)
        assert (r, alpha) == (m.r, m.alpha), m.name
        assert inner in config.target_modules


def tiny_unet() -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=8, norm_num_groups=8)


@pytest.mark.oracle
def test_a_kohya_unet_lora_converted_to_diffusers_loads_in_diffusers_with_the_same_delta(tmp_path: Path) -> None:
    """A kohya LoRA on a tiny diffusers UNet (attention linears with their own alphas and ranks, a 3x3 resnet
    conv), converted by loralens to the diffusers layout, loaded by diffusers' own load_lora_adapter: every
    layer's ΔW (PEFT's get_delta_weight, with the scaling diffusers set) equals loralens' alpha/r · up @ down."""
    from safetensors.numpy import save_file

    unet = tiny_unet()
    rng = np.random.default_rng(7)
    tensors = {}
    chosen = [n for n, m in unet.named_modules() if isinstance(m, torch.nn.Linear) and "transformer_blocks" in n][:8]
    chosen.append("down_blocks.0.resnets.0.conv1")
    for i, name in enumerate(chosen):
        weight = unet.get_submodule(name).weight
        r = 2 + i % 3
        stem = "lora_unet_" + name.replace(".", "_")
        down_shape = (r, *weight.shape[1:]) if weight.dim() == 4 else (r, weight.shape[1])
        up_shape = (weight.shape[0], r, 1, 1) if weight.dim() == 4 else (weight.shape[0], r)
        tensors[f"{stem}.lora_down.weight"] = rng.standard_normal(down_shape).astype(np.float32)
        tensors[f"{stem}.lora_up.weight"] = rng.standard_normal(up_shape).astype(np.float32)
        tensors[f"{stem}.alpha"] = np.array([1.0, 3.0, 4.0][i % 3], np.float32)
    save_file(tensors, str(tmp_path / "kohya.safetensors"))
    source = load_adapter(tmp_path / "kohya.safetensors")
    out = write_adapter(convert(source, "diffusers").adapter, tmp_path / "lora")  # a folder, as diffusers saves
    # as pipelines call it (weight_name given: diffusers reads the safetensors metadata only then)
    unet.load_lora_adapter(str(out), weight_name="pytorch_lora_weights.safetensors", prefix="unet", adapter_name="x")
    by = {m.name.removeprefix("lora_unet_"): m for m in source.modules}
    for name in chosen:
        layer = unet.get_submodule(name)
        assert isinstance(layer, LoraLayer), name
        module = by[name.replace(".", "_")]
        assert layer.scaling["x"] == pytest.approx(module.scaling, rel=1e-12), name
        delta = layer.get_delta_weight("x").detach().double().numpy().reshape(module.out_features, -1)
        np.testing.assert_allclose(delta, module.delta_weight(), rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.oracle
def test_a_diffusers_file_without_alphas_loads_as_diffusers_scales_it(tmp_path: Path) -> None:
    """No metadata, no .alpha: diffusers gives every module scale 1, whatever its rank; loralens reads the same."""
    from safetensors.numpy import save_file

    unet = tiny_unet()
    rng = np.random.default_rng(8)
    names = ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
             "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k",
             "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v"]
    tensors = {}
    for i, name in enumerate(names):
        weight = unet.get_submodule(name).weight
        tensors[f"unet.{name}.lora_A.weight"] = rng.standard_normal((2 + 2 * i, weight.shape[1])).astype(np.float32)
        tensors[f"unet.{name}.lora_B.weight"] = rng.standard_normal((weight.shape[0], 2 + 2 * i)).astype(np.float32)
    (tmp_path / "d").mkdir()
    save_file(tensors, str(tmp_path / "d" / "pytorch_lora_weights.safetensors"))
    ours = {m.name: m for m in load_adapter(tmp_path / "d" / "pytorch_lora_weights.safetensors").modules}
    unet.load_lora_adapter(str(tmp_path / "d"), weight_name="pytorch_lora_weights.safetensors", prefix="unet",
                           adapter_name="x")
    for name in names:
        layer = unet.get_submodule(name)
        assert layer.scaling["x"] == ours[f"unet.{name}"].scaling == 1.0
        np.testing.assert_allclose(layer.get_delta_weight("x").detach().double().numpy(),
                                   ours[f"unet.{name}"].delta_weight(), rtol=1e-5, atol=1e-6)


@pytest.mark.oracle
def test_diffusers_own_legacy_conversion_of_a_kohya_file_reads_back_the_same(tmp_path: Path) -> None:
    """What diffusers' lora_state_dict makes of a kohya file (its legacy layout with network alphas), saved as a
    file, reads in loralens as the same modules, factors and alphas as the kohya file itself."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    path = tmp_path / "sd15.safetensors"
    sd15_kohya_file(path)
    state, alphas = StableDiffusionPipeline.lora_state_dict(str(path))
    save_file({**state, **{k: torch.tensor(v) for k, v in alphas.items()}}, str(tmp_path / "legacy.safetensors"))
    legacy = load_adapter(tmp_path / "legacy.safetensors")
    assert legacy.format == "diffusers-legacy"
    names = dict(convert(load_adapter(path), "diffusers").report.mapped)
    by = {m.name: m for m in legacy.modules}
    for m in load_adapter(path).modules:
        other = by[names[m.name]]
        assert (other.r, other.alpha, other.scaling) == (m.r, m.alpha, m.scaling), m.name
        np.testing.assert_array_equal(other.delta_weight(), m.delta_weight())


def _kohya_unet_file(unet: torch.nn.Module, path: Path) -> list[str]:
    """kohya factors for 4 attention linears and two 3x3 resnet convs of the tiny UNet, ranks and alphas mixed."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(11)
    chosen = [n for n, m in unet.named_modules() if isinstance(m, torch.nn.Linear) and "transformer_blocks" in n][:4]
    chosen += ["down_blocks.0.resnets.0.conv1", "up_blocks.1.resnets.0.conv2"]
    tensors = {}
    for i, name in enumerate(chosen):
        weight = unet.get_submodule(name).weight
        r = 2 + i % 3
        stem = "lora_unet_" + name.replace(".", "_")
        conv = weight.dim() == 4
        tensors[f"{stem}.lora_down.weight"] = rng.standard_normal((r, *weight.shape[1:]) if conv else
                                                                  (r, weight.shape[1])).astype(np.float32)
        tensors[f"{stem}.lora_up.weight"] = rng.standard_normal((weight.shape[0], r, 1, 1) if conv else
                                                                (weight.shape[0], r)).astype(np.float32)
        tensors[f"{stem}.alpha"] = np.array([1.0, 3.0, 4.0][i % 3], np.float32)
    save_file(tensors, str(path))
    return chosen


@pytest.mark.oracle
def test_a_kohya_conv_lora_converted_to_peft_loads_in_peft_with_the_same_delta(tmp_path: Path) -> None:
    """kohya 3x3 conv LoRAs (and linears) on a tiny diffusers UNet, converted by loralens to a PEFT adapter
    (Conv2d LoRA: lora_A (r, in, 3, 3), lora_B (out, r, 1, 1)), loaded by PeftModel.from_pretrained: each layer is
    a PEFT Conv2d/Linear LoRA layer with loralens' r and scaling and get_delta_weight equal to alpha/r · up @ down;
    and back to diffusers' own load_lora_adapter through --to diffusers from the PEFT adapter."""
    unet = tiny_unet()
    chosen = _kohya_unet_file(unet, tmp_path / "kohya.safetensors")
    source = load_adapter(tmp_path / "kohya.safetensors")
    converted = convert(source, "peft", component="unet")
    assert not converted.report.dropped
    out = write_adapter(converted.adapter, tmp_path / "peft")
    model = PeftModel.from_pretrained(tiny_unet(), out)
    by = {m.name.removeprefix("lora_unet_"): m for m in source.modules}
    for name in chosen:
        layer = model.base_model.model.get_submodule(name)
        assert isinstance(layer, LoraLayer), name
        module = by[name.replace(".", "_")]
        assert (layer.r["default"], layer.scaling["default"]) == (module.r, pytest.approx(module.scaling, rel=1e-12))
        if "conv" in name:
            assert type(layer).__name__ == "Conv2d" and layer.lora_A["default"].kernel_size == (3, 3)
        delta = layer.get_delta_weight("default").detach().double().numpy().reshape(module.out_features, -1)
        np.testing.assert_allclose(delta, module.delta_weight(), rtol=1e-5, atol=1e-5, err_msg=name)
    # the PEFT adapter to the diffusers layout, loaded by diffusers itself
    again = write_adapter(convert(load_adapter(out), "diffusers", component="unet").adapter, tmp_path / "d")
    unet2 = tiny_unet()
    unet2.load_lora_adapter(str(again), weight_name="pytorch_lora_weights.safetensors", prefix="unet",
                            adapter_name="x")
    for name in chosen:
        layer, module = unet2.get_submodule(name), by[name.replace(".", "_")]
        assert layer.scaling["x"] == pytest.approx(module.scaling, rel=1e-12), name
        delta = layer.get_delta_weight("x").detach().double().numpy().reshape(module.out_features, -1)
        np.testing.assert_allclose(delta, module.delta_weight(), rtol=1e-5, atol=1e-5, err_msg=name)



def _second_plain(tmp: Path, scale: float = 1.0) -> Path:
    """The plain fixture with other random factors (float32, same r and alpha): a second adapter to combine."""
    import shutil

    from loralens.adapters.safetensors_io import load_arrays, save_arrays

    out = tmp / "other"
    shutil.copytree(FIXTURES / "plain", out)
    rng = np.random.default_rng(3)
    arrays = load_arrays(out / "adapter_model.safetensors")
    save_arrays(out / "adapter_model.safetensors", {k: (rng.standard_normal(v.shape) * scale * 0.05).astype(
        np.float32) for k, v in arrays.items()})
    return out


@pytest.mark.oracle
@pytest.mark.parametrize("density, sign", [(0.5, "total"), (0.3, "frequency"), (1.0, "total")])
def test_combine_ties_matches_add_weighted_adapter(tmp_path: Path, density: float, sign: str) -> None:
    """PEFT's ties (magnitude top-k per factor, sign election, disjoint mean) against add_weighted_adapter: the
    same factors A and B, and the written adapter loads in PEFT with the same ΔW."""
    other = _second_plain(tmp_path)
    model = PeftModel.from_pretrained(base(), FIXTURES / "plain", adapter_name="a0")
    model.load_adapter(other, adapter_name="a1")
    model.add_weighted_adapter(["a0", "a1"], W, "c", combination_type="ties", density=density,
                               majority_sign_method=sign)
    ours = combine_adapters([load_adapter(FIXTURES / "plain"), load_adapter(other)], W, method="ties",
                            density=density, majority_sign_method=sign)
    config = model.peft_config["c"]
    assert (ours.adapter.config["r"], ours.adapter.config["lora_alpha"]) == (config.r, config.lora_alpha)
    ours_by = {m.name: m for m in ours.adapter.modules}
    checked = 0
    for name, layer in model.base_model.model.named_modules():
        if isinstance(layer, LoraLayer) and "c" in layer.lora_A:
            np.testing.assert_allclose(ours_by[name].a, layer.lora_A["c"].weight.detach().numpy(), rtol=1e-6,
                                       atol=1e-7, err_msg=name)
            np.testing.assert_allclose(ours_by[name].b, layer.lora_B["c"].weight.detach().numpy(), rtol=1e-6,
                                       atol=1e-7, err_msg=name)
            checked += 1
    assert checked == len(ours_by) > 0
    theirs = peft_deltas(model, "c")
    loaded = PeftModel.from_pretrained(base(), write_adapter(ours.adapter, tmp_path / "ties"), adapter_name="x")
    for name, delta in peft_deltas(loaded, "x").items():
        np.testing.assert_allclose(delta, theirs[name], atol=2e-6, err_msg=name)


def test_combine_refuses_dare_and_ties_without_a_density(tmp_path: Path) -> None:
    from loralens.errors import InvalidParameterError

    adapters = [load_adapter(FIXTURES / "plain"), load_adapter(FIXTURES / "plain")]
    with pytest.raises(InvalidParameterError, match="torch.bernoulli"):
        combine_adapters(adapters, W, method="dare_linear")
    with pytest.raises(InvalidParameterError, match=r"in \[0, 1\]"):
        combine_adapters(adapters, W, method="ties")
    with pytest.raises(Exception, match="float32 factors only"):
        combine_adapters([load_adapter(FIXTURES / "plain"), load_adapter(FIXTURES / "bf16")], W, method="ties",
                         density=0.5)
