"""The Labs page (/labs): one seeded numpy experiment at a time, chosen by ``?lab=``, with its controls in the URL.

Each control change updates the URL (a shared link reproduces the run) and starts a new run off the event loop
(``run.io_bound``: numpy releases the GIL). A newer change supersedes the older run: the older run is stopped at
its next progress call and its result, if any, is discarded. The charts and the reading all come from one result.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Request
from nicegui import background_tasks, run, ui

from loralens.app.labs.view import CHARTS, control_width, lab_url, number_value, parse_state
from loralens.app.layout import error_label, page_frame, show_message
from loralens.app.url_state import embed_of
from loralens.core.labs import LABS
from loralens.errors import LoraLensError

DEBOUNCE_SECONDS = 0.25
log = logging.getLogger(__name__)


class Superseded(Exception):
    """Raised inside a run's progress callback when a newer setting replaced it."""


class LabView:
    """One browser session's Labs page: its controls, its run generation and its output elements."""

    def __init__(self, lab: str, values: dict[str, Any], embed: bool) -> None:
        self.lab = lab
        self.values = values
        self.embed = embed
        self.generation = 0
        self.progress = (0, 1)  # (done, total) steps: written by the worker thread, read by a timer on the loop
        self.controls: dict[str, ui.number] = {}

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
                control = ui.number(param.label, value=value, step=1 if param.kind is int else None,
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
        self.busy.set_visibility(False)
        self.reading = ui.label("").classes("ll-card text-base").style("max-width: 80ch").mark("lab-reading")
        self.reading.props('data-testid="lab-reading"')
        self.charts = ui.element("div").classes("w-full grid gap-3").style(
            "grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr))")
        ui.timer(0.2, self._show_progress)

    def changed(self, name: str, value: float | None) -> None:
        self.values[name] = number_value(LABS[self.lab].param(name).kind, value)
        if all(v is not None for v in self.values.values()):
            ui.navigate.history.replace(lab_url(self.lab, self.values, self.embed))
        background_tasks.create(self.start(), name="lab run")

    async def start(self, debounce: float = DEBOUNCE_SECONDS) -> None:
        """Run the lab with the current values, unless a newer change comes first."""
        self.generation += 1
        generation = self.generation
        await asyncio.sleep(debounce)
        if generation != self.generation:
            return
        missing = [n for n, v in self.values.items() if v is None]
        if missing:
            self._fail(f"{missing[0]}: enter a number", missing[0])
            return
        params = {n: v for n, v in self.values.items() if n != "lab"}

        def progress(done: int, total: int) -> None:
            if generation != self.generation:
                raise Superseded
            self.progress = (done, total)

        self.progress = (0, 1)
        self.busy.set_visibility(True)
        try:
            result = await run.io_bound(LABS[self.lab].run, **params, progress=progress)
        except Superseded:
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
        if result is None or generation != self.generation:
            return
        self._show(result)

    def stop(self) -> None:
        """Supersede any run in progress without starting another."""
        self.generation += 1

    def _show_progress(self) -> None:
        done, total = self.progress
        self.bar.set_value(done / total)
        self.busy_label.set_text(f"running… {done:,} of {total:,}" if done else "running…")

    def _fail(self, message: str, where: str | None) -> None:
        show_message(self.error, message)
        for name, control in self.controls.items():
            if name == where:
                control.props("error")
            else:
                control.props(remove="error")
        self.reading.set_text("")
        self.charts.clear()

    def _show(self, result: Any) -> None:
        show_message(self.error, None)
        for control in self.controls.values():
            control.props(remove="error")
        self.reading.set_text(LABS[self.lab].reading(result))
        self.charts.clear()
        with self.charts:
            for options in CHARTS[self.lab](result):
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
        ui.context.client.on_delete(view.stop)  # a closed tab stops its run at the next progress call
