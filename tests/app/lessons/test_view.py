"""The Lessons page's pure parts: its URL, the links it writes, progress read from the browser, feedback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from loralens.app.lessons import view
from loralens.core import lessons
from loralens.core.lessons import Link, Verdict


def test_student_links_to_the_explorer_hide_its_answer_line() -> None:
    link = Link("x", "/", (("d", "1024"), ("k", "1024"), ("r", "8")))
    assert view.href(link) == "/?d=1024&k=1024&r=8&answers=false"
    assert view.href(link, embed=True) == "/?d=1024&k=1024&r=8&answers=false&embed=1"
    assert view.href(link, student=False) == "/?d=1024&k=1024&r=8"
    lab = Link("y", "/labs", (("lab", "init"),))
    assert view.href(lab) == "/labs?lab=init" and view.href(lab, embed=True) == "/labs?lab=init&embed=1"


def test_every_link_of_the_lesson_keeps_embed_and_hides_explorer_answers() -> None:
    links = [link for a in lessons.ACTIVITIES for link in a.links]
    links += [q.after for q in lessons.all_questions() if q.after] + [lessons.savings_hint_link("3")]
    explorer = 0
    for link in links:
        query = parse_qs(urlparse(view.href(link, embed=True)).query)
        assert query["embed"] == ["1"], link
        if link.path == "/":
            explorer += 1
            assert query["answers"] == ["false"], link
    assert explorer >= 3


@pytest.mark.parametrize("kwargs,url", [
    ({}, "/lessons"),
    ({"activity": "savings", "embed": True}, "/lessons?activity=savings&embed=1"),
    ({"view": "teacher"}, "/lessons?view=teacher"),
    ({"anchor": "activity-merge", "embed": True}, "/lessons?embed=1#activity-merge"),
])
def test_lesson_links(kwargs: dict, url: str) -> None:
    assert view.lesson_href(**kwargs) == url


def test_the_query_is_read_with_messages_for_bad_values() -> None:
    query = view.read_lesson_query({"activity": "merge", "view": "teacher", "embed": "1"})
    assert (query.activity, query.view, query.embed, query.messages) == ("merge", "teacher", True, [])
    bad = view.read_lesson_query({"activity": "nope", "view": "admin"})
    assert bad.activity == "" and bad.student
    assert "URL parameter view: expected one of student, teacher, got 'admin'; using student" in bad.messages
    assert any(m.startswith("URL parameter activity: expected one of") for m in bad.messages)


def test_handouts_are_absolute_and_the_iframe_is_escaped() -> None:
    rows = view.handouts("http://127.0.0.1:8080/")
    assert [row.key for row in rows] == list(lessons.ACTIVITY_KEYS)
    savings = rows[1]
    assert savings.title == "Activity 2 · Find the rank that saves 99% of the parameters"
    assert savings.in_lesson == "http://127.0.0.1:8080/lessons#activity-savings"
    assert savings.alone == "http://127.0.0.1:8080/lessons?activity=savings"
    assert savings.embed == "http://127.0.0.1:8080/lessons?activity=savings&embed=1"
    assert savings.iframe == ('<iframe src="http://127.0.0.1:8080/lessons?activity=savings&amp;embed=1" width="700" '
                              'height="502" title="Find the rank that saves 99% of the parameters" '
                              'style="border:0"></iframe>')


@pytest.mark.parametrize("raw", [None, "x", 3, [], {"done": "savings-rank"}, {"done": [1, None]}])
def test_malformed_progress_reads_as_none(raw: object) -> None:
    progress = view.parse_progress(raw)
    assert progress.done == frozenset() and progress.seen == frozenset()
    assert progress.stored == isinstance(raw, dict)


def test_progress_keeps_only_this_lessons_questions() -> None:
    progress = view.parse_progress({"done": ["savings-rank", "gone-question", "savings-rank"], "seen": ["forward-h"]})
    assert progress == view.Progress(frozenset({"savings-rank"}), frozenset({"forward-h"}), True)
    total = len(lessons.PROGRESS_KEYS)
    assert view.progress_summary(progress) == f"1 of {total} questions answered · 1 solution shown"
    assert view.activity_chip(lessons.activity("savings"), progress) == (
        "✓ 2. Find the rank that saves 99% of the parameters 1/1", "done")
    assert view.activity_chip(lessons.activity("forward"), progress)[1] == "part"
    assert view.activity_chip(lessons.activity("merge"), progress) == (
        "○ 6. Merging for zero inference latency 0/2", "open")
    assert "blocked" in view.storage_note(view.Progress()) and "all tabs" in view.storage_note(progress)


def test_feedback_shows_a_hint_when_wrong_and_the_solution_only_when_right() -> None:
    wrong = view.feedback(Verdict(lessons.WRONG, "Too high.", "look at A·x", "the solution"))
    assert (wrong.line, wrong.hint, wrong.explanation, wrong.error) == ("✗ Too high.", "Hint: look at A·x", "", "")
    right = view.feedback(Verdict(lessons.CORRECT, "Correct.", "", "worked"))
    assert right.line == "✓ Correct." and right.explanation == "worked" and not right.hint
    invalid = view.feedback(Verdict(lessons.INVALID, "Enter a number."))
    assert invalid.error == "Enter a number." and not invalid.line
    assert view.feedback(None) == view.Feedback("", "", "inherit", "", "")
