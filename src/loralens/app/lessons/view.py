"""The Lessons page's pure parts: its URL (view, activity), the links it writes, progress and how a verdict is
shown. The content and every check are in ``core.lessons``; no NiceGUI here.

Links: every internal link keeps ``embed=1`` on an embedded page, and in the student view every Explorer link
carries ``answers=false`` (the Explorer then hides its "largest rank that saves X %" line, Activity 2's answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from loralens.app.palette import COLORS
from loralens.app.url_state import Param, page_url, read_query
from loralens.core import lessons
from loralens.core.lessons import Activity, Link, Verdict

STUDENT, TEACHER = "student", "teacher"
SCHEMA = (
    Param("view", str, STUDENT, choices=(STUDENT, TEACHER)),
    Param("activity", str, "", choices=("", *lessons.ACTIVITY_KEYS)),
)
EXPLORER_PATH = "/"
IFRAME_SIZE = (700, 502)  # the textbook's MicroSim iframes


@dataclass(frozen=True)
class LessonQuery:
    view: str
    activity: str  # "" for the whole lesson
    embed: bool
    messages: list[str]

    @property
    def student(self) -> bool:
        return self.view == STUDENT


def read_lesson_query(query: Mapping[str, str]) -> LessonQuery:
    page = read_query(SCHEMA, query)
    return LessonQuery(page.values["view"], page.values["activity"], page.embed, page.messages)


def href(link: Link, embed: bool = False, student: bool = True) -> str:
    """A link of the lesson as the page writes it: embed=1 kept, answers=false on the Explorer for students."""
    query = [pair for pair in link.query if pair[0] != "answers"]
    if student and link.path == EXPLORER_PATH:
        query.append(("answers", "false"))
    return page_url(link.path, urlencode(query), embed)


def lesson_href(activity: str = "", view: str = STUDENT, embed: bool = False, anchor: str = "") -> str:
    """/lessons with the view and activity (defaults left out) and an anchor."""
    query = {name: value for name, value in (("view", view), ("activity", activity))
             if value != next(p.default for p in SCHEMA if p.name == name)}
    return page_url("/lessons", urlencode(query), embed) + (f"#{anchor}" if anchor else "")


def activity_anchor(key: str) -> str:
    return f"activity-{key}"


def question_anchor(key: str) -> str:
    return f"question-{key}"


def activity_number(key: str) -> int:
    return lessons.ACTIVITY_KEYS.index(key) + 1


def activity_heading(activity: Activity) -> str:
    return f"Activity {activity_number(activity.key)} · {activity.title}"


@dataclass(frozen=True)
class Handout:
    """The links a teacher hands out for one activity (absolute, to paste into a course page)."""

    key: str
    title: str
    in_lesson: str  # the whole lesson, scrolled to the activity
    alone: str  # the activity alone
    embed: str  # the activity alone, for an iframe
    iframe: str  # the HTML to paste


def handouts(base_url: str) -> list[Handout]:
    """One Handout per activity, with links under ``base_url`` (e.g. http://127.0.0.1:8080)."""
    base = base_url.rstrip("/")
    rows = []
    for activity in lessons.ACTIVITIES:
        embed = base + lesson_href(activity.key, embed=True)
        width, height = IFRAME_SIZE
        rows.append(Handout(
            key=activity.key, title=activity_heading(activity),
            in_lesson=base + lesson_href(anchor=activity_anchor(activity.key)),
            alone=base + lesson_href(activity.key), embed=embed,
            iframe=f'<iframe src="{escape(embed)}" width="{width}" height="{height}" '
                   f'title="{escape(activity.title)}" style="border:0"></iframe>',
        ))
    return rows


# ---------------------------------------------------------------------------------------------------------
# Progress: kept by the browser (localStorage, static/lessons.js); the page reads and shows it

DONE, SEEN = "done", "seen"


@dataclass(frozen=True)
class Progress:
    """Questions answered correctly (open ones: written and compared) and solutions shown before that."""

    done: frozenset[str] = frozenset()
    seen: frozenset[str] = frozenset()
    stored: bool = False  # whether this browser keeps it (False until read, or when storage is blocked)


def parse_progress(raw: object) -> Progress:
    """The stored progress as the browser sends it ({"done": [...], "seen": [...]}), keeping only keys of this
    lesson; None (no storage) or anything malformed reads as no progress, not stored."""
    if not isinstance(raw, Mapping):
        return Progress()
    known = set(lessons.PROGRESS_KEYS)

    def keys(name: str) -> frozenset[str]:
        value = raw.get(name)
        return frozenset(k for k in value if isinstance(k, str) and k in known) if isinstance(value, list) else \
            frozenset()

    return Progress(keys(DONE), keys(SEEN), stored=True)


def progress_summary(progress: Progress, keys: tuple[str, ...] = lessons.PROGRESS_KEYS) -> str:
    done = len(progress.done & set(keys))
    seen = len((progress.seen - progress.done) & set(keys))
    text = f"{done} of {len(keys)} questions answered"
    return text + (f" · {seen} solution{'s' * (seen != 1)} shown" if seen else "")


def activity_chip(activity: Activity, progress: Progress) -> tuple[str, str]:
    """(text, state) of an activity's progress chip: done (every question), part (some answered or a solution
    shown) or open."""
    keys = {q.key for q in activity.questions}
    done = len(keys & progress.done)
    state = "done" if done == len(keys) else "part" if keys & (progress.done | progress.seen) else "open"
    symbol = {"done": "✓", "part": "◐", "open": "○"}[state]
    return f"{symbol} {activity_number(activity.key)}. {activity.title} {done}/{len(keys)}", state


def storage_note(progress: Progress) -> str:
    if progress.stored:
        return "Kept in this browser (all tabs), on this device only; nothing is sent anywhere."
    return "This browser does not keep progress (storage is blocked): it lasts until the page is closed."


# ---------------------------------------------------------------------------------------------------------
# Verdicts

#: verdict status -> (symbol, colour): a symbol as well as a colour, so the mark does not rest on colour alone
STATUS_STYLE = {
    lessons.CORRECT: ("✓ ", COLORS["merged"]),
    lessons.NOT_ENOUGH: ("✗ ", COLORS["b"]),
    lessons.NOT_LARGEST: ("↑ ", COLORS["full"]),
    lessons.WRONG: ("✗ ", COLORS["b"]),
}


@dataclass(frozen=True)
class Feedback:
    """What the page shows under a checked answer."""

    error: str  # an answer that is not one (beside the field), or ""
    line: str  # symbol + message
    colour: str
    hint: str  # wrong answers: where to look
    explanation: str  # correct answers: the worked solution


def feedback(verdict: Verdict | None) -> Feedback:
    if verdict is None:
        return Feedback("", "", "inherit", "", "")
    if verdict.status == lessons.INVALID:
        return Feedback(verdict.message, "", "inherit", "", "")
    symbol, colour = STATUS_STYLE.get(verdict.status, ("", "inherit"))
    hint = f"Hint: {verdict.hint}" if verdict.hint and not verdict.correct else ""
    return Feedback("", symbol + verdict.message, colour, hint, verdict.explanation if verdict.correct else "")


__all__ = [
    "DONE", "Feedback", "Handout", "LessonQuery", "Progress", "SCHEMA", "SEEN", "STATUS_STYLE", "STUDENT", "TEACHER",
    "activity_anchor", "activity_chip", "activity_heading", "activity_number", "feedback", "handouts", "href",
    "lesson_href", "parse_progress", "progress_summary", "question_anchor", "read_lesson_query", "storage_note",
]
