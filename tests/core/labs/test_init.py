"""The init lab: exact zeros where theory says so, PiSSA as PEFT builds it."""

import json

import numpy as np
import pytest

from loralens.core.labs.init import SCHEMES, initial_adapter, reading, run_init


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return run_init(d=32, k=24, rank=4, target_rank=4, steps=200)


def test_default_starts_as_a_no_op_and_only_b_moves_first(result) -> None:  # type: ignore[no-untyped-def]
    default = result.results["default"]
    assert default.delta_w_fro_at_init == 0.0
    assert default.output_change_at_init == 0.0
    assert default.grad_a_norm_at_init == 0.0
    assert default.grad_b_norm_at_init > 0.0
    assert default.final_relative_error < 1e-2


def test_both_zero_never_learns(result) -> None:  # type: ignore[no-untyped-def]
    both_zero = result.results["both_zero"]
    assert both_zero.grad_a_norm_at_init == 0.0 and both_zero.grad_b_norm_at_init == 0.0
    assert both_zero.final_relative_error == 1.0  # ΔW is still exactly 0


def test_a_zero_is_the_mirror_image(result) -> None:  # type: ignore[no-untyped-def]
    a_zero = result.results["a_zero"]
    assert a_zero.delta_w_fro_at_init == 0.0 and a_zero.grad_b_norm_at_init == 0.0
    assert a_zero.grad_a_norm_at_init > 0.0


def test_both_random_changes_the_model_before_training(result) -> None:  # type: ignore[no-untyped-def]
    both_random = result.results["both_random"]
    assert both_random.delta_w_fro_at_init > 0.1 and both_random.output_change_at_init > 0.01
    # and its first loss is higher than the default's (same batch): it starts off the frozen model
    assert both_random.loss[0] > result.results["default"].loss[0]


def test_pissa_keeps_the_outputs(result) -> None:  # type: ignore[no-untyped-def]
    pissa = result.results["pissa"]
    assert pissa.delta_w_fro_at_init > 1.0
    assert pissa.output_change_at_init < 1e-12


def test_json_keys_as_documented(result) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(result.to_json()))
    assert data["schemes"] == list(SCHEMES)
    for name in ("default", "a_zero", "both_random", "both_zero", "pissa"):
        for key in ("delta_w_fro_at_init", "grad_a_norm_at_init", "grad_b_norm_at_init", "loss"):
            assert key in data[name]
        assert len(data[name]["loss"]) == 200


def test_deterministic() -> None:
    assert run_init(d=16, k=16, rank=2, steps=20) == run_init(d=16, k=16, rank=2, steps=20)


def test_reading_quotes_the_numbers(result) -> None:  # type: ignore[no-untyped-def]
    text = reading(result)
    assert "exactly 0 and 0" in text
    assert f"{result.results['both_random'].output_change_at_init:.1%}" in text


def test_unknown_scheme_is_named() -> None:
    from loralens.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError) as info:
        initial_adapter("xavier", np.eye(3), 1, 1.0, seed=0)
    assert info.value.where == "scheme" and "default, a_zero" in info.value.message
