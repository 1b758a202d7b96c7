"""How numbers are written: checked against Python's decimal module, not against the code's own formula."""

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loralens.core.units import (
    binary_bytes,
    decimal_bytes,
    label_table,
    percent,
    short_count,
    significant,
    text_table,
)


@pytest.mark.parametrize(
    "value,digits,text", [(0.390625, 2, "0.39"), (12.5, 2, "12"), (9.96, 2, "10"), (0.00612, 2, "0.0061"), (150, 2, "150")]
)
def test_significant_examples(value: float, digits: int, text: str) -> None:
    assert significant(value, digits) == text


@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False), st.integers(1, 6))
def test_significant_is_the_value_to_that_many_digits(value: float, digits: int) -> None:
    """At most ``digits`` significant digits, and within half a unit of the last digit of the exact binary value
    (what Decimal's quantize gives, up to the one-ulp difference CPython's correctly rounded ``round`` may make)."""
    text = significant(value, digits)
    exact = Decimal(value)
    step = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    reference = exact.quantize(step, rounding=ROUND_HALF_EVEN)
    assert abs(Decimal(text) - exact) <= step / 2 + step / 10**6
    assert abs(Decimal(text) - reference) <= step
    assert len(text.replace(".", "").lstrip("0")) <= max(digits, len(str(int(float(text)))))


def test_percent_of_a_share() -> None:
    assert percent(1 / 256) == "0.39%"
    assert percent(0.9995, 4) == "99.95%"


@pytest.mark.parametrize("n,text", [(16_777_216, "16.8M"), (65_536, "65.5K"), (512, "512"),
                                    (999_999_999, "1.00B"), (6_738_415_616, "6.74B")])
def test_short_count(n: int, text: str) -> None:
    assert short_count(n) == text


@pytest.mark.parametrize("n,binary,decimal", [(37_748_736, "36.0 MiB", "37.7 MB"), (512, "512 B", "512 B"),
                                              (2**40 * 3, "3.0 TiB", "3.30 TB"), (1500, "1.5 KiB", "1.50 kB")])
def test_bytes(n: int, binary: str, decimal: str) -> None:
    assert binary_bytes(n) == binary
    assert decimal_bytes(n) == decimal


def test_tables_align_columns() -> None:
    table = text_table(["name", "n"], [["a", "1"], ["long", "100"]], right={1})
    assert table.splitlines() == ["name    n", "----  ---", "a       1", "long  100"]
    assert label_table([("a", "x"), ("abc", "y")]).splitlines() == ["a    x", "abc  y"]
