"""The lesson plan's checkers: the textbook's answers, bad input, hints that never give the answer, and
brute-force oracles."""

from __future__ import annotations

import math
from fractions import Fraction
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loralens.core import lessons
from loralens.core.lessons import (
    CORRECT,
    INVALID,
    NOT_ENOUGH,
    NOT_LARGEST,
    WRONG,
    best_rank_r_error,
    check_limits_answer,
    check_savings_rank,
    savings_hint_link,
)
from loralens.errors import InvalidParameterError


def test_rank_5_is_the_answer_for_1024_squared() -> None:
    verdict = check_savings_rank("5")
    assert verdict.status == CORRECT and verdict.correct
    assert "10,240 parameters" in verdict.message and "0.98%" in verdict.message
    assert "r × 2,048 ≤ 10,485.76" in verdict.explanation  # the worked solution, once it is right
    assert "10,485.76 / 2,048 = 5.12" in verdict.explanation and not verdict.hint


def test_rank_6_gets_a_hint_not_the_inequality() -> None:
    verdict = check_savings_rank("6")
    assert verdict.status == NOT_ENOUGH and not verdict.correct
    assert "saves 98.8%, not enough" in verdict.message
    assert "Try a smaller rank" in verdict.hint and "at most 1% of d·k" in verdict.hint
    assert "2,048" not in verdict.message + verdict.hint and "10,485.76" not in verdict.message + verdict.hint
    assert verdict.explanation == ""


def test_rank_4_saves_enough_but_is_not_the_largest() -> None:
    verdict = check_savings_rank(4)
    assert verdict.status == NOT_LARGEST
    assert "saves 99.2%, at least 99%, but it is not the largest" in verdict.message
    assert "Try a larger rank" in verdict.hint


@pytest.mark.parametrize(
    "answer,words",
    [
        ("", "Enter a rank"),
        ("  ", "Enter a rank"),
        ("abc", "whole number such as 8, not 'abc'"),
        ("5.5", "whole number"),
        ("nan", "whole number"),
        ("0", "at least 1"),
        ("-3", "at least 1"),
        ("2000", "cannot exceed min(d, k) = 1,024"),
        (None, "Enter a rank"),
    ],
)
def test_bad_answers_get_a_clear_message(answer: object, words: str) -> None:
    verdict = check_savings_rank(answer)
    assert verdict.status == INVALID
    assert words in verdict.message


def test_whole_number_text_forms_are_accepted() -> None:
    assert check_savings_rank(" 5 ").correct
    assert check_savings_rank("5.0").correct


def test_a_rank_past_break_even_saves_nothing() -> None:
    verdict = check_savings_rank(1000)
    assert verdict.status == NOT_ENOUGH and "saves nothing" in verdict.message


def test_a_layer_too_small_for_the_target_has_no_correct_rank() -> None:
    verdict = check_savings_rank(1, d=2, k=2)
    assert verdict.status == NOT_ENOUGH and "even r = 1 cannot save 99%" in verdict.message


def test_bad_layer_shape_is_the_callers_error() -> None:
    with pytest.raises(InvalidParameterError) as info:
        check_savings_rank("5", d=0)
    assert info.value.where == "d"


def _brute_force_best(d: int, k: int, target: Fraction) -> int:
    """Largest r in 1..min(d, k) whose LoRA trains at most (1 - target)·d·k parameters; 0 if none."""
    best = 0
    for r in range(1, min(d, k) + 1):
        if r * (d + k) <= (1 - target) * d * k:
            best = r
    return best


@settings(max_examples=150, deadline=None)
@given(
    d=st.integers(1, 300),
    k=st.integers(1, 300),
    target=st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
    data=st.data(),
)
def test_checker_agrees_with_brute_force(d: int, k: int, target: float, data: st.DataObject) -> None:
    r = data.draw(st.integers(1, min(d, k)), label="r")
    best = _brute_force_best(d, k, Fraction(str(target)))
    verdict = check_savings_rank(str(r), d=d, k=k, target=target)
    expected = CORRECT if r == best else NOT_ENOUGH if r > best else NOT_LARGEST
    assert verdict.status == expected, (d, k, target, r, best, verdict)
    if verdict.status == NOT_ENOUGH:
        assert "not enough" in verdict.message
    # the quoted saving never looks like it meets the target when it does not, or the reverse
    shown = verdict.message.split("saves ", 1)[-1].split("%", 1)[0]
    if verdict.status != CORRECT and "nothing" not in verdict.message:
        assert (Fraction(shown) / 100 >= Fraction(str(target))) == (verdict.status == NOT_LARGEST)


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 2000), k=st.integers(1, 2000), r=st.integers(-5, 2100))
def test_checker_never_raises_on_any_rank(d: int, k: int, r: int) -> None:
    verdict = check_savings_rank(str(r), d=d, k=k)
    assert verdict.status in {CORRECT, NOT_ENOUGH, NOT_LARGEST, INVALID}
    assert (verdict.status == INVALID) == (r < 1 or r > min(d, k))


@pytest.mark.parametrize(
    "answer,r", [("5", 5), ("12", 12), ("abc", 8), ("0", 8), ("", 8), ("99999", 1024)]
)
def test_hint_opens_the_explorer_at_the_guess_or_8(answer: str, r: int) -> None:
    url = urlparse(savings_hint_link(answer).href)
    assert url.path == "/"
    assert parse_qs(url.query) == {"d": ["1024"], "k": ["1024"], "r": [str(r)]}


def test_eckart_young_error_for_equal_singular_values() -> None:
    assert best_rank_r_error(16, 4) == pytest.approx(math.sqrt(12 / 16))
    assert best_rank_r_error(4, 4) == 0.0
    assert best_rank_r_error(4, 8) == 0.0
    with pytest.raises(InvalidParameterError):
        best_rank_r_error(0, 4)


@given(s=st.integers(1, 64), r=st.integers(1, 64))
def test_eckart_young_error_matches_the_lost_singular_values(s: int, r: int) -> None:
    sigma = [1.0] * s
    lost = sum(x * x for x in sigma[r:])
    assert best_rank_r_error(s, r) == pytest.approx(math.sqrt(lost / sum(x * x for x in sigma)))


@pytest.mark.parametrize("answer", ["0.87", "0.866", ".85", "87%", "86.6 %"])
def test_limits_question_accepts_the_bound(answer: str) -> None:
    assert check_limits_answer(answer).status == CORRECT


@pytest.mark.parametrize("answer,words", [("0", "too low"), ("0.5", "too low"), ("1", "too high")])
def test_limits_question_hints_at_a_wrong_guess(answer: str, words: str) -> None:
    verdict = check_limits_answer(answer)
    assert verdict.status == WRONG and words in verdict.message
    assert "Eckart–Young" in verdict.hint and "sqrt" not in verdict.hint + verdict.message
    assert "0.866" not in verdict.hint and verdict.explanation == ""
    assert "sqrt(12/16) = 0.866" in check_limits_answer("0.87").explanation


@pytest.mark.parametrize("answer", ["", "x", "1.5", "-0.1", "150%", "inf"])
def test_limits_question_rejects_non_errors(answer: str) -> None:
    assert check_limits_answer(answer).status == INVALID


def test_limits_question_when_the_rank_is_enough() -> None:
    assert check_limits_answer("0", s=4, r=8).status == CORRECT
    verdict = check_limits_answer("0.5", s=4, r=8)
    assert verdict.status == WRONG and "too high" in verdict.message


# Activity 3: model sizes


def test_model_table_uses_the_peft_counts() -> None:
    from loralens.core.architectures import PRESET_GROUPS
    from loralens.core.architectures import PRESETS as ALL_PRESETS
    from loralens.core.peft_config import LoraConfigSpec
    from loralens.core.peft_count import count_lora

    PRESETS = {hf_id: ALL_PRESETS[hf_id] for hf_id in PRESET_GROUPS["gpt2-bert-opt-gpt3"]}  # the lesson's ten
    table = lessons.compare_models(8, "default")
    assert [row.model_id for row in table.rows] == [a.short_name for a in PRESETS.values()]
    llama = table.row("llama-2-7b")
    assert llama is not None and llama.trainable == 4_194_304  # PEFT's print_trainable_parameters for q,v r=8
    assert llama.targets == "q_proj, v_proj"
    for row, arch in zip(table.rows, PRESETS.values(), strict=True):
        assert row.trainable == count_lora(arch, LoraConfigSpec(r=8)).trainable
        assert row.per_billion == Fraction(row.trainable * 10**9, arch.total_params)
    wide = lessons.compare_models(8, "all-linear")
    assert all(w.trainable > d.trainable for w, d in zip(wide.rows, table.rows, strict=True))


@pytest.mark.parametrize("targets", list(lessons.TARGET_CHOICES))
@pytest.mark.parametrize("r", [1, 8, 64])
def test_model_question_is_checked_against_the_table(targets: str, r: int) -> None:
    table = lessons.compare_models(r, targets)
    top = max(table.rows, key=lambda row: row.trainable / row.base_params)
    for row in table.rows:
        verdict = lessons.check_model_choice(row.model_id, table)
        assert verdict.correct == (row.trainable / row.base_params == top.trainable / top.base_params), row
        assert row.name in verdict.message
    assert lessons.check_model_choice(top.model_id, table).correct


def test_model_question_answer_for_the_default_table() -> None:
    table = lessons.compare_models()
    assert [row.model_id for row in table.most_per_billion] == ["bert-base-uncased"]
    verdict = lessons.check_model_choice("gpt2", table)
    assert verdict.status == WRONG and "2,369,917 per billion" in verdict.message
    assert "BERT" not in verdict.message + verdict.hint  # the hint points at the layers, not at the model


@pytest.mark.parametrize("choice", [None, "", "gpt-5", 3])
def test_model_question_needs_a_choice(choice: object) -> None:
    verdict = lessons.check_model_choice(choice, lessons.compare_models())
    assert verdict.status == INVALID and "Choose a model" in verdict.message


def test_model_table_rejects_bad_parameters() -> None:
    with pytest.raises(InvalidParameterError) as info:
        lessons.compare_models(0)
    assert info.value.where == "r"
    with pytest.raises(InvalidParameterError) as info:
        lessons.compare_models(8, "q,k")
    assert info.value.where == "targets"


@given(s=st.integers(1, 64), r=st.integers(1, 64), guess=st.floats(0, 1))
def test_limits_checker_accepts_exactly_the_guesses_near_the_bound(s: int, r: int, guess: float) -> None:
    verdict = check_limits_answer(repr(guess), s=s, r=r)
    bound = math.sqrt(max(s - r, 0) / s)
    assert verdict.correct == (abs(guess - bound) <= lessons.LIMITS_TOLERANCE)
    if not verdict.correct:
        assert ("too low" in verdict.message) == (guess < bound)


def test_models_links_carry_the_model_rank_and_targets() -> None:
    assert lessons.models_link("gpt2", 8).href == "/models?model=gpt2&r=8"
    assert lessons.models_link("llama-2-7b", 16, "all-linear").href == \
        "/models?model=llama-2-7b&r=16&targets=all-linear"
