"""Counting for one layer: exact integers, the break-even rank and the rank for a target saving."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loralens.core.counting import (
    alpha_for_scaling,
    break_even_rank,
    count_layer,
    full_params,
    lora_params,
    max_rank_for_savings,
    scaling,
)
from loralens.core.units import percent
from loralens.errors import InvalidParameterError

dims = st.integers(1, 65_536)


def test_seed_page_example() -> None:
    """The MicroSim's worked example: d = k = 4096, r = 8 -> 16.7M vs 65K, 0.4%."""
    c = count_layer(4096, 4096, 8)
    assert (c.full, c.lora) == (16_777_216, 65_536)
    assert percent(c.share) == "0.39%"
    assert c.break_even == 2048


def test_lesson_activity_rank_for_99_percent_on_1024() -> None:
    """The lesson plan's activity: r = 5 is the largest rank saving 99% of 1024 x 1024 (10,240 params, 0.98%)."""
    assert max_rank_for_savings(1024, 1024, 0.99) == 5
    c = count_layer(1024, 1024, 5)
    assert c.lora == 10_240 and percent(c.share) == "0.98%"
    assert count_layer(1024, 1024, 6).savings < Fraction(99, 100)


def test_microsim_defect_is_a_warning_not_negative_savings() -> None:
    """At d = 16, r = 16 the MicroSim showed -100% savings; here LoRA simply does not save."""
    c = count_layer(16, 16, 16)
    assert not c.saves and c.lora == 2 * c.full and c.break_even == 8


@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 300))
def test_counts_are_the_sizes_of_the_arrays_lora_trains(d: int, k: int, r: int) -> None:
    """Counted from arrays shaped as PEFT shapes them (W (d, k); B (d, r); A (r, k)), not from the formula."""
    r = min(r, d, k)
    w, b, a = np.empty((d, k)), np.empty((d, r)), np.empty((r, k))
    assert full_params(d, k) == w.size
    assert lora_params(d, k, r) == b.size + a.size


@given(dims, dims)
def test_break_even_is_where_costs_cross(d: int, k: int) -> None:
    be = break_even_rank(d, k)
    r_below = int(be) if be.denominator != 1 else int(be) - 1
    if r_below >= 1:
        assert lora_params(d, k, r_below) < full_params(d, k)
    assert lora_params(d, k, int(be) + 1) > full_params(d, k)


@given(dims, dims, st.sampled_from([0.5, 0.9, 0.99, 0.999]))
def test_max_rank_for_savings_is_the_largest(d: int, k: int, target: float) -> None:
    r = max_rank_for_savings(d, k, target)
    allowed = Fraction(str(1 - Fraction(str(target))))
    if r >= 1:
        assert Fraction(lora_params(d, k, r), d * k) <= allowed
    assert Fraction(lora_params(d, k, r + 1), d * k) > allowed


def test_scaling_matches_the_papers() -> None:
    """LoRA (Hu et al. 2021): ΔW is scaled by α/r; rsLoRA (Kalajdzievski 2023): by α/√r."""
    assert scaling(8, 16) == 2.0
    assert scaling(16, 16, use_rslora=True) == 4.0


@given(st.integers(1, 4096), st.floats(1e-3, 1e4), st.booleans())
def test_alpha_for_scaling_inverts_scaling(r: int, alpha: float, rslora: bool) -> None:
    assert alpha_for_scaling(scaling(r, alpha, rslora), r, rslora) == pytest.approx(alpha, rel=1e-12)


@pytest.mark.parametrize(
    "args,message",
    [
        ((0, 4, 1), "d: must be from 1 to 65,536, got 0"),
        ((4, 4, 5), "r: must be from 1 to 4, got 5"),
        ((4, 4, 1.5), "r: must be a whole number, got 1.5"),
        ((4, "x", 1), "k: must be a whole number, got 'x'"),
    ],
)
def test_invalid_layer_messages(args: tuple, message: str) -> None:
    with pytest.raises(InvalidParameterError) as error:
        count_layer(*args)
    assert str(error.value) == message


@pytest.mark.parametrize(("low", "high", "value", "text"), [(None, 1.0, 2.0, "x: must be at most 1, got 2"),
                                                             (0.0, None, -1.0, "x: must be at least 0, got -1"),
                                                             (0.0, 1.0, 2.0, "x: must be at least 0 and at most 1, got 2")])
def test_check_float_names_either_bound(low: float | None, high: float | None, value: float, text: str) -> None:
    from loralens.core.validation import check_float

    with pytest.raises(InvalidParameterError) as error:
        check_float("x", value, low, high)
    assert str(error.value) == text
