"""Formats benchmarks (issue 11): factor-space resize and combine against the dense routes other tools take.

1. Resize an SDXL-sized kohya LoRA (722 UNet modules, rank 64 -> 32): loralens' resize (the r x r core) against
   kohya's resize_lora.py route re-implemented in numpy (up @ down, then a full SVD of the out x in product, per
   module). The dense route is timed on one module of each distinct shape and multiplied by that shape's count
   (a full run takes far longer than this machine's two-minute budget); the factor route runs on all modules.
2. combine --method svd of three LLaMA-7B-shaped adapters (r = 16 on all 224 linear modules): loralens (the SVD of
   the stacked factors through their 48 x 48 core) against PEFT's route (sum the dense ΔW, full SVD), the dense
   route timed on one q_proj-sized (4096 x 4096) module at 2048 x 2048 and scaled by n³ (stated in the output).

3. extract (--extract DIR): a TinyLlama-1.1B-shaped synthetic pair (22 layers, hidden 2048, MLP 5632, bf16; tuned =
   base + a rank-8 update + bf16 rounding) written to DIR, then ``loralens extract --rank 16`` in a child process
   (its wall time and peak RSS), against an exact dense SVD of one 2048 x 5632 difference (scaled by module count).

Usage: .venv/bin/python benchmarks/bench_formats.py [--quick] [--extract DIR]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from loralens.adapters.combine import combine_adapters
from loralens.adapters.formats.common import ForeignModule, build_adapter
from loralens.adapters.peft_format import PREFIX, Adapter
from loralens.adapters.resize import resize_adapter
from loralens.adapters.safetensors_io import SafetensorsFile, to_bytes


def sdxl_shapes() -> list[tuple[str, int, int]]:
    """(name, out, in) of the 722 linear modules kohya adapts in SDXL's UNet (transformer blocks + proj_in/out)."""
    blocks = [("input_blocks_4_1", 640, 2), ("input_blocks_5_1", 640, 2), ("input_blocks_7_1", 1280, 10),
              ("input_blocks_8_1", 1280, 10), ("middle_block_1", 1280, 10), ("output_blocks_0_1", 1280, 10),
              ("output_blocks_1_1", 1280, 10), ("output_blocks_2_1", 1280, 10), ("output_blocks_3_1", 640, 2),
              ("output_blocks_4_1", 640, 2), ("output_blocks_5_1", 640, 2)]
    shapes = []
    for prefix, d, n in blocks:
        shapes += [(f"lora_unet_{prefix}_proj_in", d, d), (f"lora_unet_{prefix}_proj_out", d, d)]
        for i in range(n):
            p = f"lora_unet_{prefix}_transformer_blocks_{i}"
            shapes += [(f"{p}_attn1_to_{x}", d, d) for x in ("q", "k", "v", "out_0")]
            shapes += [(f"{p}_attn2_to_q", d, d), (f"{p}_attn2_to_k", d, 2048), (f"{p}_attn2_to_v", d, 2048),
                       (f"{p}_attn2_to_out_0", d, d), (f"{p}_ff_net_0_proj", 8 * d, d), (f"{p}_ff_net_2", d, 4 * d)]
    return shapes


def kohya_adapter(shapes: list[tuple[str, int, int]], r: int, rng: np.random.Generator) -> Adapter:
    modules = []
    for name, out, inp in shapes:
        a = rng.standard_normal((r, inp), dtype=np.float32) * 0.01
        b = rng.standard_normal((out, r), dtype=np.float32) * 0.01
        modules.append(ForeignModule(name=name, a=a, b=b, r=r, alpha=r / 2, scaling=0.5, in_features=inp,
                                     out_features=out, kind="linear", key=name, dtype="F16", alpha_dtype="F16"))
    file = SafetensorsFile.from_bytes(to_bytes({}), "bench")
    return build_adapter(modules, fmt="kohya", file=file, path=None, name="sdxl", note="synthetic")


def dense_resize(b: np.ndarray, a: np.ndarray, scale: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """kohya resize_lora.py's route: the dense product, a full SVD, the top k."""
    u, s, vt = np.linalg.svd(scale * (b @ a), full_matrices=False)
    return u[:, :k] * s[:k], vt[:k]


def bench_resize(quick: bool) -> None:
    rng = np.random.default_rng(0)
    shapes = sdxl_shapes()
    r, k = 64, 32
    adapter = kohya_adapter(shapes, r, rng)
    params = sum(m.a.size + m.b.size for m in adapter.modules)
    t0 = time.perf_counter()
    resized = resize_adapter(adapter, rank=k)
    factor = time.perf_counter() - t0
    counts = Counter((out, inp) for _, out, inp in shapes)
    first = {}
    for m in adapter.modules:
        first.setdefault((m.out_features, m.in_features), m)
    dense_total, worst = 0.0, 0.0
    by_name = {m.name: m for m in resized.adapter.modules}
    print(f"SDXL-sized kohya LoRA: {len(shapes)} modules, r {r} -> {k}, {params / 1e6:.0f}M parameters")
    print(f"  loralens resize (factor space), all modules: {factor:.2f} s")
    for shape, module in sorted(first.items()):
        if quick and shape[0] * shape[1] > 1280 * 2048:
            continue
        t0 = time.perf_counter()
        b, a = dense_resize(module.b, module.a, module.scaling, k)
        took = time.perf_counter() - t0
        dense_total += took * counts[shape]
        ours = by_name[module.name]
        diff = np.abs(ours.delta_weight() - b.astype(np.float64) @ a).max() / np.abs(b @ a).max()
        worst = max(worst, float(diff))
        print(f"  dense up@down + SVD {shape[0]}x{shape[1]}: {took:.2f} s x {counts[shape]} modules")
    print(f"  dense route, extrapolated to all modules: {dense_total:.0f} s ({dense_total / factor:.0f}x); "
          f"largest relative difference of the resized ΔW: {worst:.1e}")


def llama_adapter(r: int, rng: np.random.Generator, name: str) -> Adapter:
    shapes = []
    for layer in range(32):
        p = f"model.layers.{layer}"
        shapes += [(f"{p}.self_attn.{x}_proj", 4096, 4096) for x in "qkvo"]
        shapes += [(f"{p}.mlp.gate_proj", 11008, 4096), (f"{p}.mlp.up_proj", 11008, 4096),
                   (f"{p}.mlp.down_proj", 4096, 11008)]
    modules = tuple(ForeignModule(name=n, a=rng.standard_normal((r, i), dtype=np.float32) * 0.01,
                                  b=rng.standard_normal((o, r), dtype=np.float32) * 0.01, r=r, alpha=2 * r,
                                  scaling=2.0, in_features=i, out_features=o, key=PREFIX + n) for n, o, i in shapes)
    config = {"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "target_modules": ["q_proj", "k_proj", "v_proj",
              "o_proj", "gate_proj", "up_proj", "down_proj"]}
    return Adapter(config=config, modules=modules, dtype="float32", path=None, file_bytes=0, name=name)


def bench_combine() -> None:
    rng = np.random.default_rng(1)
    adapters = [llama_adapter(16, rng, f"a{i}") for i in range(3)]
    weights = [0.5, 0.3, 0.2]
    t0 = time.perf_counter()
    combined = combine_adapters(adapters, weights, method="svd", rank=16)
    factor = time.perf_counter() - t0
    print(f"combine svd of three LLaMA-7B-shaped adapters (224 modules, r 16 each -> 16): {factor:.2f} s")
    n = 2048
    x = rng.standard_normal((n, n)).astype(np.float32)
    t0 = time.perf_counter()
    np.linalg.svd(x, full_matrices=False)
    dense_small = time.perf_counter() - t0
    per_q = dense_small * (4096 / n) ** 3  # a 4096 x 4096 SVD; the MLP modules (11008 x 4096) cost ~2.7x more
    mlp = per_q * 11008 / 4096
    total = 128 * per_q + 96 * mlp
    kept = [m.energy_kept for m in combined.modules]
    print(f"  dense SVD {n}x{n} measured: {dense_small:.1f} s; PEFT's route for 224 modules, scaled by n³ "
          f"(4096²: {per_q:.0f} s, 11008x4096: {mlp:.0f} s): ~{total / 60:.0f} min ({total / factor:.0f}x)")
    print(f"  energy kept per module: min {min(kept):.3f}, max {max(kept):.3f}")


def tinyllama_pair(folder: Path) -> tuple[int, int]:
    """(parameters, 2-D weights changed) of a 1.1B-parameter LLaMA-shaped base/tuned pair written as bf16."""
    from loralens.adapters.safetensors_io import TensorData, float32_to_bf16_bits, write_file

    rng = np.random.default_rng(2)
    shapes = {"model.embed_tokens.weight": (32000, 2048), "lm_head.weight": (32000, 2048), "model.norm.weight": (2048,)}
    for i in range(22):
        p = f"model.layers.{i}"
        shapes |= {f"{p}.self_attn.q_proj.weight": (2048, 2048), f"{p}.self_attn.k_proj.weight": (256, 2048),
                   f"{p}.self_attn.v_proj.weight": (256, 2048), f"{p}.self_attn.o_proj.weight": (2048, 2048),
                   f"{p}.mlp.gate_proj.weight": (5632, 2048), f"{p}.mlp.up_proj.weight": (5632, 2048),
                   f"{p}.mlp.down_proj.weight": (2048, 5632), f"{p}.input_layernorm.weight": (2048,),
                   f"{p}.post_attention_layernorm.weight": (2048,)}
    base, tuned = {}, {}
    changed = 0
    for name, shape in shapes.items():
        w = (rng.standard_normal(shape, dtype=np.float32) * 0.02)
        bits = float32_to_bf16_bits(w)
        base[name] = TensorData("BF16", shape, bits.reshape(-1).view(np.uint8))
        if len(shape) == 2 and "embed" not in name and "lm_head" not in name:
            low = (rng.standard_normal((shape[0], 8), dtype=np.float32) @
                   rng.standard_normal((8, shape[1]), dtype=np.float32)) * 0.002
            tuned[name] = TensorData("BF16", shape, float32_to_bf16_bits(w + low).reshape(-1).view(np.uint8))
            changed += 1
        else:
            tuned[name] = base[name]
    for label, tensors in (("base", base), ("tuned", tuned)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        write_file(folder / label / "model.safetensors", tensors)
    return sum(int(np.prod(s)) for s in shapes.values()), changed


def bench_extract(folder: Path) -> None:
    import resource
    import subprocess
    import sys

    t0 = time.perf_counter()
    if (folder / "tuned" / "model.safetensors").is_file():  # reuse the pair of an earlier run
        params, changed = 1_100_048_384, 154
    else:
        params, changed = tinyllama_pair(folder)
    print(f"extract: TinyLlama-1.1B-shaped pair, {params / 1e9:.2f}B parameters (bf16), {changed} weights changed; "
          f"ready in {time.perf_counter() - t0:.0f} s")
    out = folder / "lora"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "loralens", "extract", "--base", str(folder / "base"), "--tuned",
                           str(folder / "tuned"), "--rank", "16", "-o", str(out), "--force", "--json"], check=True,
                          capture_output=True, text=True)
    import json

    report = {m["name"]: m for m in json.loads(done.stdout)["modules"]}
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    from loralens.adapters.extract import extract_lora  # noqa: F401 (the same code, for the dense comparison)
    from loralens.adapters.safetensors_io import SafetensorsFile

    b = SafetensorsFile.open(folder / "base" / "model.safetensors")
    t = SafetensorsFile.open(folder / "tuned" / "model.safetensors")
    key = "model.layers.0.mlp.down_proj.weight"
    d = t.array(key, np.float64) - b.array(key, np.float64)
    t1 = time.perf_counter()
    s = np.linalg.svd(d, full_matrices=False, compute_uv=True)[1]
    dense = time.perf_counter() - t1
    optimal = float(np.sqrt(np.sum(s[16:] ** 2) / np.sum(s**2)))
    ours = report[key.removesuffix(".weight")]
    methods = Counter(m["method"] for m in report.values())
    print(f"  {key}: error {ours['error']:.6f} ({ours['method']}) vs Eckart-Young optimum {optimal:.6f} "
          f"(dense SVD); methods used: {dict(methods)}")
    print(f"  loralens extract --rank 16 (child process): {took:.1f} s, peak RSS {peak:.0f} MiB "
          f"(one bf16 model file is {params * 2 / 2**20:.0f} MiB)")
    scaled = 66 + 44 * 2048**3 / (2048**2 * 5632) + 44 * 256**2 * 2048 / (2048**2 * 5632)  # m·n·min(m, n)
    print(f"  dense SVD of one 2048x5632 difference: {dense:.1f} s; all 154 modules scaled by m·n·min(m, n): "
          f"~{dense * scaled:.0f} s ({dense * scaled / took:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the two largest dense shapes")
    parser.add_argument("--extract", type=Path, metavar="DIR", help="run only the extract benchmark, in DIR")
    args = parser.parse_args()
    if args.extract:
        bench_extract(args.extract)
        return
    bench_resize(args.quick)
    bench_combine()


if __name__ == "__main__":
    main()
