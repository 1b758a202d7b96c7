"""Seeded numpy experiments that show why LoRA works: each returns a frozen dataclass of plain data.

``LABS`` is the one registry: the key a URL or a command uses -> the lab's record (``params.Lab``: title,
parameters with their ranges, run function, reading and summary). The command line, the Labs page and the
library are made from it.
"""

from __future__ import annotations

from loralens.core.labs import fit, init, merge, subspace
from loralens.core.labs.fit import FitResult, run_fit
from loralens.core.labs.init import InitResult, SchemeResult, run_init
from loralens.core.labs.merge import MergeResult, run_merge
from loralens.core.labs.params import Lab, LabParam
from loralens.core.labs.subspace import Amplification, SubspaceResult, run_subspace

LABS: dict[str, Lab] = {lab.key: lab for lab in (fit.LAB, init.LAB, merge.LAB, subspace.LAB)}

__all__ = [
    "LABS", "Amplification", "FitResult", "InitResult", "Lab", "LabParam", "MergeResult", "SchemeResult",
    "SubspaceResult", "run_fit", "run_init", "run_merge", "run_subspace",
]
