"""Write small real PEFT adapters (and the tiny base models they adapt) for loralens' tests and its sample.

Needs torch, transformers and peft (the test extras); loralens itself never imports them. Run from the repo root:

    .venv/bin/python scripts/generate_adapter_fixtures.py

Writes (deterministic, seeded; the committed copies are what the tests read):
  tests/fixtures/adapters/base_llama/          tiny random LlamaForCausalLM, one model.safetensors
  tests/fixtures/adapters/base_llama_sharded/  the same weights in shards + model.safetensors.index.json
  tests/fixtures/adapters/base_gpt2/           tiny random GPT2LMHeadModel (Conv1D weights stored (in, out))
  tests/fixtures/adapters/<name>/              adapters saved by PEFT's save_pretrained:
      plain    r=4, alpha=8 on all linear modules of the llama
      rslora   use_rslora, r=8, alpha=16 on q, v
      patterns rank_pattern + alpha_pattern, and embed_tokens (lora_embedding_A/B)
      dora     use_dora on q, v
      gpt2     GPT-2 c_attn, c_proj, c_fc with fan_in_fan_out
      bf16     the adapter tensors stored in bfloat16
  tests/fixtures/adapters/reference/<name>.npz  what PEFT itself computes when it loads the saved adapter onto the
      saved base: "delta/<module>" = get_delta_weight (base orientation), "merged/<weight key>" = the weight after
      merge_and_unload (only adapted weights; the others are unchanged)
  src/loralens/data/sample_adapter/            the adapter the Inspector opens on (see make_sample)

PEFT initialises B to zero (ΔW = 0), so the adapters here start from init_lora_weights=False (random A and B)
and then get B (and for the sample also A) set to give each module a different spectrum; PEFT saves them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "adapters"
SAMPLE = ROOT / "src" / "loralens" / "data" / "sample_adapter"
LLAMA_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def llama_config(hidden: int = 32, layers: int = 2, inter: int = 64, heads: int = 4, kv: int = 2) -> LlamaConfig:
    return LlamaConfig(vocab_size=64, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=64,
                       tie_word_embeddings=False)


def gpt2_config() -> GPT2Config:
    return GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=4)


def make_bases() -> None:
    torch.manual_seed(0)
    llama = LlamaForCausalLM(llama_config())
    llama.save_pretrained(OUT / "base_llama", safe_serialization=True)
    llama.save_pretrained(OUT / "base_llama_sharded", safe_serialization=True, max_shard_size="40KB")
    torch.manual_seed(1)
    GPT2LMHeadModel(gpt2_config()).save_pretrained(OUT / "base_gpt2", safe_serialization=True)
    for folder in ("base_llama", "base_llama_sharded", "base_gpt2"):
        (OUT / folder / "generation_config.json").unlink(missing_ok=True)


def load_base(folder: str) -> torch.nn.Module:
    cls = GPT2LMHeadModel if "gpt2" in folder else LlamaForCausalLM
    return cls.from_pretrained(OUT / folder, dtype=torch.float32)


def spread_spectra(model: torch.nn.Module, seed: int) -> None:
    """Give every lora_B a decaying column profile so modules differ (PEFT's random init is nearly flat)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for index, (name, param) in enumerate(sorted(model.named_parameters())):
            if "lora_B" in name or "lora_embedding_B" in name:
                r = param.shape[1]
                decay = torch.exp(-torch.arange(r, dtype=torch.float32) * (0.3 + 0.15 * (index % 5)))
                param.copy_(torch.randn(param.shape, generator=gen) * 0.05 * decay)
            elif "lora_magnitude_vector" in name:
                param.mul_(1 + 0.1 * torch.randn(param.shape, generator=gen))


ADAPTERS = {
    "plain": ("base_llama", dict(r=4, lora_alpha=8, target_modules=LLAMA_LINEAR)),
    "rslora": ("base_llama", dict(r=8, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "v_proj"])),
    "patterns": ("base_llama", dict(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "embed_tokens"],
        rank_pattern={"model.layers.0.self_attn.q_proj": 8, "v_proj": 2},
        alpha_pattern={"o_proj": 2, "model.layers.1.self_attn.q_proj": 32},
    )),
    "dora": ("base_llama", dict(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "v_proj"])),
    "gpt2": ("base_gpt2", dict(r=4, lora_alpha=8, fan_in_fan_out=True, target_modules=["c_attn", "c_proj", "c_fc"])),
    "bf16": ("base_llama", dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])),
}


def make_adapter(name: str, base: str, kwargs: dict, seed: int) -> None:
    torch.manual_seed(seed)
    model = get_peft_model(load_base(base), LoraConfig(init_lora_weights=False, **kwargs))
    spread_spectra(model, seed)
    if name == "bf16":
        model = model.to(torch.bfloat16)
    folder = OUT / name
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "README.md").unlink(missing_ok=True)
    write_reference(name, base)


def write_reference(name: str, base: str) -> None:
    """Load the saved adapter with PEFT onto the saved base and record PEFT's own ΔW and merged weights."""
    peft_model = PeftModel.from_pretrained(load_base(base), OUT / name)
    arrays: dict[str, np.ndarray] = {}
    adapted = []
    for module_name, module in peft_model.base_model.model.named_modules():
        if hasattr(module, "get_delta_weight") and "default" in getattr(module, "scaling", {}):
            with torch.no_grad():
                arrays[f"delta/{module_name}"] = module.get_delta_weight("default").float().numpy()
            adapted.append(module_name + ".weight")
    merged = peft_model.merge_and_unload().state_dict()
    for key in adapted:
        arrays[f"merged/{key}"] = merged[key].float().numpy()
    (OUT / "reference").mkdir(exist_ok=True)
    np.savez_compressed(OUT / "reference" / f"{name}.npz", **arrays)


def make_sample() -> None:
    """The shipped sample: a LLaMA-shaped model (8 layers, d=128, GQA) with r=8 LoRA on q, k, v, o.

    A and B are set so each module has a chosen spectrum σ_i = c · exp(-t i) (t varies by module type and layer;
    layer 0's o_proj uses only 5 of its 8 ranks), then saved by PEFT exactly as a trained adapter would be.
    """
    torch.manual_seed(7)
    cfg = llama_config(hidden=128, layers=8, inter=256, heads=4, kv=2)
    model = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False))
    gen = torch.Generator().manual_seed(7)
    rates = {"q_proj": 0.9, "k_proj": 1.1, "v_proj": 0.25, "o_proj": 0.45}
    with torch.no_grad():
        for name, module in model.named_modules():
            if not hasattr(module, "lora_A") or "default" not in module.lora_A:
                continue
            layer = int(name.split("layers.")[1].split(".")[0])
            kind = name.rsplit(".", 1)[-1]
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight  # (r, in), (out, r)
            r = a.shape[0]
            t = rates[kind] * (1.0 + 0.12 * (layer - 3.5))
            sigma = 0.02 * (1 + 0.15 * layer) * torch.exp(-t * torch.arange(r, dtype=torch.float32))
            if layer == 0 and kind == "o_proj":
                sigma[5:] = 0
            u, _ = torch.linalg.qr(torch.randn(b.shape[0], r, generator=gen))
            v, _ = torch.linalg.qr(torch.randn(a.shape[1], r, generator=gen))
            scale = module.scaling["default"]
            b.copy_(u * torch.sqrt(sigma / scale) * 3.0)
            a.copy_((v * torch.sqrt(sigma / scale) / 3.0).T)
    model.peft_config["default"].base_model_name_or_path = "tiny-llama-8L-128 (random weights, made by loralens)"
    shutil.rmtree(SAMPLE, ignore_errors=True)
    model.save_pretrained(SAMPLE, safe_serialization=True)
    (SAMPLE / "README.md").unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    only = set(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if not only or "bases" in only:
        make_bases()
    for seed, (name, (base, kwargs)) in enumerate(ADAPTERS.items(), start=10):
        if not only or name in only:
            make_adapter(name, base, kwargs, seed)
    if not only or "sample" in only:
        make_sample()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"fixtures: {total / 1e6:.2f} MB in {OUT}")
    print(f"sample: {sum(p.stat().st_size for p in SAMPLE.rglob('*') if p.is_file()) / 1e6:.2f} MB in {SAMPLE}")
    print(json.dumps(sorted(p.name for p in OUT.iterdir())))
    return 0


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":  # PEFT stores target_modules from a set: fix its order
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    sys.exit(main(sys.argv[1:]))
