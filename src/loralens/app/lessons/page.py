"""The Lessons page: the textbook's lesson plan (objectives, three activities, assessment) made interactive.

Everything shown is computed and checked by ``loralens.core.lessons``; this module only renders it. Progress
(which activities were answered correctly) lives in ``app.storage.tab``: the server's memory for this browser
tab, kept across reloads of the tab and sent nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable

from nicegui import app, ui
from starlette.requests import Request

from loralens.app.layout import error_label, page_frame, show_message, tag
from loralens.app.palette import COLORS
from loralens.app.lessons.view import ACTIVITY_TITLES, STATUS_STYLE
from loralens.app.url_state import read_query
from loralens.core import lessons
from loralens.core.units import significant
from loralens.core.lessons import Verdict

PROGRESS_KEY = "lessons_progress"

_CSS = """
.ll-lesson-card { width: 100%; }
.ll-lesson-card .ll-prompt { max-width: 70ch; }
.ll-verdict { font-weight: 600; }
.ll-explain { max-width: 75ch; }
.ll-answer-row { flex-wrap: wrap; align-items: center; gap: 8px; }
"""


# table columns left out on narrow screens (layout's .ll-hide-narrow), so that the answer column stays visible
_WIDE_ONLY = {"classes": "ll-hide-narrow", "headerClasses": "ll-hide-narrow"}


class Progress:
    """This tab's progress: a set of activity keys answered correctly, mirrored into app.storage.tab."""

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.stored = False
        with ui.card().classes("ll-lesson-card").props('data-testid="lessons-progress"'):
            with ui.row().classes("items-center gap-3 w-full"):
                ui.label("Your progress").classes("text-lg font-semibold")
                self.summary = tag(ui.label("").classes("ll-num"), "progress-summary")
            self.bar = ui.linear_progress(value=0.0, show_value=False, size="10px", color=COLORS["merged"])
            self.bar.props('aria-label="activities answered correctly"')
            with ui.row().classes("gap-2 flex-wrap"):
                self.chips = {
                    key: ui.label("").classes("text-sm px-2 py-1 rounded border") for key in lessons.ACTIVITIES
                }
            ui.label("Kept in this browser tab only; nothing is sent anywhere.").classes("ll-muted text-xs")
        self.render()

    async def load(self) -> None:
        """Restore the tab's progress once the browser is connected (tab storage needs the connection)."""
        try:
            await ui.context.client.connected(timeout=10)
        except TimeoutError:
            return  # progress then lives only in this page
        saved = app.storage.tab.get(PROGRESS_KEY, [])
        self.done |= {key for key in saved if key in lessons.ACTIVITIES}
        self.stored = True
        self._save()
        self.render()

    def record(self, key: str, correct: bool) -> None:
        """Record a checked answer: a correct one completes the activity (a later wrong try does not undo it)."""
        if correct:
            self.done.add(key)
            self._save()
            self.render()

    def _save(self) -> None:
        if self.stored:
            app.storage.tab[PROGRESS_KEY] = sorted(self.done)

    def render(self) -> None:
        total = len(lessons.ACTIVITIES)
        self.summary.set_text(f"{len(self.done)} of {total} activities answered correctly")
        self.bar.set_value(len(self.done) / total)
        for number, key in enumerate(lessons.ACTIVITIES, start=1):
            done = key in self.done
            self.chips[key].set_text(f"{'✓' if done else '○'} {number}. {ACTIVITY_TITLES[key]}")
            self.chips[key].style(
                f"border-color: {COLORS['merged'] if done else COLORS['frozen']}; "
                f"font-weight: {'600' if done else '400'}"
            )


class VerdictView:
    """A verdict line (status symbol, text and colour) and its explanation, with an error line for bad input."""

    def __init__(self, name: str) -> None:
        self.error = tag(error_label(), f"{name}-error")
        self.line = tag(ui.label("").classes("ll-verdict").props('aria-live="polite"'), f"{name}-verdict")
        self.explanation = tag(ui.label("").classes("ll-explain ll-muted"), f"{name}-explanation")
        self.show(None)

    def show(self, verdict: Verdict | None) -> None:
        invalid = verdict is not None and verdict.status == lessons.INVALID
        show_message(self.error, verdict.message if invalid else None)
        visible = verdict is not None and not invalid
        self.line.set_visibility(visible)
        self.explanation.set_visibility(visible and bool(verdict.explanation if verdict else ""))
        if verdict is None or invalid:
            return
        symbol, colour = STATUS_STYLE.get(verdict.status, ("", "inherit"))
        self.line.set_text(symbol + verdict.message)
        self.line.style(f"color: {colour}")
        self.explanation.set_text(verdict.explanation)



def _answer_row(name: str, label: str, placeholder: str, on_check: Callable[[], None]) -> ui.input:
    with ui.row().classes("ll-answer-row"):
        field = ui.input(label=label, placeholder=placeholder).props('outlined dense').classes("w-44")
        tag(field, f"{name}-answer")
        field.on("keydown.enter", lambda _: on_check())
        tag(ui.button("Check", on_click=lambda _: on_check()).props("no-caps"), f"{name}-check")
    return field


def _objectives() -> None:
    with ui.card().classes("ll-lesson-card"):
        ui.label("Learning objectives").classes("text-lg font-semibold")
        ui.label("After this lesson you can:").classes("ll-muted")
        with ui.column().classes("gap-2 w-full"):
            for number, objective in enumerate(lessons.OBJECTIVES, start=1):
                with ui.column().classes("gap-0 w-full"):
                    ui.label(f"{number}. {objective.text}")
                    link = ui.link(f"→ {objective.link.label}", objective.link.href).classes("text-sm ml-4")
                    tag(link, f"objective-{objective.key}")


def _savings_activity(progress: Progress) -> None:
    d, k, goal = lessons.SAVINGS_D, lessons.SAVINGS_K, lessons.SAVINGS_TARGET
    with ui.card().classes("ll-lesson-card"):
        ui.label("Activity 1 · Find the rank that saves 99% of the parameters").classes("text-lg font-semibold")
        ui.label(
            f"A {d:,}×{k:,} weight matrix W has {d * k:,} parameters. LoRA trains B ({d:,}×r) and A (r×{k:,}) "
            f"instead. What is the largest rank r for which LoRA still saves at least {goal:.0%} of the parameters?"
        ).classes("ll-prompt")
        verdict_view: VerdictView

        def check() -> None:
            verdict = lessons.check_savings_rank(field.value, d, k, goal)
            verdict_view.show(verdict)
            progress.record("savings", verdict.correct)

        field = _answer_row("savings", "Your rank r", "e.g. 8", check)
        verdict_view = VerdictView("savings")
        hint = tag(ui.link("Hint: try your rank in the Explorer", lessons.savings_hint_href("", d, k)), "savings-hint")
        field.on_value_change(lambda e: hint.props.__setitem__("href", lessons.savings_hint_href(e.value, d, k)))


def _models_activity(progress: Progress) -> None:
    with ui.card().classes("ll-lesson-card"):
        ui.label("Activity 2 · Compare parameter counts for different model sizes").classes("text-lg font-semibold")
        ui.label(
            "The same LoRA configuration on real models, counted exactly as PEFT counts it (the Models page's "
            "presets). Choose a rank and the adapted layers, then answer the question below the table."
        ).classes("ll-prompt")
        with ui.row().classes("ll-answer-row"):
            rank = ui.select(list(lessons.RANK_CHOICES), value=8, label="Rank r (table)").classes("w-32")
            tag(rank, "models-rank")
            targets = ui.select(
                {key: key for key in lessons.TARGET_CHOICES}, value="default", label="Adapted layers"
            ).classes("w-40")
            tag(targets, "models-targets")
        targets_note = ui.label("").classes("ll-muted text-sm")
        columns = [
            {"name": "name", "label": "Model", "field": "name", "align": "left"},
            {"name": "hidden", "label": "Hidden size", "field": "hidden", "align": "right", **_WIDE_ONLY},
            {"name": "base", "label": "Base parameters", "field": "base", "align": "right", **_WIDE_ONLY},
            {"name": "trainable", "label": "LoRA trainable", "field": "trainable", "align": "right"},
            {"name": "percent", "label": "% of all", "field": "percent", "align": "right", **_WIDE_ONLY},
            {"name": "per_billion", "label": "LoRA per billion base", "field": "per_billion", "align": "right"},
        ]
        table = ui.table(columns=columns, rows=[], row_key="id").props("dense flat bordered wrap-cells").classes(
            "w-full"
        )
        tag(table, "models-table")
        ui.label(lessons.MODELS_QUESTION).classes("font-medium")
        state: dict[str, lessons.ModelComparison] = {}

        def check() -> None:
            verdict = lessons.check_model_choice(choice.value, state["table"])
            verdict_view.show(verdict)
            progress.record("models", verdict.correct)

        with ui.row().classes("ll-answer-row"):
            choice = tag(ui.select({}, label="Model").classes("w-64"), "models-answer")
            tag(ui.button("Check", on_click=lambda _: check()).props("no-caps"), "models-check")
        verdict_view = VerdictView("models")
        details = tag(ui.link("", "/models").classes("text-sm"), "models-link")

        def recompute() -> None:
            comparison = lessons.compare_models(int(rank.value), str(targets.value))
            state["table"] = comparison
            targets_note.set_text(lessons.TARGET_CHOICES[comparison.targets][1] + ".")
            table.rows = [
                {
                    "id": row.model_id,
                    "name": row.name,
                    "hidden": f"{row.hidden_size:,}",
                    "base": f"{row.base_params:,}",
                    "trainable": f"{row.trainable:,}",
                    "percent": f"{significant(row.percent, 2)}%",
                    "per_billion": f"{round(row.per_billion):,}",
                }
                for row in comparison.rows
            ]
            table.update()
            choice.set_options({row.model_id: row.name for row in comparison.rows}, value=choice.value)
            verdict_view.show(None)  # the table changed: the last verdict may no longer hold
            update_link()

        def update_link() -> None:
            table_now = state["table"]
            row = table_now.row(choice.value) if choice.value else None
            row = row or table_now.row("llama-2-7b") or table_now.rows[0]
            details.props["href"] = lessons.models_href(row.model_id, table_now.r, table_now.targets)
            details.set_text(f"→ {row.name} with r = {table_now.r} ({table_now.targets} targets) on the Models page")

        rank.on_value_change(lambda _: recompute())
        targets.on_value_change(lambda _: recompute())
        choice.on_value_change(lambda _: update_link())
        recompute()


def _limits_activity(progress: Progress) -> None:
    s, r = lessons.LIMITS_S, lessons.LIMITS_R
    with ui.card().classes("ll-lesson-card"):
        ui.label("Activity 3 · When might LoRA not work?").classes("text-lg font-semibold")
        ui.label(
            "LoRA can only learn updates of rank at most r. When a task needs an update of higher rank — a new "
            "language, a very different domain, or a target spread evenly over many directions — a rank-r adapter "
            "stalls at an error that no amount of training removes. The fit lab trains a LoRA against a target "
            "update of chosen rank and draws that floor (the Eckart–Young bound) beside the learned error."
        ).classes("ll-prompt")
        tag(ui.link("Open the fit lab with a full-rank target (rank-4 LoRA, 64×64 layer)", lessons.fit_lab_href()),
             "limits-lab")
        ui.label(
            f"Predict: the target update ΔW* has rank s = {s} with all {s} singular values equal, and the LoRA has "
            f"rank r = {r}. After long training, what relative error ‖ΔW − ΔW*‖_F / ‖ΔW*‖_F remains "
            "(a number from 0 to 1, or a percentage)?"
        ).classes("ll-prompt")
        verdict_view: VerdictView

        def check() -> None:
            verdict = lessons.check_limits_answer(field.value, s, r)
            verdict_view.show(verdict)
            progress.record("limits", verdict.correct)

        field = _answer_row("limits", "Relative error", "e.g. 0.5", check)
        verdict_view = VerdictView("limits")
        with ui.row().classes("gap-1 items-baseline flex-wrap"):
            tag(ui.link(f"See it happen: the fit lab with a rank-{s} target and a rank-{r} LoRA",
                         lessons.fit_lab_href(64, 64, r, s)).classes("text-sm"), "limits-lab-small")
            ui.label(
                "(its target's singular values are not all equal, so its floor differs; the lab draws it)"
            ).classes("ll-muted text-sm")


def _assessment() -> None:
    with ui.card().classes("ll-lesson-card"):
        ui.label("Assessment").classes("text-lg font-semibold")
        ui.label(
            "Answer each question for yourself, then reveal the answer and follow the link that shows it."
        ).classes("ll-muted")
        for number, question in enumerate(lessons.ASSESSMENT, start=1):
            with ui.column().classes("gap-1 w-full"):
                ui.label(f"{number}. {question.question}").classes("font-medium")
                button = tag(ui.button("Show answer").props("flat dense no-caps"), f"reveal-{question.key}")
                with ui.column().classes("gap-1 w-full pl-4") as answer:
                    tag(ui.label(question.answer).classes("ll-explain"), f"answer-{question.key}")
                    ui.link(f"→ {question.link.label}", question.link.href).classes("text-sm")
                answer.set_visibility(False)
                button.on_click(_toggler(answer, button))


def _toggler(answer: ui.column, button: ui.button) -> Callable[[], None]:
    def toggle() -> None:
        answer.set_visibility(not answer.visible)
        button.set_text("Hide answer" if answer.visible else "Show answer")

    return toggle


def register() -> None:
    """Add the page's route."""

    @ui.page("/lessons")
    async def page(request: Request) -> None:
        query = read_query((), request.query_params)
        ui.add_css(_CSS)
        with page_frame("Lessons", query.embed):
            show_message(tag(error_label(), "url-message"), "; ".join(query.messages) or None)
            ui.label("Lesson: low-rank adaptation (LoRA)").classes("text-2xl font-bold")
            ui.label(
                "The textbook's lesson plan, with its activities checked as you go. Every link opens the part of "
                "loralens that shows the idea with real numbers."
            ).classes("ll-muted")
            progress = Progress()
            _objectives()
            _savings_activity(progress)
            _models_activity(progress)
            _limits_activity(progress)
            _assessment()
        await progress.load()
