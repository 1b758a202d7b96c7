"""The lesson plan's building blocks: links, questions, verdicts, activities, and the generic checkers.

A question has a checker (a plain function from what the learner typed or chose to a ``Verdict``), its short
answer and its worked solution. A wrong answer's verdict carries a *hint*: what to look at, never the answer or
the worked solution (``secrets`` lists the numbers a wrong-answer verdict must never contain; the tests check
every question's wrong answers against them with ``leaks``). Pure Python: no numpy, no UI.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from loralens.errors import InvalidParameterError

# Verdict statuses. Only "correct" counts as progress.
CORRECT = "correct"
NOT_ENOUGH = "not_enough"
NOT_LARGEST = "not_largest"
WRONG = "wrong"
INVALID = "invalid"

# question kinds: what the page draws for the answer
NUMBER, CHOICE, VECTOR, OPEN = "number", "choice", "vector", "open"


@dataclass(frozen=True)
class Link:
    """A place in the app: a label, a path and its query (the page adds embed=1 and answers=false)."""

    label: str
    path: str
    query: tuple[tuple[str, str], ...] = ()

    @property
    def href(self) -> str:
        """The plain link, as a teacher would open it."""
        from urllib.parse import urlencode

        return self.path + ("?" + urlencode(self.query) if self.query else "")


def link(label: str, path: str, **query: object) -> Link:
    """A Link with its query from keyword arguments, in order (``lab="fit", d=64`` -> lab=fit&d=64)."""
    return Link(label, path, tuple((name, str(value)) for name, value in query.items()))


@dataclass(frozen=True)
class Verdict:
    """The result of checking one answer.

    ``message`` says what the answer is (right, too high, not a number); ``hint`` (wrong answers) says where to
    look; ``explanation`` (correct answers only) is the worked solution, shown once the learner has it right.
    """

    status: str
    message: str
    hint: str = ""
    explanation: str = ""

    @property
    def correct(self) -> bool:
        return self.status == CORRECT


@dataclass(frozen=True)
class Choice:
    """One option of a multiple-choice question; ``hint`` is what a learner who picked it should look at."""

    key: str
    text: str
    hint: str = ""


@dataclass(frozen=True)
class Question:
    """One question. ``check`` is None for open questions, which have a model answer to reveal instead."""

    key: str  # unique in the lesson: the anchor is #question-<key>
    prompt: str
    kind: str  # NUMBER, CHOICE, VECTOR or OPEN
    answer: str  # the short answer ("r = 5"), or the model answer of an open question
    solution: str  # the worked solution (teacher view, "Show solution", after a correct answer)
    check: Callable[[object], Verdict] | None = None
    choices: tuple[Choice, ...] = ()
    label: str = "Your answer"  # the answer field's label
    placeholder: str = ""
    secrets: tuple[float, ...] = ()  # numbers no wrong-answer verdict may contain
    secret_texts: tuple[str, ...] = ()  # text no wrong-answer verdict may contain (a worked inequality)
    after: Link | None = None  # a page that shows the answer: offered to a student only after a first attempt
    tries: tuple[str, ...] = ()  # typical wrong answers (the tests check their verdicts never leak)
    hint_link: Callable[[object], Link] | None = None  # a page to try the typed answer in (no answer shown there)


@dataclass(frozen=True)
class Step:
    """One step of a worked example: what is computed, the formula, and the numbers (one line each)."""

    title: str
    formula: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Activity:
    """One activity of the lesson plan, backed by a live view or lab (``links``)."""

    key: str  # the anchor #activity-<key> and ?activity=<key>
    title: str
    intro: tuple[str, ...]  # paragraphs
    links: tuple[Link, ...]  # the live views to try it in (no page there shows an answer)
    questions: tuple[Question, ...]
    in_class: str  # for the teacher: how to use it in class
    covers: str  # the item of the seed MicroSim's lesson plan this activity covers
    steps: tuple[Step, ...] = ()  # a worked example to step through
    widget: str = ""  # a special part the page draws ("models-table")
    extra: Mapping[str, object] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# Reading what a learner typed

_MINUS = str.maketrans({"−": "-", "–": "-", " ": "", "\u202f": "", "\u2009": "", ",": "", "_": ""})


def parse_number(text: object, where: str = "answer", percent_ok: bool = False) -> float:
    """A number typed by a learner: 1,234 · 1 234 · −4 · 1.3e5 · 2/3 · 87% (with ``percent_ok``, as 0.87)."""
    raw = str(text).strip() if text is not None else ""
    if not raw:
        raise InvalidParameterError("enter a number", where=where)
    cleaned = raw.translate(_MINUS)
    is_percent = cleaned.endswith("%")
    if is_percent:
        if not percent_ok:
            raise InvalidParameterError(f"enter a plain number here, not a percentage ({raw})", where=where)
        cleaned = cleaned[:-1]
    try:
        value = float(Fraction(cleaned)) if "/" in cleaned else float(cleaned)
    except (ValueError, ZeroDivisionError):
        raise InvalidParameterError(f"enter a number such as 12 or 0.5, not {raw!r}", where=where) from None
    if not math.isfinite(value):
        raise InvalidParameterError(f"enter a finite number, not {raw}", where=where)
    return value / 100 if is_percent else value


def parse_vector(text: object, length: int, where: str = "answer") -> tuple[float, ...]:
    """``length`` numbers separated by commas, semicolons or spaces, optionally in brackets: "6, -6, 5"."""
    raw = str(text).strip() if text is not None else ""
    parts = [p for p in re.split(r"[\s,;]+", raw.strip("()[]{} ")) if p]
    if len(parts) != length:
        got = "nothing" if not parts else f"{len(parts)} number{'s' * (len(parts) != 1)}"
        raise InvalidParameterError(f"enter {length} numbers separated by commas, got {got}", where=where)
    return tuple(parse_number(p.replace("−", "-"), where) for p in parts)


def sentence(text: str) -> str:
    """A message as a sentence: capital first letter, one full stop."""
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def exact(value: Fraction | int | float) -> str:
    """An exact number as short text with thousands separators: 1,048,576; 5.12; 10,485.76; −4."""
    value = Fraction(value)
    if value.denominator == 1:
        return f"{value.numerator:,}".replace("-", "−")
    return f"{float(value):,.6f}".rstrip("0").rstrip(".").replace("-", "−")


# ---------------------------------------------------------------------------------------------------------
# Generic checkers


def number_checker(answer: float, *, tolerance: float = 0.0, relative: bool = False, percent_ok: bool = False,
                   hint: str, low_hint: str = "", high_hint: str = "", right: str = "", explanation: str = "",
                   mistakes: Sequence[tuple[float, str]] = (), where: str = "answer") -> Callable[[object], Verdict]:
    """A checker for one number: correct within ``tolerance`` (absolute, or relative to ``answer``).

    A wrong answer is told whether it is too high or too low and gets ``hint`` (or, for a typical mistake in
    ``mistakes``, that mistake's own hint). ``right`` and ``explanation`` are shown once it is correct.
    """
    allowed = tolerance * abs(answer) if relative else tolerance

    def check(text: object) -> Verdict:
        try:
            guess = parse_number(text, where, percent_ok)
        except InvalidParameterError as error:
            return Verdict(INVALID, sentence(error.message))
        if abs(guess - answer) <= allowed + 1e-12 * max(1.0, abs(answer)):
            return Verdict(CORRECT, right or "Correct.", explanation=explanation)
        for value, mistake_hint in mistakes:
            if abs(guess - value) <= allowed + 1e-12 * max(1.0, abs(value)):
                return Verdict(WRONG, "Not quite.", mistake_hint)
        if guess > answer:
            return Verdict(WRONG, "Too high.", " ".join(filter(None, (high_hint, hint))))
        return Verdict(WRONG, "Too low.", " ".join(filter(None, (low_hint, hint))))

    return check


def choice_checker(choices: Sequence[Choice], correct: str, *, right: str = "",
                   explanation: str = "") -> Callable[[object], Verdict]:
    """A checker for a multiple-choice question whose correct option is ``correct`` (a Choice key)."""
    by_key = {choice.key: choice for choice in choices}
    if correct not in by_key:
        raise ValueError(f"{correct!r} is not one of the choices {list(by_key)}")

    def check(key: object) -> Verdict:
        choice = by_key.get(key) if isinstance(key, str) else None
        if choice is None:
            return Verdict(INVALID, "Choose one of the answers first.")
        if choice.key == correct:
            return Verdict(CORRECT, right or "Correct.", explanation=explanation)
        return Verdict(WRONG, "Not this one.", choice.hint)

    return check


# ---------------------------------------------------------------------------------------------------------
# Checking that feedback does not give the answer away

_NUMBER = re.compile(r"(?<![\w.])[-−]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?%?")


def numbers_in(text: str) -> list[tuple[float, int]]:
    """Every number written in ``text`` with its decimals: '1,024' -> (1024, 0), '0.87' -> (0.87, 2),
    '87%' -> (0.87, 2) as well as (87, 0) (a percentage can give a share away)."""
    found = []
    for token in _NUMBER.findall(text):
        raw = token.replace("−", "-").replace(",", "").rstrip("%")
        if raw.endswith("."):
            raw = raw[:-1]
        decimals = len(raw.split(".")[1].split("e")[0].split("E")[0]) if "." in raw else 0
        value = float(raw)
        found.append((value, decimals))
        if token.endswith("%"):
            found.append((value / 100, decimals + 2))
    return found


def leaks(text: str, secrets: Sequence[float], secret_texts: Sequence[str] = ()) -> list[str]:
    """What in ``text`` gives a secret away: a written number equal to a secret at the precision written
    (0.87 and 87% give away 0.866; 5 gives away 5, but 50 and 1 do not), or a secret text."""
    found = [t for t in secret_texts if t and t in text]
    for value, decimals in numbers_in(text):
        for secret in secrets:
            if value == 0 and secret != 0:
                continue  # "0" is no more than a bound
            if decimals:
                hit = abs(value - secret) <= 0.5 * 10.0**-decimals * (1 + 1e-9)
            else:  # a whole number gives away an equal secret, or a large one it rounds (1,606 for 1,606.5)
                hit = value == secret or (abs(secret) >= 10 and abs(value - secret) <= 0.5 + 1e-9)
            if hit:
                found.append(f"{value:g} gives away {secret:g}")
    return found


__all__ = [
    "CHOICE", "CORRECT", "INVALID", "NOT_ENOUGH", "NOT_LARGEST", "NUMBER", "OPEN", "VECTOR", "WRONG", "Activity",
    "Choice", "Link", "Question", "Step", "Verdict", "choice_checker", "exact", "leaks", "link", "number_checker",
    "numbers_in", "parse_number", "parse_vector", "sentence",
]
