"""Wall time of each lab, and how long the event loop stalls while a lab runs in a worker thread (as the app runs it).

    .venv/bin/python benchmarks/bench_labs.py [--repeat N] [--large]

Prints Markdown tables: median and max seconds per run over N runs for each lab at its defaults and at
d = k = 256 (the target is under 1 s); with ``--large``, one run at d = k = 1024 (the documented maximum).
Then, for the slowest d = k = 256 case, the event loop's worst and median tick lag (a 10 ms asyncio.sleep
loop) while the lab runs in a thread via asyncio.to_thread, which is what nicegui.run.io_bound does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from loralens.core.labs import LABS

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("fit", "defaults (128 x 128, r=4, s=8, 400 steps, 7 sweep ranks)", {}),
    ("fit", "256 x 256, defaults otherwise", {"d": 256, "k": 256}),
    ("fit", "256 x 256, s=256 (full-rank target)", {"d": 256, "k": 256, "target_rank": 256}),
    ("init", "defaults (64 x 64, r=8, 300 steps, 5 schemes)", {}),
    ("init", "256 x 256, defaults otherwise", {"d": 256, "k": 256}),
    ("merge", "defaults (512 x 512, r=8, batch 256, 15 timed repeats)", {}),
    ("merge", "256 x 256, defaults otherwise", {"d": 256, "k": 256}),
    ("subspace", "defaults (128 x 256, r=8 and 64, 400 steps)", {}),
    ("subspace", "256 x 256, defaults otherwise", {"d": 256, "k": 256}),
]
LARGE: list[tuple[str, str, dict[str, Any]]] = [
    ("fit", "1024 x 1024, defaults otherwise", {"d": 1024, "k": 1024}),
    ("init", "1024 x 1024, defaults otherwise", {"d": 1024, "k": 1024}),
    ("merge", "1024 x 1024, defaults otherwise", {"d": 1024, "k": 1024}),
    ("subspace", "1024 x 1024, defaults otherwise", {"d": 1024, "k": 1024}),
]


def time_runs(function: Callable[..., Any], kwargs: dict[str, Any], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each run (BLAS runs on one thread in a lab, so CPU ≈ wall when idle)."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        function(**kwargs)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


async def loop_lag(function: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[float, float, int]:
    """Run the lab in a thread; meanwhile tick every 10 ms and record how late each tick is (ms)."""
    lags: list[float] = []
    task = asyncio.create_task(asyncio.to_thread(function, **kwargs))
    while not task.done():
        start = time.perf_counter()
        await asyncio.sleep(0.010)
        lags.append((time.perf_counter() - start - 0.010) * 1000)
    await task
    return max(lags), statistics.median(lags), len(lags)


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5, help="runs per case (median and max)")
    parser.add_argument("--large", action="store_true", help="also one run per lab at d = k = 1024")
    args = parser.parse_args(argv)

    print(f"# Labs benchmark — {platform.platform()}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n")
    print("| lab | case | median wall s | max wall s | median CPU s | runs |")
    print("|---|---|---:|---:|---:|---:|")
    for lab, label, kwargs in CASES:
        LABS[lab].run(**{**kwargs, **({"steps": 5} if lab != "merge" else {})})  # warm-up: imports, BLAS buffers
        times, cpu = time_runs(LABS[lab].run, kwargs, args.repeat)
        print(f"| {lab} | {label} | {statistics.median(times):.3f} | {max(times):.3f} | {statistics.median(cpu):.3f} "
              f"| {len(times)} |", flush=True)
    if args.large:
        for lab, label, kwargs in LARGE:
            times, cpu = time_runs(LABS[lab].run, kwargs, 1)
            print(f"| {lab} | {label} | {times[0]:.3f} | {times[0]:.3f} | {cpu[0]:.3f} | 1 |", flush=True)

    print("\n| lab running in a worker thread | event-loop tick lag max ms | median ms | ticks |")
    print("|---|---:|---:|---:|")
    for lab, label, kwargs in (CASES[2], CASES[4]):
        worst, median, ticks = asyncio.run(loop_lag(LABS[lab].run, kwargs))
        print(f"| {lab}: {label} | {worst:.1f} | {median:.2f} | {ticks} |", flush=True)
    print(f"\nload average at the end: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
