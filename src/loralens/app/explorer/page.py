"""The Explorer (home page): drag the rank and see W + B·A = W′, the exact counts and the real matrices.

All numbers, text, the diagram and chart options come from ``explorer_view.build_view``; this module only owns
the controls and copies the view into elements. Each browser tab gets its own state (built in the page function).
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import replace

from nicegui import ui
from starlette.requests import Request

from loralens.app.explorer import matrices
from loralens.app.explorer.view import (
    DIAGRAM_SCALE_NOTE,
    PRESETS,
    SMALL_MATRIX_LIMIT,
    ExplorerState,
    ExplorerView,
    build_view,
    clamp_rank,
    state_from_query,
)
from loralens.app.layout import page_frame, set_chart
from loralens.app.url_state import embed_of, format_value, page_url, to_query
from loralens.app.explorer.view import SCHEMA
from loralens.core.counting import MAX_DIM
from loralens.core.small_layer import small_layer


def _dimension_steps() -> list[int]:
    """Slider stops for d and k: 1..16, then 4 stops per octave (16, 20, 24, 28, 32, 40, ...) up to 65,536."""
    steps = set(range(1, 17))
    exponent = 4
    while 2**exponent < MAX_DIM:
        base = 2**exponent
        steps.update({base, base + base // 4, base + base // 2, base + 3 * base // 4})
        exponent += 1
    steps.add(MAX_DIM)
    return sorted(steps)


DIM_STEPS = _dimension_steps()


def _step_index(value: int) -> int:
    """Index of the slider stop nearest to ``value``."""
    i = bisect.bisect_left(DIM_STEPS, value)
    if i == len(DIM_STEPS):
        return i - 1
    if i > 0 and value - DIM_STEPS[i - 1] < DIM_STEPS[i] - value:
        return i - 1
    return i


_TEXT_WHY = (
    "Pretrained models have a low intrinsic dimension: the change that adapts them to a task can be described by "
    "far fewer numbers than the model has (Aghajanyan et al., 2020). LoRA bets that the update ΔW of each weight "
    "matrix has a low rank r, writes it as B·A and trains only B and A. The LoRA paper found r as small as 1–8 "
    "enough for GPT-3's attention weights, and that the learned ΔW amplifies directions that W already has but "
    "does not emphasise."
)


def register() -> None:
    @ui.page("/")
    def explorer(request: Request) -> None:
        query = dict(request.query_params)
        state, messages = state_from_query(query)
        ExplorerPage(state, messages, embed_of(query))


class ExplorerPage:
    """The controls and views of one browser tab."""

    def __init__(self, state: ExplorerState, messages: list[str], embed: bool) -> None:
        self.state = state
        self.embed = embed
        self.trained = False
        self._syncing = False
        self._matrices_key: tuple | None = None  # what the heatmaps show now
        # plain event-loop timers, not ui.timer: a ui.timer is an element, and adding one per slider step made the
        # browser re-render the page's element tree twice more per step
        self._matrices_timer: asyncio.TimerHandle | None = None
        self._secondary_timer: asyncio.TimerHandle | None = None
        self._pending_view: ExplorerView | None = None
        self._rank_max: int | None = None
        with page_frame("Explorer", embed):
            self.url_message = ui.label("; ".join(messages)).classes("ll-warn").props('role="alert" data-testid="url-message"')
            self.url_message.set_visibility(bool(messages))
            with ui.row().classes("w-full items-start gap-4 no-wrap max-md:flex-wrap"):
                with ui.column().classes("gap-1 min-w-[260px] max-w-[380px] w-full"):
                    self._build_controls()
                with ui.column().classes("grow gap-1 min-w-0 w-full"):
                    self._build_numbers()
                    self.diagram = ui.html("", sanitize=False).classes("w-full").props('data-testid="diagram-box"')
                    ui.label(DIAGRAM_SCALE_NOTE).classes("text-xs ll-muted")
            self._build_charts()
            self._build_matrices()
            self._build_text()
        self.render()

    # ------------------------------------------------------------------------------------------ controls

    def _build_controls(self) -> None:
        s = self.state
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            ui.label("rank r").classes("w-16 font-semibold")
            self.rank_slider = (
                ui.slider(min=1, max=min(s.d, s.k), step=1, value=s.r, on_change=lambda e: self._set(r=e.value))
                .props('data-testid="rank" label aria-label="rank r"')
                .mark("rank")
                .classes("grow")
            )
            self.rank_input = (
                ui.number(value=s.r, min=1, precision=0, step=1, on_change=lambda e: self._typed("r", e.value))
                .props('dense outlined data-testid="rank-input" aria-label="rank r (exact)"')
                .mark("rank-input")
                .classes("w-28")
            )
        self.d_slider, self.d_input = self._dimension_row("d", "d (out)", s.d)
        self.k_slider, self.k_input = self._dimension_row("k", "k (in)", s.k)
        with ui.row().classes("w-full items-center gap-3"):
            self.square = ui.checkbox("square (k = d)", value=s.square, on_change=lambda e: self._set_square(e.value)).props(
                'data-testid="square"'
            )
            ui.select(
                {i: label for i, (label, _, _) in enumerate(PRESETS)},
                label="layer presets",
                on_change=lambda e: self._preset(e.value),
            ).props('dense outlined data-testid="presets"').classes("min-w-[170px] grow")
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            self.alpha_input = (
                ui.number("lora_alpha", value=s.alpha, min=0.001, step=1, on_change=lambda e: self._typed("alpha", e.value))
                .props('dense outlined data-testid="alpha"')
                .classes("w-28")
            )
            self.rule = ui.toggle(
                {False: "α/r", True: "α/√r (rsLoRA)"}, value=s.rslora, on_change=lambda e: self._set(rslora=e.value)
            ).props('dense no-caps data-testid="rslora"').mark("rslora")
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            self.target_input = (
                ui.number("savings target %", value=s.target, min=1, max=99.999, step=0.5,
                          on_change=lambda e: self._typed("target", e.value))
                .props('dense outlined data-testid="target"')
                .classes("w-36")
            )
        self.control_message = ui.label("").classes("ll-warn").props('role="alert" data-testid="control-message"')
        self.control_message.set_visibility(False)

    def _dimension_row(self, name: str, label: str, value: int) -> tuple[ui.slider, ui.number]:
        with ui.row().classes("w-full items-center gap-2 no-wrap") as row:
            ui.label(label).classes("w-16 font-semibold")
            slider = (
                ui.slider(min=0, max=len(DIM_STEPS) - 1, step=1, value=_step_index(value),
                          on_change=lambda e: self._dimension_slid(name, e.value))
                .props(f'data-testid="{name}-slider" aria-label="{label}"')
                .classes("grow")
            )
            number = (
                ui.number(value=value, min=1, max=MAX_DIM, precision=0, step=1,
                          on_change=lambda e: self._typed(name, e.value))
                .props(f'dense outlined data-testid="{name}-input" aria-label="{label} (exact)"')
                .mark(f"{name}-input")
                .classes("w-28")
            )
        if name == "k":
            self.k_row = row
        return slider, number

    # ------------------------------------------------------------------------------------------ views

    def _build_numbers(self) -> None:
        self.numbers = ui.html("", sanitize=False).classes("w-full").props('data-testid="numbers"')

    def _build_charts(self) -> None:
        """An empty row now, the charts once the browser has connected: ECharts' script is the largest the page
        loads, and the numbers and diagram should not wait for it (cold start to first paint)."""
        self.charts_row = ui.row().classes("w-full gap-3 max-md:flex-wrap min-h-[240px]")
        self.bars: ui.echart | None = None
        ui.timer(0.01, self._add_charts, once=True)

    def _add_charts(self) -> None:
        with self.charts_row:
            with ui.card().classes("grow basis-80 min-w-0 p-2"):
                ui.label("Parameters to train (log scale: a 0.4% bar stays visible)").classes("text-sm font-semibold")
                self.bars = ui.echart({}).classes("w-full h-36").props('data-testid="bars"')
            with ui.card().classes("grow basis-80 min-w-0 p-2"):
                ui.label("Growth with d: full is quadratic, LoRA linear").classes("text-sm font-semibold")
                self.growth = ui.echart({}).classes("w-full h-56")
            with ui.card().classes("grow basis-80 min-w-0 p-2"):
                ui.label("Growth with r: past break-even LoRA costs more").classes("text-sm font-semibold")
                self.rank_chart = ui.echart({}).classes("w-full h-56")
        if self._pending_view is not None:
            self._render_charts_and_text(self._pending_view)

    def _build_matrices(self) -> None:
        with ui.card().classes("w-full p-2"):
            with ui.row().classes("w-full items-center gap-3"):
                ui.label("The real matrices").classes("text-base font-semibold")
                self.trained_toggle = ui.toggle(
                    {False: "at initialisation (B = 0)", True: "after training"},
                    value=False,
                    on_change=lambda e: self._set_trained(e.value),
                ).props('dense no-caps data-testid="trained"').mark("trained")
            self.matrices_hint = ui.row().classes("w-full items-center gap-2")
            with self.matrices_hint:
                self.matrices_hint_label = ui.label("").classes("text-sm")
                ui.button("Show a 64 × 64 layer", on_click=self._small_layer).props('dense no-caps data-testid="go-small"')
            self.matrices = ui.column().classes("w-full gap-1")  # filled the first time the layer is small
            self.heatmaps: list[ui.echart] = []

    def _build_heatmaps(self) -> None:
        with self.matrices:
            self.matrices_caption = ui.label("").classes("text-sm").props('data-testid="matrices-caption"')
            with ui.grid().classes("w-full gap-1 grid-cols-2 md:grid-cols-5"):
                self.heatmaps = [ui.echart({}).classes("w-full h-44") for _ in range(5)]
            self.sv_chart = ui.echart({}).classes("w-full h-56").props('data-testid="sv-chart"')
            self.sv_caption = ui.label("").classes("text-sm").props('data-testid="sv-caption"')

    def _build_text(self) -> None:
        with ui.card().classes("w-full p-3"):
            self.text = ui.html("", sanitize=False).classes("w-full")
            with ui.row().classes("gap-4"):
                self.models_link = ui.link("See it on a real model →", "/models").props('data-testid="to-models"').mark("to-models")
                ui.link("Watch low rank work in the fit lab →", "/labs?lab=fit")
            ui.label("Why low rank works").classes("text-base font-semibold")
            ui.label(_TEXT_WHY).classes("text-sm")

    # ------------------------------------------------------------------------------------------ events

    def _set(self, **changes: object) -> None:
        if self._syncing:
            return
        changes = {name: value for name, value in changes.items() if value is not None}
        if "r" in changes:
            changes["r"] = int(changes["r"])  # type: ignore[call-overload]
        self.state = clamp_rank(replace(self.state, **changes))  # type: ignore[arg-type]
        self.render()

    def _dimension_slid(self, name: str, index: float | None) -> None:
        if self._syncing or index is None:
            return
        self._set_dimension(name, DIM_STEPS[int(index)])

    def _set_dimension(self, name: str, value: int) -> None:
        changes = {name: value}
        if self.state.square:
            changes = {"d": value, "k": value}
        self._set(**changes)

    def _typed(self, name: str, value: float | None) -> None:
        """A value typed into a number box: checked here, with the message beside the controls."""
        if self._syncing:
            return
        param = next(p for p in SCHEMA if p.name == name)  # the same ranges as the URL parameters
        low, high = param.low, (min(self.state.d, self.state.k) if name == "r" else param.high)
        if value is None or not low <= value <= high or (name in "rdk" and value != int(value)):
            kind = "a whole number" if name in "rdk" else "a number"
            self._show_control_message(f"{name}: must be {kind} from {low:,g} to {high:,g}; kept {getattr(self.state, name):,}")
            return
        self._show_control_message(None)
        if name in ("d", "k"):
            self._set_dimension(name, int(value))
        else:
            self._set(**{name: int(value) if name == "r" else float(value)})

    def _show_control_message(self, message: str | None) -> None:
        self.control_message.set_text(message or "")
        self.control_message.set_visibility(bool(message))

    def _set_square(self, square: bool) -> None:
        if self._syncing:
            return
        changes: dict[str, object] = {"square": square}
        if square:
            changes["k"] = self.state.d
        self._set(**changes)

    def _preset(self, index: int | None) -> None:
        if index is None:
            return
        _, d, k = PRESETS[index]
        self._set(d=d, k=k, square=d == k)

    def _small_layer(self) -> None:
        self._set(d=SMALL_MATRIX_LIMIT, k=SMALL_MATRIX_LIMIT, square=True, r=min(self.state.r, 8))

    def _set_trained(self, trained: bool) -> None:
        self.trained = trained
        self._render_matrices(build_view(self.state))

    # ------------------------------------------------------------------------------------------ render

    def render(self) -> None:
        """Numbers, warning, formulas and diagram at once; charts, text and heatmaps follow (see below)."""
        view = build_view(self.state)
        s = self.state
        self._syncing = True
        try:
            if self._rank_max != min(s.d, s.k):
                self._rank_max = min(s.d, s.k)
                self.rank_slider.props(f"max={self._rank_max}")
                self.rank_input.props(f"max={self._rank_max}")
            self.rank_slider.value = s.r
            self.rank_input.value = s.r
            self.d_slider.value = _step_index(s.d)
            self.d_input.value = s.d
            self.k_slider.value = _step_index(s.k)
            self.k_input.value = s.k
            self.square.value = s.square
            self.rule.value = s.rslora
            self.alpha_input.value = s.alpha
            self.target_input.value = s.target
        finally:
            self._syncing = False
        self.k_row.set_visibility(not s.square)
        self.numbers.set_content(view.numbers_html)
        self.diagram.set_content(view.diagram_svg)
        ui.navigate.history.replace(page_url("/", to_query(SCHEMA, s.as_dict()), self.embed))
        if self._pending_view is None and self._matrices_key is None:
            self._render_secondary(view)  # first paint: everything at once
        else:
            self._schedule_secondary(view)

    def _schedule_secondary(self, view: ExplorerView) -> None:
        """Charts and text at most every 100 ms while a slider moves (the last state always drawn), so that the
        numbers and the diagram repaint first; the heatmaps once the controls rest for 120 ms."""
        self._pending_view = view
        loop = asyncio.get_running_loop()
        if self._secondary_timer is None:
            self._secondary_timer = loop.call_later(0.1, self._flush_secondary)
        if self._matrices_timer is not None:
            self._matrices_timer.cancel()
        self._matrices_timer = loop.call_later(0.12, lambda: self._render_matrices(self._pending_view or view))

    def _flush_secondary(self) -> None:
        self._secondary_timer = None
        if self._pending_view is not None:
            self._render_charts_and_text(self._pending_view)

    def _render_secondary(self, view: ExplorerView) -> None:
        self._pending_view = view
        self._render_charts_and_text(view)
        self._render_matrices(view)

    def _render_charts_and_text(self, view: ExplorerView) -> None:
        if self.bars is not None:
            set_chart(self.bars, view.bars_option)
            set_chart(self.growth, view.growth_option)
            set_chart(self.rank_chart, view.rank_option)
        self._render_text(view)

    def _render_text(self, view: ExplorerView) -> None:
        self.text.set_content(view.text_html)
        s = view.state
        self.models_link.props(f"href=/models?model=llama-2-7b&r={s.r}&alpha={format_value(s.alpha)}")

    def _render_matrices(self, view: ExplorerView) -> None:
        self.matrices.set_visibility(view.small)
        self.matrices_hint.set_visibility(not view.small)
        if not view.small:
            self._matrices_key = ()
            self.matrices_hint_label.set_text(
                f"Heatmaps of the actual values are drawn for d, k ≤ {SMALL_MATRIX_LIMIT} "
                f"(this layer has {view.count.full:,} entries)."
            )
            return
        s = view.state
        key = (s.d, s.k, s.r, s.alpha, s.rslora, self.trained)
        if key == self._matrices_key:
            return
        self._matrices_key = key
        if not self.heatmaps:
            self._build_heatmaps()
        layer = small_layer(s.d, s.k, s.r, s.alpha, s.rslora, trained=self.trained)
        limit = float(max(abs(layer.w).max(), abs(layer.merged).max()))
        for chart, (matrix, title) in zip(
            self.heatmaps,
            (
                (layer.w, f"W ({s.d}×{s.k}) frozen"),
                (layer.b, f"B ({s.d}×{s.r})"),
                (layer.a, f"A ({s.r}×{s.k})"),
                (layer.delta, "ΔW = s·B·A"),
                (layer.merged, "W′ = W + ΔW"),
            ),
        ):
            set_chart(chart, matrices.heatmap_option(matrix, title, limit))
        nonzero = int((layer.delta_singular_values > 1e-10 * max(1.0, float(layer.target_singular_values[0]))).sum())
        state_text = (
            "At initialisation B = 0, so ΔW = 0 and W′ = W exactly: the model starts as the pretrained one."
            if not self.trained
            else "After training, s·B·A is the best rank-r approximation of the task update ΔW* (Eckart–Young)."
        )
        self.matrices_caption.set_text(f"{state_text} Colour scale: blue negative, white 0, orange positive.")
        set_chart(self.sv_chart, matrices.singular_values_option(
            layer.delta_singular_values, layer.target_singular_values, s.r))
        self.sv_caption.set_text(
            f"Singular values of ΔW from a float64 SVD: {nonzero} of {len(layer.delta_singular_values)} are non-zero "
            f"(rank(B·A) ≤ r = {s.r}); the rest are 0 up to round-off."
        )

