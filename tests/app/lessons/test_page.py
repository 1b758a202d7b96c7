"""The Lessons page in-process (NiceGUI's user fixture): enter answers, read the verdicts and the progress."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing import User


async def _answer(user: User, name: str, text: str) -> None:
    user.find(marker=f"{name}-answer").clear().type(text)
    user.find(marker=f"{name}-check").click()


async def test_page_shows_objectives_activities_and_assessment(user: User) -> None:
    await user.open("/lessons")
    await user.should_see("Learning objectives")
    await user.should_see("Activity 1 · Find the rank that saves 99% of the parameters")
    await user.should_see("Activity 3 · When might LoRA not work?")
    await user.should_see("Assessment")
    await user.should_see("0 of 3 activities answered correctly")
    link = user.find(marker="objective-init").elements.pop()
    assert link.props["href"] == "/labs?lab=init"


async def test_rank_5_is_correct_and_counts_as_progress(user: User) -> None:
    await user.open("/lessons")
    await _answer(user, "savings", "5")
    await user.should_see("Correct: r = 5 is the largest rank that saves at least 99% (10,240 parameters, 0.98%).")
    await user.should_see("10,485.76 / 2,048 = 5.12")
    await user.should_see("1 of 3 activities answered correctly")


async def test_rank_6_and_4_are_explained(user: User) -> None:
    await user.open("/lessons")
    await _answer(user, "savings", "6")
    await user.should_see("r = 6 saves 98.8%, not enough")
    await user.should_see("r × 2,048 ≤ 10,485.76")
    await _answer(user, "savings", "4")
    await user.should_see("saves 99.2%, at least 99%, but it is not the largest")
    await user.should_not_see("r = 6 saves 98.8%")
    await user.should_see("0 of 3 activities answered correctly")


async def test_bad_rank_shows_a_message_beside_the_control(user: User) -> None:
    await user.open("/lessons")
    for text, words in (("abc", "not 'abc'"), ("0", "at least 1"), ("-2", "at least 1"), ("4096", "cannot exceed")):
        await _answer(user, "savings", text)
        error = user.find(marker="savings-error").elements.pop()
        assert isinstance(error, ui.label) and words in error.text and error.visible
        await user.should_not_see(marker="savings-verdict")


async def test_hint_link_follows_the_guess(user: User) -> None:
    await user.open("/lessons")
    hint = user.find(marker="savings-hint").elements.pop()
    assert hint.props["href"] == "/?d=1024&k=1024&r=8"
    user.find(marker="savings-answer").type("12")
    assert hint.props["href"] == "/?d=1024&k=1024&r=12"
    user.find(marker="savings-answer").clear().type("nonsense")
    assert hint.props["href"] == "/?d=1024&k=1024&r=8"


async def test_enter_key_checks_too(user: User) -> None:
    await user.open("/lessons")
    user.find(marker="savings-answer").type("5").trigger("keydown.enter")
    await user.should_see("Correct: r = 5")


async def test_limits_question(user: User) -> None:
    await user.open("/lessons")
    lab = user.find(marker="limits-lab").elements.pop()
    assert lab.props["href"] == "/labs?lab=fit&d=64&k=64&rank=4&target_rank=64"
    await _answer(user, "limits", "0")
    await user.should_see("0 is too low")
    await user.should_see("sqrt(12/16) = 0.866")
    await _answer(user, "limits", "87%")
    await user.should_see("Correct: about 0.87")
    await user.should_see("1 of 3 activities answered correctly")
    await _answer(user, "limits", "2")
    await user.should_see("from 0 to 1")


async def test_answers_are_hidden_until_revealed(user: User) -> None:
    await user.open("/lessons")
    await user.should_not_see(marker="answer-init")
    user.find(marker="reveal-init").click()
    await user.should_see(marker="answer-init")
    await user.should_see("B = 0 the update ΔW")
    await user.should_not_see(marker="answer-compute")
    user.find(marker="reveal-init").click()
    await user.should_not_see(marker="answer-init")


async def test_progress_survives_a_reload_of_the_tab(user: User) -> None:
    await user.open("/lessons")
    await _answer(user, "savings", "5")
    await user.should_see("1 of 3 activities answered correctly")
    await user.open("/lessons")
    await user.should_see("1 of 3 activities answered correctly")
    await user.should_see("✓ 1. Find the rank for 99% savings")


async def test_progress_is_per_tab(user: User, create_user) -> None:  # type: ignore[no-untyped-def]
    await user.open("/lessons")
    await _answer(user, "savings", "5")
    await user.should_see("1 of 3 activities answered correctly")
    other: User = create_user()
    await other.open("/lessons")
    await other.should_see("0 of 3 activities answered correctly")


async def test_embed_mode_hides_the_navigation(user: User) -> None:
    await user.open("/lessons?embed=1")
    await user.should_see("Activity 1 · Find the rank that saves 99% of the parameters")
    await user.should_not_see("Inspector")


async def test_navigation_is_shown_outside_embed_mode(user: User) -> None:
    await user.open("/lessons")
    await user.should_see("Inspector")


async def test_models_table_and_question(user: User) -> None:
    await user.open("/lessons")
    await user.should_see("Activity 2 · Compare parameter counts for different model sizes")
    table = user.find(marker="models-table").elements.pop()
    assert isinstance(table, ui.table)
    llama = next(row for row in table.rows if row["id"] == "llama-2-7b")
    assert llama["trainable"] == "4,194,304"
    user.find(marker="models-answer").click()
    user.find("GPT-2 (124M)").click()
    user.find(marker="models-check").click()
    await user.should_see("Not quite: GPT-2 (124M) trains 2,369,917 per billion")
    link = user.find(marker="models-link").elements.pop()
    assert link.props["href"] == "/models?model=gpt2&r=8"
    user.find(marker="models-answer").click()
    user.find("BERT base uncased (BertForMaskedLM)").click()
    user.find(marker="models-check").click()
    await user.should_see("Correct: BERT base uncased (BertForMaskedLM) trains 2,692,909")
    await user.should_see("1 of 3 activities answered correctly")


async def test_models_table_follows_the_rank_and_targets(user: User) -> None:
    await user.open("/lessons")
    table = user.find(marker="models-table").elements.pop()
    user.find(marker="models-rank").elements.pop().set_value(16)
    llama = next(row for row in table.rows if row["id"] == "llama-2-7b")
    assert llama["trainable"] == "8,388,608"
    user.find(marker="models-targets").elements.pop().set_value("all-linear")
    llama = next(row for row in table.rows if row["id"] == "llama-2-7b")
    assert llama["trainable"] == "39,976,960"  # 16 · 32 layers · (4·(4096+4096) + 3·(4096+11008))
    await user.should_see("every linear layer except the output head")
    link = user.find(marker="models-link").elements.pop()
    assert link.props["href"] == "/models?model=llama-2-7b&r=16&targets=all-linear"


async def test_models_question_needs_a_choice(user: User) -> None:
    await user.open("/lessons")
    user.find(marker="models-check").click()
    await user.should_see("Choose a model from the list first.")
