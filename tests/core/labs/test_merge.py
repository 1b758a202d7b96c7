"""The merge lab: merged = unmerged within float32 round-off, swapping returns W, costs by formula."""

import json

import pytest

from loralens.core.labs.merge import reading, run_merge
from loralens.errors import InvalidParameterError


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return run_merge(d=96, k=64, rank=4, batch=32, repeats=2)


def test_merged_and_unmerged_agree_within_round_off(result) -> None:  # type: ignore[no-untyped-def]
    # float32 dot products of length k: error about eps·sqrt(k)·|terms|; allow 64·eps relative to the outputs
    assert result.merged_vs_unmerged_max_abs_diff <= 64 * result.float_eps * result.output_max_abs
    assert result.merged_vs_unmerged_max_abs_diff > 0 or result.output_max_abs > 0


def test_swap_back_returns_w(result) -> None:  # type: ignore[no-untyped-def]
    assert result.adapters_differ_max_abs > 0.01  # the two adapters are really different
    assert result.swap_back_max_abs_diff <= 16 * result.float_eps * (result.weight_max_abs + 1)


def test_costs_follow_the_formulas(result) -> None:  # type: ignore[no-untyped-def]
    d, k, r = 96, 64, 4
    assert result.multiply_adds_per_token_merged == d * k
    assert result.multiply_adds_per_token_unmerged == d * k + r * (d + k)
    assert result.flops_per_token_merged == 2 * d * k
    assert result.flops_per_token_unmerged == 2 * (d * k + r * (d + k))
    assert result.trainable_params_lora == r * (d + k) and result.trainable_params_full == d * k
    assert result.gradient_bytes_lora == 4 * r * (d + k)
    assert result.adam_state_bytes_full == 8 * d * k
    assert result.seconds_merged > 0 and result.seconds_unmerged > 0


def test_json_and_determinism(result) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(result.to_json()))
    for key in ("merged_vs_unmerged_max_abs_diff", "swap_back_max_abs_diff", "flops_per_token_merged",
                "flops_per_token_unmerged"):
        assert key in data
    again = run_merge(d=96, k=64, rank=4, batch=32, repeats=2).to_json()
    timing = {"seconds_merged", "seconds_unmerged"}
    assert {k: v for k, v in again.items() if k not in timing} == {k: v for k, v in data.items() if k not in timing}


def test_bad_rank_is_refused() -> None:
    with pytest.raises(InvalidParameterError) as info:
        run_merge(d=8, k=8, rank=9)
    assert info.value.where == "rank"


def test_reading_quotes_the_numbers(result) -> None:  # type: ignore[no-untyped-def]
    text = reading(result)
    assert f"{result.flops_per_token_unmerged:,}" in text and f"{result.trainable_params_lora:,}" in text


def test_timing_note_follows_the_measured_ratio() -> None:
    from loralens.core.labs.merge import _timing_note

    assert "not slower" in _timing_note(0.8, 0.03)
    assert "predict" in _timing_note(1.02, 0.03)
    assert "more time than their FLOPs" in _timing_note(1.5, 0.03)
