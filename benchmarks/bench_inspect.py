"""Time inspect and resize of a LLaMA-7B-shaped adapter against reading the file (the floor) and against the full
d x k SVD that kohya-style resize tools run; measure merge's peak memory over a multi-shard base.

    .venv/bin/python benchmarks/bench_inspect.py [--base-layers 3] [--repeat 3] [--no-svd]

Everything is written to a temporary folder and removed afterwards. Prints a Markdown table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_llama7b_adapter import make_adapter, make_base  # noqa: E402

from loralens.adapters import inspect_adapter, load_adapter, resize_adapter, write_adapter  # noqa: E402
from loralens.core.blas import single_threaded_blas  # noqa: E402
from loralens.adapters.safetensors_io import SafetensorsFile  # noqa: E402


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, min) seconds over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def read_floor(path: Path) -> None:
    """Read every byte of the file and widen every bf16 tensor to float32: what any reader must do."""
    file = SafetensorsFile.open(path)
    for name in file.keys():
        file.array(name)


def full_svd_seconds(adapter_dir: Path, names: list[str]) -> dict[str, float]:
    """kohya-style: form ΔW = scaling · B A (float32, d x k) and take its full SVD, per module.

    With one BLAS thread, like inspect (on this busy shared machine OpenBLAS's two threads made a single 4096 x 4096
    SVD take minutes; on an idle machine two threads would make it at most about 2x faster).
    """
    adapter = load_adapter(adapter_dir)
    by_name = {m.name: m for m in adapter.modules}
    out = {}
    for name in names:
        module = by_name[name]
        with single_threaded_blas():
            start = time.perf_counter()
            delta = (module.b @ module.a) * np.float32(module.scaling)  # (d, k) float32
            np.linalg.svd(delta, full_matrices=False)
            out[name] = time.perf_counter() - start
    return out


# peak RSS of the child itself: VmHWM (ru_maxrss would report the forking parent's peak, kept across exec)
HWM = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
MERGE_CODE = f"""
import sys, time
from loralens.adapters import merge_adapter
start = time.perf_counter()
merge_adapter(sys.argv[1], sys.argv[2], sys.argv[3])
print(time.perf_counter() - start, {HWM})
"""
BASELINE_CODE = f"""
import sys
from loralens.adapters import load_adapter
load_adapter(sys.argv[1])
print({HWM})
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--base-layers", type=int, default=3, help="decoder layers (shards) of the merge base")
    parser.add_argument("--no-svd", action="store_true", help="skip the full d x k SVDs (the slow part)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-inspect-"))
    results: dict[str, object] = {"python": platform.python_version(), "numpy": np.__version__,
                                  "cpus": os.cpu_count(), "load_average_before": os.getloadavg()[0]}
    try:
        adapter_dir = make_adapter(work / "adapter")
        weights = adapter_dir / "adapter_model.safetensors"
        results["adapter_mb"] = weights.stat().st_size / 1e6
        weights.read_bytes()  # warm the page cache: every timing below reads from memory, not the disk
        t_bytes = timed(lambda: weights.read_bytes(), args.repeat)
        t_floor = timed(lambda: read_floor(weights), args.repeat)
        t_load = timed(lambda: load_adapter(adapter_dir), args.repeat)
        adapter = load_adapter(adapter_dir)
        t_analyse = timed(lambda: inspect_adapter(adapter), args.repeat)
        t_inspect = timed(lambda: inspect_adapter(load_adapter(adapter_dir)), args.repeat)
        cli = [sys.executable, "-m", "loralens", "inspect", str(adapter_dir), "--json"]
        t_cli = timed(lambda: subprocess.run(cli, check=True, capture_output=True), args.repeat)
        counter = iter(range(10**6))
        t_resize = timed(lambda: resize_adapter(adapter, rank=8), args.repeat)
        t_resize_write = timed(lambda: write_adapter(resize_adapter(load_adapter(adapter_dir), rank=8),
                                                     work / f"resized{next(counter)}"), args.repeat)
        results.update({
            "read_bytes_s": t_bytes[0], "read_and_widen_s": t_floor[0], "load_adapter_s": t_load[0],
            "inspect_only_s": t_analyse[0], "load_and_inspect_s": t_inspect[0], "cli_inspect_json_s": t_cli[0],
            "resize_only_s": t_resize[0], "load_resize_write_s": t_resize_write[0],
        })
        if not args.no_svd:
            # down_proj (4096 x 11008) is the transpose of gate's shape: the same SVD cost, counted as gate's
            names = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.gate_proj"]
            svd = full_svd_seconds(adapter_dir, names)
            attn, gate = (svd[n] for n in names)
            results.update({"full_svd_q_proj_s": attn, "full_svd_gate_proj_s": gate,
                            "full_svd_all_224_estimated_s": 32 * (4 * attn + 3 * gate)})
        # merge: a base of the first N LLaMA-7B-shaped layers, one bf16 shard each, with the matching adapter
        base = make_base(work / "base", args.base_layers)
        small = make_adapter(work / "adapter_n", layers=args.base_layers)
        shard_mb = max(p.stat().st_size for p in base.glob("*.safetensors")) / 1e6
        baseline = subprocess.run([sys.executable, "-c", BASELINE_CODE, str(small)], check=True,
                                  capture_output=True, text=True)
        merged = subprocess.run([sys.executable, "-c", MERGE_CODE, str(small), str(base), str(work / "merged")],
                                check=True, capture_output=True, text=True)
        merge_s, peak_kb = merged.stdout.split()
        results.update({
            "merge_layers": args.base_layers, "merge_shards": len(list(base.glob("*.safetensors"))),
            "merge_shard_mb": shard_mb,
            "merge_base_mb": sum(p.stat().st_size for p in base.glob("*.safetensors")) / 1e6,
            "merge_s": float(merge_s), "merge_peak_rss_mb": int(peak_kb) / 1e3,
            "baseline_rss_mb_python_numpy_loralens_adapter": int(baseline.stdout) / 1e3,
        })
        results["load_average_after"] = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report(results))
    print(json.dumps(results))
    return 0


def report(r: dict) -> str:
    lines = [f"LLaMA-7B-shaped adapter: 224 modules, r=16, bf16, {r['adapter_mb']:.1f} MB "
             f"(Python {r['python']}, numpy {r['numpy']}, {r['cpus']} cores, load average "
             f"{r['load_average_before']:.1f} before / {r['load_average_after']:.1f} after)", "",
             "| step | seconds (median) |", "| --- | ---: |"]
    rows = [("read the file's bytes (warm cache)", "read_bytes_s"),
            ("read + widen every bf16 tensor to float32 (the floor)", "read_and_widen_s"),
            ("load_adapter (parse, pair, check, widen)", "load_adapter_s"),
            ("inspect_adapter on a loaded adapter (224 spectra)", "inspect_only_s"),
            ("load_adapter + inspect_adapter", "load_and_inspect_s"),
            ("`loralens inspect --json` end to end (process start included)", "cli_inspect_json_s"),
            ("resize_adapter --rank 8 on a loaded adapter", "resize_only_s"),
            ("load + resize + write_adapter", "load_resize_write_s")]
    if "full_svd_q_proj_s" in r:
        rows += [("full d x k SVD, one q_proj 4096 x 4096 (float32)", "full_svd_q_proj_s"),
                 ("full d x k SVD, one gate_proj 11008 x 4096 (float32)", "full_svd_gate_proj_s"),
                 ("full d x k SVD, all 224 modules (32 x (4 x q_proj + 3 x gate_proj), scaled)",
                  "full_svd_all_224_estimated_s")]
    lines += [f"| {label} | {r[key]:.3f} |" for label, key in rows]
    if "full_svd_all_224_estimated_s" in r:
        lines += ["", f"inspect / floor: {r['load_and_inspect_s'] / r['read_and_widen_s']:.1f}x; "
                  "full SVD of all modules / inspect: "
                  f"{r['full_svd_all_224_estimated_s'] / r['load_and_inspect_s']:.0f}x"]
    lines += ["", f"merge: {r['merge_layers']} LLaMA-7B-shaped decoder layers in {r['merge_shards']} bf16 shards "
              f"({r['merge_base_mb']:.0f} MB, largest shard {r['merge_shard_mb']:.0f} MB): {r['merge_s']:.1f} s, "
              f"peak RSS {r['merge_peak_rss_mb']:.0f} MB (a process that only loads the adapter: "
              f"{r['baseline_rss_mb_python_numpy_loralens_adapter']:.0f} MB)"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
