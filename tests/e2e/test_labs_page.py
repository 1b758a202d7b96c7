"""The Labs page in real Chromium: a lesson's link runs the lab, controls rewrite the URL, narrow screens work."""

from urllib.parse import parse_qs, urlparse

import pytest
from .nicegui_page import open_connected

READING = "lab-reading"


def _reading(page) -> str:  # type: ignore[no-untyped-def]
    return page.get_by_test_id(READING).inner_text()


def test_link_runs_the_fit_lab_and_draws_charts(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/labs?lab=fit&d=64&k=64&rank=4&target_rank=16&steps=150")
    page.get_by_text("A rank-4 LoRA trained for 150 Adam steps").wait_for(timeout=60_000)
    assert page.get_by_test_id("lab-target_rank").input_value() == "16"
    assert page.locator(".nicegui-echart canvas").count() >= 3
    assert "Eckart–Young" in _reading(page)
    assert page.get_by_text("URL parameter").count() == 0


def test_typing_a_value_reruns_and_updates_the_url(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/labs?lab=fit&d=32&k=32&rank=2&target_rank=4&steps=60")
    page.get_by_text("A rank-2 LoRA").wait_for(timeout=60_000)
    rank = page.get_by_test_id("lab-rank")
    rank.fill("8")
    rank.press("Tab")
    page.get_by_text("A rank-8 LoRA").wait_for(timeout=60_000)
    page.wait_for_function("() => location.search.includes('rank=8')")
    query = parse_qs(urlparse(page.url).query)
    assert query["rank"] == ["8"] and query["lab"] == ["fit"] and query["target_rank"] == ["4"]
    # a shared link reproduces the run: same reading
    text = _reading(page)
    open_connected(page, page.url)
    page.get_by_text("A rank-8 LoRA").wait_for(timeout=60_000)
    assert _reading(page) == text


def test_bad_value_shows_a_message_beside_the_controls(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/labs?lab=merge&d=32&k=32&rank=2&batch=8&repeats=1")
    page.get_by_text("Merged (W' = W + s·B·A)").wait_for(timeout=60_000)
    d = page.get_by_test_id("lab-d")
    d.fill("0")
    d.press("Tab")
    page.get_by_text("d: must be from 1 to 1,024, got 0").wait_for(timeout=60_000)


@pytest.mark.parametrize("lab", ["fit", "init", "merge", "subspace"])
def test_each_lab_fits_a_400px_screen(browser, app_url: str, lab: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 400, "height": 800})
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if urlparse(r.url).hostname not in {"127.0.0.1", None}
            and r.url.startswith("http") else None)
    small = {"fit": "d=32&k=32&steps=60", "init": "d=32&k=32&steps=60", "merge": "d=64&k=64&batch=16",
             "subspace": "d=32&k=64&rank_large=16&steps=60"}[lab]
    open_connected(page, f"{app_url}/labs?lab={lab}&{small}")
    page.wait_for_function("() => document.querySelector('[data-testid=\"lab-reading\"]').innerText.length > 0",
                           timeout=60_000)
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    assert page.locator(".nicegui-echart canvas").count() >= 3
    context.close()
    assert not foreign


def test_tab_switches_lab(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/labs?lab=fit&d=16&k=16&steps=20&rank=2&target_rank=2")
    page.get_by_test_id("lab-tab-subspace").click()
    page.wait_for_url("**/labs?lab=subspace*")
    page.get_by_text("Subspace — the paper's §7").wait_for()


AXES_JS = """() => [...document.querySelectorAll('.nicegui-echart')].map((el) => {
  const chart = getElement(el).chart;
  const option = chart.getOption();
  const axes = chart.getModel().getComponent('yAxis', 0).axis;
  const bars = [];
  option.series.forEach((s, i) => {
    if (s.type !== 'bar' || (s.yAxisIndex || 0) !== 0) return;
    const data = chart.getModel().getSeriesByIndex(i).getData();
    for (let j = 0; j < data.count(); j++) bars.push(data.getItemLayout(j).y);
  });
  return {title: option.title[0].text, type: axes.type, min: option.yAxis[0].min, max: option.yAxis[0].max,
          labels: axes.getViewLabels().map((l) => l.formattedLabel),
          floor: chart.convertToPixel({yAxisIndex: 0}, option.yAxis[0].min), bars};
})"""


@pytest.mark.parametrize("width", [400, 1280])
def test_log_axes_label_every_decade_and_bars_grow_from_the_floor(browser, app_url: str, width: int) -> None:  # type: ignore[no-untyped-def]
    import math

    from loralens.app.labs.charts import PLAIN_DECADES, decade_label

    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        open_connected(page, app_url + "/labs?lab=merge&d=64&k=64&batch=16")
        page.get_by_text("Merged (W' = W + s·B·A)").wait_for(timeout=60_000)
        charts = {c["title"]: c for c in page.evaluate(AXES_JS)}
    finally:
        context.close()
    logs = [c for c in charts.values() if c["type"] == "log"]
    assert {c["title"] for c in logs} == {"Training-time cost (log scale)", "Round-off (float32, log scale)"}
    for chart in logs:
        low, high = round(math.log10(chart["min"])), round(math.log10(chart["max"]))
        plain = low in PLAIN_DECADES and high in PLAIN_DECADES
        assert chart["labels"] == [decade_label(e, plain) for e in range(low, high + 1)], chart["title"]
        assert chart["bars"] and all(abs(y - chart["floor"]) < 0.5 for y in chart["bars"]), chart["title"]
    assert charts["Round-off (float32, log scale)"]["labels"][0].startswith("10⁻")
