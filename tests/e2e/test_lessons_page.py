"""The Lessons page in real Chromium, as a student on a phone does it: the whole lesson answered without being
told the answers, hints instead of solutions, progress kept by the browser across tabs and reloads, one
activity in a course site's iframe, and the links a teacher hands out."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from loralens.core import lessons

from .nicegui_page import open_connected
from .test_every_page_layout import host_page

#: what a student who has understood types or chooses, per question (checked against core.lessons first)
CORRECT = {
    "forward-h": "6, -6, 5", "savings-rank": "5", "models-most": "bert-base-uncased", "models-share": "small",
    "limits-error": "0.87", "limits-fix": "rank", "init-gradient": "b", "init-zero": "stuck",
    "merge-extra": "131072", "merge-merged": "none", "swap-how": "swap", "swap-count": "1600",
    "methods-latency": "houlsby", "methods-ratio": "6.8", "overhead-memory": "band", "overhead-compute": "0.67",
    "assess-count": "15360", "assess-break-even": "2985", "assess-rank": "floor",
}
OPEN_ANSWER = "My own answer, written before I compare it with the model answer."
PHONE = {"width": 400, "height": 800}


def _phone(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=PHONE)
    return context, context.new_page()


def _answer(page, question: lessons.Question, value: str) -> None:  # type: ignore[no-untyped-def]
    if question.kind == lessons.CHOICE:
        text = next(c.text for c in question.choices if c.key == value)
        page.get_by_test_id(f"{question.key}-answer").get_by_text(text, exact=True).click()
    elif question.kind == lessons.OPEN:
        page.get_by_test_id(f"{question.key}-answer").fill(value)
    else:
        page.get_by_test_id(f"{question.key}-answer").fill(value)
    page.get_by_test_id(f"{question.key}-check").click()


def test_the_inputs_used_below_are_right() -> None:
    for question in lessons.all_questions():
        if question.check is not None:
            assert question.check(CORRECT[question.key]).correct, question.key


def test_a_student_does_the_whole_lesson_on_a_phone(browser, app_url: str) -> None:  # type: ignore[no-untyped-def]
    context, page = _phone(browser)
    try:
        open_connected(page, app_url + "/lessons")
        total = len(lessons.PROGRESS_KEYS)
        page.get_by_test_id("progress-summary").get_by_text(f"0 of {total} questions answered").wait_for()
        done = 0
        for question in lessons.all_questions():
            page.get_by_test_id(f"{question.key}-answer").scroll_into_view_if_needed()
            if question.kind == lessons.OPEN:
                assert page.get_by_test_id(f"{question.key}-answer-text").is_hidden()
                _answer(page, question, OPEN_ANSWER)
                page.get_by_test_id(f"{question.key}-answer-text").wait_for()
            else:
                _answer(page, question, CORRECT[question.key])
                page.get_by_test_id(f"{question.key}-verdict").get_by_text("✓").wait_for()
                assert page.get_by_test_id(f"{question.key}-hint").is_hidden()
            done += 1
            page.get_by_test_id("progress-summary").get_by_text(f"{done} of {total} questions").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # another tab of the same browser: everything is there
        other = context.new_page()
        open_connected(other, app_url + "/lessons")
        other.get_by_test_id("progress-summary").get_by_text(f"{total} of {total} questions answered").wait_for()
        other.get_by_test_id("chip-overhead").get_by_text("✓ 9. Overhead in training vs inference 2/2").wait_for()
    finally:
        context.close()


def test_a_wrong_answer_gets_a_hint_and_a_link_to_the_explorer_at_the_guess(browser, app_url: str) -> None:  # type: ignore[no-untyped-def]
    context, page = _phone(browser)
    try:
        open_connected(page, app_url + "/lessons?activity=savings&embed=1")  # the link a teacher hands out
        assert page.get_by_test_id("nav-explorer").count() == 0
        page.get_by_test_id("savings-rank-answer").fill("6")
        page.get_by_test_id("savings-rank-check").click()
        page.get_by_test_id("savings-rank-verdict").get_by_text("r = 6 saves 98.8%, not enough").wait_for()
        hint = page.get_by_test_id("savings-rank-hint").inner_text()
        assert "Try a smaller rank" in hint
        body = page.inner_text("body")
        assert "10,485.76" not in body and "2,048 ≤" not in body and "r = 5" not in body
        page.get_by_test_id("savings-rank-hint-link").click()
        page.wait_for_url("**/?d=1024&k=1024&r=6&answers=false&embed=1")
        query = parse_qs(urlparse(page.url).query)  # the Explorer may write the rest of its state after these
        assert {name: query[name] for name in ("d", "k", "r", "answers", "embed")} == {
            "d": ["1024"], "k": ["1024"], "r": ["6"], "answers": ["false"], "embed": ["1"]}
    finally:
        context.close()


def test_the_students_explorer_does_not_state_the_largest_rank(browser, app_url: str) -> None:  # type: ignore[no-untyped-def]
    """The Explorer reads answers=false (the browser Explorer's flag) and hides Activity 2's answer."""
    context, page = _phone(browser)
    try:
        open_connected(page, app_url + "/lessons?activity=savings")
        page.get_by_test_id("savings-link-0").click()
        page.wait_for_url("**/?d=1024&k=1024&r=8&answers=false")
        page.get_by_text("1,048,576").first.wait_for()
        assert page.get_by_text("Largest rank that saves at least").count() == 0
        assert page.get_by_text("URL parameter answers").count() == 0
    finally:
        context.close()


def test_the_solution_and_the_lab_wait_for_the_student(browser, app_url: str) -> None:  # type: ignore[no-untyped-def]
    context, page = _phone(browser)
    try:
        open_connected(page, app_url + "/lessons?activity=limits")
        assert page.get_by_test_id("limits-error-after").is_hidden()
        assert page.get_by_test_id("limits-error-solution").is_hidden()
        page.get_by_test_id("limits-error-answer").fill("0.5")
        page.get_by_test_id("limits-error-check").click()
        page.get_by_test_id("limits-error-verdict").get_by_text("0.5 is too low").wait_for()
        assert "0.866" not in page.inner_text("body")
        page.get_by_test_id("limits-error-after").wait_for()  # the fit lab, now that the student has predicted
        page.get_by_test_id("limits-error-reveal").click()
        page.get_by_test_id("limits-error-reveal-yes").click()
        page.get_by_test_id("limits-error-solution").get_by_text("sqrt(12/16) = 0.866").wait_for()
        page.get_by_test_id("progress-summary").get_by_text("0 of 2 questions answered · 1 solution shown").wait_for()
    finally:
        context.close()


def test_progress_survives_a_reload_and_a_reset_reaches_every_tab(browser, app_url: str) -> None:  # type: ignore[no-untyped-def]
    context, page = _phone(browser)
    try:
        open_connected(page, app_url + "/lessons?activity=merge")
        page.get_by_test_id("merge-extra-answer").fill("131,072")
        page.get_by_test_id("merge-extra-answer").press("Enter")
        page.get_by_test_id("progress-summary").get_by_text("1 of 2 questions answered").wait_for()
        page.reload()
        page.get_by_test_id("progress-summary").get_by_text("1 of 2 questions answered").wait_for()
        page.get_by_test_id("merge-extra-before").get_by_text("Answered correctly before").wait_for()
        stored = page.evaluate("JSON.parse(localStorage.getItem('loralens.lessons.v1'))")
        assert stored == {"v": 1, "done": ["merge-extra"], "seen": []}
        other = context.new_page()
        open_connected(other, app_url + "/lessons")
        other.get_by_test_id("progress-reset").click()
        other.get_by_test_id("progress-reset-yes").click()
        other.get_by_test_id("progress-summary").get_by_text("0 of").wait_for()
        # the first tab hears of it through the browser's storage event
        page.get_by_test_id("progress-summary").get_by_text("0 of 2 questions answered").wait_for()
    finally:
        context.close()


def test_a_link_to_an_activity_scrolls_to_it(browser, app_url: str) -> None:  # type: ignore[no-untyped-def]
    context, page = _phone(browser)
    try:
        open_connected(page, app_url + "/lessons#activity-merge")
        heading = page.get_by_test_id("activity-merge").get_by_text("Activity 6 · Merging for zero inference latency")
        heading.wait_for()
        page.wait_for_function("() => window.scrollY > 1000")
        box = heading.bounding_box()
        assert box is not None and 0 <= box["y"] < PHONE["height"] / 2
    finally:
        context.close()


@pytest.mark.parametrize("key", ["forward", "models"])
def test_one_activity_fits_a_course_sites_iframe(browser, app_url: str, key: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 760, "height": 560})
    page = context.new_page()
    try:
        host_page(page, app_url, f'<iframe src="{app_url}/lessons?activity={key}&embed=1" width="700" '
                                 'height="502"></iframe>')
        frame = page.wait_for_selector("iframe").content_frame()
        assert frame is not None
        frame.wait_for_selector(f'[data-testid="activity-{key}"]')
        assert frame.evaluate("document.documentElement.scrollWidth") <= 700
        for link in frame.eval_on_selector_all("a[href^='/']", "els => els.map(e => e.getAttribute('href'))"):
            assert "embed=1" in link, link
    finally:
        context.close()


def test_the_teacher_sees_every_solution_and_the_links(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/lessons?view=teacher")
    page.get_by_test_id("handout-savings").get_by_role("link", name=f"{app_url}/lessons?activity=savings").wait_for()
    assert page.get_by_test_id("savings-rank-solution").inner_text().startswith("Saving 99% means")
    assert page.get_by_test_id("savings-in-class").is_visible()
    assert page.get_by_test_id("progress-summary").count() == 0
    page.get_by_test_id("student-link").click()
    page.wait_for_url("**/lessons")
    page.get_by_test_id("progress-summary").wait_for()
