"""Lab "subspace": the LoRA paper's §7 analysis on a task whose answer we know.

Two adapters of rank r1 = 8 and r2 = 64 are trained on the same task (as in the fit lab) from different seeds.
As in the paper (Hu et al. 2021, §7.2, Figure 3), each A (r, k) is decomposed A = U Σ Vᵀ and its right-singular
vectors (the rows of Vᵀ, directions in the input space) are compared:

    φ(i, j) = ‖V_iᵀ V_j‖²_F / min(i, j)  ∈ [0, 1],   i = 1..r1, j = 1..r2,

with V_i the top-i right-singular vectors of A_{r1} and V_j the top-j of A_{r2}. φ = 1 means one subspace contains
the other; a random pair of subspaces has φ ≈ max(i, j) / k.

The amplification factor (§7.3, Table 7) is ‖ΔW‖_F / ‖Uᵀ W V‖_F, with U (d, r), V (k, r) the top-r left and
right singular vectors of ΔW = s·B·A: how much ΔW amplifies the directions it uses, compared with how strongly
W already uses them. For comparison, ‖U_Wᵀ W V_W‖_F projects W on its own top-r directions and ‖Rᵀ W R'‖_F on
random ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from loralens.core.labs import common
from loralens.core.labs.common import Progress
from loralens.core.labs import params
from loralens.core.labs.params import Lab, to_plain
from loralens.core.lora import LoraSpec, delta_weight, init_lora
from loralens.core.lowrank import lowrank_svd, subspace_similarity
from loralens.errors import InvalidParameterError


@dataclass(frozen=True)
class Amplification:
    rank: int
    delta_w_fro: float  # ‖ΔW‖_F
    projection_fro: float  # ‖Uᵀ W V‖_F, U, V from ΔW
    factor: float  # delta_w_fro / projection_fro
    w_top_projection_fro: float  # ‖U_Wᵀ W V_W‖_F with W's own top-r singular vectors
    random_projection_fro: float  # ‖Rᵀ W R'‖_F with random orthonormal R (d, r), R' (k, r)
    final_relative_error: float


@dataclass(frozen=True)
class SubspaceResult:
    d: int
    k: int
    rank: int
    rank_large: int
    alpha: float
    steps: int
    seed: int
    target_rank: int
    noise: float
    lr: float
    batch: int
    phi: tuple[tuple[float, ...], ...]  # rows i = 1..rank, columns j = 1..rank_large
    phi_random: float  # φ(1, rank_large) expected for a random pair: rank_large / k
    amplification: float  # the rank-r adapter's factor
    amplification_large: float
    details: tuple[Amplification, Amplification]
    loss: tuple[float, ...]
    loss_large: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return to_plain(self)


def right_singular_vectors(a: np.ndarray) -> np.ndarray:
    """The right-singular vectors of A (r, k) as columns (k, r), by descending singular value."""
    _, _, vt = np.linalg.svd(a, full_matrices=False)
    return vt.T


def phi_matrix(a_small: np.ndarray, a_large: np.ndarray) -> np.ndarray:
    """φ(i, j) for i = 1..r1, j = 1..r2 between the right-singular subspaces of two A matrices."""
    v1, v2 = right_singular_vectors(a_small), right_singular_vectors(a_large)
    r1, r2 = v1.shape[1], v2.shape[1]
    phi = np.empty((r1, r2))
    for i in range(1, r1 + 1):
        for j in range(1, r2 + 1):
            phi[i - 1, j - 1] = subspace_similarity(v1[:, :i], v2[:, :j])
    return phi


def amplification(w: np.ndarray, a: np.ndarray, b: np.ndarray, scaling: float, target: np.ndarray,
                  rng: np.random.Generator) -> Amplification:
    r = a.shape[0]
    u, _, vt = lowrank_svd(b, a, scaling)  # U (d, r), Vt (r, k)
    delta = delta_weight(b, a, scaling)
    projection = float(np.linalg.norm(u.T @ w @ vt.T))
    sw = np.linalg.svd(w, compute_uv=False)
    random_proj = float(np.linalg.norm(common.random_orthonormal(rng, w.shape[0], r).T @ w
                                       @ common.random_orthonormal(rng, w.shape[1], r)))
    norm = float(np.linalg.norm(delta))
    return Amplification(rank=r, delta_w_fro=norm, projection_fro=projection,
                         factor=norm / projection if projection else float("inf"),
                         w_top_projection_fro=float(np.sqrt(np.sum(sw[:r] ** 2))),
                         random_projection_fro=random_proj,
                         final_relative_error=common.relative_error(delta, target))


@common.one_blas_thread
def run_subspace(d: int = 128, k: int = 256, rank: int = 8, rank_large: int = 64, alpha: float = 16.0,
                 steps: int = 400, seed: int = 0, target_rank: int = 16, noise: float = 0.05, lr: float = 0.03,
                 batch: int = 64, progress: Progress | None = None) -> SubspaceResult:
    """Train rank-``rank`` and rank-``rank_large`` adapters on one task from different seeds; compare their A."""
    d, k = common.check_shape(d, k)
    rank = common.check_rank("rank", rank, d, k)
    rank_large = common.check_rank("rank_large", rank_large, d, k)
    if rank_large < rank:
        raise InvalidParameterError(f"must be at least rank = {rank}, got {rank_large}", where="rank_large")
    target_rank = common.check_rank("target_rank", target_rank, d, k)
    t = common.check_training(locals())

    task = common.make_task(d, k, target_rank, t.noise, t.seed)
    runs = []
    for i, r in enumerate((rank, rank_large)):  # different seeds: separate adapter streams
        a, b = init_lora(d, k, r, common.rng_for(t.seed, common.STREAM_ADAPTER, 100 + i))
        runs.append(common.Run(a=a, b=b, scaling=LoraSpec(r, t.alpha).scaling, target=task.target))
    losses = common.train(runs, t.steps, t.lr, t.batch, t.seed, progress)

    phi = phi_matrix(runs[0].a, runs[1].a)
    rng = common.rng_for(t.seed, common.STREAM_EXTRA)
    details = tuple(amplification(task.w, run.a, run.b, run.scaling, task.target, rng) for run in runs)
    return SubspaceResult(
        d=d, k=k, rank=rank, rank_large=rank_large, alpha=t.alpha, steps=t.steps, seed=t.seed, target_rank=target_rank,
        noise=t.noise, lr=t.lr, batch=t.batch,
        phi=tuple(tuple(common.floats(row)) for row in phi),
        phi_random=rank_large / k,
        amplification=details[0].factor, amplification_large=details[1].factor,
        details=details,  # type: ignore[arg-type]
        loss=tuple(common.floats(losses[0])), loss_large=tuple(common.floats(losses[1])),
    )


def reading(result: SubspaceResult) -> str:
    """One paragraph that reads the numbers of a run."""
    phi = np.asarray(result.phi)
    r1, r2 = result.rank, result.rank_large
    top = phi[0, r2 - 1]
    diag = [phi[i, i] for i in range(min(r1, r2))]
    high = sum(1 for v in diag if v > 0.5)
    small, large = result.details
    if result.phi_random >= 1:
        first = (f"The rank-{r2} adapter's A spans the whole input space (k = {result.k}), so φ(i, {r2}) = 1 "
                 f"says nothing; make k larger than {r2} to compare. ")
    else:
        first = (f"The top right-singular direction of the rank-{r1} adapter's A lies {top:.0%} inside the "
                 f"rank-{r2} adapter's full subspace (φ(1, {r2}) = {top:.2f}; a random direction would give about "
                 f"{result.phi_random:.2f}), although the two were trained from different seeds. ")
    agree = ("the top directions are found by both" if high * 2 >= len(diag)
             else "beyond the first few, the two adapters pick or order their directions differently")
    ratio = small.projection_fro / small.random_projection_fro if small.random_projection_fro else float("nan")
    if 0.5 <= ratio <= 2:
        strength = "about as weak in W as random directions are (W is random here and the task ignores it)"
    elif ratio < 0.5:
        strength = f"{1 / ratio:.1f}× weaker in W than random directions"
    else:
        strength = f"{ratio:.1f}× stronger in W than random directions"
    return first + (
        f"Along the diagonal, {high} of the first {len(diag)} φ(i, i) exceed 0.5 "
        f"(φ({len(diag)}, {len(diag)}) = {diag[-1]:.2f}): {agree}. The amplification factor ‖ΔW‖/‖UᵀWV‖ is "
        f"{small.factor:.3g} for r = {r1} ({small.delta_w_fro:.3g} / {small.projection_fro:.3g}) and "
        f"{large.factor:.3g} for r = {r2}; W projected on random directions gives {small.random_projection_fro:.3g} "
        f"and on its own top-{r1} directions {small.w_top_projection_fro:.3g}, so ΔW's directions are {strength}. "
        f"In the paper (GPT-3, Table 7) ΔW's directions were ones W did not emphasise, amplified about 21× at r = 4."
    )


def summary(r: SubspaceResult) -> list[tuple[str, str]]:
    """The command's aligned lines."""
    return [
        ("layer", f"{r.d} x {r.k}, ranks {r.rank} and {r.rank_large}; target rank {r.target_rank}, "
                  f"noise {r.noise:g}; {r.steps} steps, seed {r.seed}"),
        ("phi(1, j)", " ".join(f"{v:.2f}" for v in r.phi[0][:16]) + (" ..." if len(r.phi[0]) > 16 else "")),
        ("phi(i, i)", " ".join(f"{r.phi[i][i]:.2f}" for i in range(min(r.rank, r.rank_large)))),
        ("amplification", f"r={r.rank}: {r.amplification:.4g}, r={r.rank_large}: {r.amplification_large:.4g}"),
    ]


RANK_LARGE = params.RANK.but(name="rank_large", label="large rank", help="rank of the second, larger adapter")
LAB = Lab(
    key="subspace", tab="Subspace", title="Subspace — the paper's §7",
    description="The LoRA paper's §7: subspace similarity of rank-8 and rank-64 adapters; amplification.",
    params=(params.D, params.K, params.RANK, RANK_LARGE, params.ALPHA, params.STEPS, params.SEED,
            params.TARGET_RANK, params.NOISE, params.LR, params.BATCH),
    run=run_subspace, reading=reading, summary=summary,
)
