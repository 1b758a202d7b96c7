"""Shared pieces of the labs: checks, seeded streams, gradients (against finite differences), Adam (against torch)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loralens.core.labs import LABS, common, params
from loralens.errors import InvalidParameterError


@pytest.mark.parametrize(
    "call,where,text",
    [
        (lambda: common.check_shape(0, 8), "d", "must be from 1 to 1,024, got 0"),
        (lambda: common.check_shape(8, 2000), "k", "must be from 1 to 1,024, got 2,000"),
        (lambda: common.check_rank("rank", 9, 8, 16), "rank", "must be at most min(d, k) = 8, got 9"),
        (lambda: params.STEPS.check(5001), "steps", "must be from 1 to 5,000, got 5,001"),
        (lambda: params.SEED.check("abc"), "seed", "must be a whole number, got 'abc'"),
        (lambda: params.SEED.check(-1), "seed", "must be from 0 to 4,294,967,295, got -1"),
        (lambda: params.ALPHA.check(0), "alpha", "must be greater than 0"),
    ],
)
def test_checks_name_the_parameter(call, where: str, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert info.value.where == where
    assert info.value.message.startswith(text)


def test_seed_text_that_is_a_number_is_accepted() -> None:
    assert params.SEED.check(" 42 ") == 42


def test_streams_are_reproducible_and_independent() -> None:
    a = common.rng_for(7, common.STREAM_TASK).standard_normal(5)
    b = common.rng_for(7, common.STREAM_TASK).standard_normal(5)
    c = common.rng_for(7, common.STREAM_DATA).standard_normal(5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_task_target_has_the_requested_rank_and_norm() -> None:
    task = common.make_task(40, 30, 5, 0.0, seed=3)
    s = np.linalg.svd(task.target, compute_uv=False)
    assert np.sum(s > 1e-10 * s[0]) == 5
    np.testing.assert_allclose(np.linalg.norm(task.target), np.sqrt(40))
    np.testing.assert_allclose(task.target_singular_values, s)
    # the spectrum decays as 1/sqrt(i)
    np.testing.assert_allclose(s[:5] / s[0], 1 / np.sqrt(np.arange(1, 6)), rtol=1e-10)


def test_noise_makes_the_target_full_rank() -> None:
    task = common.make_task(20, 12, 3, 0.1, seed=0)
    s = task.target_singular_values
    assert np.sum(s > 1e-10 * s[0]) == 12


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), r=st.integers(1, 4), scaling=st.floats(0.1, 4.0))
def test_gradients_match_finite_differences(seed: int, r: int, scaling: float) -> None:
    rng = np.random.default_rng(seed)
    d, k, n = 5, 4, 3
    a, b = rng.standard_normal((r, k)), rng.standard_normal((d, r))
    x, y = rng.standard_normal((n, k)), rng.standard_normal((n, d))
    _, grad_a, grad_b = common.loss_and_grads(a, b, scaling, x, y)
    h = 1e-6
    for param, grad in ((a, grad_a), (b, grad_b)):
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            old = param[index]
            param[index] = old + h
            plus = common.loss_and_grads(a, b, scaling, x, y)[0]
            param[index] = old - h
            minus = common.loss_and_grads(a, b, scaling, x, y)[0]
            param[index] = old
            numeric[index] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_loss_is_the_mean_squared_error() -> None:
    rng = np.random.default_rng(0)
    a, b, x, y = (rng.standard_normal(s) for s in ((2, 4), (3, 2), (5, 4), (5, 3)))
    loss, _, _ = common.loss_and_grads(a, b, 0.5, x, y)
    np.testing.assert_allclose(loss, np.mean((0.5 * x @ (b @ a).T - y) ** 2))


def test_learning_rate_decays_from_lr_to_a_hundredth() -> None:
    assert common.learning_rate(0.1, 0, 100) == pytest.approx(0.1)
    assert common.learning_rate(0.1, 99, 100) == pytest.approx(0.001)
    assert common.learning_rate(0.1, 0, 1) == pytest.approx(0.1)


def test_progress_can_stop_a_run() -> None:
    class Stop(Exception):
        pass

    seen = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        raise Stop

    task = common.make_task(8, 8, 2, 0.0, 0)
    run = common.Run(a=np.ones((2, 8)), b=np.zeros((8, 2)), scaling=1.0, target=task.target)
    with pytest.raises(Stop):
        common.train([run], 100, 0.01, 4, 0, progress)
    assert seen == [(common.PROGRESS_EVERY, 100)]


def test_downsample_keeps_first_and_last() -> None:
    steps, values = common.downsample(np.arange(1000.0), 10)
    assert steps[0] == 1 and steps[-1] == 1000 and values[-1] == 999.0 and len(steps) == 10


def test_a_diverging_run_is_reported_not_returned() -> None:
    task = common.make_task(8, 8, 2, 0.0, 0)
    run = common.Run(a=np.full((2, 8), 1e200), b=np.ones((8, 2)), scaling=1.0, target=task.target)
    with pytest.raises(InvalidParameterError) as info:
        common.train([run], 10, 0.01, 4, 0)
    assert info.value.where == "lr" and "diverged at step 1" in info.value.message


@pytest.mark.parametrize("key", list(LABS))
def test_each_lab_declares_exactly_its_run_s_parameters(key: str) -> None:
    """The registry and the function agree: same names in the same order, every default within its range."""
    import inspect

    lab = LABS[key]
    names = [n for n in inspect.signature(lab.run).parameters if n != "progress"]
    assert [p.name for p in lab.params] == names
    for param, default in zip(lab.params, lab.defaults().values()):
        assert param.check(default) == default


@pytest.mark.parametrize("key", list(LABS))
def test_a_value_out_of_its_declared_range_is_refused_by_the_run(key: str) -> None:
    """The run checks each parameter against its declaration: one past the top of each range is refused by name."""
    lab = LABS[key]
    for param in lab.params:
        if param.kind is tuple:
            continue
        bad = param.high + (1 if param.kind is int else param.high)
        with pytest.raises(InvalidParameterError) as info:
            lab.run(**{**lab.defaults(), param.name: param.kind(bad)})
        assert info.value.where == param.name
