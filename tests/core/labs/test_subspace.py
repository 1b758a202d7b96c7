"""The subspace lab: φ as the paper defines it, its range, and the amplification factor by a full SVD."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loralens.core.labs.subspace import phi_matrix, reading, right_singular_vectors, run_subspace
from loralens.errors import InvalidParameterError


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return run_subspace(d=48, k=64, rank=4, rank_large=16, target_rank=6, steps=200)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), r1=st.integers(1, 5), r2=st.integers(1, 9))
def test_phi_is_in_unit_interval_and_one_with_itself(seed: int, r1: int, r2: int) -> None:
    rng = np.random.default_rng(seed)
    a1, a2 = rng.standard_normal((r1, 12)), rng.standard_normal((r2, 12))
    phi = phi_matrix(a1, a2)
    assert phi.shape == (r1, r2)
    assert np.all(phi >= 0) and np.all(phi <= 1 + 1e-12)
    np.testing.assert_allclose(np.diag(phi_matrix(a1, a1)), 1.0, atol=1e-12)


def test_phi_of_orthogonal_subspaces_is_zero() -> None:
    eye = np.eye(6)
    assert np.allclose(phi_matrix(eye[:2] * [[3], [1]], eye[2:5]), 0.0)


def test_phi_uses_the_right_singular_vectors_of_a() -> None:
    # A = diag(5, 1) on the first two coordinates: its top right-singular vector is e1
    a = np.zeros((2, 4))
    a[0, 0], a[1, 1] = 1.0, 5.0
    v = right_singular_vectors(a)
    assert abs(v[1, 0]) == pytest.approx(1.0)
    other = np.zeros((1, 4))
    other[0, 1] = 2.0
    assert phi_matrix(a, other)[0, 0] == pytest.approx(1.0)


def test_result_shapes_and_ranges(result) -> None:  # type: ignore[no-untyped-def]
    phi = np.asarray(result.phi)
    assert phi.shape == (4, 16)
    assert np.all(phi >= 0) and np.all(phi <= 1 + 1e-12)
    # the top direction is shared far above chance (rank_large / k = 0.25)
    assert phi[0, -1] > 0.9 > result.phi_random


def test_amplification_by_full_svd(result) -> None:  # type: ignore[no-untyped-def]
    from loralens.core.labs import common
    from loralens.core.labs.subspace import amplification
    from loralens.core.lora import init_lora

    rng = np.random.default_rng(0)
    w = rng.standard_normal((20, 16))
    a, _ = init_lora(20, 16, 3, rng)
    b = rng.standard_normal((20, 3))
    amp = amplification(w, a, b, 2.0, np.ones((20, 16)), common.rng_for(0, 9))
    delta = 2.0 * b @ a
    u, s, vt = np.linalg.svd(delta)
    projection = np.linalg.norm(u[:, :3].T @ w @ vt[:3].T)
    assert amp.projection_fro == pytest.approx(projection, rel=1e-10)
    assert amp.factor == pytest.approx(np.linalg.norm(delta) / projection, rel=1e-10)
    assert amp.w_top_projection_fro == pytest.approx(np.sqrt(np.sum(np.linalg.svd(w, compute_uv=False)[:3] ** 2)))


def test_json_and_determinism(result) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(result.to_json()))
    assert len(data["phi"]) == 4 and len(data["phi"][0]) == 16
    assert data["amplification"] == result.details[0].factor
    assert run_subspace(d=24, k=24, rank=2, rank_large=4, steps=10) == run_subspace(
        d=24, k=24, rank=2, rank_large=4, steps=10)


def test_rank_large_must_cover_rank() -> None:
    with pytest.raises(InvalidParameterError) as info:
        run_subspace(d=32, k=32, rank=8, rank_large=4)
    assert info.value.where == "rank_large"
    with pytest.raises(InvalidParameterError) as info:
        run_subspace(d=32, k=32, rank_large=64)
    assert info.value.where == "rank_large"


def test_reading_quotes_the_numbers(result) -> None:  # type: ignore[no-untyped-def]
    assert f"φ(1, 16) = {result.phi[0][-1]:.2f}" in reading(result)
