"""The Explorer's real matrices: B = 0 at init, rank(ΔW) <= r, and 'trained' is the Eckart–Young optimum."""

import numpy as np
import pytest

from loralens.core.small_layer import small_layer


def test_initialisation_leaves_the_model_unchanged() -> None:
    layer = small_layer(32, 24, 4, 16)
    assert not layer.b.any() and layer.a.any()
    assert not layer.delta.any()
    assert np.array_equal(layer.merged, layer.w)
    assert np.all(layer.delta_singular_values == 0)


@pytest.mark.parametrize("d,k,r,rslora", [(64, 64, 8, False), (40, 16, 3, True), (8, 8, 8, False), (64, 5, 1, False)])
def test_trained_update_is_best_rank_r_approximation(d: int, k: int, r: int, rslora: bool) -> None:
    layer = small_layer(d, k, r, 16, rslora, trained=True, seed=3)
    # independent check: rank from a full float64 SVD of the product
    sv = np.linalg.svd(layer.delta, compute_uv=False)
    assert np.count_nonzero(sv > 1e-10 * sv[0]) == min(r, d, k, len(layer.target_singular_values))
    # ‖ΔW‖² equals the energy of the target's top r singular values (Eckart–Young)
    assert np.sum(sv**2) == pytest.approx(np.sum(layer.target_singular_values[:r] ** 2))
    assert np.allclose(layer.merged, layer.w + layer.delta)


def test_seeded_and_deterministic() -> None:
    one, two = small_layer(16, 16, 2, 8, seed=7), small_layer(16, 16, 2, 8, seed=7)
    assert np.array_equal(one.w, two.w) and np.array_equal(one.a, two.a)
    assert not np.array_equal(one.w, small_layer(16, 16, 2, 8, seed=8).w)
