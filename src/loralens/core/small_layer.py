"""Real matrices for a small layer: W, A, B, ΔW = scaling·B·A and W′, at initialisation or after training.

"After training" is what training converges to, computed exactly rather than simulated: for a seeded task
update ΔW* (of rank 2r, so that rank r cannot hold all of it), B and A are set so that scaling·B·A is the best
rank-r approximation of ΔW* (Eckart–Young). The singular values of ΔW come from a float64 full SVD, so the page
shows with a real decomposition that rank(B·A) <= r.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loralens.core.counting import scaling as lora_scaling
from loralens.core.lora import delta_weight, init_lora
from loralens.core.validation import check_int

MAX_SMALL_DIM = 64


@dataclass(frozen=True)
class SmallLayer:
    w: np.ndarray  # (d, k), frozen
    a: np.ndarray  # (r, k)
    b: np.ndarray  # (d, r)
    delta: np.ndarray  # (d, k) = scaling · B @ A
    merged: np.ndarray  # (d, k) = W + ΔW
    scaling: float
    delta_singular_values: np.ndarray  # (min(d, k),) of ΔW, full SVD, descending
    target_singular_values: np.ndarray  # (min(d, k),) of ΔW*, the task update training aims at
    trained: bool


def small_layer(
    d: int, k: int, r: int, alpha: float, use_rslora: bool = False, *, trained: bool = False, seed: int = 0
) -> SmallLayer:
    """Seeded matrices for a d x k layer (d, k <= 64) with a rank-r LoRA, at init or after training."""
    d = check_int("d", d, 1, MAX_SMALL_DIM)
    k = check_int("k", k, 1, MAX_SMALL_DIM)
    r = check_int("r", r, 1, min(d, k))
    rng = np.random.default_rng(seed)
    s = lora_scaling(r, alpha, use_rslora)
    w = rng.normal(0.0, 1.0 / np.sqrt(k), size=(d, k))  # (d, k), like a trained layer's scale
    target = _task_update(d, k, min(2 * r, d, k), rng)  # (d, k)
    a, b = init_lora(d, k, r, rng)  # (r, k), (d, r) = 0
    if trained:
        u, sv, vt = np.linalg.svd(target, full_matrices=False)
        root = np.sqrt(sv[:r])
        b = u[:, :r] * root / s  # (d, r): scaling · B @ A = U_r Σ_r V_rᵀ
        a = root[:, None] * vt[:r]  # (r, k)
    delta = delta_weight(b, a, s)
    return SmallLayer(
        w=w,
        a=a,
        b=b,
        delta=delta,
        merged=w + delta,
        scaling=s,
        delta_singular_values=np.linalg.svd(delta, compute_uv=False),
        target_singular_values=np.linalg.svd(target, compute_uv=False),
        trained=trained,
    )


def _task_update(d: int, k: int, rank: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded update of the given rank with decaying singular values (0.3, 0.3·0.8, ...)."""
    u, _ = np.linalg.qr(rng.normal(size=(d, rank)))
    v, _ = np.linalg.qr(rng.normal(size=(k, rank)))
    sv = 0.3 * 0.8 ** np.arange(rank)
    return (u * sv) @ v.T
