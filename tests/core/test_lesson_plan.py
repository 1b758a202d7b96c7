"""The lesson plan as a whole: the seed plan covered, every item backed by a page, no wrong-answer feedback that
gives an answer away, and every number the same as the core function (or lab) it comes from."""

from __future__ import annotations

import itertools
from fractions import Fraction
from urllib.parse import parse_qs

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loralens.core import lessons
from loralens.core.lessons import kit, serving
from loralens.core.lessons.basics import FORWARD_A, FORWARD_ALPHA, FORWARD_B, FORWARD_W, forward_pass
from loralens.core.lora import forward, merge
from loralens.errors import InvalidParameterError

CHECKED = [q for q in lessons.all_questions() if q.check is not None]
WRONG_STATUSES = {lessons.WRONG, lessons.NOT_ENOUGH, lessons.NOT_LARGEST}


def test_the_seed_lesson_plan_is_covered_item_by_item() -> None:
    covers = [a.covers for a in lessons.ACTIVITIES]
    assert covers == list(lessons.SEED_PLAN)  # in the seed's order, each item once
    assert len(lessons.ACTIVITIES) == 9
    assert {o.activity for o in lessons.OBJECTIVES} == set(lessons.ACTIVITY_KEYS)


def test_every_activity_is_backed_by_a_page_and_has_notes_for_class() -> None:
    for activity in lessons.ACTIVITIES:
        pages = [*activity.links, *(q.after for q in activity.questions if q.after)]
        assert pages, activity.key
        assert {link.path for link in pages} <= {"/", "/labs", "/models", "/lessons"}
        assert len(activity.in_class) > 80 and activity.questions, activity.key


def test_keys_are_unique_and_fit_an_anchor() -> None:
    keys = [q.key for q in lessons.all_questions()]
    assert len(keys) == len(set(keys)) == len(lessons.PROGRESS_KEYS)
    assert all(k.replace("-", "").isalnum() and k == k.lower() for k in (*keys, *lessons.ACTIVITY_KEYS))


def test_links_use_only_parameters_their_page_reads() -> None:
    from loralens.app.explorer.view import SCHEMA as EXPLORER
    from loralens.app.labs.view import parse_state
    from loralens.app.lessons.view import read_lesson_query
    from loralens.app.models.view import SCHEMA as MODELS
    from loralens.app.url_state import read_query

    links = [link for a in lessons.ACTIVITIES for link in a.links]
    links += [q.after for q in lessons.all_questions() if q.after]
    links += [lessons.savings_hint_link("7")]
    for link in links:
        query = {name: values[0] for name, values in parse_qs(link.href.partition("?")[2]).items()}
        if link.path == "/labs":
            messages = parse_state(query)[2]
        elif link.path == "/lessons":
            messages = read_lesson_query(query).messages
        else:
            messages = read_query(EXPLORER if link.path == "/" else MODELS, query).messages
        assert messages == [], link


def _wrong_answers(question: lessons.Question) -> list[object]:
    if question.kind == lessons.CHOICE:
        return [c.key for c in question.choices]
    return list(question.tries) + ["", "   ", "nonsense", "1e9", "-1"]


@pytest.mark.parametrize("question", CHECKED, ids=lambda q: q.key)
def test_no_wrong_answer_feedback_gives_the_answer_away(question: lessons.Question) -> None:
    assert question.secrets or question.secret_texts, question.key
    checked = 0
    for answer in _wrong_answers(question):
        verdict = question.check(answer)
        if verdict.correct:
            continue
        # echoing what the learner typed ("0.9 is too high") gives nothing away
        text = f"{verdict.message} {verdict.hint}".replace(str(answer).strip() or "\0", "")
        if verdict.status != lessons.INVALID:
            assert verdict.status in WRONG_STATUSES and verdict.hint, (question.key, answer)
            checked += 1
        assert verdict.explanation == "", (question.key, answer)  # the worked solution only once it is right
        assert kit.leaks(text, question.secrets, question.secret_texts) == [], (question.key, answer, text)
    assert checked >= min(3, len(question.choices) - 1 if question.choices else 3), question.key


@pytest.mark.parametrize("question", CHECKED, ids=lambda q: q.key)
def test_the_secrets_are_in_the_solution(question: lessons.Question) -> None:
    """The leak check is only as good as its secrets: they must be what the solution states."""
    text = f"{question.answer} {question.solution}"
    assert kit.leaks(text, question.secrets, question.secret_texts) or question.kind == lessons.CHOICE
    for secret in question.secret_texts:
        assert secret in text or any(secret in c.text for c in question.choices), (question.key, secret)


def test_no_prompt_or_activity_text_shows_an_answer() -> None:
    for activity in lessons.ACTIVITIES:
        shown = " ".join([activity.title, *activity.intro, *(link.label for link in activity.links)])
        for question in activity.questions:
            page = f"{shown} {question.prompt} {question.label} {question.placeholder}"
            # a choice's text is on the page anyway: only numbers could give its answer away
            texts = () if question.kind == lessons.CHOICE else question.secret_texts
            assert kit.leaks(page, question.secrets, texts) == [], question.key


def test_the_savings_hints_never_state_the_answer_for_any_rank() -> None:
    """Every wrong rank from 1 to 1,024, exhaustively."""
    question = lessons.question("savings-rank")
    assert question is not None and question.check is not None
    for r in range(1, 1025):
        verdict = question.check(str(r))
        if not verdict.correct:
            assert kit.leaks(f"{verdict.message} {verdict.hint}", question.secrets, question.secret_texts) == [], r


def test_the_leak_detector_sees_rounded_and_percent_forms() -> None:
    assert kit.leaks("the error is 0.87", [0.866])
    assert kit.leaks("about 87%", [0.866])
    assert kit.leaks("r = 5", [5.0]) and not kit.leaks("r = 50 or 15", [5.0])
    assert not kit.leaks("from 0 to 1", [0.866])
    assert kit.leaks("about 1,607 of them", [1606.6]) and not kit.leaks("about 1,600", [1606.6])
    assert kit.leaks("h = (6, −6, 5)", [-6.0])
    assert kit.leaks("so r × 2,048 ≤ 10,485.76", [], ["≤ 10,485.76"])


# ---------------------------------------------------------------------------------------------------------
# The generic checkers


@given(answer=st.floats(-1e6, 1e6), tolerance=st.floats(0, 10), guess=st.floats(-1e6, 1e6))
def test_a_number_checker_accepts_exactly_the_numbers_within_its_tolerance(answer: float, tolerance: float,
                                                                           guess: float) -> None:
    check = kit.number_checker(answer, tolerance=tolerance, hint="look")
    verdict = check(repr(guess))
    assert verdict.correct == (abs(guess - answer) <= tolerance + 1e-12 * max(1.0, abs(answer)))
    if not verdict.correct:
        assert verdict.message == ("Too high." if guess > answer else "Too low.") and "look" in verdict.hint


@given(st.sampled_from([c.key for q in CHECKED if q.kind == lessons.CHOICE for c in q.choices]))
def test_choice_checkers_accept_only_their_answer(key: str) -> None:
    for question in (q for q in CHECKED if q.kind == lessons.CHOICE):
        keys = [c.key for c in question.choices]
        if key in keys:
            correct = [k for k in keys if question.check(k).correct]
            assert len(correct) == 1 and question.check(key).correct == (key == correct[0])
    assert all(q.check(None).status == lessons.INVALID for q in CHECKED if q.kind == lessons.CHOICE)


@pytest.mark.parametrize("text,value", [("1,234", 1234), ("−4", -4), ("1.3e5", 130000), ("2/3", 2 / 3),
                                        (" 12 ", 12), ("1 000", 1000)])
def test_numbers_are_read_as_people_type_them(text: str, value: float) -> None:
    assert kit.parse_number(text) == pytest.approx(value)
    assert kit.parse_number("87%", percent_ok=True) == pytest.approx(0.87)


@pytest.mark.parametrize("text", ["", "abc", "1/0", "inf", "5%"])
def test_non_numbers_are_refused_with_a_message(text: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        kit.parse_number(text)
    assert info.value.where == "answer" and info.value.message.startswith("enter")


# ---------------------------------------------------------------------------------------------------------
# Numbers against the functions they come from


def test_the_forward_example_is_what_core_lora_computes() -> None:
    w, a, b = (np.array(m, dtype=float) for m in (FORWARD_W, FORWARD_A, FORWARD_B))
    s = FORWARD_ALPHA / a.shape[0]
    for x in ((1, 2, 0, 1), (2, -1, 3, 0)):
        steps = forward_pass(x)
        assert np.array_equal(forward(w, b, a, s, np.array([x], dtype=float))[0], np.array(steps["h"], dtype=float))
        assert np.array_equal(merge(w, b, a, s) @ np.array(x, dtype=float), np.array(steps["merged_h"], float))


def test_the_forward_question_diagnoses_the_usual_slips() -> None:
    check = lessons.check_forward
    assert check("6, -6, 5").correct and check("[6 −6 5]").correct and check("6;-6;5").correct
    assert "alone" in check("8, -4, 5").hint  # W·x′ without the adapter
    assert "scaling" in check("7, -5, 5").hint
    assert "alpha / r, not alpha" in check("4, -8, 5").hint
    assert "sign" in check("10, -2, 5").hint
    assert check("6, -6, 6").message == "Not quite: entry 3 is off."
    assert check("6, -6").status == lessons.INVALID and "3 numbers" in check("6, -6").message


def test_merge_counts_are_the_merge_labs() -> None:
    from loralens.core.labs.merge import run_merge

    result = run_merge(d=48, k=32, rank=4, batch=2, repeats=1)
    assert serving.inference_multiply_adds(48, 32, 4) == (result.multiply_adds_per_token_merged,
                                                          result.multiply_adds_per_token_unmerged)


def _counted_training(d: int, k: int, r: int) -> tuple[int, int]:
    """Multiply-adds of one token's training step, counted product by product with numpy shapes."""
    rng = np.random.default_rng(0)
    w, a, b = rng.normal(size=(d, k)), rng.normal(size=(r, k)), rng.normal(size=(d, r))
    x, g = rng.normal(size=(k, 1)), rng.normal(size=(d, 1))
    count = [0]

    def mm(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        count[0] += p.shape[0] * p.shape[1] * q.shape[1]
        return p @ q

    mm(w, x), mm(w.T, g), mm(g, x.T)  # full: forward, input gradient, weight gradient
    full, count[0] = count[0], 0
    ax = mm(a, x)
    mm(w, x), mm(b, ax)  # forward
    btg = mm(b.T, g)
    mm(w.T, g), mm(a.T, btg)  # input gradient through W and through the adapter
    mm(g, ax.T), mm(btg, x.T)  # gradients of B and of A
    return full, count[0]


@pytest.mark.parametrize("d,k,r", [(4096, 4096, 16), (64, 32, 4), (10, 7, 1)])
def test_training_multiply_adds_match_the_products_counted(d: int, k: int, r: int) -> None:
    if d * k > 1e6:
        small = _counted_training(64, 64, 4)
        assert serving.training_multiply_adds(64, 64, 4) == small
    else:
        assert serving.training_multiply_adds(d, k, r) == _counted_training(d, k, r)


def test_init_answers_come_from_the_init_lab() -> None:
    facts = serving.init_facts()
    assert facts["default"]["grad_a"] == 0.0 < facts["default"]["grad_b"]
    assert facts["both_zero"]["grad_a"] == facts["both_zero"]["grad_b"] == 0.0
    assert facts["both_random"]["change"] > 0.1
    gradient = lessons.question("init-gradient")
    assert gradient is not None and gradient.check("b").correct


def test_model_answers_come_from_peft_counts_and_memory() -> None:
    facts = serving.llama_facts()
    assert facts["trainable"] == 4_194_304 and facts["base"] == 6_738_415_616
    swap = lessons.question("swap-count")
    assert swap is not None and swap.check(str(6_738_415_616 / 4_194_304)).correct
    assert swap.check("1575").correct and not swap.check("1500").correct  # within 2%
    ratio = lessons.question("methods-ratio")
    assert ratio is not None and ratio.check(str(facts["trainable"] / facts["ia3"])).correct
    memory = lessons.question("overhead-memory")
    share = facts["memory_lora"] / facts["memory_full"]
    assert memory is not None and memory.check(serving.memory_band(share)).correct and 0.02 < share < 0.5


def test_merge_and_compute_questions() -> None:
    extra = lessons.question("merge-extra")
    assert extra is not None and extra.check("131,072").correct and extra.check("131072").correct
    assert "FLOPs" in extra.check("262144").hint and "W·x itself" in extra.check("16777216").hint
    compute = lessons.question("overhead-compute")
    assert compute is not None and compute.check("2/3").correct and compute.check("67%").correct
    full, lora = serving.training_multiply_adds(4096, 4096, 16)
    assert Fraction(lora, full) == Fraction(2, 3) + Fraction(16 * 8192, 4096 * 4096)


def test_assessment_has_checked_and_open_questions() -> None:
    kinds = [q.kind for q in lessons.ASSESSMENT]
    assert kinds.count(lessons.OPEN) == 4 and len(kinds) - kinds.count(lessons.OPEN) == 3
    for question in lessons.ASSESSMENT:
        assert question.prompt.endswith("?") and question.answer
        assert (question.check is None) == (question.kind == lessons.OPEN)
        if question.kind == lessons.OPEN:
            assert len(question.answer) > 150


def test_objectives_name_distinct_activities_in_order() -> None:
    order = [lessons.ACTIVITY_KEYS.index(o.activity) for o in lessons.OBJECTIVES]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert all(len(list(g)) == 1 for _, g in itertools.groupby(order))
