"""Seeded numpy experiments that show why LoRA works: each returns a frozen dataclass of plain data.

``LABS`` maps the name a URL or a command uses to the function that runs the lab; ``READINGS`` maps it to the
function that turns a result into a one-paragraph reading of its numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loralens.core.labs import fit
from loralens.core.labs.fit import FitResult, run_fit

LABS: dict[str, Callable[..., Any]] = {
    "fit": run_fit,
}
READINGS: dict[str, Callable[[Any], str]] = {
    "fit": fit.reading,
}

__all__ = ["LABS", "READINGS", "FitResult", "run_fit"]
