"""Regression test for core.lowrank.lowrank_svd with a negative scaling (it used to flip U a second time)."""

import numpy as np
import pytest

from loralens.core.lowrank import lowrank_svd


@pytest.mark.parametrize("scaling", [2.0, -2.0, -0.5])
def test_lowrank_svd_reconstructs_the_product(scaling: float) -> None:
    rng = np.random.default_rng(0)
    b = rng.normal(size=(6, 3))
    a = rng.normal(size=(3, 5))
    u, s, vt = lowrank_svd(b, a, scaling)
    np.testing.assert_allclose((u * s) @ vt, scaling * b @ a, atol=1e-12)
    # the singular values agree with numpy's full SVD of the d x k product
    np.testing.assert_allclose(s, np.linalg.svd(scaling * b @ a, compute_uv=False)[:3], rtol=1e-12)
