"""The Labs page (/labs): one seeded numpy experiment at a time, chosen by ``?lab=``, with its controls in the URL.

Each control change updates the URL (a shared link reproduces the run) and, once the value passes the lab's own
range check (``view.precheck``), starts a new run through ``app.workers``: off the event loop, at most one per
session (a newer change supersedes the older run, which stops at its next progress call), queued with its
position shown while other sessions' runs use the server's slots, and stopped after ``PAGE_BUDGET_SECONDS``
(larger runs are for the command line, which says so). A refused value, a failed run or a run over the budget
keeps the last result on screen with a note saying which values it was computed with (``view.refused``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import Request
from nicegui import background_tasks, ui

from loralens.app import workers
from loralens.app.labs.view import (Shown, control_width, lab_url, number_value, parse_state, precheck,
                                    progress_text, refused, shown)
from loralens.app.layout import NumberField, error_label, page_frame, show_message
from loralens.app.url_state import embed_of, format_value
from loralens.core.labs import LABS
from loralens.errors import LoraLensError

DEBOUNCE_SECONDS = 0.25
#: a run the page starts stops after this long; the same run from the command line has no limit
PAGE_BUDGET_SECONDS = 10.0
log = logging.getLogger(__name__)


class Superseded(workers.Cancelled):
    """Raised inside a run's progress callback when a newer setting replaced it (or its session ended)."""


class OverBudget(Exception):
    """Raised inside a run's progress callback once it ran longer than the page allows."""


def cli_command(lab: str, values: dict[str, Any]) -> str:
    """The command that runs the same lab without the page's time limit."""
    options = " ".join(f"--{name.replace('_', '-')} {format_value(value)}" for name, value in values.items()
                       if name != "lab" and value != LABS[lab].defaults().get(name))
    return f"loralens lab {lab} {options}".rstrip()


class LabView:
    """One browser session's Labs page: its controls, its run generation and its output elements."""

    def __init__(self, lab: str, values: dict[str, Any], embed: bool) -> None:
        self.lab = lab
        self.values = values
        self.embed = embed
        self.generation = 0
        self.progress = (0, 1)  # (done, total) steps: written by the worker thread, read by a timer on the loop
        self.started = 0.0  # monotonic time of the run's first step (0: not started)
        self.waiting = 0  # the run's place in the server's queue (0: running or none)
        self.controls: dict[str, ui.number] = {}
        self.last: Shown | None = None  # the last result shown, kept while a refused value is on screen
        self.session = ui.context.client.id

    def build(self, messages: list[str]) -> None:
        with ui.tabs(value=self.lab, on_change=lambda e: ui.navigate.to(lab_url(e.value, {}, self.embed))).classes(
                "w-full").props('dense align="left" mobile-arrows outside-arrows') as tabs:
            for name in LABS:
                ui.tab(name, LABS[name].tab).props(f'data-testid="lab-tab-{name}"')
        tabs.mark("lab-tabs")
        ui.label(LABS[self.lab].title).classes("text-xl font-semibold")
        url_message = error_label()
        show_message(url_message, "; ".join(messages) or None)
        with ui.row().classes("w-full items-start gap-2"):
            for name, value in self.values.items():
                if name == "lab":
                    continue
                param = LABS[self.lab].param(name)
                control = NumberField(param.label, value=value, step=1 if param.kind is int else None,
                                      on_change=lambda e, n=name: self.changed(n, e.value))
                control.tooltip(f"{param.help} ({param.range_text()})")
                control.classes(control_width(param, value)).props(
                    f'dense outlined data-testid="lab-{name}"').mark(f"lab-{name}")
                self.controls[name] = control
        self.error = error_label()
        self.error.mark("lab-error")
        with ui.row().classes("items-center gap-2") as self.busy:
            ui.spinner(size="1.5em")
            self.busy_label = ui.label("running…").classes("ll-muted")
            self.bar = ui.linear_progress(value=0.0, show_value=False).classes("w-40")
            ui.button("Stop", on_click=self.cancel_run).props('flat dense no-caps data-testid="lab-stop"').mark(
                "lab-stop")
        self.busy.set_visibility(False)
        self.note = ui.label("").classes("ll-muted text-sm").mark("lab-note")
        self.note.set_visibility(False)
        self.reading = ui.label("").classes("ll-card text-base").style("max-width: 80ch").mark("lab-reading")
        self.reading.props('data-testid="lab-reading"')
        self.charts = ui.element("div").classes("w-full grid gap-3").style(
            "grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr))")
        ui.timer(0.2, self._show_progress)

    def changed(self, name: str, value: float | None) -> None:
        self.values[name] = number_value(LABS[self.lab].param(name).kind, value)
        problem = precheck(self.lab, self.values)
        if problem is not None:  # refused without running: the last result stays, the pending run is dropped
            self.stop()
            self.busy.set_visibility(False)
            self._fail(*problem)
            return
        ui.navigate.history.replace(lab_url(self.lab, self.values, self.embed))
        background_tasks.create(self.start(), name="lab run")

    async def start(self, debounce: float = DEBOUNCE_SECONDS) -> None:
        """Run the lab with the current values, unless a newer change comes first."""
        self.generation += 1
        generation = self.generation
        await asyncio.sleep(debounce)
        if generation != self.generation:
            return
        problem = precheck(self.lab, self.values)
        if problem is not None:
            self._fail(*problem)
            return
        params = {n: v for n, v in self.values.items() if n != "lab"}
        try:
            job = workers.current.job(self.session, "lab")
        except LoraLensError as error:
            self._fail(str(error), None)
            return
        started: list[float] = []

        def progress(done: int, total: int) -> None:
            if job.cancelled() or generation != self.generation:
                raise Superseded
            if not started:
                started.append(time.monotonic())
                self.started = started[0]
            elif time.monotonic() - started[0] > PAGE_BUDGET_SECONDS:
                raise OverBudget
            self.progress = (done, total)

        def waiting(position: int) -> None:
            self.waiting = position

        self.progress, self.waiting, self.started = (0, 1), 0, 0.0
        self.busy.set_visibility(True)
        try:
            result = await workers.current.run(job, LABS[self.lab].run, **params, progress=progress,
                                               on_position=waiting)
        except workers.Cancelled:
            return
        except OverBudget:
            if generation == self.generation:
                self._fail(f"this run takes longer than the {PAGE_BUDGET_SECONDS:g} s a page allows; run it from "
                           f"the command line: {cli_command(self.lab, self.values)}", None)
            return
        except LoraLensError as error:
            if generation == self.generation:
                self._fail(str(error), error.where)
            return
        except Exception as error:  # a bug, not a bad setting: say so in one line, keep the traceback in the log
            log.exception("lab %s failed with %s", self.lab, params)
            if generation == self.generation:
                self._fail(f"the {self.lab} lab failed: {type(error).__name__}: {error}", None)
            return
        finally:
            if generation == self.generation:
                self.busy.set_visibility(False)
                self.waiting = 0
        if result is None or generation != self.generation:
            return
        self._show(shown(self.lab, self.values, result))

    def stop(self) -> None:
        """Supersede any run in progress without starting another."""
        self.generation += 1

    def cancel_run(self) -> None:
        """The Stop button: the run stops at its next step; the last result stays, with a note saying so."""
        self.stop()
        workers.current.cancel_session(self.session)
        self.busy.set_visibility(False)
        self.waiting = 0
        show_message(self.note, "Stopped. " + (refused(self.last, self.lab, self.values, "", None).note
                                               or "Change a value to run again."))

    def release(self) -> None:
        """The session ended: stop its run and drop the result it showed."""
        self.stop()
        workers.current.cancel_session(self.session)
        self.last = None

    def _show_progress(self) -> None:
        if self.waiting:
            ahead = self.waiting - 1
            self.bar.set_value(0.0)
            self.busy_label.set_text(f"waiting for the server: {ahead} run{'s' if ahead != 1 else ''} ahead"
                                     if ahead else "waiting for the server: next")
            return
        done, total = self.progress
        self.bar.set_value(done / total)
        elapsed = time.monotonic() - self.started if self.started else 0.0
        self.busy_label.set_text(progress_text(done, total, elapsed))

    def _fail(self, message: str, where: str | None) -> None:
        """Show ``message`` beside its control; keep the last result of this lab with a note (view.refused)."""
        decision = refused(self.last, self.lab, self.values, message, where)
        show_message(self.error, decision.message)
        for name, control in self.controls.items():
            if name == decision.where:
                control.props("error")
            else:
                control.props(remove="error")
        show_message(self.note, decision.note or None)
        if decision.keep is None:
            self.reading.set_text("")
            self.charts.clear()

    def _show(self, result: Shown) -> None:
        self.last = result
        show_message(self.error, None)
        show_message(self.note, None)
        for control in self.controls.values():
            control.props(remove="error")
        self.reading.set_text(result.reading)
        self.charts.clear()
        with self.charts:
            for options in result.charts:
                ui.echart(options).classes("w-full").style("height: 320px")


def register() -> None:
    """Add the page's route."""

    @ui.page("/labs")
    def page(request: Request) -> None:
        query = dict(request.query_params)
        lab, values, messages = parse_state(query)
        embed = embed_of(query)
        view = LabView(lab, values, embed)
        with page_frame("Labs", embed):
            view.build(messages)
        ui.timer(0.0, lambda: view.start(debounce=0.0), once=True)
        ui.context.client.on_delete(view.release)  # a closed tab stops its run at the next progress call
