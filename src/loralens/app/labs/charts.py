"""ECharts option dicts for the Labs page: pure functions of a lab's result (no NiceGUI import).

Layout rules every chart follows, because a phone shows the same charts (and tests/e2e check them in Chromium):
- the grid leaves room for its labels (``containLabel``), the x-axis name and the legend below it; the legend
  wraps onto as many rows as its names need, estimated for a narrow (phone) and a wide chart, and an ECharts
  media query switches between the two layouts;
- log axes are labelled at every decade (``interval: 1``), over whole decades around the data, at most
  ``MAX_DECADES`` of them so that their labels never touch; 0.001 … 10,000 are written out, others as 10ⁿ;
- bars on a log axis start from the axis floor (``startValue``), below the smallest value, never from 1;
- series of equal standing take ``CATEGORICAL`` colours (apart in lightness and for colour-blind readers),
  ordered ones (a rank sweep) ``ORDERED`` (monotone in lightness), lines also differ in dash.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from loralens.app.palette import CATEGORICAL, COLORS, ORDERED, VIRIDIS
from loralens.core.labs.common import downsample

LOG_FLOOR = 1e-12  # a log axis cannot show 0: values below this are drawn at it
MAX_DECADES = 10  # a 320-px chart labels at most this many decades without their labels touching
CURVE_POINTS = 300
#: (charts narrower than this, the width their legend's rows are estimated for): a phone, a half screen; wider
#: charts (two side by side on a laptop) use the base layout, estimated for WIDE_WIDTH
LAYOUTS = ((600, 400), (420, 330))
WIDE_WIDTH = 560
CHAR_PX, TITLE_CHAR_PX = 7.0, 7.6  # generous average glyph widths of ECharts' 12 px and 13 px bold sans-serif
DASHES = ("solid", "dashed", "dotted", [8, 3, 2, 3], [12, 4])
#: how the init lab's schemes are named on the charts
SCHEME_NAMES = {"default": "default (B = 0)", "a_zero": "A = 0", "both_random": "both random",
                "both_zero": "both zero", "pissa": "PiSSA"}
SCHEME_LINES = {"default": "default\n(B = 0)", "both_random": "both\nrandom", "both_zero": "both\nzero"}

# JavaScript label formatters (NiceGUI evaluates ':' keys); tests/e2e check what they print
PLAIN_FORMATTER = "v => Number(v).toLocaleString('en-US', {maximumFractionDigits: 6})"
POWER_FORMATTER = ("v => { const e = Math.round(Math.log10(v)); if (e === 0) return '1'; if (e === 1) return '10'; "
                   "return '10' + String(e).split('').map(c => '⁻⁰¹²³⁴⁵⁶⁷⁸⁹'['-0123456789'.indexOf(c)]).join(''); }")
COUNT_FORMATTER = "p => Number(p.value).toLocaleString('en-US', {maximumSignificantDigits: 4})"
PLAIN_DECADES = range(-3, 7)  # 0.001 … 1,000,000 are written out on a log axis; others as 10ⁿ


def decade_label(exponent: int, plain: bool) -> str:
    """What a log axis writes at 10**exponent (the Python twin of the two formatters above)."""
    if plain:
        return f"{10.0 ** exponent:,.{max(0, -exponent)}f}" if exponent < 0 else f"{10 ** exponent:,}"
    if exponent in (0, 1):
        return "1" if exponent == 0 else "10"
    return "10" + str(exponent).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def log_axis(values: Sequence[float], name: str = "", floor: float = LOG_FLOOR) -> dict[str, Any]:
    """A log axis over whole decades around ``values`` (at most MAX_DECADES), every decade labelled; bars
    start from its floor."""
    positive = [max(float(v), floor) for v in values if v > 0 and math.isfinite(v)] or [1.0]  # drawn at the floor
    # a quarter decade of room at each end: the smallest bar stays visible, the largest does not touch the top
    high = math.ceil(math.log10(max(positive)) + 0.1)
    low = math.floor(math.log10(min(positive)) - 0.25)
    low = max(low, high - MAX_DECADES)
    plain = low in PLAIN_DECADES and high in PLAIN_DECADES
    return {"type": "log", "name": name, "min": 10.0 ** low, "max": 10.0 ** high, "interval": 1,
            "startValue": 10.0 ** low, "logBase": 10,
            "axisLabel": {":formatter": PLAIN_FORMATTER if plain else POWER_FORMATTER},
            "nameTextStyle": {"align": "left"}, "minorTick": {"show": False}}


def log_ticks(axis: dict[str, Any]) -> list[str]:
    """The labels ``log_axis`` makes ECharts draw, bottom to top."""
    low, high = round(math.log10(axis["min"])), round(math.log10(axis["max"]))
    plain = axis["axisLabel"][":formatter"] == PLAIN_FORMATTER
    return [decade_label(e, plain) for e in range(low, high + 1)]


def _text_px(text: str, per_char: float = CHAR_PX) -> float:
    return len(text) * per_char


def legend_rows(names: Sequence[str], width: float) -> int:
    """Rows a plain ECharts legend needs for ``names`` in ``width`` px (icon 25 + gap 5 + text, 10 between)."""
    if not names:
        return 0
    rows, used = 1, 0.0
    for name in names:
        item = 25 + 5 + _text_px(name)
        if used and used + 10 + item > width - 10:
            rows, used = rows + 1, item
        else:
            used = used + 10 + item if used else item
    return rows


def _frame(title: str, legend: Sequence[str], x_name: bool = True,
           width: float = WIDE_WIDTH) -> tuple[dict[str, Any], dict[str, Any]]:
    """(title, grid) for a chart of ``width`` px: room for the title's lines, the y name, x name and legend."""
    title_lines = max(1, math.ceil(_text_px(title, TITLE_CHAR_PX) / (width - 16)))
    rows = legend_rows(legend, width)
    # containLabel: the grid's bottom edge is below the axis labels, so only the x name and the legend need room
    bottom = 6 + (24 if x_name else 0) + (rows * 22 + 6 if rows else 0)
    top = 8 + title_lines * 18 + 26  # the y-axis name sits between the title and the plot
    title_option = {"text": title, "left": "center", "top": 4,
                    "textStyle": {"fontSize": 13, "lineHeight": 18, "width": width - 16, "overflow": "break"}}
    return title_option, {"left": 8, "right": 12, "top": top, "bottom": bottom, "containLabel": True}


def responsive(base: dict[str, Any], legend: Sequence[str], x_name: bool = True) -> dict[str, Any]:
    """``base`` laid out for a wide chart, with media queries that lay it out again for narrower ones."""
    title = base.get("title", {}).get("text", "")
    # explicit line heights: zrender measures one as the width of '国', wrong where no CJK font is installed
    base["title"], base["grid"] = _frame(title, legend, x_name, WIDE_WIDTH)
    if legend:
        base["legend"] = {"bottom": 2, "left": "center", "type": "plain", "itemGap": 10, "data": list(legend)}
    else:
        base.pop("legend", None)
    media = []
    for below, width in LAYOUTS:  # ECharts applies every matching query in order: the narrowest wins
        title_option, grid = _frame(title, legend, x_name, width)
        media.append({"query": {"maxWidth": below - 1}, "option": {"title": title_option, "grid": grid}})
    base["media"] = media  # ECharts takes the rest of the option as the base one
    return base


def _base(title: str) -> dict[str, Any]:
    return {"animation": False, "title": {"text": title}, "tooltip": {"trigger": "axis"}, "aria": {"enabled": True}}


def _curve(curve: Sequence[float]) -> list[list[float]]:
    steps, values = downsample(np.asarray(curve, dtype=np.float64), CURVE_POINTS)
    return [[s, max(v, LOG_FLOOR)] for s, v in zip(steps, values)]


def ordered_colours(n: int) -> list[str]:
    """``n`` colours of ORDERED, spread over it (dark to light) so that neighbours differ as much as they can."""
    if n <= 1:
        return [ORDERED[0]][:n]
    return [ORDERED[round(i * (len(ORDERED) - 1) / (n - 1))] for i in range(n)] if n <= len(ORDERED) else \
        [ORDERED[i % len(ORDERED)] for i in range(n)]


def loss_curves(curves: Sequence[tuple[str, Sequence[float]]], highlight: str | None = None,
                title: str = "Training loss (batch MSE, log scale)", ordered: bool = False) -> dict[str, Any]:
    """Loss against step for several runs; the highlighted run is drawn thicker. ``ordered``: the runs are a
    sweep (colours from dark to light in order), else categorical colours and dashes."""
    options = _base(title)
    options["xAxis"] = {"type": "value", "name": "step", "nameLocation": "middle", "nameGap": 26, "min": 1}
    options["yAxis"] = log_axis([v for _, curve in curves for v in curve], "loss")
    colours = ordered_colours(len(curves)) if ordered else [CATEGORICAL[i % len(CATEGORICAL)]
                                                            for i in range(len(curves))]
    series = []
    for i, (name, curve) in enumerate(curves):
        thick = name == highlight
        dash = "solid" if ordered or thick else DASHES[i % len(DASHES)]
        series.append({"name": name, "type": "line", "showSymbol": False, "data": _curve(curve),
                       "lineStyle": {"width": 3.5 if thick else 1.6, "type": dash}, "color": colours[i],
                       "z": 3 if thick else 2})
    options["series"] = series
    return responsive(options, [name for name, _ in curves])


def singular_values_chart(target: Sequence[float], learned: Sequence[float], rank: int) -> dict[str, Any]:
    """The target's singular values beside the trained adapter's (first few dozen, index from 1)."""
    shown = max(len(learned) * 2, sum(1 for v in target if v > target[0] * 1e-10) + 2, 8)
    shown = min(shown, 64, len(target))
    options = _base("Singular values: target ΔW* vs learned s·B·A")
    options["tooltip"] = {"trigger": "axis", "axisPointer": {"type": "shadow"}}
    options["xAxis"] = {"type": "category", "name": "i", "nameLocation": "middle", "nameGap": 26,
                        "data": [str(i) for i in range(1, shown + 1)]}
    options["yAxis"] = {"type": "value", "name": "σᵢ", "nameTextStyle": {"align": "left"}}
    learned_padded = [round(float(v), 6) for v in learned[:shown]] + [0.0] * max(0, shown - len(learned))
    names = ["target ΔW*", f"learned (rank {rank})"]
    options["series"] = [
        {"name": names[0], "type": "bar", "data": [round(float(v), 6) for v in target[:shown]],
         "color": COLORS["frozen"]},
        {"name": names[1], "type": "bar", "data": learned_padded, "color": COLORS["lora"]},
    ]
    return responsive(options, names)


def error_vs_rank(ranks: Sequence[int], final: Sequence[float], optimal: Sequence[float],
                  rank: int) -> dict[str, Any]:
    """Final relative error of each sweep rank beside the Eckart–Young bound (the best any rank-r update does)."""
    options = _base("Final error vs rank, and the Eckart–Young bound")
    options["xAxis"] = {"type": "category", "name": "rank r", "nameLocation": "middle", "nameGap": 26,
                        "data": [str(r) for r in ranks]}
    options["yAxis"] = {"type": "value", "name": "‖ΔW − ΔW*‖ / ‖ΔW*‖", "min": 0, "max": 1,
                        "nameTextStyle": {"align": "left"}}
    names = ["Eckart–Young bound", "LoRA after training"]
    mark = {"symbol": "pin", "symbolSize": 34, "data": [{"coord": [str(rank), round(float(
        final[list(ranks).index(rank)]), 6)], "value": f"r={rank}"}]} if rank in ranks else {}
    options["series"] = [
        {"name": names[0], "type": "line", "data": [round(float(v), 6) for v in optimal], "color": COLORS["full"],
         "lineStyle": {"type": "dashed", "width": 3}, "symbol": "diamond", "symbolSize": 8, "z": 4},
        {"name": names[1], "type": "line", "data": [round(float(v), 6) for v in final], "color": COLORS["lora"],
         "symbol": "circle", "symbolSize": 8, "markPoint": mark},
    ]
    return responsive(options, names)


def _sig(value: float, digits: int = 4) -> float:
    """Short labels for measured values; whole numbers (counts) stay exact."""
    if float(value).is_integer():
        return float(value)
    return float(f"{float(value):.{digits}g}")


def grouped_bars(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]],
                 y_name: str = "", log: bool = False) -> dict[str, Any]:
    """Bars of several named series over the same categories (colours given per series). Category names may hold
    "\\n" to break a long one over two lines."""
    options = _base(title)
    options["tooltip"] = {"trigger": "axis", "axisPointer": {"type": "shadow"}}
    options["xAxis"] = {"type": "category", "data": list(categories), "axisLabel": {"interval": 0, "lineHeight": 15}}
    values = [v for _, vs, _ in series for v in vs]
    options["yAxis"] = log_axis(values, y_name) if log else {"type": "value", "name": y_name,
                                                              "nameTextStyle": {"align": "left"}}
    labels = not log and len(categories) <= 2
    options["series"] = [
        {"name": name, "type": "bar", "color": color,
         "data": [max(_sig(v), LOG_FLOOR) if log else _sig(v) for v in vals],
         "label": {"show": labels, "position": "top", "fontSize": 11, ":formatter": COUNT_FORMATTER}}
        for name, vals, color in series
    ]
    return responsive(options, [name for name, _, _ in series], x_name=False)


def scheme_label(scheme: str, two_lines: bool = True) -> str:
    """An init scheme's name on a chart ("both random"; on a category axis over two lines)."""
    return SCHEME_LINES.get(scheme, SCHEME_NAMES.get(scheme, scheme)) if two_lines else SCHEME_NAMES.get(scheme,
                                                                                                        scheme)


def init_gradients(schemes: Sequence[str], grad_a: Sequence[float], grad_b: Sequence[float]) -> dict[str, Any]:
    return grouped_bars("Gradient norms at step 0", [scheme_label(s) for s in schemes],
                        [("‖∂loss/∂A‖", grad_a, COLORS["a"]), ("‖∂loss/∂B‖", grad_b, COLORS["b"])], "norm")


def init_start(schemes: Sequence[str], delta: Sequence[float], change: Sequence[float]) -> dict[str, Any]:
    """‖ΔW‖ at step 0 (left axis) and the relative change of the outputs (right axis) per scheme."""
    options = grouped_bars("At step 0: adapter size and output change", [scheme_label(s) for s in schemes],
                           [("‖s·B·A‖_F", delta, COLORS["delta"])], "‖ΔW‖")
    base = options
    base["yAxis"] = [{"type": "value", "name": "‖ΔW‖", "nameTextStyle": {"align": "left"}},
                     {"type": "value", "name": "output change %", "position": "right",
                      "nameTextStyle": {"align": "right"}}]
    base["series"].append({"name": "output change (%)", "type": "bar", "yAxisIndex": 1, "color": COLORS["full"],
                           "data": [round(100 * float(v), 6) for v in change]})
    base["legend"]["data"].append("output change (%)")
    return responsive(base, base["legend"]["data"], x_name=False)


def phi_heatmap(phi: Sequence[Sequence[float]], rank: int, rank_large: int) -> dict[str, Any]:
    """φ(i, j) as the paper's Figure 3: i = 1..rank down, j = 1..rank_large across; 0 dark, 1 light."""
    data = [[j, i, round(float(v), 4)] for i, row in enumerate(phi) for j, v in enumerate(row)]
    options = _base(f"Subspace similarity φ(i, j) of A (r={rank}) and A (r={rank_large})")
    options["tooltip"] = {"position": "top"}
    options["xAxis"] = {"type": "category", "name": "j", "nameLocation": "middle", "nameGap": 26,
                        "data": [str(j) for j in range(1, rank_large + 1)]}
    options["yAxis"] = {"type": "category", "name": "i", "inverse": True, "nameTextStyle": {"align": "left"},
                        "data": [str(i) for i in range(1, rank + 1)]}
    options["visualMap"] = {"min": 0, "max": 1, "calculable": False, "orient": "horizontal", "left": "center",
                            "bottom": 2, "itemHeight": 120, "itemWidth": 12, "precision": 1, "text": ["1", "0"],
                            # viridis end points and middle: readable without relying on red/green
                            "inRange": {"color": list(VIRIDIS)}}
    options["series"] = [{"name": "φ", "type": "heatmap", "data": data, "progressive": 0}]
    chart = responsive(options, [])
    for layout in (chart["grid"], *(m["option"]["grid"] for m in chart["media"])):
        layout["bottom"] += 30  # the colour scale below the axis name
    return chart


__all__ = [
    "CURVE_POINTS", "LOG_FLOOR", "MAX_DECADES", "SCHEME_NAMES", "decade_label", "error_vs_rank",
    "grouped_bars", "init_gradients", "init_start", "legend_rows", "log_axis", "log_ticks", "loss_curves",
    "ordered_colours", "phi_heatmap", "responsive", "scheme_label", "singular_values_chart",
]
