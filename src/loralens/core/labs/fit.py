"""Lab "fit": why low rank works, and when it is not enough.

A frozen W and a target update ΔW* of intrinsic rank s (plus optional noise) on a d x k layer. A rank-r LoRA
is trained with Adam on outputs (see ``common``); so is one adapter for each rank of a sweep, on the same
batches. The best any rank-r update can do is the Eckart–Young bound: the tail of ΔW*'s singular values,
‖σ_{r+1:}‖ / ‖σ‖. When s ≤ r LoRA reaches ~zero error; when s > r it stalls at that bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loralens.core.labs import common
from loralens.core.labs.common import Progress
from loralens.core.labs import params
from loralens.core.labs.params import Lab, LabParam, to_plain
from loralens.core.lora import LoraSpec, delta_weight, init_lora
from loralens.core.lowrank import singular_values, truncation_error
from loralens.errors import InvalidParameterError

MAX_SWEEP = 12


@dataclass(frozen=True)
class FitResult:
    d: int
    k: int
    rank: int
    alpha: float
    scaling: float
    steps: int
    seed: int
    target_rank: int
    noise: float
    lr: float
    batch: int
    loss: tuple[float, ...]  # the rank-r run's training loss (batch MSE) at every step
    final_relative_error: float  # ‖ΔW − ΔW*‖_F / ‖ΔW*‖_F after training
    optimal_relative_error: float  # Eckart–Young bound for rank r
    target_singular_values: tuple[float, ...]  # all min(d, k) of ΔW*, float64 full SVD
    learned_singular_values: tuple[float, ...]  # the r singular values of the trained s·B·A
    sweep_ranks: tuple[int, ...]
    sweep_final_relative_error: tuple[float, ...]
    sweep_optimal_relative_error: tuple[float, ...]
    sweep_loss: tuple[tuple[float, ...], ...]  # each sweep rank's loss at every step

    def to_json(self) -> dict[str, Any]:
        return to_plain(self)


def default_sweep(rank: int, target_rank: int, d: int, k: int) -> tuple[int, ...]:
    """Powers of two up to min(d, k, 64), plus r and s when they fit."""
    limit = min(d, k)
    ranks = {2**i for i in range(7) if 2**i <= limit} | {rank}
    if target_rank <= min(limit, 64):
        ranks.add(target_rank)
    return tuple(sorted(ranks))


@common.one_blas_thread
def run_fit(d: int = 128, k: int = 128, rank: int = 4, alpha: float = 16.0, steps: int = 400, seed: int = 0,
            target_rank: int = 8, noise: float = 0.0, lr: float = 0.03, batch: int = 64,
            sweep: Sequence[int] | None = None, progress: Progress | None = None) -> FitResult:
    """Train a rank-``rank`` LoRA (and one per sweep rank) towards a rank-``target_rank`` update."""
    d, k = common.check_shape(d, k)
    rank = common.check_rank("rank", rank, d, k)
    target_rank = common.check_rank("target_rank", target_rank, d, k)
    t = common.check_training(locals())
    if sweep is None:
        ranks = default_sweep(rank, target_rank, d, k)
    else:
        ranks = tuple(sorted({common.check_rank("sweep", r, d, k) for r in sweep} | {rank}))
        if len(ranks) > MAX_SWEEP:
            raise InvalidParameterError(f"at most {MAX_SWEEP} ranks, got {len(ranks)}", where="sweep")

    task = common.make_task(d, k, target_rank, t.noise, t.seed)
    runs = []
    for r in ranks:
        a, b = init_lora(d, k, r, common.rng_for(t.seed, common.STREAM_ADAPTER, r))
        runs.append(common.Run(a=a, b=b, scaling=LoraSpec(r, t.alpha).scaling, target=task.target))
    losses = common.train(runs, t.steps, t.lr, t.batch, t.seed, progress)

    s = task.target_singular_values
    errors = [common.relative_error(delta_weight(run.b, run.a, run.scaling), task.target) for run in runs]
    optimal = [truncation_error(s, r) for r in ranks]
    main = ranks.index(rank)
    learned = singular_values(runs[main].b, runs[main].a, runs[main].scaling)
    return FitResult(
        d=d, k=k, rank=rank, alpha=t.alpha, scaling=runs[main].scaling, steps=t.steps, seed=t.seed,
        target_rank=target_rank, noise=t.noise, lr=t.lr, batch=t.batch,
        loss=tuple(common.floats(losses[main])),
        final_relative_error=errors[main],
        optimal_relative_error=optimal[main],
        target_singular_values=tuple(common.floats(s)),
        learned_singular_values=tuple(common.floats(learned)),
        sweep_ranks=ranks,
        sweep_final_relative_error=tuple(errors),
        sweep_optimal_relative_error=tuple(optimal),
        sweep_loss=tuple(tuple(common.floats(curve)) for curve in losses),
    )


def reading(result: FitResult) -> str:
    """One paragraph that reads the numbers of a run."""
    r, s = result.rank, result.target_rank
    err, best = result.final_relative_error, result.optimal_relative_error
    full_rank = result.noise > 0 or s >= min(result.d, result.k)
    target = (f"a target update of rank {s}" if result.noise == 0
              else f"a rank-{s} target update plus {result.noise:g}× noise (so of full rank {min(result.d, result.k)})")
    text = [f"A rank-{r} LoRA trained for {result.steps} Adam steps on {target} ends with a relative error of "
            f"{err:.2g}; the best any rank-{r} update can reach (Eckart–Young) is {best:.2g}."]
    if best < 1e-9:
        if err < 1e-3:
            text.append(f"Since r = {r} ≥ s = {s}, the target lies inside what the adapter can express, and it "
                        f"learns it almost exactly with {r * (result.d + result.k):,} trainable parameters instead of "
                        f"{result.d * result.k:,}.")
        else:
            text.append(f"r = {r} ≥ s = {s}, so zero error is reachable; more steps (or a larger learning rate) "
                        "would get closer.")
    else:
        gap = err / best - 1
        verb = "stalls at" if gap < 0.01 else f"ends {gap:.0%} above (more steps would bring it closer to)"
        text.append(f"Since r = {r} < {'the full rank' if full_rank else f's = {s}'}, LoRA {verb} "
                    f"that bound: the "
                    f"{_missing(result)} singular directions it cannot hold carry "
                    f"{best**2:.0%} of the target's energy.")
        bigger = [(rr, e) for rr, e in zip(result.sweep_ranks, result.sweep_optimal_relative_error) if e < 0.05]
        if bigger and bigger[0][0] * 2 <= min(result.d, result.k):
            text.append(f"In the sweep, rank {bigger[0][0]} is the first whose bound falls below 5%.")
        elif bigger:
            text.append(f"Only rank {bigger[0][0]} of at most {min(result.d, result.k)} gets the bound below 5%: "
                        "this target needs a (nearly) full-rank update, which is when LoRA is not enough.")
        else:
            text.append("No rank in the sweep gets the bound below 5%: this target needs a (nearly) full-rank "
                        "update, which is when LoRA is not enough.")
    return " ".join(text)


def _missing(result: FitResult) -> int:
    """How many of the target's non-negligible singular values lie beyond rank r."""
    sv = result.target_singular_values
    return sum(1 for v in sv[result.rank:] if v > sv[0] * 1e-10)


def summary(r: FitResult) -> list[tuple[str, str]]:
    """The command's aligned lines."""
    return [
        ("layer", f"{r.d} x {r.k}, rank {r.rank}, alpha {r.alpha:g} (scaling {r.scaling:g})"),
        ("target", f"rank {r.target_rank}, noise {r.noise:g}"),
        ("training", f"{r.steps} Adam steps, lr {r.lr:g}, batch {r.batch}, seed {r.seed}"),
        ("loss", f"{r.loss[0]:.4g} -> {r.loss[-1]:.4g}"),
        ("final relative error", f"{r.final_relative_error:.4g}"),
        ("Eckart–Young bound", f"{r.optimal_relative_error:.4g}"),
        ("sweep (rank: error / bound)", "  ".join(
            f"{rank}: {e:.3g}/{b:.3g}" for rank, e, b in zip(
                r.sweep_ranks, r.sweep_final_relative_error, r.sweep_optimal_relative_error))),
    ]


SWEEP = LabParam("sweep", tuple, 1, params.MAX_DIM, "sweep ranks",
                 "comma-separated ranks to train for the error-vs-rank sweep (default: 1,2,4,...,64 plus r and s)",
                 page=False)
LAB = Lab(
    key="fit", tab="Fit", title="Fit — why low rank works",
    description="Train a rank-r LoRA towards a target update of rank s; compare with the Eckart–Young bound.",
    params=(params.D, params.K, params.RANK, params.ALPHA, params.STEPS, params.SEED, params.TARGET_RANK,
            params.NOISE, params.LR, params.BATCH, SWEEP),
    run=run_fit, reading=reading, summary=summary,
)
