"""The Labs page's pure state: what it checks before a run, and what it keeps on screen when a value is refused."""

from __future__ import annotations

from typing import Any

import pytest

from loralens.app.labs import view
from loralens.core.labs import LABS


@pytest.mark.parametrize("lab", list(LABS))
def test_precheck_passes_the_defaults(lab: str) -> None:
    assert view.precheck(lab, LABS[lab].defaults()) is None


@pytest.mark.parametrize("name,value,message", [
    ("steps", 0, "steps: must be from 1 to 5,000, got 0"),
    ("steps", 9000, "steps: must be from 1 to 5,000, got 9,000"),
    ("d", 0, "d: must be from 1 to 1,024, got 0"),
    ("lr", 0.0, "lr: must be greater than 0"),
    ("steps", None, "steps: enter a number"),
])
def test_precheck_names_the_refused_value_without_running(name: str, value: Any, message: str) -> None:
    values = {**LABS["fit"].defaults(), name: value}
    refused = view.precheck("fit", values)
    assert refused is not None
    assert refused[0].startswith(message) and refused[1] == name


def test_shown_is_the_reading_and_charts_of_the_result(lab_results: dict) -> None:
    for lab, (values, result) in lab_results.items():
        shown = view.shown(lab, values, result)
        assert shown.reading == LABS[lab].reading(result)
        assert len(shown.charts) == len(view.CHARTS[lab](result)) >= 3
        assert shown.values == values and shown.values is not values  # a copy: later edits do not change it


def test_a_refused_value_keeps_the_last_result_and_says_which_values_it_shows(lab_results: dict) -> None:
    values, result = lab_results["fit"]
    last = view.shown("fit", values, result)
    now = {**values, "steps": 0}
    kept = view.refused(last, "fit", now, "steps: must be from 1 to 5,000, got 0", "steps")
    assert kept.keep is last and kept.where == "steps"
    assert kept.note == f"The charts and the reading below are from the last run that worked (steps = {values['steps']})."
    two = view.refused(last, "fit", {**now, "rank": 3}, "rank: …", "rank")
    assert "steps = 30" in two.note and "rank = 2" in two.note


def test_nothing_is_kept_across_labs_or_before_any_run(lab_results: dict) -> None:
    values, result = lab_results["fit"]
    last = view.shown("fit", values, result)
    assert view.refused(last, "init", LABS["init"].defaults(), "m", "steps").keep is None
    assert view.refused(None, "fit", values, "m", "steps") == view.Refused("m", "steps", None, "")


def test_the_same_values_again_say_so_plainly(lab_results: dict) -> None:
    values, result = lab_results["merge"]
    last = view.shown("merge", values, result)
    assert view.refused(last, "merge", values, "m", None).note.endswith("last run that worked.")


@pytest.mark.parametrize("lab", list(LABS))
def test_every_control_is_wide_enough_for_its_largest_value(lab: str) -> None:
    widths = dict(view.CONTROL_WIDTHS)
    defaults = LABS[lab].defaults()
    for param in LABS[lab].page_params():
        outer = widths[view.control_width(param, defaults[param.name])]
        for value in (param.low, param.high, defaults[param.name]):
            digits = len(view.format_value(value))
            assert digits * view.DIGIT_PX + view.FIELD_PADDING_PX <= outer, (param.name, value)
    assert view.control_width(LABS[lab].param("seed")) == "w-32"  # 4294967295: ten digits


def test_progress_text_gives_the_time_left_once_the_pace_is_known() -> None:
    from loralens.app.labs.view import progress_text

    assert progress_text(0, 5000, 0.0) == "running…"
    assert progress_text(100, 5000, 0.1) == "running… 100 of 5,000 steps"  # too early to tell the pace
    # 1,000 steps in 2 s: 4,000 more at that pace take 8 s
    assert progress_text(1000, 5000, 2.0) == "running… 1,000 of 5,000 steps · about 8 s left"
    assert progress_text(4900, 5000, 9.8) == "running… 4,900 of 5,000 steps · under 2 s left"
    assert progress_text(5000, 5000, 10.0) == "running… 5,000 of 5,000 steps"
