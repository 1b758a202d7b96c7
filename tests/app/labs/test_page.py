"""The Labs page in-process (NiceGUI's user fixture): URL state, runs off the event loop, messages, supersession."""

import asyncio
import dataclasses

import pytest
from nicegui import ui
from nicegui.testing import User

from loralens.app.labs.view import lab_url, parse_state, schema
from loralens.core.labs import LABS

WAIT = 200  # retries of 0.1 s: a run at these sizes takes well under a second, but the machine may be busy


def _set(user: User, marker: str, value: object) -> None:
    element = next(iter(user.find(marker=marker).elements))
    element.value = value


def _reading_text(user: User) -> str:
    element = next(iter(user.find(marker="lab-reading").elements))
    assert isinstance(element, ui.label)
    return element.text


async def test_lessons_link_opens_the_fit_lab_with_its_parameters(user: User) -> None:
    await user.open("/labs?lab=fit&d=32&k=32&rank=4&target_rank=32&steps=60")
    await user.should_see("A rank-4 LoRA trained for 60 Adam steps", retries=WAIT)
    assert next(iter(user.find(marker="lab-target_rank").elements)).value == 32
    await user.should_not_see("URL parameter")


async def test_changing_a_control_reruns_the_lab(user: User) -> None:
    await user.open("/labs?lab=fit&d=24&k=24&rank=2&target_rank=4&steps=40")
    await user.should_see("A rank-2 LoRA", retries=WAIT)
    _set(user, "lab-rank", 4)
    await user.should_see("A rank-4 LoRA", retries=WAIT)
    await user.should_see("r = 4 ≥ s = 4", retries=WAIT)


@pytest.fixture
def recorded_fit(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict, str]]:
    """Wrap the fit lab so that each run records its parameters and how it ended."""
    import functools

    from loralens.app.labs import page as labs_page

    calls: list[tuple[dict, str]] = []
    original = labs_page.LABS["fit"].run

    @functools.wraps(original)
    def wrapper(**kwargs):  # type: ignore[no-untyped-def]
        record = ({k: v for k, v in kwargs.items() if k != "progress"}, "running")
        calls.append(record)
        try:
            result = original(**kwargs)
        except Exception as error:
            calls[calls.index(record)] = (record[0], type(error).__name__)
            raise
        calls[calls.index(record)] = (record[0], "finished")
        return result

    monkeypatch.setitem(labs_page.LABS, "fit", dataclasses.replace(labs_page.LABS["fit"], run=wrapper))
    return calls


async def test_quick_changes_start_only_the_last_run(user: User, recorded_fit: list) -> None:
    await user.open("/labs?lab=fit&d=24&k=24&rank=2&target_rank=4&steps=40")
    await user.should_see("A rank-2 LoRA", retries=WAIT)
    _set(user, "lab-rank", 1)
    _set(user, "lab-rank", 3)
    await user.should_see("A rank-3 LoRA", retries=WAIT)
    assert [call[0]["rank"] for call in recorded_fit] == [2, 3]


async def test_a_running_run_is_stopped_by_a_newer_change(user: User, recorded_fit: list) -> None:
    await user.open("/labs?lab=fit&d=128&k=128&rank=2&target_rank=4&steps=5000")
    for _ in range(WAIT):  # wait until the long run has started in its worker thread
        if recorded_fit:
            break
        await user.should_see("running…")
    _set(user, "lab-steps", 20)
    await user.should_see("A rank-2 LoRA trained for 20 Adam steps", retries=WAIT)
    assert [(call[0]["steps"], call[1]) for call in recorded_fit] == [(5000, "Superseded"), (20, "finished")]


async def test_stop_ends_a_long_run_and_keeps_the_last_result(user: User, recorded_fit: list) -> None:
    await user.open("/labs?lab=fit&d=128&k=128&rank=2&target_rank=4&steps=40")
    await user.should_see("A rank-2 LoRA", retries=WAIT)
    _set(user, "lab-steps", 5000)
    for _ in range(WAIT):  # wait until the long run has started in its worker thread
        if recorded_fit[-1][0]["steps"] == 5000:
            break
        await asyncio.sleep(0.05)
    await user.should_see("of 5,000 steps", retries=WAIT)
    user.find(marker="lab-stop").click()
    await user.should_see("Stopped. The charts and the reading below are from the last run that worked", retries=WAIT)
    for _ in range(WAIT):
        if recorded_fit[-1][1] != "running":
            break
        await asyncio.sleep(0.05)
    assert recorded_fit[-1][1] == "Superseded"  # the worker stopped computing, not just the page
    assert _reading_text(user).startswith("A rank-2 LoRA trained for 40 Adam steps")


async def test_bad_parameter_is_shown_beside_the_controls(user: User) -> None:
    await user.open("/labs?lab=fit&d=16&k=16&rank=2&target_rank=2&steps=20")
    await user.should_see("A rank-2 LoRA", retries=WAIT)
    _set(user, "lab-rank", 40)
    await user.should_see("rank: must be at most min(d, k) = 16, got 40", retries=WAIT)
    # the last result stays, saying which values it was computed with
    assert _reading_text(user).startswith("A rank-2 LoRA")
    await user.should_see("The charts and the reading below are from the last run that worked (rank = 2).")
    _set(user, "lab-rank", 3)
    await user.should_see("A rank-3 LoRA", retries=WAIT)
    await user.should_not_see("must be at most")


async def test_bad_url_values_are_reported(user: User) -> None:
    await user.open("/labs?lab=fit&d=16&k=16&rank=2&target_rank=2&steps=20&seed=abc&d=5000")
    await user.should_see("URL parameter seed: expected a number, got 'abc'; using 0")
    await user.should_see("A rank-2 LoRA", retries=WAIT)


async def test_unknown_lab_falls_back_to_fit_with_a_message(user: User) -> None:
    await user.open("/labs?lab=nosuch&steps=10&d=16&k=16")
    await user.should_see("URL parameter lab: expected one of fit, init, merge, subspace, got 'nosuch'; using fit")
    await user.should_see("Fit — why low rank works")


@pytest.mark.parametrize("lab,query,text", [
    ("init", "d=16&k=16&rank=2&steps=30", "Both zero never learns"),
    ("merge", "d=32&k=32&rank=2&batch=8&repeats=1", "Merged (W' = W + s·B·A) and unmerged outputs of 8 tokens"),
    ("subspace", "d=24&k=32&rank=2&rank_large=8&steps=30", "φ(1, 8)"),
])
async def test_every_lab_renders_its_reading_and_charts(user: User, lab: str, query: str, text: str) -> None:
    await user.open(f"/labs?lab={lab}&{query}")
    await user.should_see(text, retries=WAIT)
    assert len(user.find(ui.echart).elements) >= 3


async def test_tabs_switch_labs(user: User) -> None:
    await user.open("/labs?lab=fit&d=16&k=16&steps=10&rank=2&target_rank=2")
    await user.should_see("A rank-2 LoRA", retries=WAIT)
    user.find("Merge").click()
    await user.should_see("Merge — no inference latency", retries=WAIT)


def test_url_state_round_trips_for_every_lab() -> None:
    for lab in LABS:
        lab_name, values, messages = parse_state({"lab": lab})
        assert lab_name == lab and messages == []
        url = lab_url(lab, values)
        assert url.startswith(f"/labs?lab={lab}&")
        query = dict(part.split("=") for part in url.split("?")[1].split("&"))
        assert parse_state(query) == (lab, values, [])
        assert [p.name for p in schema(lab)][0] == "lab"


def test_lesson_link_parses_exactly() -> None:
    lab, values, messages = parse_state({"lab": "fit", "d": "64", "k": "64", "rank": "4", "target_rank": "16"})
    assert (lab, messages) == ("fit", [])
    assert (values["d"], values["k"], values["rank"], values["target_rank"]) == (64, 64, 4, 16)


def test_embedded_page_keeps_embed_in_its_urls() -> None:
    assert lab_url("init", {"d": 8}, embed=True).endswith("&embed=1")
    assert "embed" not in lab_url("init", {"d": 8})


def test_chart_builders_are_plain_data() -> None:
    import json

    from loralens.app.labs import charts as charts_labs

    heat = charts_labs.phi_heatmap([[0.5] * 64 for _ in range(8)], 8, 64)
    assert len(heat["series"][0]["data"]) == 8 * 64 and heat["visualMap"]["max"] == 1
    curves = charts_labs.loss_curves([("r=1", [1.0] * 5000), ("r=2", [0.0] * 5000)], highlight="r=2")
    assert all(len(s["data"]) <= charts_labs.CURVE_POINTS for s in curves["series"])
    assert curves["series"][1]["data"][0][1] == charts_labs.LOG_FLOOR  # 0 cannot sit on a log axis
    assert curves["series"][1]["lineStyle"]["width"] > curves["series"][0]["lineStyle"]["width"]
    sweep = charts_labs.error_vs_rank([1, 2, 4], [0.8, 0.5, 0.0], [0.79, 0.5, 0.0], 2)
    assert [s["name"] for s in sweep["series"]] == ["Eckart–Young bound", "LoRA after training"]
    assert sweep["series"][0]["data"] == [0.79, 0.5, 0.0]
    bars = charts_labs.grouped_bars("t", ["a"], [("x", [0.0], "#000000")], log=True)
    assert bars["series"][0]["data"] == [charts_labs.LOG_FLOOR]
    for options in (heat, curves, sweep, bars):
        json.dumps(options)


async def test_an_unexpected_failure_is_one_line(user: User, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    import functools

    from loralens.app.labs import page as labs_page

    original = labs_page.LABS["merge"].run

    @functools.wraps(original)
    def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(labs_page.LABS, "merge", dataclasses.replace(labs_page.LABS["merge"], run=broken))
    await user.open("/labs?lab=merge&d=8&k=8&rank=2")
    await user.should_see("the merge lab failed: ZeroDivisionError: division by zero", retries=WAIT)
    await user.should_not_see("running…")
    # the traceback went to the server log (and only there); the user fixture fails on unexpected ERROR logs
    assert [r.message for r in caplog.records if r.levelname == "ERROR"] == [
        "lab merge failed with {'d': 8, 'k': 8, 'rank': 2, 'alpha': 16.0, 'seed': 0, 'batch': 256, 'repeats': 15}"]
    caplog.clear()
