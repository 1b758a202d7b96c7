"""The Explorer's view model: the numbers a person reads, the warning, the diagram and the chart data."""

import re
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from loralens.app.explorer.diagram import diagram_svg, rank_thickness
from loralens.app.explorer.view import ExplorerState, build_view


def test_default_view_numbers() -> None:
    view = build_view(ExplorerState())
    assert (view.full_text, view.lora_text, view.ratio_text) == ("16,777,216", "65,536", "0.39%")
    assert view.warning is None and view.savings_text == "saves 99.6%"
    assert view.formula_merge == "W′ = W + (16/8)·B·A = W + 2.00·B·A"
    assert view.max_rank_text.startswith("Largest rank that saves at least 99%: r = 20 ")


def test_past_break_even_is_a_warning_never_a_negative_saving() -> None:
    view = build_view(ExplorerState(d=16, k=16, r=16))
    assert view.savings_text == "saves nothing"
    assert view.warning is not None and "break-even rank dk/(d+k) = 8" in view.warning
    assert "-" not in view.ratio_text
    exact = build_view(ExplorerState(d=16, k=16, r=8))
    assert exact.warning is not None and "saves nothing" in exact.warning


def test_rslora_formula() -> None:
    view = build_view(ExplorerState(d=64, k=64, r=16, alpha=16, rslora=True))
    assert view.formula_merge == "W′ = W + (16/√16)·B·A = W + 4.00·B·A"


@given(st.integers(1, 65_536), st.integers(1, 65_536), st.integers(1, 65_536))
def test_diagram_is_valid_svg_with_every_dimension_labelled(d: int, k: int, r: int) -> None:
    r = min(r, d, k)
    svg = diagram_svg(d, k, r, 2.0)
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert f"d={d:,}" in texts and f"k={k:,}" in texts and f"r={r:,}" in texts
    widths = [float(x) for x in re.findall(r'<rect[^>]* width="([\d.]+)"', svg)]
    assert all(w >= 2 for w in widths)


@given(st.integers(2, 65_536), st.integers(1, 65_535))
def test_rank_side_grows_with_r_and_reaches_full_width(m: int, r: int) -> None:
    r = min(r, m - 1)
    assert rank_thickness(r, m, m, 150) <= rank_thickness(r + 1, m, m, 150)
    assert rank_thickness(m, m, m, 150) == 150


def test_bars_and_growth_carry_the_exact_counts() -> None:
    view = build_view(ExplorerState(d=1024, k=1024, r=5))
    bars = [item["value"] for item in view.bars_option["series"][0]["data"]]
    assert bars == [10_240, 1_048_576]
    assert view.bars_option["xAxis"]["type"] == "log"
    full_series = dict(view.growth_option["series"][0]["data"])
    assert full_series[1024] == 1_048_576 and full_series[65536] == 65536**2
    assert view.growth_option["series"][0]["markPoint"]["data"][0]["coord"] == [1024, 1_048_576]
