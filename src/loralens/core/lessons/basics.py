"""Activities 1 and 2: the forward pass h = Wx + s·BAx worked at small size, and the rank that saves 99 %.

Every number comes from exact arithmetic here (checked against ``core.lora`` in the tests) or from
``core.counting`` (``count_layer``, whose ``max_rank_for_target`` is ``max_rank_for_savings``).
"""

from __future__ import annotations

from fractions import Fraction

from loralens.core.counting import count_layer
from loralens.core.lessons.kit import (
    CORRECT, INVALID, NOT_ENOUGH, NOT_LARGEST, VECTOR, WRONG, NUMBER, Activity, Link, Question, Step, Verdict,
    exact, link, parse_vector, sentence,
)
from loralens.core.units import percent
from loralens.errors import InvalidParameterError

# ---------------------------------------------------------------------------------------------------------
# Activity 1: the forward pass, step by step

#: a 3 × 4 layer (d = 3 outputs, k = 4 inputs) with a rank-2 adapter, small whole numbers to do by hand
FORWARD_W = ((1, 0, 2, -1), (0, 1, -1, 1), (2, -1, 0, 1))  # (d, k)
FORWARD_A = ((1, 0, -1, 0), (0, 1, 0, 1))  # (r, k)
FORWARD_B = ((1, 0), (0, 1), (1, -1))  # (d, r)
FORWARD_ALPHA = 4
FORWARD_X = (1, 2, 0, 1)  # the worked example's input
FORWARD_QUESTION_X = (2, -1, 3, 0)  # the learner's input


def matvec(matrix: tuple[tuple[int, ...], ...], vector: tuple[Fraction | int, ...]) -> tuple[Fraction, ...]:
    return tuple(sum((Fraction(m) * v for m, v in zip(row, vector, strict=True)), Fraction(0)) for row in matrix)


def vec(values: tuple[Fraction | int, ...]) -> str:
    return "(" + ", ".join(exact(v) for v in values) + ")"


def _rows(name: str, matrix: tuple[tuple[int, ...], ...]) -> tuple[str, ...]:
    return tuple(f"{name if i == 0 else ' ' * len(name)}  [{'  '.join(f'{exact(v):>2}' for v in row)}]"
                 for i, row in enumerate(matrix))


def forward_pass(x: tuple[int, ...]) -> dict[str, tuple[Fraction, ...]]:
    """Every intermediate of h = W·x + s·B·(A·x), exactly, and of the merged W′·x (which is the same h)."""
    r = len(FORWARD_A)
    s = Fraction(FORWARD_ALPHA, r)
    wx, ax = matvec(FORWARD_W, x), matvec(FORWARD_A, x)
    bax = matvec(FORWARD_B, ax)
    scaled = tuple(s * v for v in bax)
    h = tuple(a + b for a, b in zip(wx, scaled))
    ba = tuple(tuple(sum(Fraction(B_i[j]) * FORWARD_A[j][c] for j in range(r)) for c in range(len(x)))
               for B_i in FORWARD_B)
    merged = tuple(tuple(Fraction(w) + s * v for w, v in zip(w_row, ba_row)) for w_row, ba_row in zip(FORWARD_W, ba))
    return {"s": (s,), "wx": wx, "ax": ax, "bax": bax, "scaled": scaled, "h": h,
            "merged_h": tuple(sum((m * v for m, v in zip(row, x)), Fraction(0)) for row in merged),
            "merged": tuple(v for row in merged for v in row)}


def forward_steps(x: tuple[int, ...] = FORWARD_X) -> tuple[Step, ...]:
    """The worked example: each product with one row written out, then the merged weight."""
    d, k, r = len(FORWARD_W), len(FORWARD_W[0]), len(FORWARD_A)
    f = forward_pass(x)
    s = f["s"][0]

    def row_sum(row: tuple[int, ...], vector: tuple[Fraction | int, ...]) -> str:
        def term(v: Fraction | int) -> str:
            return f"({exact(v)})" if v < 0 else exact(v)

        return " + ".join(f"{term(a)}·{term(b)}" for a, b in zip(row, vector))

    merged = [f["merged"][i * k:(i + 1) * k] for i in range(d)]
    return (
        Step("The layer", f"W is d × k = {d} × {k}, A is r × k = {r} × {k}, B is d × r = {d} × {r}",
             (*_rows("W", FORWARD_W), *_rows("A", FORWARD_A), *_rows("B", FORWARD_B),
              f"x = {vec(x)},  alpha = {FORWARD_ALPHA},  s = alpha / r = {FORWARD_ALPHA} / {r} = {exact(s)}")),
        Step("The frozen path: W·x", "(W·x)ᵢ = Σⱼ Wᵢⱼ·xⱼ",
             (f"row 1: {row_sum(FORWARD_W[0], x)} = {exact(f['wx'][0])}", f"W·x = {vec(f['wx'])}")),
        Step("Down to r numbers: A·x", "A·x has r entries, one per row of A",
             (f"row 1: {row_sum(FORWARD_A[0], x)} = {exact(f['ax'][0])}", f"A·x = {vec(f['ax'])}")),
        Step("Back up to d numbers: B·(A·x)", "B·(A·x) has d entries",
             (f"row 3: {row_sum(FORWARD_B[2], f['ax'])} = {exact(f['bax'][2])}", f"B·(A·x) = {vec(f['bax'])}")),
        Step("Scale by s = alpha / r", f"s·B·(A·x) with s = {exact(s)}", (f"s·B·(A·x) = {vec(f['scaled'])}",)),
        Step("Add the two paths", "h = W·x + s·B·(A·x)",
             (f"h = {vec(f['wx'])} + {vec(f['scaled'])} = {vec(f['h'])}",)),
        Step("Or merge first: W′ = W + s·B·A", "W′·x is the same h, with one product instead of three",
             (*_rows("W′", tuple(tuple(int(v) for v in row) for row in merged)), f"W′·x = {vec(f['merged_h'])}",
              f"unmerged: d·k + r·k + d·r = {d * k} + {r * k} + {d * r} = {d * k + r * k + d * r} "
              f"multiply-adds; merged: d·k = {d * k}")),
    )


def check_forward(answer: object) -> Verdict:
    """Check h′ for the question's input: diagnose the usual slips (no adapter, no scaling, wrong sign)."""
    x = FORWARD_QUESTION_X
    f = forward_pass(x)
    try:
        guess = parse_vector(answer, len(FORWARD_W), "h")
    except InvalidParameterError as error:
        return Verdict(INVALID, sentence(error.message))
    if guess == tuple(float(v) for v in f["h"]):
        return Verdict(CORRECT, "Correct: h′ = W·x′ + s·B·(A·x′).", explanation=forward_solution())
    slips = (
        (f["wx"], "That is W·x′ alone: the adapter's path s·B·(A·x′) still has to be added."),
        (tuple(a + b for a, b in zip(f["wx"], f["bax"])), "You left out the scaling s = alpha / r."),
        (tuple(a + FORWARD_ALPHA * b for a, b in zip(f["wx"], f["bax"])),
         "The scaling is alpha / r, not alpha: divide by the rank."),
        (tuple(a - b for a, b in zip(f["wx"], f["scaled"])), "Check the sign: h adds the adapter's output to W·x′."),
    )
    for values, hint in slips:
        if guess == tuple(float(v) for v in values):
            return Verdict(WRONG, "Not quite.", hint)
    wrong = [i + 1 for i, (g, v) in enumerate(zip(guess, f["h"])) if g != float(v)]
    which = " and ".join(f"entry {i}" for i in wrong)
    return Verdict(WRONG, f"Not quite: {which} {'is' if len(wrong) == 1 else 'are'} off.",
                   "Recompute those rows of W·x′ and of B·(A·x′), in the order of the worked example: A·x′ "
                   "first (r numbers), then B times that, then the scaling, then the sum.")


def forward_solution() -> str:
    x = FORWARD_QUESTION_X
    f = forward_pass(x)
    return (f"W·x′ = {vec(f['wx'])}; A·x′ = {vec(f['ax'])}; B·(A·x′) = {vec(f['bax'])}; times s = "
            f"{exact(f['s'][0])}: {vec(f['scaled'])}; so h′ = {vec(f['h'])}. The merged W′·x′ gives the same "
            f"{vec(f['merged_h'])}.")


def forward_activity() -> Activity:
    f = forward_pass(FORWARD_QUESTION_X)
    question = Question(
        "forward-h", f"Your turn: x′ = {vec(FORWARD_QUESTION_X)}, same W, A, B and s. What is h′ = W·x′ + "
        "s·B·(A·x′)? Enter its 3 numbers, separated by commas.", VECTOR,
        answer=f"h′ = {vec(f['h'])}", solution=forward_solution(), check=check_forward, label="h′ (3 numbers)",
        placeholder="e.g. 1, 2, 3", secrets=tuple(float(v) for v in f["h"]),
        tries=("8, -4, 5", "7, -5, 5", "4, -8, 5", "10, -2, 5", "6, -6, 6", "0, 0, 0", "1 2 3", "6, -6", "a, b, c"),
    )
    return Activity(
        key="forward", title="The forward pass h = Wx + BAx, by hand",
        intro=("A LoRA layer keeps the pretrained W frozen and adds a second path: x goes down to r numbers "
               "through A, back up to d numbers through B, is scaled by s = alpha / r and added to W·x. Step "
               "through the worked example, then compute one yourself.",),
        links=(link("See W, B and A drawn to scale in the Explorer", "/", d=64, k=64, r=4),
               link("Merge lab: merged and unmerged outputs agree", "/labs", lab="merge", d=64, k=64, rank=4)),
        questions=(question,), steps=forward_steps(),
        in_class="Project the worked example and step through it together (5 min); students then compute h′ "
                 "alone or in pairs (5 min). Ask why W′·x gives the same h: that is the merge activity's point. "
                 "Typical slips (forgetting s, using alpha instead of alpha / r) get their own hint.",
        covers="LoRA's decomposition W′ = W + BA",
    )


# ---------------------------------------------------------------------------------------------------------
# Activity 2: the largest rank that saves a target share of the parameters

SAVINGS_D = 1024
SAVINGS_K = 1024
SAVINGS_TARGET = 0.99
HINT_DEFAULT_RANK = 8


def parse_rank(text: object) -> int:
    """A rank typed by a learner ('5', ' 5 ', '5.0') as an int; InvalidParameterError with a plain message."""
    raw = str(text).strip() if text is not None else ""
    if not raw:
        raise InvalidParameterError("enter a rank, a whole number such as 8", where="r")
    try:
        value = float(raw.replace(",", "").replace("_", ""))
    except ValueError:
        raise InvalidParameterError(f"enter the rank as a whole number such as 8, not {raw!r}", where="r") from None
    if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
        raise InvalidParameterError(f"the rank is a whole number (columns of B, rows of A), not {raw}", where="r")
    rank = int(value)
    if rank < 1:
        raise InvalidParameterError(f"the rank must be at least 1 (B needs at least one column), not {rank}", where="r")
    return rank


def _saved_text(saved: Fraction, target: Fraction) -> str:
    """``saved`` as a percentage (3 significant digits or more) that does not look equal to ``target``
    unless it is, nor on the wrong side of it."""
    for digits in range(3, 12):
        text = percent(saved, digits)
        shown = Fraction(text.rstrip("%")) / 100
        if (shown >= target) == (saved >= target) and (shown == target) == (saved == target):
            return text
    return exact(saved * 100) + "%"


def savings_solution(d: int = SAVINGS_D, k: int = SAVINGS_K, target: float = SAVINGS_TARGET) -> str:
    """The worked inequality: r(d + k) ≤ (1 − target)·d·k, solved for r."""
    layer = count_layer(d, k, 1, target)
    allowed = (1 - layer.savings_target) * layer.full
    best = layer.max_rank_for_target
    need = (f"Saving {exact(layer.savings_target * 100)}% means r(d + k) ≤ {exact((1 - layer.savings_target) * 100)}%"
            f" of d·k: r × {d + k:,} ≤ {exact(allowed)}.")
    if best == 0:
        return f"{need} Even r = 1 trains {d + k:,} parameters: no rank saves that much."
    best_layer = count_layer(d, k, best, target)
    return (f"{need} So r ≤ {exact(allowed)} / {d + k:,} = {exact(allowed / (d + k))}, and the largest whole rank "
            f"is {best:,}: it trains {best_layer.lora:,} parameters, {percent(best_layer.share)} of the "
            f"{layer.full:,} in W.")


def check_savings_rank(answer: object, d: int = SAVINGS_D, k: int = SAVINGS_K,
                       target: float = SAVINGS_TARGET) -> Verdict:
    """Check "the largest rank r whose LoRA saves at least ``target`` of d·k".

    correct: the largest such r; not_enough: it saves less than the target; not_largest: it meets the target but
    a larger rank does too; invalid: not a rank (text, 0, negative, above min(d, k)). A wrong answer's verdict
    says what the learner's own rank saves and where to look, never the inequality solved.
    """
    count_layer(d, k, 1, target)  # a bad d, k or target is the caller's mistake: raise
    try:
        r = parse_rank(answer)
    except InvalidParameterError as error:
        return Verdict(INVALID, sentence(error.message))
    if r > min(d, k):
        return Verdict(INVALID, f"The rank cannot exceed min(d, k) = {min(d, k):,}; {r:,} is too large.")
    layer = count_layer(d, k, r, target)
    best, goal = layer.max_rank_for_target, layer.savings_target
    goal_text = exact(goal * 100) + "%"
    saved = _saved_text(layer.savings, goal) if layer.savings >= 0 else "nothing (it trains more than W has)"
    look = (f"LoRA trains r(d + k) numbers instead of d·k; saving {goal_text} means they may be at most "
            f"{exact((1 - goal) * 100)}% of d·k. Open the Explorer at your rank and read the share.")
    if best == 0:
        return Verdict(NOT_ENOUGH, f"r = {r:,} saves {saved}, not enough: on a {d:,}×{k:,} layer even r = 1 "
                                   f"cannot save {goal_text}.", look)
    if r == best:
        return Verdict(CORRECT, f"Correct: r = {r:,} is the largest rank that saves at least {goal_text} "
                                f"({layer.lora:,} parameters, {percent(layer.share)}).",
                       explanation=savings_solution(d, k, target))
    if r > best:
        return Verdict(NOT_ENOUGH, f"r = {r:,} saves {saved}, not enough (the goal is {goal_text}).",
                       "Try a smaller rank. " + look)
    return Verdict(NOT_LARGEST, f"r = {r:,} saves {saved}, at least {goal_text}, but it is not the largest rank "
                                "that does.", "Try a larger rank. " + look)


def savings_hint_link(answer: object, d: int = SAVINGS_D, k: int = SAVINGS_K) -> Link:
    """The Explorer at d×k with the learner's rank when it is a usable one, else rank 8 (or min(d, k))."""
    try:
        r = parse_rank(answer)
    except InvalidParameterError:
        r = HINT_DEFAULT_RANK
    return link("Try your rank in the Explorer", "/", d=d, k=k, r=max(1, min(r, d, k)))


def savings_activity() -> Activity:
    d, k, goal = SAVINGS_D, SAVINGS_K, SAVINGS_TARGET
    layer = count_layer(d, k, 1, goal)
    best = layer.max_rank_for_target
    allowed = (1 - layer.savings_target) * layer.full
    question = Question(
        "savings-rank", f"What is the largest rank r for which LoRA still saves at least {goal:.0%} of the "
        "parameters?", NUMBER, answer=f"r = {best}", solution=savings_solution(), check=check_savings_rank,
        label="Your rank r", placeholder="e.g. 8",
        secrets=(float(best), float(allowed / (d + k)), float(allowed)),
        secret_texts=(f"r × {d + k:,} ≤", f"≤ {exact(allowed)}"),
        tries=tuple(str(r) for r in range(1, min(d, k) + 1) if r != best) + ("abc", "0", "-3", "5.5", "2000", ""),
        hint_link=savings_hint_link,
    )
    return Activity(
        key="savings", title=f"Find the rank that saves {goal:.0%} of the parameters",
        intro=(f"A {d:,}×{k:,} weight matrix W has {d * k:,} parameters. LoRA trains B ({d:,}×r) and A "
               f"(r×{k:,}) instead.",),
        links=(link("Open the Explorer at this layer and drag the rank", "/", d=d, k=k, r=HINT_DEFAULT_RANK),),
        questions=(question,),
        in_class="Let students guess first, then find the rank in the Explorer by dragging r (the student link "
                 "hides the Explorer's 'largest rank' line); then ask for the inequality on paper. Good follow-up: "
                 "the same question for a 4096×4096 layer, or a 90% target.",
        covers="Find the rank that saves 99% on a 1024×1024 matrix",
    )


__all__ = [
    "FORWARD_ALPHA", "FORWARD_A", "FORWARD_B", "FORWARD_QUESTION_X", "FORWARD_W", "FORWARD_X", "HINT_DEFAULT_RANK",
    "SAVINGS_D", "SAVINGS_K", "SAVINGS_TARGET", "check_forward", "check_savings_rank", "forward_activity",
    "forward_pass", "forward_steps", "parse_rank", "savings_activity", "savings_hint_link", "savings_solution",
]
