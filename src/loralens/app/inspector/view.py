"""Pure view-model functions for the Inspector page: an AdapterReport -> table rows and ECharts option dicts.

No NiceGUI import: every function takes the plain data that ``loralens.adapters.inspect_adapter`` returns
(duck-typed: an ``AdapterReport`` with ``summary`` and ``modules``, each ``ModuleReport`` with the fields of the
adapters contract) and returns plain dicts and tuples that the page only renders, so that every number on the
page can be tested without a browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loralens.app.palette import BLUE, GREEN, GREY, ORANGE, PURPLE, SEQUENTIAL, SKY, VERMILLION
from loralens.core.units import decimal_bytes

SERIES_COLORS = [BLUE, ORANGE, GREEN, PURPLE, VERMILLION, SKY]
HEAT_RAMP = list(SEQUENTIAL)
NO_LAYER = "—"


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None when it is missing or not finite (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def energy_at_half(module: Any) -> float | None:
    """Fraction of the module's Frobenius energy kept by its best rank-⌊r/2⌋ approximation (0 for r = 1)."""
    energy = np.asarray(module.energy, dtype=np.float64)
    half = int(module.r) // 2
    if half == 0:
        return 0.0
    if energy.size < half:
        return None
    return finite_or_none(energy[half - 1])


# ---------------------------------------------------------------- summary and table


def summary_rows(summary: Any) -> list[tuple[str, str]]:
    """(label, text) pairs for the summary card, in reading order."""

    def text(value: Any) -> str:
        if value is None or value == "":
            return "—"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (list, tuple, set, frozenset)):
            return ", ".join(str(v) for v in value) or "—"
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    nonfinite = summary.nonfinite
    fmt = getattr(summary, "format", "peft")
    note = getattr(summary, "format_note", "")
    return [
        ("Format", f"{fmt}: {note}" if note else fmt),
        ("Modules", text(summary.modules)),
        ("Parameters", text(summary.parameters)),
        ("Size", f"{decimal_bytes(summary.bytes)} ({summary.bytes:,} bytes)"),
        ("dtype", text(summary.dtype)),
        ("Base model", text(summary.base_model)),
        ("PEFT version", text(summary.peft_version)),
        ("r", text(summary.r)),
        ("lora_alpha", text(summary.alpha)),
        ("rsLoRA", text(summary.use_rslora)),
        ("DoRA", text(summary.use_dora)),
        ("Target modules", text(summary.target_modules)),
        ("NaN/Inf", "none" if not nonfinite else f"{text(nonfinite)} — see the table"),
    ]



def column_format(digits: int) -> str:
    """A q-table ``:format`` JavaScript function: ``digits`` significant digits, blank for a missing value."""
    return f'v => (v === null || v === undefined) ? "—" : Number(v).toPrecision({digits})'


def table_columns() -> list[dict[str, Any]]:
    """Columns of the per-module table (all sortable; numbers stay numbers so that sorting is numeric)."""

    def col(name: str, label: str, *, digits: int | None = None, align: str = "right") -> dict[str, Any]:
        column: dict[str, Any] = {"name": name, "label": label, "field": name, "sortable": True, "align": align}
        if digits is not None:
            column[":format"] = column_format(digits)
        return column

    return [
        col("name", "module", align="left"),
        col("shape", "shape (out × in)", align="left") | {"sortable": False},
        col("r", "r"),
        col("alpha", "alpha", digits=4),
        col("scaling", "scaling", digits=4),
        col("delta_fro", "‖ΔW‖_F", digits=4),
        col("numerical_rank", "numerical rank"),
        col("effective_rank", "effective rank", digits=3),
        col("energy_half", "energy at r/2", digits=4),
        col("a_norm", "‖A‖_F", digits=4),
        col("b_norm", "‖B‖_F", digits=4),
        col("nonfinite", "NaN/Inf", align="left"),
    ]


def module_row(module: Any) -> dict[str, Any]:
    """One module's table row: numbers as numbers (None where not finite)."""
    return {
        "name": module.name,
        "shape": f"{module.out_features} × {module.in_features}",
        "r": int(module.r),
        "alpha": finite_or_none(module.alpha),
        "scaling": finite_or_none(module.scaling),
        "delta_fro": finite_or_none(module.delta_fro),
        "numerical_rank": int(module.numerical_rank),
        "effective_rank": finite_or_none(module.effective_rank),
        "energy_half": energy_at_half(module),
        "a_norm": finite_or_none(module.a_norm),
        "b_norm": finite_or_none(module.b_norm),
        "nonfinite": "NaN/Inf" if module.nonfinite else "none",
    }


def other_columns() -> list[dict[str, Any]]:
    """Columns of the table of tensors that are not LoRA factors."""
    names = [("name", "tensor", "left"), ("what", "what", "left"), ("dtype", "dtype", "left"),
             ("shape", "shape", "left"), ("bytes", "size", "right"), ("share", "share of the file", "right")]
    return [{"name": n, "label": label, "field": n, "sortable": True, "align": align} for n, label, align in names]


def other_rows(report: Any) -> list[dict[str, Any]]:
    return [{"name": t.name, "what": t.what, "dtype": t.dtype, "shape": " × ".join(map(str, t.shape)) or "scalar",
             "bytes": decimal_bytes(t.bytes), "share": f"{t.share:.1%}"} for t in report.other_tensors]


def table_rows(report: Any) -> list[dict[str, Any]]:
    """One row per module, in the report's order."""
    return [module_row(module) for module in report.modules]


# ---------------------------------------------------------------- charts


def _grid() -> dict[str, Any]:
    return {"left": 28, "right": 16, "top": 36, "bottom": 40, "containLabel": True}


def _y_name(name: str, gap: int) -> dict[str, Any]:
    """A y-axis name written along the axis (a name at the top collides with the title on narrow screens)."""
    return {"name": name, "nameLocation": "middle", "nameRotate": 90, "nameGap": gap}


def spectrum_option(modules: Sequence[Any]) -> dict[str, Any]:
    """Singular values σ_i of each module's ΔW against i, on a log axis (zeros are left out: log 0 is -∞)."""
    longest = max((len(m.singular_values) for m in modules), default=0)
    series = []
    for index, module in enumerate(modules):
        values = [v if v is not None and v > 0 else None for v in map(finite_or_none, module.singular_values)]
        series.append(
            {
                "name": module.name,
                "type": "line",
                "data": values,
                "symbol": "circle",
                "symbolSize": 6,
                "connectNulls": False,
                "color": SERIES_COLORS[index % len(SERIES_COLORS)],
            }
        )
    return {
        "animation": False,
        "title": {"text": "Singular values of ΔW", "left": "center", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "grid": _grid(),
        "xAxis": {
            "type": "category",
            "name": "i",
            "nameLocation": "middle",
            "nameGap": 24,
            "data": [str(i) for i in range(1, longest + 1)],
        },
        "yAxis": {"type": "log", **_y_name("σᵢ", 46), "minorSplitLine": {"show": False}},
        "series": series,
    }


def energy_option(modules: Sequence[Any], threshold: float | None = None) -> dict[str, Any]:
    """Cumulative Frobenius energy kept by the best rank-i approximation, with an optional target line."""
    longest = max((len(m.energy) for m in modules), default=0)
    series: list[dict[str, Any]] = []
    for index, module in enumerate(modules):
        series.append(
            {
                "name": module.name,
                "type": "line",
                "data": [finite_or_none(v) for v in module.energy],
                "symbol": "circle",
                "symbolSize": 6,
                "color": SERIES_COLORS[index % len(SERIES_COLORS)],
            }
        )
    if threshold is not None and series:
        series[0]["markLine"] = {
            "silent": True,
            "symbol": "none",
            "lineStyle": {"type": "dashed", "color": GREY},
            "label": {"formatter": f"{threshold:g}", "position": "insideEndTop"},
            "data": [{"yAxis": threshold}],
        }
    return {
        "animation": False,
        "title": {"text": "Energy kept at rank i", "left": "center", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "grid": _grid(),
        "xAxis": {
            "type": "category",
            "name": "rank i",
            "nameLocation": "middle",
            "nameGap": 24,
            "data": [str(i) for i in range(1, longest + 1)],
        },
        "yAxis": {"type": "value", "min": 0, "max": 1, **_y_name("energy kept", 36)},
        "series": series,
    }


HEATMAP_METRICS = {
    "delta_fro": "‖ΔW‖_F",
    "effective_rank": "effective rank",
}


@dataclass(frozen=True)
class HeatmapGrid:
    """Layers (columns) × module types (rows) of one metric; ``values[t][l]`` is None where no module is."""

    layers: tuple[str, ...]
    types: tuple[str, ...]
    values: tuple[tuple[float | None, ...], ...]
    counts: tuple[tuple[int, ...], ...]


def heatmap_grid(report: Any, metric: str) -> HeatmapGrid:
    """Aggregate ``metric`` per (layer, module type). Several modules in one cell (two towers sharing layer
    numbers) combine as the Frobenius norm of all of them for ‖ΔW‖_F and as the mean for the effective rank."""
    if metric not in HEATMAP_METRICS:
        raise ValueError(f"metric must be one of {', '.join(HEATMAP_METRICS)}, got {metric!r}")
    numbers = sorted({m.layer for m in report.modules if m.layer is not None})
    layers = [str(n) for n in numbers] + ([NO_LAYER] if any(m.layer is None for m in report.modules) else [])
    types = sorted({str(m.module_type) for m in report.modules})
    cells: dict[tuple[str, str], list[float]] = {}
    for module in report.modules:
        key = (str(module.module_type), NO_LAYER if module.layer is None else str(module.layer))
        cells.setdefault(key, []).append(float(getattr(module, metric)))
    values, counts = [], []
    for kind in types:
        row_values: list[float | None] = []
        row_counts: list[int] = []
        for layer in layers:
            found = cells.get((kind, layer), [])
            row_counts.append(len(found))
            if not found:
                row_values.append(None)
            elif metric == "delta_fro":
                row_values.append(finite_or_none(math.sqrt(sum(v * v for v in found))))
            else:
                row_values.append(finite_or_none(sum(found) / len(found)))
        values.append(tuple(row_values))
        counts.append(tuple(row_counts))
    return HeatmapGrid(tuple(layers), tuple(types), tuple(values), tuple(counts))


def heatmap_option(report: Any, metric: str) -> dict[str, Any]:
    """ECharts heatmap of ``metric`` with layers on x and module types on y; missing cells stay empty."""
    grid = heatmap_grid(report, metric)
    data = [
        [x, y, value]
        for y, row in enumerate(grid.values)
        for x, value in enumerate(row)
        if value is not None
    ]
    present = [d[2] for d in data]
    low = min(present) if present else 0.0
    high = max(present) if present else 1.0
    if high <= low:
        high = low + 1.0
    label = HEATMAP_METRICS[metric]
    return {
        "animation": False,
        "title": {"text": f"{label} by layer and module type", "left": "center", "textStyle": {"fontSize": 13}},
        "tooltip": {"position": "top"},
        "grid": {"left": 8, "right": 16, "top": 36, "bottom": 56, "containLabel": True},
        "xAxis": {
            "type": "category",
            "name": "layer",
            "nameLocation": "middle",
            "nameGap": 22,
            "data": list(grid.layers),
            "splitArea": {"show": True},
        },
        "yAxis": {"type": "category", "data": list(grid.types), "splitArea": {"show": True}, "inverse": True},
        "visualMap": {
            "min": low,
            "max": high,
            "calculable": False,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "itemHeight": 120,
            "itemWidth": 12,
            "text": [f"{high:.3g}", f"{low:.3g}"],
            "inRange": {"color": HEAT_RAMP},
        },
        "series": [{"name": label, "type": "heatmap", "data": data, "emphasis": {"itemStyle": {"borderWidth": 1}}}],
    }
