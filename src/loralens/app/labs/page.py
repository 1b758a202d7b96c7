"""The Labs page (/labs): one seeded numpy experiment at a time, chosen by ``?lab=``, with its controls in the URL.

Each control change updates the URL (a shared link reproduces the run) and starts a new run off the event loop
(``run.io_bound``: numpy releases the GIL). A newer change supersedes the older run: the older run is stopped at
its next progress call and its result, if any, is discarded. The charts and the reading all come from one result.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request
from nicegui import background_tasks, run, ui

from loralens.app.labs import charts as charts_labs
from loralens.app.layout import error_label, page_frame, show_message
from loralens.app.palette import COLORS
from loralens.app.url_state import Param, embed_of, page_url, parse_query, read_query, to_query
from loralens.core.labs import LABS, READINGS
from loralens.core.labs.common import MAX_BATCH, MAX_DIM, MAX_NOISE, MAX_SEED, MAX_STEPS
from loralens.errors import LoraLensError

TITLES = {
    "fit": "Fit — why low rank works",
    "init": "Init — why B = 0 and A random",
    "merge": "Merge — no inference latency",
    "subspace": "Subspace — the paper's §7",
}
TAB_LABELS = {"fit": "Fit", "init": "Init", "merge": "Merge", "subspace": "Subspace"}

# URL parameter -> (kind, low, high, control label). Defaults come from each lab function's signature.
PARAMS: dict[str, tuple[type, float, float, str]] = {
    "d": (int, 1, MAX_DIM, "d (out)"),
    "k": (int, 1, MAX_DIM, "k (in)"),
    "rank": (int, 1, MAX_DIM, "rank r"),
    "rank_large": (int, 1, MAX_DIM, "large rank"),
    "target_rank": (int, 1, MAX_DIM, "target rank s"),
    "alpha": (float, 0.01, 1e6, "alpha"),
    "noise": (float, 0.0, MAX_NOISE, "noise"),
    "steps": (int, 1, MAX_STEPS, "steps"),
    "lr": (float, 1e-6, 1.0, "learning rate"),
    "batch": (int, 1, MAX_BATCH, "batch"),
    "repeats": (int, 1, 100, "timing repeats"),
    "seed": (int, 0, MAX_SEED, "seed"),
}
DEBOUNCE_SECONDS = 0.25
log = logging.getLogger(__name__)


class Superseded(Exception):
    """Raised inside a run's progress callback when a newer setting replaced it."""


def lab_defaults(lab: str) -> dict[str, Any]:
    """The URL-settable parameters of a lab and their defaults, read from the lab function's signature."""
    signature = inspect.signature(LABS[lab])
    return {name: p.default for name, p in signature.parameters.items() if name in PARAMS}


def schema(lab: str) -> tuple[Param, ...]:
    """The URL schema of one lab: ``lab`` first, then the lab's own parameters."""
    params = [Param("lab", str, "fit", choices=tuple(LABS))]
    for name, default in lab_defaults(lab).items():
        kind, low, high, _ = PARAMS[name]
        params.append(Param(name, kind, kind(default), low, high))
    return tuple(params)


def parse_state(query: Mapping[str, str]) -> tuple[str, dict[str, Any], list[str]]:
    """(lab, values, messages) from a query: the lab first, then that lab's parameters."""
    lab_values, messages = parse_query(schema("fit")[:1], query)
    lab = lab_values["lab"]
    page = read_query(schema(lab), query)
    return lab, page.values, messages + [m for m in page.messages if not m.startswith("URL parameter lab:")]


def lab_url(lab: str, values: Mapping[str, Any], embed: bool = False) -> str:
    """/labs?lab=...&... with the lab's parameters in schema order (and embed=1 when embedded)."""
    return page_url("/labs", to_query(schema(lab), {**values, "lab": lab}), embed)


def _number_value(kind: type, value: float | None) -> Any:
    """A control's value as the lab expects it; anything not whole stays a float so that the lab names it."""
    if value is None:
        return None
    if kind is int and float(value).is_integer():
        return int(value)
    return float(value)


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
                ui.tab(name, TAB_LABELS[name]).props(f'data-testid="lab-tab-{name}"')
        tabs.mark("lab-tabs")
        ui.label(TITLES[self.lab]).classes("text-xl font-semibold")
        url_message = error_label()
        show_message(url_message, "; ".join(messages) or None)
        with ui.row().classes("w-full items-start gap-2"):
            for name, value in self.values.items():
                if name == "lab":
                    continue
                kind, _, _, label = PARAMS[name]
                control = ui.number(label, value=value, step=1 if kind is int else None,
                                    on_change=lambda e, n=name: self.changed(n, e.value))
                control.classes("w-28").props(f'dense outlined data-testid="lab-{name}"').mark(f"lab-{name}")
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
        kind = PARAMS[name][0]
        self.values[name] = _number_value(kind, value)
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
            result = await run.io_bound(LABS[self.lab], **params, progress=progress)
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
        self.reading.set_text(READINGS[self.lab](result))
        self.charts.clear()
        with self.charts:
            for options in CHARTS[self.lab](result):
                ui.echart(options).classes("w-full").style("height: 320px")


def _fit_charts(result: Any) -> list[dict[str, Any]]:
    curves = [(f"r={r}", curve) for r, curve in zip(result.sweep_ranks, result.sweep_loss)]
    return [
        charts_labs.error_vs_rank(result.sweep_ranks, result.sweep_final_relative_error,
                                  result.sweep_optimal_relative_error, result.rank),
        charts_labs.loss_curves(curves, highlight=f"r={result.rank}"),
        charts_labs.singular_values_chart(result.target_singular_values, result.learned_singular_values,
                                          result.rank),
    ]


def _init_charts(result: Any) -> list[dict[str, Any]]:
    res = [result.results[name] for name in result.schemes]
    return [
        charts_labs.init_gradients(result.schemes, [r.grad_a_norm_at_init for r in res],
                                   [r.grad_b_norm_at_init for r in res]),
        charts_labs.init_start(result.schemes, [r.delta_w_fro_at_init for r in res],
                               [r.output_change_at_init for r in res]),
        charts_labs.loss_curves([(name, r.loss) for name, r in zip(result.schemes, res)], highlight="default"),
    ]


def _merge_charts(result: Any) -> list[dict[str, Any]]:
    r = result
    lora, full, merged, unmerged = COLORS["lora"], COLORS["full"], COLORS["merged"], COLORS["b"]
    return [
        charts_labs.grouped_bars("Inference cost per token", ["FLOPs (= 2 × multiply-adds)"],
                                 [("merged W'", [r.flops_per_token_merged], merged),
                                  ("unmerged W + s·B·A", [r.flops_per_token_unmerged], unmerged)], "FLOPs"),
        charts_labs.grouped_bars(f"Measured time for {r.batch} tokens (median of {r.repeats})", ["milliseconds"],
                                 [("merged W'", [r.seconds_merged * 1e3], merged),
                                  ("unmerged W + s·B·A", [r.seconds_unmerged * 1e3], unmerged)], "ms"),
        charts_labs.grouped_bars("Training-time cost (log scale)",
                                 ["trainable params", "gradient bytes", "Adam state bytes"],
                                 [("LoRA", [r.trainable_params_lora, r.gradient_bytes_lora,
                                            r.adam_state_bytes_lora], lora),
                                  ("full fine-tuning", [r.trainable_params_full, r.gradient_bytes_full,
                                                        r.adam_state_bytes_full], full)], log=True),
        charts_labs.grouped_bars(f"Round-off ({r.dtype}, log scale)",
                                 ["merged vs unmerged outputs", "swap back to W"],
                                 [("max |difference|", [r.merged_vs_unmerged_max_abs_diff,
                                                        r.swap_back_max_abs_diff], COLORS["delta"]),
                                  ("largest |value| × ε", [r.output_max_abs * r.float_eps,
                                                           r.weight_max_abs * r.float_eps], COLORS["frozen"])],
                                 log=True),
    ]


def _subspace_charts(result: Any) -> list[dict[str, Any]]:
    small, large = result.details
    return [
        charts_labs.phi_heatmap(result.phi, result.rank, result.rank_large),
        charts_labs.grouped_bars("Amplification: ‖ΔW‖ vs W on ΔW's directions",
                                 [f"r = {small.rank}", f"r = {large.rank}"],
                                 [("‖ΔW‖_F", [small.delta_w_fro, large.delta_w_fro], COLORS["delta"]),
                                  ("‖UᵀWV‖_F", [small.projection_fro, large.projection_fro], COLORS["a"]),
                                  ("W on random directions", [small.random_projection_fro,
                                                              large.random_projection_fro], COLORS["frozen"]),
                                  ("W on its top directions", [small.w_top_projection_fro,
                                                               large.w_top_projection_fro], COLORS["full"])]),
        charts_labs.loss_curves([(f"r={result.rank}", result.loss), (f"r={result.rank_large}", result.loss_large)]),
    ]


CHARTS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
    "fit": _fit_charts,
    "init": _init_charts,
    "merge": _merge_charts,
    "subspace": _subspace_charts,
}


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
