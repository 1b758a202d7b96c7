"""The labs' charts as data: log axes labelled at every decade, bars from the floor, room for every label."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from loralens.app.labs import charts, view


def _axes(option: dict[str, Any], name: str) -> list[dict[str, Any]]:
    axes = option.get(name, [])
    return axes if isinstance(axes, list) else [axes]


def test_decades_are_written_out_or_as_powers_of_ten() -> None:
    assert [charts.decade_label(e, True) for e in (-3, -1, 0, 1, 4, 6)] == ["0.001", "0.1", "1", "10", "10,000",
                                                                         "1,000,000"]
    assert [charts.decade_label(e, False) for e in (-12, -1, 0, 1, 2, 10)] == ["10⁻¹²", "10⁻¹", "1", "10", "10²",
                                                                             "10¹⁰"]


def test_round_off_axis_has_every_decade_and_a_floor_below_the_data() -> None:
    axis = charts.log_axis([9.5e-7, 3e-8, 5.7e-7, 6.9e-8])
    assert axis["interval"] == 1 and axis["type"] == "log"
    assert charts.log_ticks(axis) == ["10⁻⁸", "10⁻⁷", "10⁻⁶", "10⁻⁵"]
    assert axis["startValue"] == axis["min"] < 3e-8  # bars grow from the floor, not down from 1


def test_a_value_just_above_a_decade_still_gets_a_visible_bar() -> None:
    axis = charts.log_axis([1024, 4096, 16384])
    assert axis["min"] == 100 and charts.log_ticks(axis) == ["100", "1,000", "10,000", "100,000"]


@given(st.lists(st.floats(1e-14, 1e9), min_size=1, max_size=20))
def test_log_axes_cover_the_data_in_whole_decades(values: list[float]) -> None:
    axis = charts.log_axis(values)
    low, high = math.log10(axis["min"]), math.log10(axis["max"])
    assert low == round(low) and high == round(high) and high > low
    assert high - low <= charts.MAX_DECADES  # more would make the labels touch
    assert axis["max"] >= max(values)
    assert axis["min"] < max(min(values), charts.LOG_FLOOR) or high - low == charts.MAX_DECADES
    ticks = charts.log_ticks(axis)
    assert len(ticks) == len(set(ticks)) == round(high - low) + 1


def test_every_log_axis_of_every_lab_is_labelled_at_each_decade(lab_results: dict) -> None:
    seen = 0
    for lab, (_, result) in lab_results.items():
        for option in view.CHARTS[lab](result):
            for axis in _axes(option, "yAxis"):
                if axis.get("type") != "log":
                    continue
                seen += 1
                assert axis["interval"] == 1 and axis["startValue"] == axis["min"], option["title"]
                for series in option["series"]:
                    values = [p[1] if isinstance(p, list) else p for p in series["data"]]
                    assert all(axis["min"] <= v <= axis["max"] for v in values), (option["title"], series["name"])
    assert seen >= 5  # fit and init and subspace loss curves, merge's training cost and round-off


def test_every_chart_leaves_room_for_its_labels_title_and_legend(lab_results: dict) -> None:
    for lab, (_, result) in lab_results.items():
        for option in view.CHARTS[lab](result):
            assert option["grid"]["containLabel"] is True
            legend = option.get("legend", {}).get("data", [])
            assert [s["name"] for s in option["series"] if s["type"] != "heatmap"] == legend or not legend
            layouts = [option["grid"]] + [m["option"]["grid"] for m in option["media"]]
            widths = [charts.WIDE_WIDTH] + [width for _, width in charts.LAYOUTS]
            for grid, width in zip(layouts, widths, strict=True):
                rows = charts.legend_rows(legend, width)
                assert grid["bottom"] >= rows * 22, (option["title"], width)
            # narrower charts never get less room below the plot
            assert [g["bottom"] for g in layouts] == sorted(g["bottom"] for g in layouts)
            for axis in _axes(option, "yAxis"):
                assert axis.get("nameTextStyle", {}).get("align") in ("left", "right"), option["title"]


def test_legend_rows_grow_as_the_chart_narrows() -> None:
    names = ["default (B = 0)", "A = 0", "both random", "both zero", "PiSSA"]
    assert charts.legend_rows(names, 1000) == 1
    assert charts.legend_rows(names, 330) == 2
    assert charts.legend_rows([], 330) == 0
    assert charts.legend_rows(["x" * 80], 330) == 1  # a name longer than the chart still takes one row


def test_merge_bars_read_their_counts_exactly(lab_results: dict) -> None:
    _, result = lab_results["merge"]
    flops = view.CHARTS["merge"](result)[0]
    assert [s["data"] for s in flops["series"]] == [[result.flops_per_token_merged],
                                                    [result.flops_per_token_unmerged]]
    assert flops["series"][0]["label"]["show"] and flops["series"][0]["label"][":formatter"] == charts.COUNT_FORMATTER


def test_init_schemes_are_named_for_people(lab_results: dict) -> None:
    _, result = lab_results["init"]
    gradients, _, losses = view.CHARTS["init"](result)
    assert gradients["xAxis"]["data"] == ["default\n(B = 0)", "A = 0", "both\nrandom", "both\nzero", "PiSSA"]
    assert [s["name"] for s in losses["series"]] == ["default (B = 0)", "A = 0", "both random", "both zero", "PiSSA"]
    thick = [s["lineStyle"]["width"] for s in losses["series"]]
    assert thick[0] == max(thick) and thick.count(max(thick)) == 1
    assert len({str(s["lineStyle"]["type"]) for s in losses["series"]}) == 5  # dashes too, not colour alone
