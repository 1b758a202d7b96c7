"""The Lessons page in real Chromium: type a rank, press Check, read the verdict; follow the hint to the Explorer."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse


def test_type_a_rank_and_read_the_verdict(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/lessons")
    answer = page.get_by_test_id("savings-answer")
    answer.fill("6")
    page.get_by_test_id("savings-check").click()
    verdict = page.get_by_test_id("savings-verdict")
    verdict.get_by_text("r = 6 saves 98.8%, not enough").wait_for()
    assert "r × 2,048 ≤ 10,485.76" in page.get_by_test_id("savings-explanation").inner_text()
    assert "0 of 3 activities answered correctly" in page.get_by_test_id("progress-summary").inner_text()

    answer.fill("5")
    answer.press("Enter")
    verdict.get_by_text("Correct: r = 5 is the largest rank").wait_for()
    assert "10,240 parameters, 0.98%" in verdict.inner_text()
    page.get_by_test_id("progress-summary").get_by_text("1 of 3 activities answered correctly").wait_for()


def test_bad_rank_shows_a_message(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/lessons")
    page.get_by_test_id("savings-answer").fill("seven")
    page.get_by_test_id("savings-check").click()
    error = page.get_by_test_id("savings-error")
    error.get_by_text("not 'seven'").wait_for()
    assert page.get_by_test_id("savings-verdict").is_hidden()


def test_hint_opens_the_explorer_with_the_guess(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/lessons")
    page.get_by_test_id("savings-answer").fill("12")
    hint = page.get_by_test_id("savings-hint")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"savings-hint\"]').getAttribute('href').endsWith('r=12')"
    )
    hint.click()
    page.wait_for_url("**/?d=1024&k=1024&r=12")
    url = urlparse(page.url)
    assert url.path == "/" and parse_qs(url.query) == {"d": ["1024"], "k": ["1024"], "r": ["12"]}
    page.get_by_test_id("nav-explorer").wait_for()


def test_progress_survives_a_reload(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/lessons")
    page.get_by_test_id("limits-answer").fill("0.87")
    page.get_by_test_id("limits-check").click()
    page.get_by_test_id("limits-verdict").get_by_text("Correct").wait_for()
    page.get_by_test_id("progress-summary").get_by_text("1 of 3").wait_for()
    page.reload()
    page.get_by_test_id("progress-summary").get_by_text("1 of 3 activities answered correctly").wait_for()


def test_narrow_screen_keeps_the_answer_column(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto(app_url + "/lessons")
    table = page.get_by_test_id("models-table")
    table.get_by_text("LoRA per billion base").wait_for()
    header = table.get_by_text("LoRA per billion base")
    box = header.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 400
    assert table.get_by_text("Base parameters").is_hidden()
    # nothing on the page is wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 400


def test_activity_3_opens_the_full_rank_fit_lab(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/lessons")
    page.get_by_test_id("limits-lab").click()
    page.wait_for_url("**/labs?*")
    query = parse_qs(urlparse(page.url).query)
    assert query["lab"] == ["fit"] and query["target_rank"] == query["d"] == query["k"] == ["64"]
    # the Labs page took every parameter as given: its controls show them and it reports no URL problem
    target = page.get_by_test_id("lab-target_rank")  # the Labs page puts its test ids on the <input>s
    target.wait_for()
    assert target.input_value() == "64"
    assert page.get_by_test_id("lab-rank").input_value() == "4"
    assert page.get_by_text("URL parameter").count() == 0


def test_activity_2_links_to_the_models_page(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/lessons")
    page.get_by_test_id("models-table").get_by_text("Llama 2 70B").wait_for()
    page.get_by_test_id("models-link").click()
    page.wait_for_url("**/models?model=llama-2-7b&r=8")
    page.get_by_text("Llama 2 7B").first.wait_for()
    assert page.get_by_text("URL parameter").count() == 0
