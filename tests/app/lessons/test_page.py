"""The Lessons page in-process (NiceGUI's user fixture): student and teacher views, hints, solutions behind a
deliberate click, one activity alone, links, and progress kept by the browser (a fake localStorage here: the
page's calls to static/lessons.js are answered by ``FakeStorage``, shared by every "tab" of one test)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from nicegui import ui
from nicegui.testing import User

from loralens.core import lessons


class FakeStorage:
    """The browser's localStorage as lessons.js keeps it, for the user fixture's simulated JavaScript."""

    def __init__(self) -> None:
        self.state: dict[str, list[str]] = {"done": [], "seen": []}

    def attach(self, user: User) -> User:
        rules = user.javascript_rules
        rules[re.compile(r".*loralensLessons\.load\(\).*")] = lambda _: self.copy()
        rules[re.compile(r'.*loralensLessons\.record\("([^"]+)", "(done|seen)"\).*')] = self.record
        rules[re.compile(r".*loralensLessons\.reset\(\).*")] = self.reset
        return user

    def copy(self) -> dict[str, list[str]]:
        return {kind: list(keys) for kind, keys in self.state.items()}

    def record(self, match: re.Match) -> dict[str, list[str]]:
        key, kind = match.group(1), match.group(2)
        if key not in self.state[kind]:
            self.state[kind].append(key)
        return self.copy()

    def reset(self, _: re.Match) -> dict[str, list[str]]:
        self.state = {"done": [], "seen": []}
        return self.copy()


@pytest.fixture
def storage(user: User) -> FakeStorage:
    store = FakeStorage()
    store.attach(user)
    return store


async def _answer(user: User, name: str, text: str) -> None:
    user.find(marker=f"{name}-answer").clear().type(text)
    user.find(marker=f"{name}-check").click()


def _one(user: User, marker: str) -> ui.element:
    return next(iter(user.find(marker=marker).elements))


TOTAL = len(lessons.PROGRESS_KEYS)


async def stored(storage: FakeStorage, expected: dict[str, list[str]]) -> None:
    """Wait until the page's call to the browser's storage has been answered (it runs in the background)."""
    for _ in range(50):
        if storage.state == expected:
            return
        await asyncio.sleep(0.02)
    assert storage.state == expected


async def test_student_view_shows_the_plan_and_no_answer(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons")
    await user.should_see("Learning objectives")
    for activity in lessons.ACTIVITIES:
        await user.should_see(f"· {activity.title}")
    await user.should_see("Assessment")
    await user.should_see(f"0 of {TOTAL} questions answered")
    for question in lessons.all_questions():
        await user.should_not_see(marker=f"{question.key}-answer-text")
    await user.should_not_see("In class:")
    assert _one(user, "objective-init").props["href"] == "#activity-init"


async def test_a_wrong_answer_gets_a_hint_not_the_solution(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons")
    await _answer(user, "savings-rank", "6")
    await user.should_see("r = 6 saves 98.8%, not enough (the goal is 99%).")
    await user.should_see("Hint: Try a smaller rank.")
    await user.should_not_see("10,485.76")
    await user.should_not_see(marker="savings-rank-answer-text")
    hint = _one(user, "savings-rank-hint-link")
    assert hint.props["href"] == "/?d=1024&k=1024&r=6&answers=false"
    await _answer(user, "savings-rank", "5")
    await user.should_see("Correct: r = 5 is the largest rank that saves at least 99% (10,240 parameters, 0.98%).")
    await user.should_see("10,485.76 / 2,048 = 5.12")  # the worked solution, now that it is answered
    await user.should_see(f"1 of {TOTAL} questions answered")
    await stored(storage, {"done": ["savings-rank"], "seen": []})


async def test_the_solution_waits_behind_a_confirmed_click(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons")
    await user.should_not_see(marker="limits-error-solution")
    user.find(marker="limits-error-reveal").click()
    await user.should_see("The solution gives the answer away. Show it?")
    await user.should_not_see(marker="limits-error-solution")
    user.find(marker="limits-error-reveal-yes").click()
    await user.should_see("sqrt(12/16) = 0.866")
    await stored(storage, {"done": [], "seen": ["limits-error"]})
    await user.should_see("1 solution shown")


async def test_a_page_that_shows_the_answer_is_offered_after_a_first_attempt(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons")
    await user.should_not_see(marker="init-gradient-after")
    user.find(marker="init-gradient-check").click()  # nothing chosen: not an attempt
    await user.should_see("Choose one of the answers first.")
    await user.should_not_see(marker="init-gradient-after")
    _one(user, "init-gradient-answer").set_value("a")
    user.find(marker="init-gradient-check").click()
    await user.should_see("∂L/∂A = s·Bᵀ·(∂L/∂h)·xᵀ: what is B at step 0?")
    await user.should_see(marker="init-gradient-after")
    assert _one(user, "init-gradient-after").props["href"] == "/labs?lab=init"


async def test_progress_is_shared_by_tabs_and_survives_a_reload(user: User, storage: FakeStorage,
                                                                create_user: Callable[[], User]) -> None:
    await user.open("/lessons")
    await _answer(user, "limits-error", "87%")
    await user.should_see("Correct: about 0.87")
    await stored(storage, {"done": ["limits-error"], "seen": []})
    other = storage.attach(create_user())  # another tab of the same browser
    await other.open("/lessons")
    await other.should_see(f"1 of {TOTAL} questions answered")
    await other.should_see("✓ Answered correctly before in this browser.")
    await other.should_see("◐ 4. When might LoRA not work? 1/2")
    await user.open("/lessons")  # a reload
    await user.should_see(f"1 of {TOTAL} questions answered")


async def test_reset_clears_the_progress(user: User, storage: FakeStorage) -> None:
    storage.state = {"done": ["forward-h", "savings-rank"], "seen": []}
    await user.open("/lessons")
    await user.should_see(f"2 of {TOTAL} questions answered")
    user.find(marker="progress-reset").click()
    user.find(marker="progress-reset-yes").click()
    await user.should_see(f"0 of {TOTAL} questions answered")
    await stored(storage, {"done": [], "seen": []})


async def test_without_browser_storage_progress_still_counts_in_the_page(user: User) -> None:
    user.javascript_rules[re.compile(r".*loralensLessons.*")] = lambda _: None  # storage blocked
    await user.open("/lessons")
    await user.should_see("storage is blocked")
    await _answer(user, "forward-h", "6, -6, 5")
    await user.should_see(f"1 of {TOTAL} questions answered")


async def test_forward_pass_steps_one_at_a_time(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons")
    await user.should_see("Step 1 of 7")
    user.find(marker="forward-next").click()
    await user.should_see("W·x = (0, 3, 1)")
    await user.should_not_see("W′·x = (2, 9, −3)")
    _one(user, "forward-all").set_value(True)
    await user.should_see("W′·x = (2, 9, −3)")
    await _answer(user, "forward-h", "8, -4, 5")
    await user.should_see("Hint: That is W·x′ alone")


async def test_models_table_keeps_the_answer_column_until_answered(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons")
    table = _one(user, "models-table")
    assert isinstance(table, ui.table)
    assert [c["name"] for c in table.columns] == ["name", "hidden", "base", "trainable"]
    llama = next(row for row in table.rows if row["id"] == "llama-2-7b")
    assert llama["trainable"] == "4,194,304" and llama["base"] == "6.74B"
    _one(user, "models-most-answer").set_value("gpt2")
    user.find(marker="models-most-check").click()
    await user.should_see("Not quite: GPT-2 (124M) trains 2,369,917 per billion base parameters")
    assert "per_billion" not in [c["name"] for c in table.columns]
    _one(user, "models-most-answer").set_value("bert-base-uncased")
    user.find(marker="models-most-check").click()
    await user.should_see("Correct: BERT base uncased (BertForMaskedLM) trains 2,692,909")
    assert [c["name"] for c in table.columns][-1] == "per_billion"
    _one(user, "models-rank").set_value(16)
    assert next(row for row in table.rows if row["id"] == "llama-2-7b")["trainable"] == "8,388,608"


async def test_open_questions_compare_after_writing(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons")
    button = _one(user, "assess-init-check")
    assert not button.enabled
    user.find(marker="assess-init-answer").type("B is zero so nothing changes at first")
    assert button.enabled
    user.find(marker="assess-init-check").click()
    await user.should_see("Model answer: With B = 0 the update")
    await stored(storage, {"done": ["assess-init"], "seen": []})


async def test_teacher_view_shows_solutions_notes_and_links(user: User) -> None:
    await user.open("/lessons?view=teacher")
    await user.should_see("teacher view")
    await user.should_see("Links to hand out")
    for question in lessons.all_questions():
        await user.should_see(marker=f"{question.key}-answer-text")
    await user.should_see("Answer: r = 5")
    await user.should_see("In class: Let students guess first")
    await user.should_see("lessons?activity=savings")
    await user.should_see("lessons?activity=savings&amp;embed=1")  # in the iframe HTML
    await user.should_not_see(marker="progress-summary")
    await user.should_see(marker="init-gradient-after")  # the teacher sees every link at once
    assert _one(user, "savings-link-0").props["href"] == "/?d=1024&k=1024&r=8"  # the teacher's Explorer: all lines


async def test_one_activity_alone_for_an_iframe(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons?activity=savings&embed=1")
    await user.should_see("Activity 2 · Find the rank that saves 99% of the parameters")
    await user.should_not_see("Activity 1 · The forward pass")
    await user.should_not_see("Learning objectives")
    await user.should_not_see("Inspector")  # no navigation in embed mode
    await user.should_see("0 of 1 questions answered")
    assert _one(user, "whole-lesson").props["href"] == "/lessons?embed=1#activity-savings"
    assert _one(user, "savings-link-0").props["href"] == "/?d=1024&k=1024&r=8&answers=false&embed=1"


async def test_every_link_on_an_embedded_page_keeps_embed(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons?embed=1")
    hrefs = [element.props["href"] for element in user.find(ui.link).elements]
    assert len(hrefs) > 15  # the visible ones; the links offered after an attempt are in test_view
    for href in hrefs:
        assert href.startswith("#") or "embed=1" in href, href
        if href.startswith("/?"):
            assert "answers=false" in href, href


async def test_bad_url_values_are_named(user: User, storage: FakeStorage) -> None:
    await user.open("/lessons?activity=nope&zzz=1")
    await user.should_see("URL parameter activity: expected one of")
    await user.should_see("URL parameter zzz: not used by this page")
    await user.should_see("Activity 1 · The forward pass")  # the whole lesson instead
