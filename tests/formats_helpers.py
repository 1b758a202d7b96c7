"""LoRA files of the non-PEFT layouts, written with the reference ``safetensors`` package, for the formats tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from adapter_helpers import FIXTURES
from safetensors.numpy import save_file

from loralens.adapters.safetensors_io import load_arrays, save_arrays

RNG = np.random.default_rng(0)


def rand(*shape: int, dtype: type = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def kohya_file(path: Path) -> dict[str, np.ndarray]:
    t = {
        # linear, alpha 4 at rank 8
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": rand(8, 32),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": rand(32, 8),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha": np.array(4.0, dtype=np.float16),
        # linear without alpha: alpha = r
        "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": rand(4, 16),
        "lora_unet_mid_block_attentions_0_proj_in.lora_up.weight": rand(24, 4),
        # conv 3x3 with alpha 0 (kohya: alpha = r)
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": rand(4, 6, 3, 3),
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": rand(10, 4, 1, 1),
        "lora_unet_down_blocks_0_resnets_0_conv1.alpha": np.array(0.0, dtype=np.float32),
        # LyCORIS LoCon Tucker: 1x1 down, 3x3 mid
        "lora_unet_up_blocks_0_resnets_0_conv2.lora_down.weight": rand(4, 6, 1, 1),
        "lora_unet_up_blocks_0_resnets_0_conv2.lora_mid.weight": rand(4, 4, 3, 3),
        "lora_unet_up_blocks_0_resnets_0_conv2.lora_up.weight": rand(10, 4, 1, 1),
        "lora_unet_up_blocks_0_resnets_0_conv2.alpha": np.array(2.0, dtype=np.float32),
    }
    save_file(t, str(path), metadata={"ss_network_dim": "8", "ss_network_alpha": "4.0", "ss_output_name": "x"})
    return t


def mlx_folder(folder: Path, scale: float = 20.0, extra: dict | None = None) -> dict[str, np.ndarray]:
    folder.mkdir()
    t = {"model.layers.0.self_attn.q_proj.lora_a": rand(16, 4), "model.layers.0.self_attn.q_proj.lora_b": rand(4, 8),
         "model.layers.1.self_attn.v_proj.lora_a": rand(16, 4), "model.layers.1.self_attn.v_proj.lora_b": rand(4, 6)}
    t.update(extra or {})
    save_file(t, str(folder / "adapters.safetensors"))
    config = {"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": {"rank": 4, "scale": scale,
                                                                             "dropout": 0.0}}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    (folder / "0000100_adapters.safetensors").write_bytes((folder / "adapters.safetensors").read_bytes())
    return t


BASE = FIXTURES / "base_llama" / "model.safetensors"


def tuned_model(tmp_path: Path, norm: bool = False) -> Path:
    weights = load_arrays(BASE)
    rng = np.random.default_rng(1)
    for key, w in weights.items():
        if key.endswith(("q_proj.weight", "down_proj.weight")):
            low = rng.standard_normal((w.shape[0], 3)) @ rng.standard_normal((3, w.shape[1]))
            weights[key] = (w + 0.01 * low + 1e-4 * rng.standard_normal(w.shape)).astype(w.dtype)
    if norm:
        weights["model.norm.weight"] = weights["model.norm.weight"] + 1
    out = tmp_path / "tuned"
    out.mkdir()
    save_arrays(out / "model.safetensors", weights)
    (out / "config.json").write_bytes((FIXTURES / "base_llama" / "config.json").read_bytes())
    return out
