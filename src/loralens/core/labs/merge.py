"""Lab "merge": no inference latency, and adapters you can swap.

One frozen W (d, k) and two rank-r adapters (B random, as after training). In float32, as a model is served:

- the same batch through W·x + s·B·(A·x) (unmerged) and through W'·x with W' = W + s·B·A (merged);
- swapping: merge adapter 1, unmerge it, merge adapter 2, unmerge it: back to W within round-off;
- the cost per token, counted as FLOPs = 2 × multiply-adds of the matrix products (the O(d) scaling and the
  final addition are left out): merged 2·d·k, unmerged 2·(d·k + r·(d + k));
- measured wall time of both for the batch (median of ``repeats``; the only numbers a seed does not fix);
- the training-time cost: trainable parameters, their gradients and Adam's two moments (fp32) for LoRA
  (r·(d + k)) against full fine-tuning (d·k).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from loralens.core.units import binary_bytes

from loralens.core.counting import full_params, lora_params
from loralens.core.labs import common
from loralens.core.labs.common import Progress
from loralens.core.labs import params
from loralens.core.labs.params import Lab, LabParam, check_params, to_plain
from loralens.core.lora import LoraSpec, forward, init_lora, merge, unmerge

DTYPE = np.float32
BYTES_PER_VALUE = 4  # fp32 gradients and Adam moments
ADAM_STATES = 2  # first and second moment per trainable parameter
REPEATS = LabParam("repeats", int, 1, 100, "timing repeats", "timed repetitions (the median is reported)")
MERGE_BATCH = params.BATCH.but(help="tokens in the timed batch")


@dataclass(frozen=True)
class MergeResult:
    d: int
    k: int
    rank: int
    alpha: float
    scaling: float
    seed: int
    batch: int
    repeats: int
    dtype: str
    float_eps: float
    output_max_abs: float  # largest |output|, the scale the differences compare with
    merged_vs_unmerged_max_abs_diff: float
    weight_max_abs: float
    swap_back_max_abs_diff: float  # max |W after merge 1, unmerge 1, merge 2, unmerge 2 − W|
    adapters_differ_max_abs: float  # max |W + ΔW1 − (W + ΔW2)|: the two adapters really are different
    multiply_adds_per_token_merged: int  # d·k
    multiply_adds_per_token_unmerged: int  # d·k + r·(d + k)
    flops_per_token_merged: int  # 2·d·k
    flops_per_token_unmerged: int  # 2·(d·k + r·(d + k))
    unmerged_overhead: float  # r·(d + k) / (d·k)
    seconds_merged: float  # median wall time of the batch (not deterministic)
    seconds_unmerged: float
    trainable_params_lora: int
    trainable_params_full: int
    gradient_bytes_lora: int
    gradient_bytes_full: int
    adam_state_bytes_lora: int
    adam_state_bytes_full: int

    def to_json(self) -> dict[str, Any]:
        return to_plain(self)


def _median_seconds(first: Any, second: Any, repeats: int) -> tuple[float, float]:
    """Median wall time of two functions, timed in alternation so that a busy moment hits both alike."""
    first(), second()  # warm up caches and BLAS buffers
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            function()
            out.append(time.perf_counter() - start)
    return float(np.median(times[0])), float(np.median(times[1]))


@common.one_blas_thread
def run_merge(d: int = 512, k: int = 512, rank: int = 8, alpha: float = 16.0, seed: int = 0, batch: int = 256,
              repeats: int = 15, progress: Progress | None = None) -> MergeResult:
    """Compare merged and unmerged inference, swap two adapters, and count the cost of each."""
    d, k = common.check_shape(d, k)
    rank = common.check_rank("rank", rank, d, k)
    seed, alpha, batch, repeats = check_params((params.SEED, params.ALPHA, MERGE_BATCH, REPEATS), locals())
    scaling = LoraSpec(rank, alpha).scaling

    w = (common.rng_for(seed, common.STREAM_TASK).standard_normal((d, k)) / math.sqrt(k)).astype(DTYPE)  # (d, k)
    adapters = []
    for i in (1, 2):
        a, _ = init_lora(d, k, rank, common.rng_for(seed, common.STREAM_ADAPTER, i))
        b = common.rng_for(seed, common.STREAM_ADAPTER, 10 + i).standard_normal((d, rank)) / math.sqrt(rank)
        adapters.append((a.astype(DTYPE), b.astype(DTYPE)))  # A (r, k), B (d, r): as if trained (B ≠ 0)
    x = common.rng_for(seed, common.STREAM_DATA).standard_normal((batch, k)).astype(DTYPE)  # (n, k)
    s = DTYPE(scaling)

    a1, b1 = adapters[0]
    unmerged = forward(w, b1, a1, s, x)  # (n, d)
    w_merged = merge(w, b1, a1, s)
    merged = x @ w_merged.T
    if progress is not None:
        progress(1, 3)

    back = unmerge(w_merged, b1, a1, s)
    a2, b2 = adapters[1]
    w_other = merge(back, b2, a2, s)
    back = unmerge(w_other, b2, a2, s)

    if progress is not None:
        progress(2, 3)
    seconds_unmerged, seconds_merged = _median_seconds(lambda: forward(w, b1, a1, s, x), lambda: x @ w_merged.T,
                                                       repeats)
    if progress is not None:
        progress(3, 3)

    macs_merged = d * k
    macs_unmerged = full_params(d, k) + lora_params(d, k, rank)
    lora, full = lora_params(d, k, rank), full_params(d, k)
    return MergeResult(
        d=d, k=k, rank=rank, alpha=alpha, scaling=scaling, seed=seed, batch=batch, repeats=repeats,
        dtype=np.dtype(DTYPE).name, float_eps=float(np.finfo(DTYPE).eps),
        output_max_abs=float(np.abs(unmerged).max()),
        merged_vs_unmerged_max_abs_diff=float(np.abs(merged - unmerged).max()),
        weight_max_abs=float(np.abs(w).max()),
        swap_back_max_abs_diff=float(np.abs(back - w).max()),
        adapters_differ_max_abs=float(np.abs(w_merged - w_other).max()),
        multiply_adds_per_token_merged=macs_merged, multiply_adds_per_token_unmerged=macs_unmerged,
        flops_per_token_merged=2 * macs_merged, flops_per_token_unmerged=2 * macs_unmerged,
        unmerged_overhead=lora_params(d, k, rank) / full_params(d, k),
        seconds_merged=seconds_merged, seconds_unmerged=seconds_unmerged,
        trainable_params_lora=lora, trainable_params_full=full,
        gradient_bytes_lora=lora * BYTES_PER_VALUE, gradient_bytes_full=full * BYTES_PER_VALUE,
        adam_state_bytes_lora=ADAM_STATES * lora * BYTES_PER_VALUE,
        adam_state_bytes_full=ADAM_STATES * full * BYTES_PER_VALUE,
    )



def _timing_note(speed: float, overhead: float) -> str:
    """What the measured ratio says, next to the FLOP ratio 1 + overhead."""
    if not speed == speed:  # NaN: the merged batch took no measurable time
        return "too fast to time"
    if speed < 1:
        return (f"unmerged was not slower in this measurement: timing noise on this machine is larger than the "
                f"{overhead:.1%} difference in work, so the FLOP count is the dependable comparison")
    if speed > 1 + 2 * overhead:
        return "the two extra small matrix products cost more time than their FLOPs suggest"
    return "about what the FLOP counts predict"


def reading(result: MergeResult) -> str:
    """One paragraph that reads the numbers of a run."""
    r = result
    speed = r.seconds_unmerged / r.seconds_merged if r.seconds_merged > 0 else float("nan")
    return (
        f"Merged (W' = W + s·B·A) and unmerged outputs of {r.batch} tokens differ by at most "
        f"{r.merged_vs_unmerged_max_abs_diff:.2g} on outputs up to {r.output_max_abs:.2g}: {r.dtype} round-off "
        f"(ε = {r.float_eps:.1g}), not a different model. Merged, a token costs {r.flops_per_token_merged:,} FLOPs, "
        f"exactly the base layer's; unmerged it costs {r.flops_per_token_unmerged:,} "
        f"({r.unmerged_overhead:.2%} more), and the measured batch took {r.seconds_unmerged * 1e3:.2f} ms unmerged "
        f"against {r.seconds_merged * 1e3:.2f} ms merged ({speed:.2f}×; {_timing_note(speed, r.unmerged_overhead)}). "
        f"Merging adapter 1, unmerging it, then doing the same with adapter 2 "
        f"returns W within {r.swap_back_max_abs_diff:.2g}, so one frozen W serves many tasks. In training, LoRA "
        f"keeps gradients and Adam state for {r.trainable_params_lora:,} parameters "
        f"({binary_bytes(r.gradient_bytes_lora + r.adam_state_bytes_lora)}) instead of {r.trainable_params_full:,} "
        f"({binary_bytes(r.gradient_bytes_full + r.adam_state_bytes_full)}): "
        f"{r.trainable_params_lora / r.trainable_params_full:.2%} of full fine-tuning."
    )


def summary(r: MergeResult) -> list[tuple[str, str]]:
    """The command's aligned lines."""
    return [
        ("layer", f"{r.d} x {r.k}, rank {r.rank}, alpha {r.alpha:g}, {r.dtype}, batch {r.batch}"),
        ("merged vs unmerged", f"max |diff| {r.merged_vs_unmerged_max_abs_diff:.3g} (outputs up to "
                               f"{r.output_max_abs:.3g})"),
        ("swap back to W", f"max |diff| {r.swap_back_max_abs_diff:.3g}"),
        ("FLOPs per token", f"merged {r.flops_per_token_merged:,}, unmerged {r.flops_per_token_unmerged:,} "
                            f"(FLOPs = 2 x multiply-adds)"),
        ("batch time", f"merged {r.seconds_merged * 1e3:.3f} ms, unmerged {r.seconds_unmerged * 1e3:.3f} ms"),
        ("trainable params", f"LoRA {r.trainable_params_lora:,}, full {r.trainable_params_full:,}"),
        ("grad + Adam bytes", f"LoRA {r.gradient_bytes_lora + r.adam_state_bytes_lora:,}, full "
                              f"{r.gradient_bytes_full + r.adam_state_bytes_full:,}"),
    ]


LAB = Lab(
    key="merge", tab="Merge", title="Merge — no inference latency",
    description="Merged vs unmerged outputs, swapping two adapters, FLOPs and training-time cost.",
    params=(params.D, params.K, params.RANK, params.ALPHA, params.SEED, MERGE_BATCH, REPEATS),
    run=run_merge, reading=reading, summary=summary,
)
