"""Lab "init": why B = 0 and A random.

Five initialisations of the same rank-r adapter, trained on the same task and batches as the fit lab:

- ``default``: PEFT's: A kaiming-uniform, U(−1/√k, 1/√k); B = 0. ΔW = 0 at init, so the model is unchanged,
  grad_A = 0 at step 0 (it is proportional to B) but grad_B ≠ 0, so B moves first and then A follows.
- ``a_zero``: A = 0, B kaiming-uniform, U(−1/√r, 1/√r). Also unchanged at init; the roles swap.
- ``both_random``: A and B as above. The model changes before any training (ΔW ≠ 0 at step 0).
- ``both_zero``: A = B = 0. Both gradients are exactly zero, so it never learns.
- ``pissa``: PiSSA (Meng et al., PEFT's ``init_lora_weights="pissa"``): A = √S_r·V_rᵀ/√s, B = U_r·√S_r/√s
  from W's top-r singular triplets, and W replaced by the residual W − s·B·A, so the model is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from loralens.core.labs import common
from loralens.core.labs.common import Progress
from loralens.core.labs import params
from loralens.core.labs.params import Lab, to_plain
from loralens.core.lora import LoraSpec, delta_weight, init_lora
from loralens.errors import InvalidParameterError

SCHEMES = ("default", "a_zero", "both_random", "both_zero", "pissa")
DESCRIPTIONS = {
    "default": "A kaiming-uniform, B = 0 (PEFT's default)",
    "a_zero": "A = 0, B random",
    "both_random": "A and B random",
    "both_zero": "A = 0 and B = 0",
    "pissa": "PiSSA: A, B from W's top-r singular vectors; W replaced by the residual",
}


@dataclass(frozen=True)
class SchemeResult:
    delta_w_fro_at_init: float  # ‖s·B·A‖_F at step 0
    output_change_at_init: float  # ‖h − W·x‖_F / ‖W·x‖_F at step 0 on an evaluation batch (h: the adapted layer)
    grad_a_norm_at_init: float  # ‖∂loss/∂A‖_F at step 0 on that batch
    grad_b_norm_at_init: float
    final_relative_error: float  # ‖(W_base + s·B·A) − (W + ΔW*)‖_F / ‖ΔW*‖_F after training
    loss: tuple[float, ...]


@dataclass(frozen=True)
class InitResult:
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
    schemes: tuple[str, ...]
    results: dict[str, SchemeResult]

    def to_json(self) -> dict[str, Any]:
        data = to_plain(self)  # the README documents one object per scheme beside "schemes"
        data.update(data.pop("results"))
        return data


def _uniform(rng: np.random.Generator, shape: tuple[int, int], fan_in: int) -> np.ndarray:
    """Kaiming-uniform with a = √5, as torch.nn.Linear and PEFT use: U(−1/√fan_in, 1/√fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


def initial_adapter(scheme: str, w: np.ndarray, r: int, scaling: float, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A (r, k), B (d, r), W_base (d, k)) of one scheme. The same seed gives every scheme the same random A."""
    d, k = w.shape
    a_random, _ = init_lora(d, k, r, common.rng_for(seed, common.STREAM_ADAPTER, 0))
    b_random = _uniform(common.rng_for(seed, common.STREAM_ADAPTER, 1), (d, r), r)
    if scheme == "default":
        return a_random, np.zeros((d, r)), w
    if scheme == "a_zero":
        return np.zeros((r, k)), b_random, w
    if scheme == "both_random":
        return a_random, b_random, w
    if scheme == "both_zero":
        return np.zeros((r, k)), np.zeros((d, r)), w
    if scheme == "pissa":
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        root = np.sqrt(s[:r] / scaling)  # PEFT divides S_r by the scaling before the square root
        a = root[:, None] * vt[:r]  # (r, k)
        b = u[:, :r] * root  # (d, r)
        return a, b, w - delta_weight(b, a, scaling)
    raise InvalidParameterError(f"expected one of {', '.join(SCHEMES)}, got {scheme!r}", where="scheme")


@common.one_blas_thread
def run_init(d: int = 64, k: int = 64, rank: int = 8, alpha: float = 16.0, steps: int = 300, seed: int = 0,
             target_rank: int = 8, noise: float = 0.0, lr: float = 0.03, batch: int = 64,
             progress: Progress | None = None) -> InitResult:
    """Train the five initialisations on one task; report step-0 quantities and loss curves."""
    d, k = common.check_shape(d, k)
    rank = common.check_rank("rank", rank, d, k)
    target_rank = common.check_rank("target_rank", target_rank, d, k)
    t = common.check_training(locals())
    scaling = LoraSpec(rank, t.alpha).scaling

    task = common.make_task(d, k, target_rank, t.noise, t.seed)
    x = common.rng_for(t.seed, common.STREAM_EXTRA).standard_normal((t.batch, k))  # evaluation batch (n, k)
    frozen = x @ task.w.T  # (n, d)
    runs, at_init = [], {}
    for scheme in SCHEMES:
        a, b, w_base = initial_adapter(scheme, task.w, rank, scaling, t.seed)
        target = task.target - (w_base - task.w)  # what s·B·A must become
        h = x @ w_base.T + scaling * ((x @ a.T) @ b.T)  # (n, d)
        _, grad_a, grad_b = common.loss_and_grads(a, b, scaling, x, x @ target.T)
        at_init[scheme] = (
            float(np.linalg.norm(delta_weight(b, a, scaling))),
            float(np.linalg.norm(h - frozen) / np.linalg.norm(frozen)),
            float(np.linalg.norm(grad_a)),
            float(np.linalg.norm(grad_b)),
        )
        runs.append(common.Run(a=a, b=b, scaling=scaling, target=target))
    losses = common.train(runs, t.steps, t.lr, t.batch, t.seed, progress)

    results = {}
    for scheme, run, curve in zip(SCHEMES, runs, losses):
        error = common.relative_error(delta_weight(run.b, run.a, run.scaling), run.target)
        delta, change, grad_a_norm, grad_b_norm = at_init[scheme]
        results[scheme] = SchemeResult(
            delta_w_fro_at_init=delta, output_change_at_init=change, grad_a_norm_at_init=grad_a_norm,
            grad_b_norm_at_init=grad_b_norm, final_relative_error=error, loss=tuple(common.floats(curve)))
    return InitResult(d=d, k=k, rank=rank, alpha=t.alpha, scaling=scaling, steps=t.steps, seed=t.seed,
                      target_rank=target_rank, noise=t.noise, lr=t.lr, batch=t.batch, schemes=SCHEMES, results=results)


def reading(result: InitResult) -> str:
    """One paragraph that reads the numbers of a run."""
    res = result.results
    default, a_zero, both_random = res["default"], res["a_zero"], res["both_random"]
    both_zero, pissa = res["both_zero"], res["pissa"]
    parts = [
        f"With PEFT's default (B = 0) the adapter starts as an exact no-op (‖ΔW‖ = {default.delta_w_fro_at_init:g}) "
        f"and only B gets a gradient at step 0 (‖∂A‖ = {default.grad_a_norm_at_init:g}, "
        f"‖∂B‖ = {default.grad_b_norm_at_init:.3g}); once B moves, A follows, and the run ends at a relative error "
        f"of {default.final_relative_error:.2g}.",
        f"A = 0 with B random is the mirror image (‖∂A‖ = {a_zero.grad_a_norm_at_init:.3g}, ‖∂B‖ = "
        f"{a_zero.grad_b_norm_at_init:g}) and ends at {a_zero.final_relative_error:.2g}.",
        f"Both random changes the model before any training: the outputs move by "
        f"{both_random.output_change_at_init:.1%} at step 0, and training has to undo that too "
        f"(final error {both_random.final_relative_error:.2g}).",
        f"Both zero never learns: both gradients are exactly {both_zero.grad_a_norm_at_init:g} and "
        f"{both_zero.grad_b_norm_at_init:g}, so its error stays at {both_zero.final_relative_error:.2g}.",
        f"PiSSA starts with a large adapter (‖ΔW‖ = {pissa.delta_w_fro_at_init:.3g}) but the same outputs "
        f"(change {pissa.output_change_at_init:.1g}) because W was replaced by the residual; it ends at "
        f"{pissa.final_relative_error:.2g}.",
    ]
    return " ".join(parts)


def summary(r: InitResult) -> list[tuple[str, str]]:
    """The command's aligned lines."""
    rows = [("layer", f"{r.d} x {r.k}, rank {r.rank}, alpha {r.alpha:g}; {r.steps} steps, seed {r.seed}"),
            ("scheme", "|ΔW| at init  |∂A| at init  |∂B| at init  final error")]
    for name in r.schemes:
        one = r.results[name]
        rows.append((name, f"{one.delta_w_fro_at_init:12.4g}  {one.grad_a_norm_at_init:12.4g}  "
                           f"{one.grad_b_norm_at_init:12.4g}  {one.final_relative_error:11.4g}"))
    return rows + list(DESCRIPTIONS.items())


LAB = Lab(
    key="init", tab="Init", title="Init — why B = 0 and A random",
    description="Compare five initialisations (PEFT default, A=0, both random, both zero, PiSSA).",
    params=(params.D, params.K, params.RANK, params.ALPHA, params.STEPS, params.SEED, params.TARGET_RANK,
            params.NOISE, params.LR, params.BATCH),
    run=run_init, reading=reading, summary=summary,
)
