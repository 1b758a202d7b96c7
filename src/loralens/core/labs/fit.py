"""Lab "fit": why low rank works, and when it is not enough.

A frozen W and a target update ΔW* of intrinsic rank s (plus optional noise) on a d x k layer. A rank-r LoRA
is trained with Adam on outputs (see ``common``); so is one adapter for each rank of a sweep, on the same
batches. The best any rank-r update can do is the Eckart–Young bound: the tail of ΔW*'s singular values,
‖σ_{r+1:}‖ / ‖σ‖. When s ≤ r LoRA reaches ~zero error; when s > r it stalls at that bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from loralens.core.labs import common
from loralens.core.labs.common import Progress
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
        data = asdict(self)
        return {key: _lists(value) for key, value in data.items()}


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


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
    steps, seed, alpha, noise, lr, batch = common.check_training(steps, seed, alpha, noise, lr, batch)
    if sweep is None:
        ranks = default_sweep(rank, target_rank, d, k)
    else:
        ranks = tuple(sorted({common.check_rank("sweep", r, d, k) for r in sweep} | {rank}))
        if len(ranks) > MAX_SWEEP:
            raise InvalidParameterError(f"at most {MAX_SWEEP} ranks, got {len(ranks)}", where="sweep")

    task = common.make_task(d, k, target_rank, noise, seed)
    runs = []
    for r in ranks:
        a, b = init_lora(d, k, r, common.rng_for(seed, common.STREAM_ADAPTER, r))
        runs.append(common.Run(a=a, b=b, scaling=LoraSpec(r, alpha).scaling, target=task.target))
    losses = common.train(runs, steps, lr, batch, seed, progress)

    s = task.target_singular_values
    errors = [common.relative_error(delta_weight(run.b, run.a, run.scaling), task.target) for run in runs]
    optimal = [truncation_error(s, r) for r in ranks]
    main = ranks.index(rank)
    learned = singular_values(runs[main].b, runs[main].a, runs[main].scaling)
    return FitResult(
        d=d, k=k, rank=rank, alpha=alpha, scaling=runs[main].scaling, steps=steps, seed=seed,
        target_rank=target_rank, noise=noise, lr=lr, batch=batch,
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
