"""convert: factors copied byte for byte, r and alpha kept, so ΔW is identical after a round trip; every module
mapped or dropped by name, never silently."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import FIXTURES
from formats_helpers import kohya_file, mlx_folder, rand
from safetensors import safe_open
from safetensors.numpy import save_file

from loralens.adapters import load_adapter, write_adapter
from loralens.adapters.convert import convert
from loralens.errors import AdapterError


def assert_same_modules(a, b, names: dict[str, str] | None = None) -> None:  # noqa: ANN001
    by = {m.name: m for m in b.modules}
    assert len(a.modules) == len(b.modules)
    for m in a.modules:
        other = by[names[m.name] if names else m.name]
        assert (other.r, other.alpha, other.scaling, other.dtype) == (m.r, m.alpha, m.scaling, m.dtype)
        np.testing.assert_array_equal(other.a, m.a)
        np.testing.assert_array_equal(other.b, m.b)
        np.testing.assert_array_equal(other.delta_weight(), m.delta_weight())


@pytest.mark.parametrize("name", ["plain", "patterns", "bf16"])
def test_peft_kohya_peft_round_trip_is_exact(tmp_path: Path, name: str) -> None:
    source = load_adapter(FIXTURES / name)
    kohya = convert(source, "kohya", drop_unsupported=name == "patterns")  # patterns adapts embed_tokens too
    if name == "patterns":
        assert dict(kohya.report.dropped) == {
            "model.embed_tokens": "an embedding LoRA has no place in the kohya layout",
            "base_model.model.model.embed_tokens.base_layer.weight": "not a LoRA factor"}
        source = replace(source, modules=tuple(m for m in source.modules if m.kind != "embedding"))
    path = write_adapter(kohya.adapter, tmp_path / "k.safetensors")
    read = load_adapter(path)
    assert read.format == "kohya"
    assert_same_modules(source, read, dict(kohya.report.mapped))
    assert kohya.report.mapped[0][1].startswith("lora_te_model_layers_0_")
    back = convert(read, "peft")
    out = write_adapter(back.adapter, tmp_path / "p")
    again = load_adapter(out)
    assert again.format == "peft" and [m.name for m in again.modules] == [m.name for m in source.modules]
    assert_same_modules(source, again)
    with safe_open(str(FIXTURES / name / "adapter_model.safetensors"), "np") as f, \
            safe_open(str(out / "adapter_model.safetensors"), "np") as g:
        assert {k for k in f.keys() if "embed" not in k} == set(g.keys())


def test_kohya_diffusers_kohya_round_trip_with_conv(tmp_path: Path) -> None:
    kohya_file(tmp_path / "lora.safetensors")
    source = load_adapter(tmp_path / "lora.safetensors")
    to_diffusers = convert(source, "diffusers")
    names = dict(to_diffusers.report.mapped)
    assert names["lora_unet_down_blocks_0_resnets_0_conv1"] == "unet.down_blocks.0.resnets.0.conv1"
    assert names["lora_te_text_model_encoder_layers_0_self_attn_q_proj"] == \
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"
    path = write_adapter(to_diffusers.adapter, tmp_path / "d.safetensors")
    read = load_adapter(path)
    assert read.format == "diffusers"
    assert_same_modules(source, read, names)
    back = load_adapter(write_adapter(convert(read, "kohya").adapter, tmp_path / "k.safetensors"))
    assert_same_modules(source, back)


def test_several_components_to_peft_need_a_choice_and_list_the_rest(tmp_path: Path) -> None:
    kohya_file(tmp_path / "lora.safetensors")
    source = load_adapter(tmp_path / "lora.safetensors")
    with pytest.raises(AdapterError, match="holds modules of 2 models .text_encoder, unet.; a PEFT adapter adapts one"):
        convert(source, "peft")
    unet = convert(source, "peft", component="unet")  # conv LoRAs become PEFT Conv2d LoRAs
    assert len(unet.adapter.modules) == 3 and len(unet.report.dropped) == 1  # the text encoder's, listed
    done = convert(source, "peft", component="text_encoder")
    assert [b for _, b in done.report.mapped] == ["text_model.encoder.layers.0.self_attn.q_proj"]
    reasons = dict(done.report.dropped)
    assert len(reasons) == 3 and all("not --component text_encoder" in r for r in reasons.values())
    out = write_adapter(done.adapter, tmp_path / "te")
    assert load_adapter(out).modules[0].scaling == 0.5


def test_what_a_layout_cannot_hold_is_refused_or_dropped_by_name(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="DoRA magnitude vectors have no place in the kohya"):
        convert(load_adapter(FIXTURES / "dora"), "kohya")
    with pytest.raises(AdapterError, match="no module is left to convert"):
        convert(load_adapter(FIXTURES / "dora"), "kohya", drop_unsupported=True)
    with pytest.raises(AdapterError, match="fan_in_fan_out"):
        convert(load_adapter(FIXTURES / "gpt2"), "kohya")
    with pytest.raises(AdapterError, match="use_rslora"):
        convert(load_adapter(FIXTURES / "rslora"), "kohya")
    with pytest.raises(AdapterError, match="pass --component"):
        convert(load_adapter(FIXTURES / "plain"), "diffusers")
    path = tmp_path / "odd.safetensors"
    save_file({"lora_te_foo_bar_baz.lora_down.weight": rand(2, 4), "lora_te_foo_bar_baz.lora_up.weight": rand(4, 2)},
              str(path))
    with pytest.raises(AdapterError, match="cannot place the dots in 'foo_bar_baz'"):
        convert(load_adapter(path), "peft")


def test_mlx_to_peft_keeps_delta(tmp_path: Path) -> None:
    mlx_folder(tmp_path / "mlx")
    source = load_adapter(tmp_path / "mlx")
    out = write_adapter(convert(source, "peft").adapter, tmp_path / "peft")
    read = load_adapter(out)
    assert read.config["lora_alpha"] == 80 and read.config["r"] == 4
    assert_same_modules(source, read)


@pytest.mark.parametrize("scale", [0.1, 1 / 3, 0.05])
def test_mlx_scales_that_do_not_divide_back_exactly_still_convert(tmp_path: Path, scale: float) -> None:
    mlx_folder(tmp_path / "mlx", scale=scale)
    source = load_adapter(tmp_path / "mlx")
    read = load_adapter(write_adapter(convert(source, "peft").adapter, tmp_path / "peft"))
    for m, n in zip(source.modules, read.modules, strict=True):
        assert abs(n.scaling - m.scaling) <= 4 * np.spacing(m.scaling)
        np.testing.assert_allclose(n.delta_weight(), m.delta_weight(), rtol=1e-15)


def test_original_block_names_are_not_passed_off_as_diffusers(tmp_path: Path) -> None:
    path = tmp_path / "sdxl.safetensors"
    save_file({"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": rand(2, 8),
               "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight": rand(8, 2)}, str(path))
    source = load_adapter(path)
    with pytest.raises(AdapterError, match="original model's block names"):
        convert(source, "diffusers")
    done = convert(source, "peft", component="unet")  # the original model's own module paths, for PEFT on it
    assert done.report.mapped[0][1] == "input_blocks.4.1.transformer_blocks.0.attn1.to_q"


def test_conv_loras_to_peft_and_back_keep_the_factors_and_the_kernel(tmp_path: Path) -> None:
    """kohya 3x3 conv (and a folded LyCORIS Tucker conv) -> PEFT Conv2d LoRA (lora_A (r, in, 3, 3), lora_B
    (out, r, 1, 1)) -> kohya again: the same 4-D tensors, alphas and ΔW."""
    kohya_file(tmp_path / "lora.safetensors")
    source = load_adapter(tmp_path / "lora.safetensors")
    peft = write_adapter(convert(source, "peft", component="unet").adapter, tmp_path / "peft")
    with safe_open(peft / "adapter_model.safetensors", "np") as f:
        shapes = {k: f.get_tensor(k).shape for k in f.keys()}
    stem = "base_model.model.down_blocks.0.resnets.0.conv1"
    assert shapes[f"{stem}.lora_A.weight"] == (4, 6, 3, 3) and shapes[f"{stem}.lora_B.weight"] == (10, 4, 1, 1)
    read = load_adapter(peft)
    by = {m.name: m for m in read.modules}
    assert by["down_blocks.0.resnets.0.conv1"].kind == "conv2d" and by["down_blocks.0.resnets.0.conv1"].kernel == (3, 3)
    names = {m.name: m.name.removeprefix("lora_unet_") for m in source.modules if m.name.startswith("lora_unet_")}
    unet_only = replace(source, modules=tuple(m for m in source.modules if m.name in names))
    for m in unet_only.modules:
        other = {n.replace(".", "_"): x for n, x in by.items()}[names[m.name]]
        assert (other.r, other.alpha, other.scaling) == (m.r, m.alpha, m.scaling)
        np.testing.assert_array_equal(other.delta_weight(), m.delta_weight())
    back = load_adapter(write_adapter(convert(read, "kohya", component="unet").adapter, tmp_path / "k.safetensors"))
    assert_same_modules(unet_only, back)
    with safe_open(tmp_path / "k.safetensors", "np") as f:
        assert f.get_tensor("lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight").shape == (4, 6, 3, 3)
