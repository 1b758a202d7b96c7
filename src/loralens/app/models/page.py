"""The Models page: exact LoRA counts, training memory and other methods for a real model.

Every number comes from ``charts_models.compute`` (one call per change, ~10 ms for the largest preset, so it
runs inline); this module only owns the controls and copies the result into elements. Each browser tab builds
its own ``ModelsPage``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nicegui import ui
from starlette.requests import Request

from loralens.app.models import view as cm
from loralens.app.layout import NumberField, error_label, page_frame, set_chart, show_message
from loralens.app.url_state import embed_of, page_url, to_query
from loralens.core import memory
from loralens.core.architectures import PRESETS, Architecture
from loralens.core.peft_config import BIAS_MODES
from loralens.core.units import binary_bytes, gib

MODEL_OPTIONS = {a.short_name: a.display_name or a.hf_id for a in PRESETS.values()}
ROW_CLASSES = "w-full items-center gap-2 no-wrap"


def register() -> None:
    """Add the page's route."""

    @ui.page("/models")
    def page(request: Request) -> None:
        query = dict(request.query_params)
        state, messages = cm.state_from_query(query)
        ModelsPage(state, messages, embed_of(query))


class ModelsPage:
    """Controls and views of one browser tab."""

    def __init__(self, state: cm.ModelsState, messages: list[str], embed: bool) -> None:
        self.state = state
        self.custom: Architecture | None = None  # a pasted or uploaded config.json, instead of the preset
        self.embed = embed
        self._syncing = False
        self.errors: dict[str, ui.label] = {}
        with page_frame("Models", embed):
            ui.label("LoRA on a real model: exact counts, training memory, other methods").classes("text-xl font-bold")
            self.url_message = ui.label("; ".join(messages)).classes("ll-warn").props(
                'role="alert" data-testid="url-message"')
            self.url_message.set_visibility(bool(messages))
            with ui.row().classes("w-full items-start gap-4 no-wrap max-md:flex-wrap"):
                with ui.column().classes("gap-1 w-full md:w-[360px] md:min-w-[360px]"):
                    self._build_lora_controls()
                    self._build_training_controls()
                with ui.column().classes("grow gap-2 min-w-0 w-full"):
                    self._build_summary()
                    self._build_charts()
            self._build_tables()
        self.render()

    # ------------------------------------------------------------------------------------------ controls

    def _error(self, name: str) -> ui.label:
        label = error_label().props(f'data-testid="error-{name}"')
        self.errors[name] = label
        return label

    def _build_lora_controls(self) -> None:
        s = self.state
        ui.label("Model and LoRA").classes("font-semibold")
        self.model_select = ui.select(MODEL_OPTIONS, value=s.model, label="model",
                                      on_change=lambda e: self._set_model(e.value)).props(
                                          'dense outlined data-testid="model"').mark("model").classes("w-full")
        self._error("model")
        with ui.expansion("or paste / upload a config.json").classes("w-full").props('dense data-testid="config-box"'):
            self.config_text = ui.textarea(placeholder='{"model_type": "llama", "hidden_size": 4096, ...}').props(
                'dense outlined autogrow data-testid="config-text"').mark("config-text").classes(
                    "w-full font-mono text-xs")
            with ui.row().classes(ROW_CLASSES):
                ui.button("use this config", on_click=lambda: self._use_config(self.config_text.value or "")).props(
                    'dense flat data-testid="config-use"').mark("config-use")
                self.config_upload = ui.upload(auto_upload=True, max_file_size=cm.CONFIG_LIMIT,
                                               on_upload=self._config_uploaded, label="config.json").props(
                    'accept=".json" flat dense data-testid="config-upload"').classes("w-40")
            self._error("config")
        ui.label("target modules").classes("text-sm ll-muted")
        self.all_linear = ui.checkbox("all-linear", value=s.targets == cm.ALL_LINEAR,
                                      on_change=lambda e: self._targets_changed()).props(
                                          'data-testid="all-linear"').mark("all-linear")
        self.target_row = ui.row().classes("w-full gap-x-2 gap-y-0 flex-wrap")
        self.target_boxes: dict[str, ui.checkbox] = {}
        self._build_target_boxes()
        self._error("targets")
        with ui.row().classes(ROW_CLASSES):
            self.r_input = NumberField("r", value=s.r, min=1, precision=0, step=1,
                                       on_change=lambda e: self._typed("r", e.value, int)).props(
                                           'dense outlined data-testid="r"').mark("r").classes("w-24")
            self.alpha_input = NumberField("alpha", value=s.alpha, min=0, step=1,
                                           on_change=lambda e: self._typed("alpha", e.value, float)).props(
                                               'dense outlined data-testid="alpha"').mark("alpha").classes("w-24")
            self.bias_select = ui.select(list(BIAS_MODES), value=s.bias, label="bias",
                                         on_change=lambda e: self._set(bias=e.value)).props(
                                             'dense outlined data-testid="bias"').mark("bias").classes("w-28")
        self._error("r")
        self._error("alpha")
        self._error("bias")
        with ui.row().classes(ROW_CLASSES):
            self.rslora_box = ui.checkbox("rsLoRA", value=s.rslora, on_change=lambda e: self._set(rslora=e.value)
                                          ).props('data-testid="rslora"').mark("rslora")
            self.dora_box = ui.checkbox("DoRA", value=s.dora, on_change=lambda e: self._set(dora=e.value)).props(
                'data-testid="dora"').mark("dora")

    def _build_target_boxes(self) -> None:
        self.target_row.clear()
        self.target_boxes = {}
        arch = self._arch()
        choices = cm.module_choices(arch)
        chosen = cm.ticked_choices(choices, self._chosen_targets())
        with self.target_row:
            for name in choices:
                self.target_boxes[name] = ui.checkbox(name, value=name in chosen,
                                                      on_change=lambda e: self._targets_changed()).props(
                    f'dense data-testid="target-{name}"').mark(f"target-{name}")
        disabled = self.state.targets == cm.ALL_LINEAR
        for box in self.target_boxes.values():
            box.set_enabled(not disabled)

    def _chosen_targets(self) -> set[str]:
        """The boxes to tick: the state's names, or PEFT's default targets when the state says default."""
        s = self.state
        if s.targets and s.targets != cm.ALL_LINEAR:
            return set(s.targets.split(","))
        if not s.targets:
            return set(self._arch().family.lora_targets)
        return set()

    def _build_training_controls(self) -> None:
        s = self.state
        ui.label("Training").classes("font-semibold mt-2")
        with ui.row().classes("w-full gap-2 flex-wrap"):
            self.method_select = self._select("method", list(memory.METHODS), s.method, "w-28")
            self.dtype_select = self._select("dtype", list(memory.DTYPES), s.dtype, "w-24")
            self.optimizer_select = self._select("optimizer", list(memory.OPTIMIZERS), s.optimizer, "w-32")
        with ui.row().classes("w-full gap-2 flex-wrap"):
            self.batch_input = NumberField("micro-batch", value=s.batch, min=1, precision=0, step=1,
                                           on_change=lambda e: self._typed("batch", e.value, int)).props(
                                               'dense outlined data-testid="batch"').mark("batch").classes("w-28")
            self.seq_input = NumberField("seq len", value=s.seq, min=1, precision=0, step=128,
                                         on_change=lambda e: self._typed("seq", e.value, int)).props(
                                             'dense outlined data-testid="seq"').mark("seq").classes("w-28")
            self.gpus_input = NumberField("GPUs", value=s.gpus, min=1, precision=0, step=1,
                                          on_change=lambda e: self._typed("gpus", e.value, int)).props(
                                              'dense outlined data-testid="gpus"').mark("gpus").classes("w-24")
        self._error("batch")
        self._error("seq")
        self._error("gpus")
        with ui.row().classes("w-full gap-2 items-center flex-wrap"):
            self.sharding_select = self._select("sharding", list(memory.SHARDINGS), s.sharding, "w-32")
            self.ckpt_box = ui.checkbox("gradient checkpointing", value=s.ckpt,
                                        on_change=lambda e: self._set(ckpt=e.value)).props(
                                            'data-testid="ckpt"').mark("ckpt")
        for name in ("method", "dtype", "optimizer", "sharding"):
            self._error(name)

    def _select(self, name: str, options: list[str], value: str, width: str) -> ui.select:
        return ui.select(options, value=value, label=name, on_change=lambda e: self._set(**{name: e.value})).props(
            f'dense outlined data-testid="{name}"').mark(name).classes(width)

    # ------------------------------------------------------------------------------------------ outputs

    def _build_summary(self) -> None:
        with ui.card().classes("ll-card"):
            self.headline = ui.label("").classes("font-semibold").props('data-testid="headline"').mark("headline")
            with ui.row().classes("w-full gap-x-6 gap-y-1 flex-wrap"):
                self.numbers: dict[str, ui.label] = {}
                for key, title in (("trainable", "trainable"), ("percent", "of all params"),
                                   ("total", "all params"), ("adapter", "adapter (bf16 / fp32)"),
                                   ("memory", "memory per GPU"), ("fits", "fits on")):
                    with ui.column().classes("gap-0"):
                        ui.label(title).classes("text-xs ll-muted")
                        self.numbers[key] = ui.label("").classes("ll-num").props(f'data-testid="num-{key}"')
            self.memory_caption = ui.label("").classes("text-xs ll-muted")
            with ui.row().classes("w-full items-baseline gap-1 no-wrap"):
                ui.label("CLI:").classes("text-xs ll-muted")
                self.cli_label = ui.label("").classes("text-xs font-mono break-all").props(
                    'data-testid="cli-command"')

    def _build_charts(self) -> None:
        with ui.row().classes("w-full gap-2 flex-wrap"):
            with ui.column().classes("w-full gap-0 min-w-0"):
                ui.label("Training memory per GPU: full vs LoRA vs QLoRA").classes("text-sm font-semibold")
                self.memory_chart = ui.echart({}).classes("w-full h-72").props(
                    'data-testid="memory-chart"').mark("memory-chart")
            with ui.column().classes("w-full gap-0 min-w-0"):
                ui.label("Trainable parameters by method (same targets and r)").classes("text-sm font-semibold")
                self.methods_chart = ui.echart({}).classes("w-full h-72").props(
                    'data-testid="methods-chart"').mark("methods-chart")

    def _build_tables(self) -> None:
        ui.label("Adapted modules, by kind").classes("font-semibold")
        columns = [
            {"name": "name", "label": "module", "field": "name", "align": "left"},
            {"name": "count", "label": "count", "field": "count"},
            {"name": "shape", "label": "in → out", "field": "shape"},
            {"name": "r", "label": "r", "field": "r"},
            {"name": "scaling", "label": "scaling", "field": "scaling"},
            {"name": "params", "label": "params", "field": "params"},
        ]
        self.group_table = ui.table(columns=columns, rows=[], row_key="name").props(
            'dense flat bordered wrap-cells data-testid="module-table"').mark("module-table").classes("w-full")
        self.all_modules = ui.expansion("every adapted module").classes("w-full").props(
            'data-testid="all-modules"').mark("all-modules")
        with self.all_modules:
            self.module_table = ui.table(columns=columns, rows=[], row_key="name",
                                         pagination={"rowsPerPage": 20}).props("dense flat").classes("w-full")
        ui.label("Methods side by side").classes("font-semibold")
        self.method_table = ui.table(columns=[
            {"name": "name", "label": "method", "field": "name", "align": "left"},
            {"name": "trainable", "label": "trainable", "field": "trainable"},
            {"name": "percent", "label": "% of all params", "field": "percent"},
            {"name": "formula", "label": "formula", "field": "formula", "align": "left"},
        ], rows=[], row_key="name").props(
            'dense flat bordered wrap-cells data-testid="method-table"').mark("method-table").classes("w-full")
        ui.label("Memory is an estimate (formulas and sources: docs/models-memory.md in the loralens source "
                 "repository); counts are exact, as PEFT's get_peft_model reports them.").classes("text-xs ll-muted")

    # ------------------------------------------------------------------------------------------ changes

    def _typed(self, name: str, value: Any, kind: type) -> None:
        if self._syncing:
            return
        param = next(p for p in cm.SCHEMA if p.name == name)
        if value is None or value == "":
            show_message(self.errors[name], "enter a number")
            return
        if kind is int and float(value) != int(float(value)):
            show_message(self.errors[name], f"must be a whole number, got {value:g}")
            return
        number = kind(value)
        low, high = param.low, param.high
        if (low is not None and number < low) or (high is not None and number > high):
            show_message(self.errors[name], f"must be from {low:g} to {high:g}, got {number:g}")
            return
        show_message(self.errors[name], None)
        self._set(**{name: number})

    def _arch(self) -> Architecture:
        return self.custom or PRESETS_BY_SHORT[self.state.model]

    def _use_config(self, text: str | bytes, name: str = "config.json") -> None:
        arch, problem = cm.parse_config_text(text, name)
        show_message(self.errors["config"], problem)
        if arch is None:
            return
        self.custom = arch
        self.state = replace(self.state, targets="" if self.state.targets != cm.ALL_LINEAR else cm.ALL_LINEAR)
        self._build_target_boxes()
        self.render()

    async def _config_uploaded(self, event: Any) -> None:
        file = event.file
        self.config_upload.reset()
        self._use_config(await file.read(), file.name or "config.json")

    def _set_model(self, model: str) -> None:
        if self._syncing or model not in MODEL_OPTIONS:
            return
        self.custom = None
        self.state = replace(self.state, model=model, targets="" if self.state.targets != cm.ALL_LINEAR
                             else cm.ALL_LINEAR)
        self._build_target_boxes()
        self.render()

    def _targets_changed(self) -> None:
        if self._syncing:
            return
        if self.all_linear.value:
            targets = cm.ALL_LINEAR
        else:
            targets = ",".join(n for n, box in self.target_boxes.items() if box.value)
            if not targets:
                show_message(self.errors["targets"], "choose at least one module (or all-linear)")
                return
        for box in self.target_boxes.values():
            box.set_enabled(targets != cm.ALL_LINEAR)
        self._set(targets=targets)

    def _set(self, **changes: Any) -> None:
        if self._syncing:
            return
        self.state = replace(self.state, **changes)
        self.render()

    # ------------------------------------------------------------------------------------------ render

    def render(self) -> None:
        s = self.state
        result = cm.compute(s, self.custom)
        for name, label in self.errors.items():
            show_message(label, result.errors.get(name))
        ui.navigate.history.replace(page_url("/models", to_query(cm.SCHEMA, s.as_dict()), self.embed))
        self.cli_label.set_text(cm.cli_command(s, self.custom.short_name + ".json" if self.custom else None))
        if result.count is None or result.arch is None:
            return  # keep the last good numbers; the message is beside the control
        count, arch = result.count, result.arch
        extra = [x for x in ("rsLoRA" if s.rslora else "", "DoRA" if s.dora else "",
                             f"bias={s.bias}" if s.bias != "none" else "") if x]
        targets = count.target_modules
        target_text = ", ".join(targets) if isinstance(targets, tuple) else targets
        self.headline.set_text(f"{arch.display_name}: r = {s.r}, alpha = {s.alpha:g} on {target_text} "
                               f"({len(count.modules)} modules){' · ' + ', '.join(extra) if extra else ''}")
        self.numbers["trainable"].set_text(f"{count.trainable:,}")
        self.numbers["percent"].set_text(f"{count.percent:.4f}%")
        self.numbers["total"].set_text(f"{count.total:,}")
        self.numbers["adapter"].set_text(f"{binary_bytes(count.adapter_bytes['bf16'])} / "
                                         f"{binary_bytes(count.adapter_bytes['fp32'])}")
        chosen = result.memory.get(s.method)
        if chosen is not None:
            total = chosen.per_device.total
            self.numbers["memory"].set_text(f"{gib(total):,.1f} GiB ({cm.METHOD_LABELS[s.method]})")
            fits = [f"{g} GB" for g in cm.GPU_LINES_GIB if total <= g * cm.GiB]
            self.numbers["fits"].set_text(", ".join(fits) if fits else "none of 24/40/80 GB")
            ckpt = "checkpointing" if s.ckpt else "no checkpointing"
            self.memory_caption.set_text(
                f"{s.dtype}, {s.optimizer}, micro-batch {s.batch} × {s.seq} tokens, {ckpt}"
                + (f", {s.gpus} GPUs {s.sharding}" if s.gpus > 1 else "")
                + "; QLoRA: NF4 base with double quantisation.")
            set_chart(self.memory_chart, cm.memory_chart_option(result.memory))
        if result.methods:
            set_chart(self.methods_chart, cm.methods_chart_option(result.methods))
            self.method_table.rows = [{"name": m.name, "trainable": f"{m.trainable:,}",
                                       "percent": f"{m.percent:.4f}%", "formula": m.formula}
                                      for m in result.methods]
            self.method_table.update()
        self.group_table.rows = [{"name": g.name, "count": g.count, "shape": f"{g.in_features} → {g.out_features}",
                                  "r": g.r, "scaling": f"{g.scaling:.4g}", "params": f"{g.params:,}"}
                                 for g in result.groups]
        self.group_table.update()
        self.all_modules.text = f"every adapted module ({len(count.modules)})"
        self.module_table.rows = [{"name": m.name, "count": 1, "shape": f"{m.in_features} → {m.out_features}",
                                   "r": m.r, "scaling": f"{m.scaling:.4g}", "params": f"{m.params:,}"}
                                  for m in count.modules]
        self.module_table.update()


PRESETS_BY_SHORT = {a.short_name: a for a in PRESETS.values()}

