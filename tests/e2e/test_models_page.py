"""The Models page in real Chromium: typed values recount live, the URL follows, errors show, 400 px works."""

from __future__ import annotations
from .nicegui_page import open_connected


def _number(page, name: str) -> str:  # type: ignore[no-untyped-def]
    return page.get_by_test_id(f"num-{name}").inner_text()


def test_default_view_and_charts(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/models")
    page.get_by_test_id("num-trainable").filter(has_text="4,194,304").wait_for()
    assert _number(page, "total") == "6,742,609,920"  # Llama-2-7B + LoRA A, B (PEFT's "all params")
    page.get_by_test_id("memory-chart").locator("canvas").first.wait_for()
    page.get_by_test_id("methods-chart").locator("canvas").first.wait_for()
    assert "Prefix tuning" in page.get_by_test_id("method-table").inner_text()


def test_typing_rank_and_ticking_all_linear(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/models")
    page.get_by_test_id("num-trainable").filter(has_text="4,194,304").wait_for()
    field = page.get_by_test_id("r")
    field.fill("16")
    field.press("Tab")
    page.get_by_test_id("num-trainable").filter(has_text="8,388,608").wait_for()
    page.wait_for_function("location.search.includes('r=16')")
    page.get_by_test_id("all-linear").click()
    page.get_by_test_id("num-trainable").filter(has_text="39,976,960").wait_for()
    page.wait_for_function("location.search.includes('targets=all-linear')")
    assert "model.layers.*.mlp.gate_proj" in page.get_by_test_id("module-table").inner_text()


def test_shared_link_and_bad_values(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/models?model=gpt2&r=4&targets=c_attn,c_fc&batch=abc")
    page.get_by_test_id("url-message").filter(has_text="URL parameter batch: expected a number").wait_for()
    # gpt2, r = 4 on c_attn (768 -> 2304) and c_fc (768 -> 3072) in 12 layers
    expected = 12 * 4 * ((768 + 2304) + (768 + 3072))
    page.get_by_test_id("num-trainable").filter(has_text=f"{expected:,}").wait_for()
    field = page.get_by_test_id("batch")
    field.fill("-2")
    field.press("Tab")
    page.get_by_test_id("error-batch").filter(has_text="must be from 1 to 4096, got -2").wait_for()
    assert _number(page, "trainable") == f"{expected:,}"


def test_works_at_400_px(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 400, "height": 900})
    open_connected(page, app_url + "/models?model=llama-3-8b&method=qlora")
    page.get_by_test_id("num-memory").filter(has_text="QLoRA").wait_for()
    page.get_by_test_id("memory-chart").locator("canvas").first.wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400
    box = page.get_by_test_id("memory-chart").bounding_box()
    assert box is not None and 300 <= box["width"] <= 400
