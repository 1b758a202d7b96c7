"""The Lessons page's widgets: a question (answer field, check, hint, deliberate "show solution"), the worked
example's stepper, the models table and the progress card. They render ``core.lessons`` and ``view``; the
page (``page.py``) places them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from nicegui import ui

from loralens.app.layout import error_label, show_message, tag
from loralens.app.lessons import view
from loralens.app.palette import COLORS
from loralens.core import lessons
from loralens.core.lessons import Question, Step
from loralens.core.units import short_count, significant

OPEN_MIN_CHARS = 15  # an open answer must be at least a phrase before the model answer can be compared


class Lesson(Protocol):
    """What a widget needs from the page: the view, the link writer and the progress it records into."""

    student: bool
    embed: bool

    def href(self, link: lessons.Link) -> str: ...
    def record(self, key: str, kind: str) -> None: ...
    def revealed(self, key: str) -> bool: ...


def link_to(lesson: Lesson, link: lessons.Link, name: str = "", classes: str = "text-sm") -> ui.link:
    element = ui.link(f"→ {link.label}", lesson.href(link)).classes(classes)
    return tag(element, name) if name else element


class QuestionView:
    """One question: its prompt, the answer control, the feedback and the solution behind a deliberate click."""

    def __init__(self, question: Question, lesson: Lesson) -> None:
        self.question, self.lesson = question, lesson
        self.attempted = False
        name = question.key
        with ui.column().classes("ll-question w-full gap-1"):
            ui.element("a").props(f'name="{view.question_anchor(name)}"').classes("ll-anchor")
            ui.label(question.prompt).classes("font-medium ll-prompt")
            self.control = self._control(name)
            self.error = tag(error_label(), f"{name}-error")
            self.line = tag(ui.label("").classes("ll-verdict").props('aria-live="polite"'), f"{name}-verdict")
            self.hint = tag(ui.label("").classes("ll-explain"), f"{name}-hint")
            self.hint_link = link_to(lesson, lessons.Link("", "/"), f"{name}-hint-link") if question.hint_link else None
            self.explanation = tag(ui.label("").classes("ll-explain ll-muted"), f"{name}-explanation")
            self.after = link_to(lesson, question.after, f"{name}-after") if question.after else None
            self._solution_block(name)
            self.before = tag(ui.label("").classes("ll-muted text-sm"), f"{name}-before")
        self.show(None)
        self.mark(view.Progress())
        self._update_hint_link("")

    def _control(self, name: str) -> ui.element:
        q = self.question
        layout = "ll-answer-col" if q.kind in (lessons.CHOICE, lessons.OPEN) else "ll-answer-row"
        with ui.element("div").classes(f"{layout} w-full"):
            if q.kind == lessons.CHOICE:
                control = ui.radio({c.key: c.text for c in q.choices}).classes("ll-choices")
                control.props(f'aria-label="{q.label}"')
            elif q.kind == lessons.OPEN:
                control = ui.textarea(label="Your answer", placeholder="Write a few sentences first").props(
                    "outlined autogrow").classes("w-full")
            else:
                control = ui.input(label=q.label, placeholder=q.placeholder).props("outlined dense").classes("ll-field")
                control.on("keydown.enter", lambda _: self.check())
                if q.hint_link:
                    control.on_value_change(lambda e: self._update_hint_link(e.value))
            tag(control, f"{name}-answer")
            if q.kind == lessons.OPEN:
                self.compare = tag(ui.button("Compare with the model answer", on_click=lambda _: self.compare_open())
                                   .props("no-caps outline"), f"{name}-check")
                if self.lesson.student:
                    control.on_value_change(lambda e: self.compare.set_enabled(len(str(e.value or "").strip())
                                                                               >= OPEN_MIN_CHARS))
                    self.compare.set_enabled(False)
            else:
                tag(ui.button("Check", on_click=lambda _: self.check()).props("no-caps"), f"{name}-check")
        return control

    def _solution_block(self, name: str) -> None:
        q, teacher = self.question, not self.lesson.student
        with ui.row().classes("items-center gap-2 flex-wrap") as self.reveal_row:
            self.reveal = tag(ui.button("Show solution", on_click=lambda _: self._ask()).props(
                "flat dense no-caps"), f"{name}-reveal")
            with ui.row().classes("items-center gap-2 flex-wrap") as self.confirm:
                ui.label("The solution gives the answer away. Show it?").classes("text-sm")
                tag(ui.button("Show it", on_click=lambda _: self.reveal_solution()).props("dense no-caps"),
                    f"{name}-reveal-yes")
                ui.button("Not yet", on_click=lambda _: self.confirm.set_visibility(False)).props("flat dense no-caps")
            self.confirm.set_visibility(False)
        self.reveal_row.set_visibility(q.kind != lessons.OPEN and not teacher)
        with ui.column().classes("ll-solution gap-1 w-full") as self.solution:
            tag(ui.label(("Model answer: " if q.kind == lessons.OPEN else "Answer: ") + q.answer)
                .classes("ll-strong"), f"{name}-answer-text")
            if q.solution:
                tag(ui.label(q.solution).classes("ll-explain"), f"{name}-solution")
        self.solution.set_visibility(teacher)
        if teacher and self.after:
            self.after.set_visibility(True)

    def mark(self, progress: view.Progress) -> None:
        """Say whether this browser has answered the question before (or shown its solution)."""
        key = self.question.key
        text = ("✓ Answered correctly before in this browser." if key in progress.done else
                "◐ Solution shown before in this browser." if key in progress.seen else "")
        self.before.set_text(text)
        self.before.set_visibility(bool(text) and self.lesson.student)
        if text:
            self.attempted = True
            if self.after:
                self.after.set_visibility(True)

    def _ask(self) -> None:
        self.confirm.set_visibility(True)

    def _update_hint_link(self, value: object) -> None:
        if self.hint_link is not None and self.question.hint_link is not None:
            target = self.question.hint_link(value)
            self.hint_link.props["href"] = self.lesson.href(target)
            self.hint_link.set_text(f"→ {target.label}")
            self.hint_link.update()

    def check(self) -> None:
        assert self.question.check is not None
        verdict = self.question.check(self.control.value)
        self.show(verdict)
        if verdict.status != lessons.INVALID:
            self.attempted = True
            if self.after:
                self.after.set_visibility(True)
        if verdict.correct:
            self.lesson.record(self.question.key, view.DONE)

    def compare_open(self) -> None:
        self.solution.set_visibility(True)
        if self.after:
            self.after.set_visibility(True)
        self.lesson.record(self.question.key, view.DONE)

    def reveal_solution(self) -> None:
        self.confirm.set_visibility(False)
        self.solution.set_visibility(True)
        if self.after:
            self.after.set_visibility(True)
        self.lesson.record(self.question.key, view.SEEN)

    def show(self, verdict: lessons.Verdict | None) -> None:
        fb = view.feedback(verdict)
        show_message(self.error, fb.error or None)
        self.line.set_text(fb.line)
        self.line.style(f"color: {fb.colour}")
        self.line.set_visibility(bool(fb.line))
        self.hint.set_text(fb.hint)
        self.hint.set_visibility(bool(fb.hint))
        if self.hint_link is not None:
            self.hint_link.set_visibility(bool(fb.hint))
        self.explanation.set_text(fb.explanation)
        self.explanation.set_visibility(bool(fb.explanation))
        if self.after and self.lesson.student:
            self.after.set_visibility(self.attempted)


class StepsView:
    """A worked example, one step at a time (a teacher sees every step at once)."""

    def __init__(self, steps: tuple[Step, ...], name: str, show_all: bool = False) -> None:
        self.steps, self.index = steps, 0
        with ui.column().classes("ll-steps w-full gap-1"):
            with ui.row().classes("items-center gap-2 flex-wrap"):
                self.prev = tag(ui.button("← Previous", on_click=lambda _: self.go(-1)).props("dense no-caps outline"),
                                f"{name}-prev")
                self.counter = tag(ui.label("").classes("ll-num"), f"{name}-step")
                self.next = tag(ui.button("Next step →", on_click=lambda _: self.go(1)).props("dense no-caps"),
                                f"{name}-next")
                self.all = tag(ui.switch("all steps", value=show_all, on_change=lambda _: self.render()),
                               f"{name}-all")
            self.body = ui.column().classes("gap-2 w-full")
        self.render()

    def go(self, delta: int) -> None:
        self.index = max(0, min(len(self.steps) - 1, self.index + delta))
        self.render()

    def render(self) -> None:
        show_all = bool(self.all.value)
        self.prev.set_enabled(not show_all and self.index > 0)
        self.next.set_enabled(not show_all and self.index < len(self.steps) - 1)
        self.counter.set_text("" if show_all else f"Step {self.index + 1} of {len(self.steps)}")
        self.body.clear()
        with self.body:
            for number, step in enumerate(self.steps, start=1):
                if show_all or number == self.index + 1:
                    with ui.column().classes("gap-0 w-full"):
                        ui.label(f"{number}. {step.title}").classes("ll-strong")
                        ui.label(step.formula).classes("ll-muted text-sm")
                        ui.label("\n".join(step.lines)).classes("ll-pre")


class ModelsTable:
    """Activity 3's table: LoRA on every Models-page preset for a chosen rank and targets. The per-billion and
    share columns, which answer the question, appear once it is answered (or in the teacher view)."""

    def __init__(self, lesson: Lesson, key: str = "models-most") -> None:
        self.lesson, self.key = lesson, key
        with ui.row().classes("ll-answer-row"):
            self.rank = tag(ui.select(list(lessons.RANK_CHOICES), value=lessons.compare_models().r,
                                      label="Rank r (table)").classes("w-32"), "models-rank")
            self.targets = tag(ui.select({key: key for key in lessons.TARGET_CHOICES}, value="default",
                                         label="Adapted layers").classes("w-40"), "models-targets")
        self.note = ui.label("").classes("ll-muted text-sm")
        with ui.element("div").classes("ll-scroll w-full"):
            self.table = tag(ui.table(columns=self._columns(), rows=[], row_key="id").props(
                "dense flat bordered wrap-cells"), "models-table")
        self.rank.on_value_change(lambda _: self.refresh())
        self.targets.on_value_change(lambda _: self.refresh())
        self.refresh()

    def _columns(self) -> list[dict[str, str]]:
        columns = [
            {"name": "name", "label": "Model", "field": "name", "align": "left"},
            {"name": "hidden", "label": "Hidden size", "field": "hidden", "align": "right"},
            {"name": "base", "label": "Base parameters", "field": "base", "align": "right"},
            {"name": "trainable", "label": "LoRA trainable", "field": "trainable", "align": "right"},
        ]
        if self.lesson.revealed(self.key):
            columns += [{"name": "percent", "label": "% of all", "field": "percent", "align": "right"},
                        {"name": "per_billion", "label": "LoRA per billion base", "field": "per_billion",
                         "align": "right"}]
        return columns

    def refresh(self) -> None:
        comparison = lessons.compare_models(int(self.rank.value), str(self.targets.value))
        self.note.set_text(lessons.TARGET_CHOICES[comparison.targets][1] + ".")
        self.table.columns = self._columns()
        self.table.rows = [
            {"id": row.model_id, "name": row.name, "hidden": f"{row.hidden_size:,}", "base": short_count(row.base_params),
             "trainable": f"{row.trainable:,}", "percent": f"{significant(row.percent, 2)}%",
             "per_billion": f"{round(row.per_billion):,}"}
            for row in comparison.rows
        ]
        self.table.update()


class ProgressView:
    """The progress card: how many questions are answered, a chip per activity, where it is kept, a reset."""

    def __init__(self, activities: tuple[lessons.Activity, ...], on_reset: Callable[[], None]) -> None:
        self.activities = activities
        compact = len(activities) == 1  # one activity in an iframe: one line under it, not a card above it
        self.keys = tuple(q.key for a in activities for q in a.questions) if compact else lessons.PROGRESS_KEYS
        self.bar: ui.linear_progress | None = None
        self.chips: dict[str, ui.label] = {}
        with ui.column().classes("ll-lesson-card gap-1" if compact else "ll-lesson-card q-card q-card--bordered "
                                 "gap-2 p-4").props('data-testid="lessons-progress"'):
            with ui.row().classes("items-center gap-3 w-full"):
                ui.label("Your progress").classes("text-base font-semibold" if compact else "text-lg font-semibold")
                self.summary = tag(ui.label("").classes("ll-num"), "progress-summary")
            if not compact:
                self.bar = ui.linear_progress(value=0.0, show_value=False, size="10px", color=COLORS["merged"])
                self.bar.props('aria-label="questions answered"')
                with ui.row().classes("gap-2 flex-wrap"):
                    self.chips = {a.key: tag(ui.label("").classes("ll-chip"), f"chip-{a.key}") for a in activities}
            with ui.row().classes("items-center gap-2 flex-wrap"):
                self.note = tag(ui.label("").classes("ll-muted text-xs"), "progress-note")
                with ui.dialog() as self.dialog, ui.card():
                    ui.label("Reset your progress in every lesson tab of this browser?")
                    with ui.row():
                        tag(ui.button("Reset", on_click=lambda _: (self.dialog.close(), on_reset())).props(
                            "no-caps"), "progress-reset-yes")
                        ui.button("Cancel", on_click=self.dialog.close).props("flat no-caps")
                tag(ui.button("Reset my progress", on_click=self.dialog.open).props("flat dense no-caps"),
                    "progress-reset")

    def render(self, progress: view.Progress) -> None:
        done = len(progress.done & set(self.keys))
        self.summary.set_text(view.progress_summary(progress, self.keys))
        if self.bar is not None:
            self.bar.set_value(done / len(self.keys))
        self.note.set_text(view.storage_note(progress))
        for activity in self.activities if self.chips else ():
            text, state = view.activity_chip(activity, progress)
            colour = {"done": COLORS["merged"], "part": COLORS["full"], "open": COLORS["frozen"]}[state]
            self.chips[activity.key].set_text(text)
            self.chips[activity.key].style(f"border-color: {colour}; font-weight: {'600' if state == 'done' else '400'}")


__all__ = ["Lesson", "ModelsTable", "ProgressView", "QuestionView", "StepsView", "link_to"]
