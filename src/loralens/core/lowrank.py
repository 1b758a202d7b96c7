"""Spectra of low-rank products without forming them.

The singular values of B @ A (B: (d, r), A: (r, k)) are those of the r x r core R_B @ R_Aᵀ, where
B = Q_B R_B and Aᵀ = Q_A R_A are thin QR factorisations. That costs O((d + k) r²) instead of the
O(d k min(d, k)) of a full SVD of the d x k product.
"""

from __future__ import annotations

import numpy as np

from loralens.core.validation import check_float, check_int


# CholeskyQR2 is as accurate as Householder QR while κ(x) stays well below 1/sqrt(eps) ≈ 7e7; beyond this we use QR.
_CHOLQR_MAX_COND = 1e6


def thin_qr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thin QR of a tall-skinny x (m, n): Q (m, n) with orthonormal columns, R (n, n), x = Q R.

    CholeskyQR2 (two Gram matrices and Cholesky factorisations, only matrix products on the m-long side) when x is
    well conditioned, else LAPACK's Householder QR. On a few shared cores LAPACK's QR of a 11008 x 16 factor can
    take 100x longer than the products (threads spin on a tiny problem); the products do not.
    """
    x = np.asarray(x, dtype=np.float64)
    m, n = x.shape
    if m >= n > 0 and np.isfinite(x).all():
        gram = x.T @ x  # (n, n)
        eig = np.linalg.eigvalsh(gram)
        if eig[0] > eig[-1] / _CHOLQR_MAX_COND**2 and eig[-1] > 0:
            try:
                r1 = np.linalg.cholesky(gram).T  # (n, n) upper
                q1 = x @ np.linalg.inv(r1)
                r2 = np.linalg.cholesky(q1.T @ q1).T
                return q1 @ np.linalg.inv(r2), r2 @ r1
            except np.linalg.LinAlgError:
                pass
    return np.linalg.qr(x)


def _r_factor(x: np.ndarray) -> np.ndarray:
    """R (n, n) of x = Q R, for singular values only: the Cholesky factor of the Gram matrix xᵀx when x is well
    conditioned (κ ≤ 1e4: the singular values of R then carry a relative error below κ²·eps ≈ 1e-8), else thin_qr."""
    m, n = x.shape
    if m >= n > 0 and np.isfinite(x).all():
        gram = x.T @ x  # (n, n)
        eig = np.linalg.eigvalsh(gram)
        if eig[-1] > 0 and eig[0] > eig[-1] * 1e-8:
            try:
                return np.linalg.cholesky(gram).T
            except np.linalg.LinAlgError:
                pass
    return thin_qr(x)[1]


def lowrank_svd(b: np.ndarray, a: np.ndarray, scaling: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of scaling · B @ A: U (d, r), S (r,) descending, Vt (r, k)."""
    b = np.asarray(b, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    q_b, r_b = thin_qr(b)  # (d, r), (r, r)
    q_a, r_a = thin_qr(a.T)  # (k, r), (r, r)
    # the SVD of the scaled core already carries the sign of a negative scaling in its singular vectors
    u_core, s, vt_core = np.linalg.svd(scaling * (r_b @ r_a.T), full_matrices=False)  # (r, r) core
    u = q_b @ u_core
    vt = vt_core @ q_a.T
    r = b.shape[1]
    if s.size < r:  # r > min(d, k): the core is smaller than r x r; pad with zero singular values
        u = np.hstack([u, np.zeros((u.shape[0], r - s.size))])
        vt = np.vstack([vt, np.zeros((r - s.size, vt.shape[1]))])
        s = np.concatenate([s, np.zeros(r - s.size)])
    return u, s, vt


def singular_values(b: np.ndarray, a: np.ndarray, scaling: float = 1.0) -> np.ndarray:
    """Singular values (descending, r of them) of scaling · B @ A."""
    b = np.asarray(b, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    r_b = _r_factor(b)
    r_a = _r_factor(a.T)
    s = np.linalg.svd(abs(scaling) * (r_b @ r_a.T), compute_uv=False)
    return np.concatenate([s, np.zeros(b.shape[1] - s.size)]) if s.size < b.shape[1] else s  # r > min(d, k)


def numerical_rank(s: np.ndarray, shape: tuple[int, int], eps: float = float(np.finfo(np.float32).eps)) -> int:
    """Count of singular values above max(σ) · max(shape) · eps (numpy's matrix_rank rule).

    ``eps`` defaults to float32's: adapters are stored in 32 or 16 bits, so float64 round-off is not the floor.
    """
    s = np.asarray(s)
    if s.size == 0 or s[0] == 0:
        return 0
    return int(np.count_nonzero(s > s.max() * max(shape) * eps))


def effective_rank(s: np.ndarray) -> float:
    """exp of the Shannon entropy of p_i = σ_i² / Σσ² (1 for a rank-1 matrix, r for a flat spectrum)."""
    energy = np.asarray(s, dtype=np.float64) ** 2
    total = energy.sum()
    if total == 0:
        return 0.0
    p = energy[energy > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def energy_kept(s: np.ndarray) -> np.ndarray:
    """Fraction of the Frobenius energy Σσ² kept by the best rank-i approximation, for i = 1..len(s)."""
    energy = np.asarray(s, dtype=np.float64) ** 2
    total = energy.sum()
    if total == 0:
        return np.ones_like(energy)
    return np.cumsum(energy) / total


def rank_for_energy(s: np.ndarray, fraction: float) -> int:
    """Smallest rank whose best approximation keeps at least ``fraction`` of the energy (at least 1)."""
    fraction = check_float("energy", fraction, 0.0, 1.0, low_open=True)
    kept = energy_kept(s)
    # tolerance: a spectrum that keeps 0.99 exactly must not need one more rank because of round-off
    return max(1, int(np.searchsorted(kept, fraction - 1e-12) + 1)) if kept.size else 0


def truncation_error(s: np.ndarray, rank: int) -> float:
    """Relative Frobenius error of the best rank-``rank`` approximation (Eckart–Young): ‖tail‖ / ‖σ‖."""
    rank = check_int("rank", rank, 0)
    energy = np.asarray(s, dtype=np.float64) ** 2
    total = energy.sum()
    return float(np.sqrt(energy[rank:].sum() / total)) if total else 0.0


def subspace_similarity(u_i: np.ndarray, u_j: np.ndarray) -> float:
    """The LoRA paper's φ = ‖U_iᵀ U_j‖²_F / min(i, j) for orthonormal columns U_i (n, i), U_j (n, j); in [0, 1]."""
    overlap = u_i.T @ u_j
    return float(np.sum(overlap**2) / min(u_i.shape[1], u_j.shape[1]))
