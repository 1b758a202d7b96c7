"""The Inspector page: open a real PEFT LoRA adapter, see what is in it, and download a resized copy.

It opens on the small adapter shipped with loralens (src/loralens/data/sample_adapter). Another adapter comes
from an upload of its two files, or, while the app listens on loopback only, from a folder on the server's disk.
Reading, inspecting and resizing run in a worker thread (``app.workers``, bounded and queued: numpy releases the GIL in its linear
algebra, the adapter's arrays need no pickling into a process, and the library's AdapterError reaches the page
with its type), so the page never freezes. All numbers come from ``loralens.adapters`` and the pure
``app/inspector/view.py``; what runs off the loop is in ``loading.py``, upload checks in ``uploads.py``; this module
only renders. It is over 400 lines because it is one session's page object: its cards (open, summary, table,
spectrum, heatmaps, resize) share that state, and splitting the class would only scatter it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from urllib.parse import urlencode

from nicegui import events, run, ui
from starlette.requests import Request

from loralens.adapters.peft_format import CONFIG_NAME, WEIGHTS_NAME
from loralens.app.inspector import resize_view as rv
from loralens.app.inspector import view as ci
from loralens.app.inspector.loading import open_bytes, open_folder, open_single_bytes, resized_zip, sample_path
from loralens.app import security, sessions, settings, workers
from loralens.app.inspector.uploads import UploadRefused, classify, limit_text, rejection_message
from loralens.app.layout import NumberField, error_label, page_frame, show_message, tag
from loralens.app.url_state import Param, format_value, page_url, read_query
from loralens.core.validation import check_float, check_int
from loralens.errors import LoraLensError

log = logging.getLogger(__name__)

MODES = ("energy", "rank")
SCHEMA = (
    Param("module", str, ""),
    Param("mode", str, "energy", choices=MODES),
    Param("rank", int, 8, low=1, high=65536),
    Param("energy", float, 0.99, low=0.01, high=1.0),
    Param("path", str, ""),
)
UPLOAD_NAME = "upload"  # errors in uploaded files read "upload/adapter_model.safetensors: ..."



def describe(error: BaseException, what: str) -> str:
    """One line for the page: the library's message, or the type and message of anything unexpected."""
    if isinstance(error, LoraLensError):
        return str(error)
    log.exception("unexpected error while %s", what)
    return f"{what}: {type(error).__name__}: {error}"


@dataclass
class Loaded:
    adapter: Any
    report: Any
    label: str
    stem: str


# ---------------------------------------------------------------- the page


class InspectorPage:
    """One browser session's Inspector: its controls, the adapter it shows, and its URL state."""

    def __init__(self, values: dict[str, Any], embed: bool, disk_refusal: str | None = None) -> None:
        self.disk_refusal = disk_refusal  # why this session may not open folders (security.disk_refusal)
        self.session = ui.context.client.id
        self.values = values
        self.embed = embed
        self.loaded: Loaded | None = None
        self.pending: dict[str, tuple[str, bytes]] = {}
        self.generation = 0  # counts opens; only the latest one's result is shown
        self.limit = settings.current.upload_limit_bytes

    def release(self) -> None:
        """Drop the adapter, the pending upload bytes and the shown report when the session ends."""
        self.generation += 1  # a read still running is discarded when it returns
        self.loaded = None
        self.pending.clear()

    # ---- building

    def build_open_card(self) -> None:
        with ui.card().classes("ll-card"):
            ui.label("Open an adapter").classes("text-base font-semibold")
            ui.label(
                f"Upload its two files, {CONFIG_NAME} and {WEIGHTS_NAME}, or a .zip of both (each up to "
                f"{limit_text(self.limit)}). Pickle files (.bin, .pt) are refused."
            ).classes("ll-muted text-sm")
            self.upload = tag(
                ui.upload(
                    multiple=True,
                    auto_upload=True,
                    max_file_size=self.limit,
                    on_multi_upload=self.on_upload,
                    label="adapter_config.json + adapter_model.safetensors",
                )
                .props('accept=".json,.safetensors,.zip,.bin,.pt,.pth" flat bordered')
                .classes("w-full max-w-md"),
                "inspector-upload",
            )
            self.upload.on(
                "rejected",
                self.on_rejected,
                js_handler="(entries) => emit(entries.map(e => ({name: e.file.name, size: e.file.size, "
                "reason: e.failedPropValidation})))",
            )
            self.upload_status = ui.label("").classes("ll-muted text-sm")
            self.upload_status.set_visibility(False)
            self.upload_error = tag(error_label(), "upload-error")
            if self.disk_refusal is None:
                with ui.row().classes("w-full items-end gap-2 no-wrap"):
                    self.path_input = (
                        ui.input("or a folder on this machine", placeholder="/path/to/adapter")
                        .props('clearable dense data-testid="path-input"').mark("path-input")
                        .classes("grow")
                        .on("keydown.enter", self.on_open_path)
                    )
                    tag(ui.button("Open", on_click=self.on_open_path), "path-open")
            else:
                ui.label(self.disk_refusal[0].upper() + self.disk_refusal[1:] + ".").classes("ll-muted text-sm")
            self.path_error = tag(error_label(), "path-error")

    def build(self, messages: list[str]) -> None:
        with ui.row().classes("w-full items-baseline gap-x-3 gap-y-0 wrap"):
            ui.label("Inspector").classes("text-xl font-bold")
            self.shown = tag(ui.label("").classes("ll-muted"), "inspector-source")
        self.url_error = tag(error_label(), "url-error")
        self.url_messages = list(messages)
        show_message(self.url_error, "; ".join(self.url_messages))
        self.build_open_card()
        with ui.row().classes("items-center gap-2") as self.busy:
            ui.spinner(size="md")
            self.busy_text = ui.label("Reading…")
        self.busy.set_visibility(False)
        self.results = ui.column().classes("w-full gap-3")

    # ---- opening

    async def open_with(self, work: Callable[..., tuple[Any, Any]], *args: Any, label: str, stem: str,
                        error: ui.label) -> bool:
        """Run ``work(*args)`` in a thread and show its adapter; on failure keep the old one and show why."""
        show_message(error, None)
        self.generation += 1
        generation = self.generation
        self.busy_text.set_text(f"Reading {label}…")
        self.busy.set_visibility(True)
        try:  # app.workers: bounded, queued, one read per session (a newer open replaces a waiting one)
            result = await workers.current.run(workers.current.job(self.session, "read"), work, *args)
        except workers.Cancelled:
            return False
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a traceback
            if generation == self.generation:
                show_message(error, describe(exc, f"reading {label}"))
            return False
        finally:
            if generation == self.generation:
                self.busy.set_visibility(False)
        if result is None or generation != self.generation:  # the app is stopping, or a newer open won
            return False
        adapter, report = result
        self.loaded = Loaded(adapter, report, label, stem)
        self.render()
        return True

    async def open_sample(self) -> None:
        await self.open_with(open_folder, sample_path(), label="the sample adapter shipped with loralens",
                             stem="sample_adapter", error=self.upload_error)

    def path_refusal(self) -> str | None:
        return self.disk_refusal

    async def open_path(self, text: str, error: ui.label) -> bool:
        refusal = self.path_refusal()
        if refusal:
            show_message(error, refusal)
            return False
        text = text.strip()
        if not text:
            show_message(error, "type the path of an adapter folder")
            return False
        path = Path(text).expanduser()
        opened = await self.open_with(open_folder, path, label=str(path), stem=path.name or "adapter", error=error)
        if opened:
            self.values["path"] = str(path)
            self.values["module"] = ""
            self.sync_url()
        return opened

    async def on_open_path(self) -> None:
        await self.open_path(self.path_input.value or "", self.path_error)

    def on_rejected(self, event: events.GenericEventArguments) -> None:
        show_message(self.upload_error, rejection_message(event.args, self.limit))

    async def on_upload(self, event: events.MultiUploadEventArguments) -> None:
        problems = []
        for file in event.files:
            name = file.name or "unnamed file"
            if file.size() > self.limit:
                problems.append(f"{name} is larger than the {limit_text(self.limit)} limit")
                continue
            try:
                part = await run.io_bound(classify, name, await file.read(), self.limit)
            except UploadRefused as why:
                problems.append(str(why))
                continue
            if part is None:  # the app is stopping
                return
            if part.config is not None:
                self.pending["config"] = (name, part.config)
            if part.weights is not None:
                self.pending["weights"] = (part.weights_name, part.weights)
        self.upload.reset()
        show_message(self.upload_error, "; ".join(problems))
        if "config" in self.pending and "weights" in self.pending:
            (_, config), (weights_name, weights) = self.pending["config"], self.pending["weights"]
            self.pending.clear()
            self.upload_status.set_visibility(False)
            stem = weights_name.rsplit(".", 1)[0]
            opened = await self.open_with(open_bytes, config, weights, UPLOAD_NAME, label=f"upload {weights_name}",
                                          stem=stem, error=self.upload_error)
            if opened and problems:
                show_message(self.upload_error, "; ".join(problems))
            if opened:
                self.values["path"] = ""
                self.values["module"] = ""
                self.sync_url()
        elif "weights" in self.pending and await self.open_single():  # a kohya / diffusers file needs no config
            pass
        elif self.pending:
            have = next(iter(self.pending.values()))[0]
            missing = WEIGHTS_NAME if "config" in self.pending else CONFIG_NAME
            self.upload_status.set_text(f"Received {have}; now add {missing}.")
            self.upload_status.set_visibility(True)

    async def open_single(self) -> bool:
        """Open the pending .safetensors alone if it is a kohya or diffusers file."""
        weights_name, weights = self.pending["weights"]
        try:
            single = await run.io_bound(open_single_bytes, weights, weights_name)
        except Exception as exc:  # noqa: BLE001 - e.g. a LyCORIS file: say what it is, never a traceback
            self.pending.clear()
            self.upload_status.set_visibility(False)
            show_message(self.upload_error, describe(exc, f"reading upload {weights_name}"))
            return True
        if single is None:
            return False
        self.pending.clear()
        self.upload_status.set_visibility(False)
        stem = weights_name.rsplit(".", 1)[0]
        opened = await self.open_with(lambda: single, label=f"upload {weights_name}", stem=stem,
                                      error=self.upload_error)
        if opened:
            self.values["path"] = ""
            self.values["module"] = ""
            self.sync_url()
        return True

    # ---- URL state

    def url_message(self, message: str) -> None:
        """Add a line about a URL parameter that could not be used as given."""
        self.url_messages.append(message)
        show_message(self.url_error, "; ".join(self.url_messages))

    def sync_url(self) -> None:
        query = {p.name: format_value(self.values[p.name]) for p in SCHEMA if self.values[p.name] != p.default}
        ui.navigate.history.replace(page_url("/inspector", urlencode(query), self.embed))

    # ---- rendering a report

    def render(self) -> None:
        assert self.loaded is not None
        report = self.loaded.report
        self.shown.set_text(f"Showing {self.loaded.label}")
        self.results.clear()
        names = [m.name for m in report.modules]
        if self.values["module"] not in names:
            if self.values["module"]:
                self.url_message(f"URL parameter module: no module named {self.values['module']!r} in this "
                                 f"adapter; showing {names[0] if names else 'none'}")
                self.values["module"] = ""
        with self.results:
            self.render_summary(report)
            self.render_table(report)
            self.render_other(report)
            if names:
                self.render_module(report, names)
                self.render_heatmaps(report)
                self.render_resize(report)

    def render_summary(self, report: Any) -> None:
        with tag(ui.card().classes("ll-card"), "inspector-summary"):
            ui.label("Summary").classes("text-base font-semibold")
            with ui.element("div").classes("w-full").style(
                "display:grid; grid-template-columns:repeat(auto-fill,minmax(170px,1fr)); gap:4px 16px"
            ):
                for label, text in ci.summary_rows(report.summary):
                    with ui.column().classes("gap-0"):
                        ui.label(label).classes("ll-muted text-xs")
                        value = ui.label(text).classes("ll-num break-words")
                        if label == "NaN/Inf" and text != "none":
                            value.classes("ll-warn")

    def render_table(self, report: Any) -> None:
        with ui.card().classes("ll-card"):
            ui.label(f"Modules ({len(report.modules)})").classes("text-base font-semibold")
            ui.label("Click a column to sort, a row to show its spectrum. Energy at r/2: the share of ‖ΔW‖²_F "
                     "that the best rank-⌊r/2⌋ approximation keeps.").classes("ll-muted text-sm")
            self.table = (
                ui.table(columns=ci.table_columns(), rows=ci.table_rows(report), row_key="name",
                         pagination={"rowsPerPage": 20, "sortBy": None})
                .props('dense flat bordered data-testid="inspector-table"').mark("inspector-table")
                .classes("w-full")
                .style("max-width: 100%")
            )
            self.table.on("row-click", self.on_row_click, js_handler="(evt, row) => emit(row.name)")

    def render_other(self, report: Any) -> None:
        """The tensors that are not LoRA factors (why the file is that big) and the modules not read."""
        other, unsupported = getattr(report, "other_tensors", ()), getattr(report, "unsupported", ())
        if not other and not unsupported:
            return
        with tag(ui.card().classes("ll-card"), "inspector-other"):
            if other:
                share = sum(t.share for t in other)
                ui.label(f"Not LoRA factors: {len(other)} tensors, {share:.1%} of the file").classes(
                    "text-base font-semibold")
                ui.table(columns=ci.other_columns(), rows=ci.other_rows(report), row_key="name",
                         pagination={"rowsPerPage": 10}).props(
                    'dense flat bordered data-testid="other-table"').mark("other-table").classes("w-full")
            for item in unsupported:
                prefix = "Fused experts" if item.get("inspected") else "Not read"
                ui.label(f"{prefix}: module {item['name']}: {item['reason']}").classes("ll-warn text-sm")

    def selected(self, report: Any) -> Any:
        name = self.values["module"]
        for module in report.modules:
            if module.name == name:
                return module
        return report.modules[0]

    def render_module(self, report: Any, names: list[str]) -> None:
        module = self.selected(report)
        with ui.card().classes("ll-card"):
            ui.label("One module's spectrum").classes("text-base font-semibold")
            self.picker = (
                ui.select(names, value=module.name, with_input=True, label="module", on_change=self.on_pick)
                .props('dense options-dense data-testid="module-picker"').mark("module-picker")
                .classes("w-full max-w-xl")
            )
            self.module_facts = ui.label("").classes("ll-muted text-sm ll-num")
            with ui.row().classes("w-full gap-2 wrap"):
                chart_style = "height: 280px; flex: 1 1 320px; min-width: 260px"
                self.spectrum = tag(ui.echart(ci.spectrum_option([module])).style(chart_style), "spectrum-chart")
                self.energy = tag(ui.echart(self.energy_options(module)).style(chart_style), "energy-chart")
        self.show_facts(module)

    def energy_options(self, module: Any) -> dict[str, Any]:
        threshold = self.values["energy"] if self.values["mode"] == "energy" else None
        return ci.energy_option([module], threshold=threshold)

    def show_facts(self, module: Any) -> None:
        row = ci.module_row(module)
        fro = "—" if row["delta_fro"] is None else f"{row['delta_fro']:.4g}"
        eff = "—" if row["effective_rank"] is None else f"{row['effective_rank']:.3g}"
        self.module_facts.set_text(
            f"{module.name}: {row['shape']}, r = {row['r']}, scaling = {module.scaling:g}, ‖ΔW‖_F = {fro}, "
            f"numerical rank {row['numerical_rank']}, effective rank {eff}"
        )

    def show_module(self, name: str) -> None:
        if self.loaded is None:
            return
        self.values["module"] = name
        module = self.selected(self.loaded.report)
        self.spectrum.options.clear()
        self.spectrum.options.update(ci.spectrum_option([module]))
        self.spectrum.update()
        self.energy.options.clear()
        self.energy.options.update(self.energy_options(module))
        self.energy.update()
        self.show_facts(module)
        self.sync_url()

    def on_pick(self, event: events.ValueChangeEventArguments) -> None:
        if event.value:
            self.show_module(str(event.value))

    def on_row_click(self, event: events.GenericEventArguments) -> None:
        if isinstance(event.args, str):
            self.picker.set_value(event.args)  # on_pick shows it

    def render_heatmaps(self, report: Any) -> None:
        types = len({m.module_type for m in report.modules})
        height = 110 + 26 * types
        with ui.card().classes("ll-card"):
            ui.label("Layers × module type").classes("text-base font-semibold")
            with ui.row().classes("w-full gap-2 wrap"):
                for metric in ci.HEATMAP_METRICS:
                    ui.echart(ci.heatmap_option(report, metric)).style(
                        f"height: {height}px; flex: 1 1 420px; min-width: 260px"
                    ).props(f'data-testid="heatmap-{metric}"').mark(f"heatmap-{metric}")

    # ---- resize

    def render_resize(self, report: Any) -> None:
        max_r = max(int(m.r) for m in report.modules)
        with ui.card().classes("ll-card"):
            ui.label("Resize").classes("text-base font-semibold")
            ui.label("Cut every module to a fixed rank, or per module to the smallest rank that keeps a share of "
                     "its Frobenius energy. The download is a valid PEFT adapter whose ΔW is each module's best "
                     "approximation at its new rank.").classes("ll-muted text-sm")
            with ui.row().classes("items-start gap-3 wrap"):
                self.mode = tag(ui.toggle({"energy": "keep energy", "rank": "fixed rank"}, value=self.values["mode"],
                                          on_change=self.on_resize_change), "resize-mode")
                self.energy_input = (
                    NumberField("energy to keep", value=self.values["energy"], min=0.01, max=1.0, step=0.005,
                                format="%.3f", on_change=self.on_resize_change)
                    .props('dense data-testid="resize-energy"').mark("resize-energy").classes("w-36")
                )
                self.rank_input = (
                    NumberField("rank", value=min(self.values["rank"], max_r), min=1, max=max_r, step=1,
                                precision=0, on_change=self.on_resize_change)
                    .props('dense data-testid="resize-rank"').mark("resize-rank").classes("w-28")
                )
                self.download_button = tag(ui.button("Download resized adapter (.zip)", icon="download",
                                                     on_click=self.on_download), "resize-download")
            self.resize_error = tag(error_label(), "resize-error")
            self.resize_summary = tag(ui.label("").classes("ll-num"), "resize-summary")
            self.resize_table = (
                ui.table(columns=rv.resize_columns(), rows=[], row_key="name", pagination={"rowsPerPage": 10})
                .props('dense flat bordered data-testid="resize-table"').mark("resize-table")
                .classes("w-full")
            )
        self.update_resize()

    def resize_setting(self) -> tuple[int | None, float | None]:
        """(rank, energy) from the controls, one of them None; raises InvalidParameterError naming the control."""
        assert self.loaded is not None
        max_r = max(int(m.r) for m in self.loaded.report.modules)
        if self.mode.value == "rank":
            return check_int("rank", self.rank_input.value, 1, max_r), None
        return None, check_float("energy to keep", self.energy_input.value, 0.0, 1.0, low_open=True)

    def update_resize(self) -> None:
        assert self.loaded is not None
        by_rank = self.mode.value == "rank"
        self.rank_input.set_visibility(by_rank)
        self.energy_input.set_visibility(not by_rank)
        try:
            rank, energy = self.resize_setting()
        except LoraLensError as error:
            show_message(self.resize_error, str(error))
            self.download_button.disable()
            return
        show_message(self.resize_error, None)
        self.download_button.enable()
        preview = rv.resize_preview(self.loaded.report, rank=rank, energy=energy)
        self.resize_rows = rv.resize_rows(preview)
        self.resize_table.rows = self.resize_rows
        self.resize_table.update()
        before, after = preview.parameters_before, preview.parameters_after
        share = after / before if before else 1.0
        self.resize_summary.set_text(
            f"LoRA parameters {before:,} → {after:,} ({share:.1%}); lowest energy kept "
            f"{preview.min_energy_kept:.4f}, largest relative error {preview.max_error:.3g}"
        )
        self.values["mode"] = self.mode.value
        if rank is not None:
            self.values["rank"] = rank
        if energy is not None:
            self.values["energy"] = energy

    def on_resize_change(self) -> None:
        if self.loaded is None:
            return
        self.update_resize()
        module = self.selected(self.loaded.report)
        self.energy.options.clear()
        self.energy.options.update(self.energy_options(module))
        self.energy.update()
        self.sync_url()

    async def on_download(self) -> None:
        if self.loaded is None:
            return
        try:
            rank, energy = self.resize_setting()
        except LoraLensError as error:
            show_message(self.resize_error, str(error))
            return
        loaded = self.loaded
        self.download_button.props("loading")
        try:
            data = await workers.current.run(workers.current.job(self.session, "resize"), resized_zip,
                                             loaded.adapter, rank, energy)
        except workers.Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - shown beside the button
            show_message(self.resize_error, describe(exc, "resizing"))
            return
        finally:
            self.download_button.props(remove="loading")
        if data is None:
            return
        suffix = f"r{rank}" if rank is not None else f"energy{energy:g}"
        ui.download.content(data, f"{loaded.stem}-{suffix}.zip", "application/zip")


def register() -> None:
    """Add the page's route."""

    @ui.page("/inspector")
    async def page(request: Request) -> None:
        query = read_query(SCHEMA, request.query_params)
        values, messages, embed = query.values, query.messages, query.embed
        with page_frame("Inspector", embed):
            view = InspectorPage(values, embed, security.disk_refusal(request.cookies))
            sessions.on_end(view.release)
            view.build(messages)
            view.busy_text.set_text("Reading the adapter…")
            view.busy.set_visibility(True)
            # deliver the page (with its spinner) first, then read the adapter
            await ui.context.client.connected()
            path = values["path"]
            if path:
                refusal = view.path_refusal()
                if refusal:
                    view.url_message(f"URL parameter path: {refusal}")
                elif await view.open_path(path, view.path_error):
                    return
            await view.open_sample()
