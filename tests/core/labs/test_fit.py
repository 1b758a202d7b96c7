"""The fit lab against theory: zero error when s <= r, the Eckart–Young bound (float64 full SVD) when s > r."""

import json

import numpy as np
import pytest

from loralens.core.labs import common
from loralens.core.labs.fit import default_sweep, reading, run_fit
from loralens.errors import InvalidParameterError


def best_rank_r_error(target: np.ndarray, r: int) -> float:
    """‖ΔW* − (its best rank-r approximation)‖_F / ‖ΔW*‖_F, by a float64 full SVD written here."""
    u, s, vt = np.linalg.svd(target)
    approx = (u[:, :r] * s[:r]) @ vt[:r]
    return float(np.linalg.norm(target - approx) / np.linalg.norm(target))


@pytest.mark.parametrize("d,k,r,s", [(48, 40, 4, 4), (48, 40, 8, 4), (32, 64, 6, 3)])
def test_reaches_near_zero_error_when_target_rank_fits(d: int, k: int, r: int, s: int) -> None:
    result = run_fit(d=d, k=k, rank=r, target_rank=s, steps=400, sweep=[r])
    assert result.optimal_relative_error < 1e-12
    assert result.final_relative_error < 1e-3


@pytest.mark.parametrize("d,k,r,s,noise", [(48, 40, 2, 8, 0.0), (48, 40, 4, 12, 0.0), (40, 40, 4, 4, 0.3)])
def test_stalls_at_the_eckart_young_bound_when_target_rank_exceeds_r(
        d: int, k: int, r: int, s: int, noise: float) -> None:
    result = run_fit(d=d, k=k, rank=r, target_rank=s, noise=noise, steps=400, sweep=[r])
    target = common.make_task(d, k, s, noise, result.seed).target
    bound = best_rank_r_error(target, r)
    assert result.optimal_relative_error == pytest.approx(bound, rel=1e-9)
    # never below the bound (no rank-r update can be), and within 1% of it after training
    assert result.final_relative_error >= bound * (1 - 1e-9)
    assert result.final_relative_error <= bound * 1.01


def test_learned_singular_values_match_the_targets_top_r() -> None:
    result = run_fit(d=40, k=40, rank=3, target_rank=6, steps=400, sweep=[3])
    np.testing.assert_allclose(result.learned_singular_values, result.target_singular_values[:3], rtol=0.02)


def test_sweep_error_falls_with_rank_and_tracks_the_bound() -> None:
    result = run_fit(d=32, k=32, rank=2, target_rank=8, steps=300, sweep=[1, 2, 4, 8])
    assert result.sweep_ranks == (1, 2, 4, 8)
    errors = result.sweep_final_relative_error
    assert all(a > b for a, b in zip(errors, errors[1:]))
    for err, best in zip(errors, result.sweep_optimal_relative_error):
        assert best * (1 - 1e-9) <= err <= best * 1.02 + 1e-3
    assert len(result.sweep_loss) == 4 and all(len(c) == 300 for c in result.sweep_loss)
    assert result.sweep_loss[result.sweep_ranks.index(2)] == result.loss


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    one = run_fit(d=24, k=20, rank=2, target_rank=4, steps=50)
    two = run_fit(d=24, k=20, rank=2, target_rank=4, steps=50)
    other = run_fit(d=24, k=20, rank=2, target_rank=4, steps=50, seed=1)
    assert one == two
    assert one.loss != other.loss


def test_json_has_the_documented_fields() -> None:
    result = run_fit(d=16, k=12, rank=2, target_rank=3, steps=20)
    data = json.loads(json.dumps(result.to_json()))
    for key in ("final_relative_error", "optimal_relative_error", "loss", "target_singular_values",
                "learned_singular_values", "sweep_ranks", "sweep_final_relative_error",
                "sweep_optimal_relative_error"):
        assert key in data
    assert len(data["loss"]) == 20 and len(data["target_singular_values"]) == 12


def test_default_sweep() -> None:
    assert default_sweep(4, 8, 128, 128) == (1, 2, 4, 8, 16, 32, 64)
    assert default_sweep(5, 12, 16, 16) == (1, 2, 4, 5, 8, 12, 16)
    assert default_sweep(3, 100, 8, 8) == (1, 2, 3, 4, 8)


@pytest.mark.parametrize("kwargs,where", [
    ({"rank": 9, "d": 8}, "rank"), ({"d": 0}, "d"), ({"steps": 5001}, "steps"), ({"seed": "x"}, "seed"),
    ({"target_rank": 200}, "target_rank"), ({"noise": -1}, "noise"), ({"sweep": [1, 200]}, "sweep"),
    ({"sweep": list(range(1, 15))}, "sweep"),
])
def test_bad_parameters_name_themselves(kwargs: dict, where: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        run_fit(**kwargs)
    assert info.value.where == where


def test_reading_follows_the_numbers() -> None:
    fits = reading(run_fit(d=24, k=24, rank=4, target_rank=2, steps=300, sweep=[4]))
    stalls = reading(run_fit(d=24, k=24, rank=2, target_rank=8, steps=100, sweep=[2]))
    assert "r = 4 ≥ s = 2" in fits
    assert "stalls" in stalls and "r = 2 < s = 8" in stalls
