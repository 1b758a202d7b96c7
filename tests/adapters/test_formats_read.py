"""Reading the non-PEFT layouts: kohya (linear, conv, lora_mid), diffusers (current, legacy), MLX-LM, bare PEFT
weights; recognised-but-unsupported files refused by name. Files are written with the reference ``safetensors``
package; ΔW is checked against each tool's own formula written out with numpy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import FIXTURES, truncated
from formats_helpers import kohya_file, mlx_folder, rand
from safetensors.numpy import save_file

from loralens.adapters import inspect_adapter, load_adapter, resize_adapter, write_adapter
from loralens.adapters.formats import load_any
from loralens.errors import AdapterError, InvalidParameterError

def test_kohya_delta_weights_follow_kohya_s_merge(tmp_path: Path) -> None:
    t = kohya_file(tmp_path / "lora.safetensors")
    adapter = load_adapter(tmp_path / "lora.safetensors")
    assert adapter.format == "kohya"
    by = {m.name: m for m in adapter.modules}
    q = by["lora_te_text_model_encoder_layers_0_self_attn_q_proj"]
    stem = q.name
    expected = 4.0 / 8 * (t[f"{stem}.lora_up.weight"].astype(np.float64) @ t[f"{stem}.lora_down.weight"])
    np.testing.assert_allclose(q.delta_weight(), expected, rtol=1e-12)
    assert (q.r, q.alpha, q.alpha_dtype) == (8, 4.0, "F16")
    assert by["lora_unet_mid_block_attentions_0_proj_in"].scaling == 1.0  # no alpha: alpha = r
    conv = by["lora_unet_down_blocks_0_resnets_0_conv1"]
    stem = conv.name
    # kohya: conv2d(down.permute(1, 0, 2, 3), up).permute(1, 0, 2, 3) * scale, i.e. Σ_r up[o, r] down[r, i, h, w]
    up, down = t[f"{stem}.lora_up.weight"].astype(np.float64), t[f"{stem}.lora_down.weight"].astype(np.float64)
    expected = np.einsum("or,rihw->oihw", up[:, :, 0, 0], down)  # alpha 0 -> alpha = r, scale 1
    np.testing.assert_allclose(conv.delta_weight().reshape(10, 6, 3, 3), expected, rtol=1e-12)
    assert conv.kind == "conv" and conv.conv_shape == (6, 3, 3) and conv.scaling == 1.0
    mid = by["lora_unet_up_blocks_0_resnets_0_conv2"]
    stem = mid.name
    # LyCORIS Tucker: ΔW[p, r, k, l] = Σ up[p, i] mid[i, j, k, l] down[j, r] * scale
    m, d, u = (t[f"{stem}.{k}.weight"].astype(np.float64) for k in ("lora_mid", "lora_down", "lora_up"))
    expected = 2.0 / 4 * np.einsum("ijkl,jr,pi->prkl", m, d[:, :, 0, 0], u[:, :, 0, 0])
    np.testing.assert_allclose(mid.delta_weight().reshape(10, 6, 3, 3), expected, rtol=1e-5, atol=1e-6)
    report = inspect_adapter(adapter)
    assert report.summary.format == "kohya" and "alpha" in report.summary.format_note


def test_kohya_resize_keeps_kohya_layout_and_is_eckart_young(tmp_path: Path) -> None:
    kohya_file(tmp_path / "lora.safetensors")
    adapter = load_adapter(tmp_path / "lora.safetensors")
    resized = resize_adapter(adapter, rank=2)
    out = write_adapter(resized, tmp_path / "small.safetensors")
    assert out == tmp_path / "small.safetensors" and out.is_file()
    back = load_adapter(out)
    assert back.format == "kohya"
    from safetensors import safe_open

    with safe_open(str(out), "np") as f:
        keys = set(f.keys())
        meta = f.metadata()
        assert f.get_tensor("lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight").shape == (2, 6, 3, 3)
    stems = {k[: -len(".lora_up.weight")] for k in keys if k.endswith(".lora_up.weight")}
    assert len(stems) == 4 and all(f"{stem}.alpha" in keys for stem in stems)
    assert meta["ss_network_dim"] == "2" and meta["ss_output_name"] == "x"
    assert resized.bytes_after == out.stat().st_size
    for before, after in zip(adapter.modules, back.modules, strict=True):
        assert after.name == before.name and after.r == 2
        assert after.scaling == pytest.approx(before.scaling, rel=1e-7)  # alpha = scale * k, stored as float
        np.testing.assert_allclose(after.delta_weight(), truncated(before.delta_weight(), 2), atol=1e-5)
    assert (tmp_path / "lora.safetensors").is_file()


def test_lycoris_loha_and_others_are_named(tmp_path: Path) -> None:
    path = tmp_path / "loha.safetensors"
    save_file({"lora_unet_x.hada_w1_a": rand(8, 4), "lora_unet_x.hada_w1_b": rand(4, 8),
               "lora_unet_x.alpha": np.array(4.0, np.float32)}, str(path))
    with pytest.raises(AdapterError) as info:
        load_adapter(path)
    assert str(info.value) == (f"{path}: lora_unet_x.hada_w1_a: this is a LyCORIS LoHa file; "
                               "loralens reads LoRA factors only")
    save_file({"lora_unet_x.lokr_w1": rand(4, 4)}, str(path))
    with pytest.raises(AdapterError, match="this is a LyCORIS LoKr file; loralens reads LoRA factors only"):
        load_adapter(path)
    save_file({"lora_unet_x.lora_down.weight": rand(4, 8), "lora_unet_x.lora_up.weight": rand(8, 4),
               "lora_unet_x.dora_scale": rand(1, 8)}, str(path))
    with pytest.raises(AdapterError, match="DoRA file in the kohya/LyCORIS layout"):
        load_adapter(path)
    save_file({"lora_unet_x.lora_down.weight": rand(4, 8), "lora_unet_x.lora_up.weight": rand(8, 4, 3, 3)},
              str(path))
    with pytest.raises(AdapterError, match="does not match"):
        load_adapter(path)


def test_diffusers_current_layout_scaling_as_diffusers_loads_it(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_lora_weights.safetensors"
    t = {"unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": rand(4, 16),
         "unet.down_blocks.0.attentions.0.proj_in.lora_B.weight": rand(16, 4),
         "unet.mid_block.attentions.0.proj_out.lora_A.weight": rand(8, 16),
         "unet.mid_block.attentions.0.proj_out.lora_B.weight": rand(16, 8),
         "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": rand(2, 12),
         "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight": rand(12, 2)}
    save_file(t, str(path))
    adapter = load_adapter(path)
    assert adapter.format == "diffusers"
    by = {m.name: m for m in adapter.modules}
    # diffusers' get_peft_kwargs without any alpha: alpha = r for every module, scale 1 (whatever the ranks)
    assert by["unet.down_blocks.0.attentions.0.proj_in"].scaling == 1.0
    assert by["unet.mid_block.attentions.0.proj_out"].scaling == 1.0
    assert by["text_encoder.text_model.encoder.layers.0.self_attn.q_proj"].scaling == 1.0
    # with the metadata diffusers writes, alpha comes from it; a resize writes it back so it loads the same
    meta = {"lora_adapter_metadata": json.dumps({"unet.r": 4, "unet.lora_alpha": 8, "unet.rank_pattern":
                                                 {"mid_block.attentions.0.proj_out": 8}})}
    save_file(t, str(path), metadata=meta)
    adapter = load_adapter(path)
    by = {m.name: m for m in adapter.modules}
    assert by["unet.down_blocks.0.attentions.0.proj_in"].scaling == 2.0
    assert by["unet.mid_block.attentions.0.proj_out"].scaling == 1.0
    out = write_adapter(resize_adapter(adapter, rank=3), tmp_path / "small.safetensors")
    back = {m.name: m for m in load_adapter(out).modules}
    for name, module in by.items():
        np.testing.assert_allclose(back[name].delta_weight(), truncated(module.delta_weight(), min(3, module.r)),
                                   atol=1e-5)


def test_diffusers_legacy_attention_processor_names(tmp_path: Path) -> None:
    path = tmp_path / "old.safetensors"
    save_file({"down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight": rand(4, 8),
               "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.up.weight": rand(8, 4),
               "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight": rand(4, 8),
               "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight": rand(8, 4)},
              str(path))
    adapter = load_adapter(path)
    assert adapter.format == "diffusers-legacy"
    assert [m.name for m in adapter.modules] == ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0",
                                                 "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]
    te = tmp_path / "te.safetensors"
    save_file({"text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight": rand(2, 8),
               "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.up.weight": rand(8, 2)},
              str(te))
    assert [m.name for m in load_adapter(te).modules] == ["text_encoder.text_model.encoder.layers.0.self_attn.q_proj"]


def test_mlx_factors_are_transposed_and_scale_is_the_scaling(tmp_path: Path) -> None:
    t = mlx_folder(tmp_path / "mlx")
    adapter = load_adapter(tmp_path / "mlx")
    assert adapter.format == "mlx"
    q = adapter.modules[0]
    # mlx_lm LoRALinear.fuse: delta = (scale * lora_b.T) @ lora_a.T
    expected = (20.0 * t["model.layers.0.self_attn.q_proj.lora_b"].T.astype(np.float64)) @ \
        t["model.layers.0.self_attn.q_proj.lora_a"].T
    np.testing.assert_allclose(q.delta_weight(), expected, rtol=1e-12)
    assert (q.r, q.scaling, q.in_features, q.out_features) == (4, 20.0, 16, 8)
    assert load_adapter(tmp_path / "mlx" / "adapters.safetensors").format == "mlx"
    out = write_adapter(resize_adapter(adapter, rank=2), tmp_path / "small")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["lora_parameters"] == {"rank": 2, "scale": 20, "dropout": 0.0}
    back = load_adapter(out)
    np.testing.assert_allclose(back.modules[0].delta_weight(), truncated(expected, 2), atol=1e-4)
    low = tmp_path / "low"
    t["model.layers.1.self_attn.v_proj.lora_b"][1:] = 0  # rank 1: an energy target gives it fewer ranks than q_proj
    save_file(t, str(tmp_path / "mlx" / "adapters.safetensors"))
    with pytest.raises(AdapterError, match="MLX-LM adapters have one rank and one scale for every module"):
        write_adapter(resize_adapter(load_adapter(tmp_path / "mlx"), energy=0.999), low)
    assert not low.exists()


def test_mlx_dora_is_named(tmp_path: Path) -> None:
    mlx_folder(tmp_path / "mlx", extra={"model.layers.0.self_attn.q_proj.m": rand(8)})
    with pytest.raises(AdapterError, match="this is an MLX-LM DoRA adapter; loralens reads LoRA factors only"):
        load_adapter(tmp_path / "mlx")


def test_bare_peft_weights_default_alpha_and_alpha_option(tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    shutil.copy(FIXTURES / "plain" / "adapter_model.safetensors", folder)
    real = load_adapter(FIXTURES / "plain")
    bare = load_adapter(folder)
    assert bare.format == "peft-weights" and "lora_alpha 8 assumed (PEFT's default)" in inspect_adapter(
        bare).summary.format_note
    assert {m.alpha for m in bare.modules} == {8.0} and bare.config["r"] == real.config["r"]
    given = load_any(folder, alpha=real.config["lora_alpha"])
    for a, b in zip(given.modules, real.modules, strict=True):
        assert a.scaling == b.scaling
        np.testing.assert_array_equal(a.delta_weight(), b.delta_weight())
    with pytest.raises(InvalidParameterError, match="applies only to weights without adapter_config.json"):
        load_any(FIXTURES / "plain", alpha=16)
    out = write_adapter(given, tmp_path / "peft")  # written as a PEFT folder with a real config
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["lora_alpha"] == real.config["lora_alpha"] and not any(k.startswith("_") for k in config)
    assert load_adapter(out).format == "peft"


def test_unknown_prefixes_and_diffusers_dora_are_named(tmp_path: Path) -> None:
    path = tmp_path / "comfy.safetensors"
    save_file({"diffusion_model.x.lora_A.weight": rand(2, 4), "diffusion_model.x.lora_B.weight": rand(4, 2)},
              str(path))
    with pytest.raises(AdapterError, match="lora_A/lora_B under 'diffusion_model.', a prefix loralens does not know"):
        load_adapter(path)
    save_file({"unet.x.lora_A.weight": rand(2, 4), "unet.x.lora_B.weight": rand(4, 2),
               "unet.x.lora_magnitude_vector": rand(4)}, str(path))
    with pytest.raises(AdapterError, match="this is a DoRA file in the diffusers layout"):
        load_adapter(path)


def test_mlx_upload_of_its_two_files(tmp_path: Path) -> None:
    from loralens.adapters import load_adapter_from_bytes

    mlx_folder(tmp_path / "mlx")
    adapter = load_adapter_from_bytes((tmp_path / "mlx" / "adapter_config.json").read_bytes(),
                                      (tmp_path / "mlx" / "adapters.safetensors").read_bytes(), name="up")
    assert adapter.format == "mlx" and adapter.modules[0].scaling == 20.0


def test_combine_of_bare_weights_writes_a_clean_peft_config(tmp_path: Path) -> None:
    from loralens.adapters.combine import combine_adapters

    folder = tmp_path / "bare"
    folder.mkdir()
    shutil.copy(FIXTURES / "plain" / "adapter_model.safetensors", folder)
    bare = load_adapter(folder)
    out = write_adapter(combine_adapters([bare, bare], [0.5, 0.5], method="cat").adapter, tmp_path / "c")
    assert not any(k.startswith("_") for k in json.loads((out / "adapter_config.json").read_text()))
