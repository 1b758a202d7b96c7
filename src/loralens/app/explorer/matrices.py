"""ECharts options for the Explorer's real matrices: heatmaps and singular values. Pure functions of arrays."""

from __future__ import annotations

import numpy as np

from loralens.app.palette import COLORS, DIVERGING

# A diverging map that does not rely on red/green: blue (negative) - white - orange (positive).


def heatmap_option(matrix: np.ndarray, title: str, limit: float) -> dict:
    """A d x k heatmap (row 0 at the top) on a symmetric colour scale [-limit, limit]."""
    rows, cols = matrix.shape
    i, j = np.indices(matrix.shape)
    # built with numpy (a 64 x 64 heatmap is 4,096 cells, redrawn while a slider moves)
    data = np.stack([j.ravel(), i.ravel(), np.round(matrix.ravel(), 4)], axis=1).tolist()
    limit = float(limit) or 1.0
    return {
        "animation": False,
        "title": {"text": title, "left": "center", "textStyle": {"fontSize": 12}},
        "tooltip": {"position": "top"},
        "grid": {"left": 4, "right": 4, "top": 24, "bottom": 4},
        "xAxis": {"type": "category", "data": list(range(cols)), "show": False},
        "yAxis": {"type": "category", "data": list(range(rows)), "show": False, "inverse": True},
        "visualMap": {"show": False, "min": -limit, "max": limit, "inRange": {"color": list(DIVERGING)}},
        "series": [{"type": "heatmap", "data": data, "progressive": 0}],
    }


def singular_values_option(delta_sv: np.ndarray, target_sv: np.ndarray, r: int) -> dict:
    """Singular values of ΔW (at most r non-zero) beside those of the task update ΔW*."""
    n = len(delta_sv)
    return {
        "animation": False,
        "legend": {"top": 0, "data": ["σ of ΔW = s·B·A", "σ of task update ΔW*"]},
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 8, "right": 12, "top": 30, "bottom": 26, "containLabel": True},
        "xAxis": {"type": "category", "data": list(range(1, n + 1)), "name": "i", "nameLocation": "middle", "nameGap": 20},
        "yAxis": {"type": "value", "name": "σᵢ"},
        "series": [
            {
                "name": "σ of ΔW = s·B·A",
                "type": "bar",
                "data": [float(v) for v in delta_sv],
                "itemStyle": {"color": COLORS["delta"]},
                "markLine": {"symbol": "none", "label": {"formatter": f"r = {r}"}, "data": [{"xAxis": r - 1}]},
            },
            {
                "name": "σ of task update ΔW*",
                "type": "line",
                "data": [float(v) for v in target_sv],
                "color": "#555",
                "lineStyle": {"type": "dashed"},
            },
        ],
    }
