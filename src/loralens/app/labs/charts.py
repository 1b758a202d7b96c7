"""ECharts option dicts for the Labs page: pure functions of a lab's result (no NiceGUI import)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from loralens.app.palette import COLORS, SERIES, VIRIDIS
from loralens.core.labs.common import downsample

# Okabe–Ito, in an order where neighbours differ in lightness too
PALETTE = list(SERIES)
LOG_FLOOR = 1e-12  # a log axis cannot show 0: values below this are drawn at it
CURVE_POINTS = 300
EXP_FORMATTER = "v => Number(v).toExponential(0)"  # a JavaScript function (NiceGUI evaluates ':' keys)


def _base(title: str) -> dict[str, Any]:
    return {
        "animation": False,
        "title": {"text": title, "left": "center", "top": 0, "textStyle": {"fontSize": 13, "width": 360,
                                                                      "overflow": "break"}},
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 56, "right": 16, "top": 64, "bottom": 58, "containLabel": False},
        "legend": {"bottom": 0, "type": "scroll"},
    }


def _curve(curve: Sequence[float]) -> list[list[float]]:
    steps, values = downsample(np.asarray(curve, dtype=np.float64), CURVE_POINTS)
    return [[s, max(v, LOG_FLOOR)] for s, v in zip(steps, values)]


def loss_curves(curves: Sequence[tuple[str, Sequence[float]]], highlight: str | None = None,
                title: str = "Training loss (batch MSE, log scale)") -> dict[str, Any]:
    """Loss against step for several runs; the highlighted run is drawn thicker."""
    options = _base(title)
    options["xAxis"] = {"type": "value", "name": "step", "nameLocation": "middle", "nameGap": 24, "min": 1}
    options["yAxis"] = {"type": "log", "name": "loss", "axisLabel": {":formatter": EXP_FORMATTER}}
    values = [v for _, curve in curves for v in curve if v > 0]
    if values:  # whole decades around the data, so that the axis does not stretch to 1e10
        options["yAxis"]["min"] = 10 ** math.floor(math.log10(max(min(values), LOG_FLOOR)))
        options["yAxis"]["max"] = 10 ** math.ceil(math.log10(max(values)))
    series = []
    for i, (name, curve) in enumerate(curves):
        thick = name == highlight
        series.append({
            "name": name, "type": "line", "showSymbol": False, "data": _curve(curve),
            "lineStyle": {"width": 3 if thick else 1.5}, "color": PALETTE[i % len(PALETTE)],
            "z": 3 if thick else 2,
        })
    options["series"] = series
    return options


def singular_values_chart(target: Sequence[float], learned: Sequence[float], rank: int) -> dict[str, Any]:
    """The target's singular values beside the trained adapter's (first few dozen, index from 1)."""
    shown = max(len(learned) * 2, sum(1 for v in target if v > target[0] * 1e-10) + 2, 8)
    shown = min(shown, 64, len(target))
    options = _base("Singular values: target ΔW* vs learned s·B·A")
    options["xAxis"] = {"type": "category", "name": "i", "nameLocation": "middle", "nameGap": 24,
                        "data": [str(i) for i in range(1, shown + 1)]}
    options["yAxis"] = {"type": "value", "name": "σ_i"}
    learned_padded = [round(float(v), 6) for v in learned[:shown]] + [0.0] * max(0, shown - len(learned))
    options["series"] = [
        {"name": "target ΔW*", "type": "bar", "data": [round(float(v), 6) for v in target[:shown]],
         "color": COLORS["frozen"]},
        {"name": f"learned (rank {rank})", "type": "bar", "data": learned_padded, "color": COLORS["lora"]},
    ]
    return options


def error_vs_rank(ranks: Sequence[int], final: Sequence[float], optimal: Sequence[float],
                  rank: int) -> dict[str, Any]:
    """Final relative error of each sweep rank beside the Eckart–Young bound (the best any rank-r update does)."""
    options = _base("Final error vs rank, and the Eckart–Young bound")
    options["xAxis"] = {"type": "category", "name": "rank r", "nameLocation": "middle", "nameGap": 24,
                        "data": [str(r) for r in ranks]}
    options["yAxis"] = {"type": "value", "name": "‖ΔW−ΔW*‖/‖ΔW*‖", "min": 0, "max": 1}
    options["series"] = [
        {"name": "Eckart–Young bound", "type": "line", "data": [round(float(v), 6) for v in optimal],
         "color": COLORS["full"], "lineStyle": {"type": "dashed", "width": 3}, "symbol": "diamond",
         "symbolSize": 7, "z": 4},
        {"name": "LoRA after training", "type": "line", "data": [round(float(v), 6) for v in final],
         "color": COLORS["lora"], "symbol": "circle", "symbolSize": 8,
         "markPoint": {"symbol": "pin", "symbolSize": 36,
                       "data": [{"coord": [str(rank), round(float(final[list(ranks).index(rank)]), 6)],
                                 "value": f"r={rank}"}]} if rank in ranks else {}},
    ]
    return options


def _sig(value: float, digits: int = 4) -> float:
    """Short labels for measured values; whole numbers (counts) stay exact."""
    if float(value).is_integer():
        return float(value)
    return float(f"{float(value):.{digits}g}")


def grouped_bars(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]],
                 y_name: str = "", log: bool = False) -> dict[str, Any]:
    """Bars of several named series over the same categories (colours given per series)."""
    options = _base(title)
    options["tooltip"] = {"trigger": "axis", "axisPointer": {"type": "shadow"}}
    options["xAxis"] = {"type": "category", "data": list(categories),
                        "axisLabel": {"interval": 0, "rotate": 20 if len(categories) > 2 else 0}}
    options["yAxis"] = {"type": "log" if log else "value", "name": y_name}
    if log:
        options["yAxis"]["axisLabel"] = {":formatter": EXP_FORMATTER}
    options["series"] = [
        {"name": name, "type": "bar", "color": color,
         "data": [max(_sig(v), LOG_FLOOR) if log else _sig(v) for v in values],
         "label": {"show": not log and len(categories) <= 2, "position": "top", "fontSize": 10}}
        for name, values, color in series
    ]
    return options


def init_gradients(schemes: Sequence[str], grad_a: Sequence[float], grad_b: Sequence[float]) -> dict[str, Any]:
    return grouped_bars("Gradient norms at step 0", schemes,
                        [("‖∂loss/∂A‖", grad_a, COLORS["a"]), ("‖∂loss/∂B‖", grad_b, COLORS["b"])], "norm")


def init_start(schemes: Sequence[str], delta: Sequence[float], change: Sequence[float]) -> dict[str, Any]:
    """‖ΔW‖ at step 0 (left axis) and the relative change of the outputs (right axis) per scheme."""
    options = grouped_bars("At step 0: adapter size and output change", schemes,
                           [("‖s·B·A‖_F", delta, COLORS["delta"])], "‖ΔW‖")
    options["yAxis"] = [{"type": "value", "name": "‖ΔW‖"},
                        {"type": "value", "name": "output change %", "position": "right"}]
    options["grid"]["right"] = 48
    options["series"].append({"name": "output change (%)", "type": "bar", "yAxisIndex": 1, "color": COLORS["full"],
                              "data": [round(100 * float(v), 6) for v in change]})
    return options


def phi_heatmap(phi: Sequence[Sequence[float]], rank: int, rank_large: int) -> dict[str, Any]:
    """φ(i, j) as the paper's Figure 3: i = 1..rank down, j = 1..rank_large across; 0 dark, 1 light."""
    data = [[j, i, round(float(v), 4)] for i, row in enumerate(phi) for j, v in enumerate(row)]
    options = _base(f"Subspace similarity φ(i, j) of A (r={rank}) and A (r={rank_large})")
    options["tooltip"] = {"position": "top"}
    options["grid"] = {"left": 40, "right": 16, "top": 56, "bottom": 80}
    options["xAxis"] = {"type": "category", "name": "j", "nameLocation": "middle", "nameGap": 22,
                        "data": [str(j) for j in range(1, rank_large + 1)]}
    options["yAxis"] = {"type": "category", "name": "i", "inverse": True,
                        "data": [str(i) for i in range(1, rank + 1)]}
    options["visualMap"] = {"min": 0, "max": 1, "calculable": False, "orient": "horizontal", "left": "center",
                            "bottom": 0, "itemHeight": 120, "precision": 1, "text": ["1", "0"],
                            # viridis end points and middle: readable without relying on red/green
                            "inRange": {"color": list(VIRIDIS)}}
    options["series"] = [{"name": "φ", "type": "heatmap", "data": data, "progressive": 0}]
    options.pop("legend")
    return options
