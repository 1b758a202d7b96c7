"""Seeded numpy experiments that show why LoRA works: each returns a frozen dataclass of plain data.

``LABS`` maps the name a URL or a command uses to the function that runs the lab; ``READINGS`` maps it to the
function that turns a result into a one-paragraph reading of its numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loralens.core.labs import fit, init, merge, subspace
from loralens.core.labs.fit import FitResult, run_fit
from loralens.core.labs.init import InitResult, SchemeResult, run_init
from loralens.core.labs.merge import MergeResult, run_merge
from loralens.core.labs.subspace import Amplification, SubspaceResult, run_subspace

LABS: dict[str, Callable[..., Any]] = {
    "fit": run_fit,
    "init": run_init,
    "merge": run_merge,
    "subspace": run_subspace,
}
READINGS: dict[str, Callable[[Any], str]] = {
    "fit": fit.reading,
    "init": init.reading,
    "merge": merge.reading,
    "subspace": subspace.reading,
}

__all__ = [
    "LABS", "READINGS", "Amplification", "FitResult", "InitResult", "MergeResult", "SchemeResult",
    "SubspaceResult", "run_fit", "run_init", "run_merge", "run_subspace",
]
