"""Write a LLaMA-7B-shaped PEFT LoRA adapter (and, optionally, a multi-shard LLaMA-7B-shaped base) without torch.

The adapter: r = 16, lora_alpha = 32, bf16, on all 224 linear modules of 32 layers (q, k, v, o: 4096 x 4096;
gate, up: 11008 x 4096; down: 4096 x 11008), the key names PEFT writes; about 80 MB. Each module's B has a decaying
column profile so the spectra are not flat. The base (for the merge benchmark): the first ``layers`` decoder layers
of LLaMA-7B's shapes in bf16, one shard per layer with model.safetensors.index.json (about 405 MB per shard).

    .venv/bin/python benchmarks/make_llama7b_adapter.py OUT_DIR [--base-layers N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from loralens.adapters.safetensors_io import TensorData, encode, write_file

HIDDEN, INTER, LAYERS, R, ALPHA = 4096, 11008, 32, 16, 32
SHAPES = {  # module -> (out, in)
    "self_attn.q_proj": (HIDDEN, HIDDEN),
    "self_attn.k_proj": (HIDDEN, HIDDEN),
    "self_attn.v_proj": (HIDDEN, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HIDDEN),
    "mlp.gate_proj": (INTER, HIDDEN),
    "mlp.up_proj": (INTER, HIDDEN),
    "mlp.down_proj": (HIDDEN, INTER),
}


def module_names(layers: int = LAYERS) -> list[tuple[str, tuple[int, int]]]:
    return [(f"model.layers.{i}.{m}", shape) for i in range(layers) for m, shape in SHAPES.items()]


def make_adapter(out_dir: Path, layers: int = LAYERS, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, TensorData] = {}
    decay = np.exp(-0.25 * np.arange(R, dtype=np.float32))
    for name, (out, inp) in module_names(layers):
        a = rng.standard_normal((R, inp), dtype=np.float32) / np.sqrt(inp)
        b = rng.standard_normal((out, R), dtype=np.float32) * (0.01 * decay)
        tensors[f"base_model.model.{name}.lora_A.weight"] = encode(a, "BF16")
        tensors[f"base_model.model.{name}.lora_B.weight"] = encode(b, "BF16")
    write_file(out_dir / "adapter_model.safetensors", tensors, {"format": "pt"})
    config = {
        "peft_type": "LORA", "r": R, "lora_alpha": ALPHA, "use_rslora": False, "use_dora": False,
        "fan_in_fan_out": False, "rank_pattern": {}, "alpha_pattern": {}, "bias": "none", "lora_dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "base_model_name_or_path": "llama-7b-shaped (synthetic)", "peft_version": "0.21.2", "task_type": "CAUSAL_LM",
    }
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return out_dir


def make_base(out_dir: Path, layers: int, seed: int = 1) -> Path:
    """bf16 decoder layers of LLaMA-7B's shapes, one shard per layer, with the index file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tile = np.random.default_rng(seed).standard_normal(1 << 20, dtype=np.float32) * 0.02
    weight_map: dict[str, str] = {}
    total = 0
    for layer in range(layers):
        shard = f"model-{layer + 1:05d}-of-{layers:05d}.safetensors"
        tensors = {}
        for m, (out, inp) in SHAPES.items():
            name = f"model.layers.{layer}.{m}.weight"
            values = np.resize(np.roll(tile, layer * 7 + len(tensors)), out * inp).reshape(out, inp)
            tensors[name] = encode(values, "BF16")
            weight_map[name] = shard
        for norm in ("input_layernorm", "post_attention_layernorm"):
            name = f"model.layers.{layer}.{norm}.weight"
            tensors[name] = encode(np.ones(HIDDEN, np.float32), "BF16")
            weight_map[name] = shard
        total += write_file(out_dir / shard, tensors, {"format": "pt"})
        del tensors
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="output folder (default: a new temporary folder)")
    parser.add_argument("--base-layers", type=int, default=0, help="also write a base with this many layers")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="llama7b-lora-"))
    adapter = make_adapter(out / "adapter")
    print(f"adapter: {adapter} ({(adapter / 'adapter_model.safetensors').stat().st_size / 1e6:.1f} MB)")
    if args.base_layers:
        base = make_base(out / "base", args.base_layers)
        print(f"base: {base} ({sum(p.stat().st_size for p in base.iterdir()) / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
