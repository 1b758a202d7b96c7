"""The Inspector's resize preview: what ``loralens resize`` would keep, from the report's spectra alone (no NiceGUI)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from loralens.adapters.resize import check_resize_target, choose_rank
from loralens.app.inspector.view import finite_or_none, column_format
from loralens.core.counting import lora_params


@dataclass(frozen=True)
class ResizeRow:
    """One module's outcome of a resize: new rank, energy kept and relative Frobenius error."""

    name: str
    r: int
    new_r: int
    energy_kept: float
    error: float


@dataclass(frozen=True)
class ResizePreview:
    rows: tuple[ResizeRow, ...]
    parameters_before: int
    parameters_after: int
    min_energy_kept: float
    max_error: float


def resize_preview(report: Any, *, rank: int | None = None, energy: float | None = None) -> ResizePreview:
    """What ``resize_adapter(adapter, rank=..., energy=...)`` keeps, from the report's spectra alone.

    A fixed ``rank`` never grows a module (a module with r ≤ rank keeps all of it); ``energy`` picks, per module,
    the smallest rank that keeps that fraction of the Frobenius energy (core.lowrank.rank_for_energy).
    Energy kept and error are the Eckart–Young values of the best approximation at the new rank.
    """
    rank, energy = check_resize_target(rank, energy)
    rows = []
    before = after = 0
    for module in report.modules:
        s = np.asarray(module.singular_values, dtype=np.float64)
        r = int(module.r)
        if not np.all(np.isfinite(s)):
            new_r = r if rank is None else min(r, rank)
            kept, error = math.nan, math.nan
        else:
            choice = choose_rank(s, r, rank=rank, energy=energy)
            new_r, kept, error = choice.r_after, choice.energy_kept, choice.error
        rows.append(ResizeRow(module.name, r, new_r, kept, error))
        d, k = int(module.out_features), int(module.in_features)
        magnitude = d if getattr(module, "dora", False) else 0  # DoRA's vector is kept
        before += lora_params(d, k, r) + magnitude
        after += lora_params(d, k, new_r) + magnitude
    finite_kept = [row.energy_kept for row in rows if math.isfinite(row.energy_kept)]
    finite_error = [row.error for row in rows if math.isfinite(row.error)]
    return ResizePreview(
        rows=tuple(rows),
        parameters_before=before,
        parameters_after=after,
        min_energy_kept=min(finite_kept, default=1.0),
        max_error=max(finite_error, default=0.0),
    )


def resize_columns() -> list[dict[str, Any]]:
    """Columns of the resize preview table."""
    return [
        {"name": "name", "label": "module", "field": "name", "sortable": True, "align": "left"},
        {"name": "r", "label": "r", "field": "r", "sortable": True},
        {"name": "new_r", "label": "new r", "field": "new_r", "sortable": True},
        {"name": "energy_kept", "label": "energy kept", "field": "energy_kept", "sortable": True,
         ":format": column_format(5)},
        {"name": "error", "label": "rel. error ‖ΔW−ΔW'‖/‖ΔW‖", "field": "error", "sortable": True,
         ":format": column_format(3)},
    ]


def resize_rows(preview: ResizePreview) -> list[dict[str, Any]]:
    return [
        {"name": row.name, "r": row.r, "new_r": row.new_r, "energy_kept": finite_or_none(row.energy_kept),
         "error": finite_or_none(row.error)}
        for row in preview.rows
    ]
