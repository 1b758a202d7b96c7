"""The Lessons page (/lessons): the LoRA lesson plan, for students (the default) and for the teacher.

Student view: the activities with checked questions; a wrong answer gets a hint, the solution waits behind a
deliberate "Show solution", and pages that would show an answer are offered only after a first attempt. Teacher
view (``?view=teacher``): every answer and worked solution, how to use each activity in class, and the links to
hand out. ``?activity=KEY`` shows one activity alone (with ``embed=1``, for an iframe). Progress is kept by the
browser in localStorage (``static/lessons.js``), shared by its tabs; everything shown comes from
``loralens.core.lessons``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from nicegui import Client, app, background_tasks, ui
from starlette.requests import Request

from loralens.app.layout import error_label, page_frame, show_message, tag
from loralens.app.lessons import view
from loralens.app.lessons.widgets import ModelsTable, ProgressView, QuestionView, StepsView, link_to
from loralens.core import lessons

STATIC_PATH = "/_loralens/lessons"
STATIC_DIR = Path(__file__).parent / "static"
PROGRESS_EVENT = "loralens_lessons_progress"
log = logging.getLogger(__name__)

_CSS = """
.ll-lesson-card { width: 100%; min-width: 0; }
.ll-prompt { max-width: 72ch; }
.ll-verdict { font-weight: 600; }
.ll-explain { max-width: 75ch; }
.ll-answer-row { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; }
.ll-answer-col { display: flex; flex-direction: column; align-items: flex-start; gap: 4px; }
.ll-field { width: 12rem; max-width: 100%; }
.ll-question { padding-top: 4px; }
.ll-anchor { display: block; height: 0; scroll-margin-top: 64px; }
.ll-pre { font-family: ui-monospace, monospace; font-size: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
.ll-solution { border-left: 3px solid #bdbdbd; padding-left: 8px; }
.ll-note { background: #f5f5f5; border-radius: 4px; padding: 6px 8px; font-size: 14px; }
.ll-chip { font-size: 14px; padding: 2px 8px; border: 1px solid; border-radius: 4px; }
.ll-scroll { overflow-x: auto; max-width: 100%; }
.ll-code { font-family: ui-monospace, monospace; font-size: 12px; overflow-wrap: anywhere; word-break: break-all; }
.ll-choices .q-radio__label { white-space: normal; }
"""


class LessonPage:
    """One browser session's Lessons page: the view it shows, its widgets and the browser's progress."""

    def __init__(self, query: view.LessonQuery) -> None:
        self.query = query
        self.student, self.embed = query.student, query.embed
        self.progress = view.Progress()
        self.questions: dict[str, QuestionView] = {}
        self.tables: list[ModelsTable] = []
        self.progress_view: ProgressView | None = None
        self.client: Client | None = None

    # ---- what the widgets call

    def href(self, link: lessons.Link) -> str:
        return view.href(link, self.embed, self.student)

    def revealed(self, key: str) -> bool:
        return not self.student or key in self.progress.done or key in self.progress.seen

    def record(self, key: str, kind: str) -> None:
        if not self.student:
            return  # the teacher's demonstrations are not progress
        self.progress = view.Progress(self.progress.done | ({key} if kind == view.DONE else set()),
                                      self.progress.seen | ({key} if kind == view.SEEN else set()),
                                      self.progress.stored)
        self.render_progress()
        # this page shows it at once; the browser merges it with what other tabs stored and sends it all back
        code = f"return window.loralensLessons.record({json.dumps(key)}, {json.dumps(kind)})"
        background_tasks.create(self._call(code), name="lesson progress")

    # ---- progress kept by the browser

    def watch(self) -> None:
        """Read the browser's progress whenever it (re)connects, and follow what other tabs store."""
        if not self.student:
            return
        self.client = ui.context.client
        self.client.on_connect(self.load)
        ui.on(PROGRESS_EVENT, lambda e: self._apply(e.args))  # another tab changed it

    async def load(self) -> None:
        await self._call("return window.loralensLessons ? window.loralensLessons.load() : null")

    async def _call(self, code: str) -> None:
        if self.client is None:
            return
        try:
            raw = await self.client.run_javascript(code, timeout=5)
        except (TimeoutError, RuntimeError) as error:  # no browser answer: the progress stays in this page only
            log.debug("lesson progress not available: %s", error)
            return
        self._apply(raw)

    def _apply(self, raw: object) -> None:
        stored = view.parse_progress(raw)
        if stored.stored:  # the browser's copy is the truth: it has every tab's answers, and a reset in any tab
            self.progress = stored
        self.render_progress()

    async def reset(self) -> None:
        self.progress = view.Progress(stored=self.progress.stored)
        self.render_progress()
        await self._call("return window.loralensLessons.reset()")

    def render_progress(self) -> None:
        if self.progress_view is not None:
            self.progress_view.render(self.progress)
        for question in self.questions.values():
            question.mark(self.progress)
        for table in self.tables:
            table.refresh()

    # ---- building

    def build(self, base_url: str) -> None:
        show_message(tag(error_label(), "url-message"), "; ".join(self.query.messages) or None)
        activity = lessons.activity(self.query.activity) if self.query.activity else None
        if activity is not None:
            self._activity(activity)
            self._progress((activity,))
            tag(ui.link("← The whole lesson", view.lesson_href(view=self.query.view, embed=self.embed,
                                                               anchor=view.activity_anchor(activity.key))),
                "whole-lesson").classes("text-sm")
            return
        if self.student:
            ui.label("Lesson: low-rank adaptation (LoRA)").classes("text-2xl font-bold")
            ui.label("Nine activities, each with a live view or lab of loralens. Answer first: a wrong answer gets "
                     "a hint, and the solution waits behind “Show solution”.").classes("ll-muted")
            self._progress(lessons.ACTIVITIES)
        else:
            self._teacher_intro(base_url)
        self._objectives()
        for item in lessons.ACTIVITIES:
            self._activity(item)
        self._assessment()
        if self.student and not self.embed:
            tag(ui.link("For teachers: every solution, notes for class and the links to hand out",
                        view.lesson_href(view=view.TEACHER)), "teacher-link").classes("text-sm")

    def _progress(self, activities: tuple[lessons.Activity, ...]) -> None:
        if self.student:
            self.progress_view = ProgressView(activities, lambda: background_tasks.create(self.reset(),
                                                                                           name="lesson reset"))
            self.progress_view.render(self.progress)

    def _teacher_intro(self, base_url: str) -> None:
        ui.label("Lesson: low-rank adaptation (LoRA) · teacher view").classes("text-2xl font-bold")
        ui.label("Every answer and worked solution is shown here, with notes on using each activity in class. "
                 "Students get the student links below: they show no answer until the student has answered, and "
                 "the Explorer hides its 'largest rank' line for them.").classes("ll-muted ll-prompt")
        tag(ui.link("← Student view", view.lesson_href(embed=self.embed)), "student-link").classes("text-sm")
        with ui.card().classes("ll-lesson-card"), ui.column().classes("gap-2 w-full min-w-0"):
            ui.label("Links to hand out").classes("text-lg font-semibold")
            ui.label(f"Each activity alone fits an iframe of {view.IFRAME_SIZE[0]} × {view.IFRAME_SIZE[1]} px; "
                     "progress is kept by each student's browser.").classes("ll-muted text-sm")
            for handout in view.handouts(base_url):
                with ui.column().classes("gap-0 w-full min-w-0").props(f'data-testid="handout-{handout.key}"'):
                    ui.label(handout.title).classes("ll-strong text-sm")
                    ui.link(handout.alone, handout.alone).classes("ll-code")
                    with ui.row().classes("items-center gap-1 flex-wrap"):
                        for label, value in (("Copy link", handout.alone), ("Copy iframe link", handout.embed),
                                             ("Copy iframe HTML", handout.iframe),
                                             ("Copy link into the lesson", handout.in_lesson)):
                            ui.button(label, on_click=lambda _, v=value: ui.clipboard.write(v)).props(
                                "flat dense no-caps size=sm")
                    with ui.expansion("iframe HTML").classes("w-full text-sm").props("dense"):
                        ui.label(handout.iframe).classes("ll-code")
        with ui.card().classes("ll-lesson-card"):
            ui.label("The seed MicroSim's lesson plan, covered").classes("text-lg font-semibold")
            for item in lessons.SEED_PLAN:
                covering = next(a for a in lessons.ACTIVITIES if a.covers == item)
                ui.link(f"{item} → {view.activity_heading(covering)}",
                        f"#{view.activity_anchor(covering.key)}").classes("text-sm")

    def _objectives(self) -> None:
        with ui.card().classes("ll-lesson-card"):
            ui.label("Learning objectives").classes("text-lg font-semibold")
            ui.label("After this lesson you can:").classes("ll-muted")
            for number, objective in enumerate(lessons.OBJECTIVES, start=1):
                with ui.column().classes("gap-0 w-full"):
                    ui.label(f"{number}. {objective.text}")
                    target = lessons.activity(objective.activity)
                    assert target is not None
                    tag(ui.link(f"→ {view.activity_heading(target)}", f"#{view.activity_anchor(target.key)}")
                        .classes("text-sm ml-4"), f"objective-{objective.key}")

    def _activity(self, activity: lessons.Activity) -> None:
        with ui.card().classes("ll-lesson-card").props(f'data-testid="activity-{activity.key}"'):
            ui.element("a").props(f'name="{view.activity_anchor(activity.key)}"').classes("ll-anchor")
            ui.label(view.activity_heading(activity)).classes("text-lg font-semibold")
            for paragraph in activity.intro:
                ui.label(paragraph).classes("ll-prompt")
            if activity.steps:
                StepsView(activity.steps, activity.key, show_all=not self.student)
            if activity.widget == "models-table":
                self.tables.append(ModelsTable(self))
            for number, link in enumerate(activity.links):
                link_to(self, link, f"{activity.key}-link-{number}")
            for question in activity.questions:
                self.questions[question.key] = QuestionView(question, self)
            if not self.student:
                ui.label(f"In class: {activity.in_class}").classes("ll-note").props(
                    f'data-testid="{activity.key}-in-class"')

    def _assessment(self) -> None:
        with ui.card().classes("ll-lesson-card").props('data-testid="assessment"'):
            ui.element("a").props('name="assessment"').classes("ll-anchor")
            ui.label("Assessment").classes("text-lg font-semibold")
            ui.label("Checked questions first; then open questions: write your answer, then compare it with the "
                     "model answer.").classes("ll-muted")
            for question in lessons.ASSESSMENT:
                self.questions[question.key] = QuestionView(question, self)


def register() -> None:
    """Add the page's route and its static script."""
    app.add_static_files(STATIC_PATH, STATIC_DIR)

    @ui.page("/lessons")
    def page(request: Request) -> None:
        query = view.read_lesson_query(request.query_params)
        ui.add_css(_CSS)
        ui.add_head_html(f'<script src="{STATIC_PATH}/lessons.js" defer></script>')
        lesson = LessonPage(query)
        with page_frame("Lessons" if query.student else "Lessons · teacher", query.embed):
            lesson.build(str(request.base_url))
        lesson.watch()
