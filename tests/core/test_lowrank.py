"""Spectra through the r x r core must equal a float64 full SVD of the d x k product."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loralens.core.lowrank import (
    effective_rank,
    energy_kept,
    lowrank_svd,
    numerical_rank,
    rank_for_energy,
    singular_values,
    subspace_similarity,
    truncation_error,
)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 8), st.integers(0, 10_000), st.floats(-4, 4))
def test_core_svd_equals_full_svd(d: int, k: int, r: int, seed: int, scale: float) -> None:
    r = min(r, d, k)
    rng = np.random.default_rng(seed)
    b, a = rng.normal(size=(d, r)), rng.normal(size=(r, k))
    full = np.linalg.svd(scale * b @ a, compute_uv=False)[:r]
    assert np.allclose(singular_values(b, a, scale), full, atol=1e-9 * max(1.0, full[0]))
    u, s, vt = lowrank_svd(b, a, scale)
    assert np.allclose(s, full, atol=1e-9 * max(1.0, full[0]))
    assert np.allclose((u * s) @ vt, scale * b @ a, atol=1e-9 * max(1.0, full[0]))


def test_numerical_and_effective_rank() -> None:
    assert numerical_rank(np.array([3.0, 1e-9, 0.0]), (64, 64)) == 1
    assert effective_rank(np.array([1.0, 0.0])) == pytest.approx(1.0)
    assert effective_rank(np.ones(8)) == pytest.approx(8.0)


def test_energy_and_truncation_agree_with_eckart_young() -> None:
    rng = np.random.default_rng(1)
    m = rng.normal(size=(30, 20))
    s = np.linalg.svd(m, compute_uv=False)
    u, _, vt = np.linalg.svd(m, full_matrices=False)
    best5 = (u[:, :5] * s[:5]) @ vt[:5]
    assert truncation_error(s, 5) == pytest.approx(np.linalg.norm(m - best5) / np.linalg.norm(m))
    kept = energy_kept(s)
    assert kept[-1] == pytest.approx(1.0)
    r = rank_for_energy(s, 0.9)
    assert kept[r - 1] >= 0.9 > (kept[r - 2] if r > 1 else 0)


def test_subspace_similarity_bounds() -> None:
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(50, 8)))
    assert subspace_similarity(q, q) == pytest.approx(1.0)
    other, _ = np.linalg.qr(rng.normal(size=(50, 4)))
    assert 0.0 <= subspace_similarity(q, other) <= 1.0
