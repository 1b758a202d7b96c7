"""Small real results of every lab, shared by the view tests (each run takes well under a second)."""

from __future__ import annotations

from typing import Any

import pytest

from loralens.core.labs import LABS

SMALL = {
    "fit": {"d": 16, "k": 16, "rank": 2, "target_rank": 4, "steps": 30},
    "init": {"d": 16, "k": 16, "rank": 4, "steps": 30},
    "merge": {"d": 32, "k": 32, "rank": 4, "batch": 8, "repeats": 1},
    "subspace": {"d": 16, "k": 32, "rank": 4, "rank_large": 8, "steps": 30},
}


@pytest.fixture(scope="session")
def lab_results() -> dict[str, tuple[dict[str, Any], Any]]:
    """lab -> (the values it ran with, its result)."""
    out = {}
    for lab, small in SMALL.items():
        values = {**LABS[lab].defaults(), **small}
        out[lab] = (values, LABS[lab].run(**values))
    return out
