"""The labs' parameters and the lab record, declared once.

Each lab module declares a ``Lab``: its key, title, description, parameters, run function, reading and summary.
The command line's options, the page's controls and URL schema, and the checks inside each run are all made from
these declarations, so their names, ranges, labels and help can never disagree. Defaults are the run function's
own keyword defaults (``Lab.defaults``), so the library, the command and the page run the same experiment.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, is_dataclass, replace
from typing import Any

from loralens.core.validation import check_float, check_int
from loralens.errors import InvalidParameterError


@dataclass(frozen=True)
class LabParam:
    """One setting of a lab: a whole number or a real number within [low, high] ((low, high] with low_open)."""

    name: str
    kind: type  # int or float
    low: float
    high: float
    label: str  # beside the page's control
    help: str  # the command line's --help
    low_open: bool = False
    page: bool = True  # shown as a control on the page (a list of ranks is a command-line option only)

    def check(self, value: object) -> int | float:
        """The value, or InvalidParameterError naming this parameter and its range."""
        if self.kind is tuple:  # a list of whole numbers (None: the lab's default); each is checked by the run
            return value if value is None else tuple(check_int(self.name, v, int(self.low)) for v in value)  # type: ignore[union-attr,return-value]
        if self.kind is int:
            if isinstance(value, str):  # a whole number typed as text (e.g. a seed) is accepted; any other text not
                try:
                    value = int(value.strip())
                except ValueError:
                    raise InvalidParameterError(f"must be a whole number, got {value!r}", where=self.name) from None
            return check_int(self.name, value, int(self.low), int(self.high))
        return check_float(self.name, value, self.low, self.high, low_open=self.low_open)

    def range_text(self) -> str:
        """'1..1,024', '>0..1,000,000', '0..10' (as the help and the page write it)."""
        def number(x: float) -> str:
            return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"

        return f"{'>' if self.low_open else ''}{number(self.low)}..{number(self.high)}"

    def but(self, **changes: Any) -> LabParam:
        """The same parameter with some fields changed (a lab's own label or help)."""
        return replace(self, **changes)


MAX_DIM = 1024  # d and k; a run at d = k = 1024 takes seconds, not minutes
MAX_STEPS = 5000
MAX_BATCH = 4096
MAX_SEED = 2**32 - 1
MAX_NOISE = 10.0

D = LabParam("d", int, 1, MAX_DIM, "d (out)", "output features of the layer")
K = LabParam("k", int, 1, MAX_DIM, "k (in)", "input features of the layer")
RANK = LabParam("rank", int, 1, MAX_DIM, "rank r", "LoRA rank r (at most min(d, k))")
TARGET_RANK = LabParam("target_rank", int, 1, MAX_DIM, "target rank s", "intrinsic rank s of the target update")
ALPHA = LabParam("alpha", float, 0.0, 1e6, "alpha", "lora_alpha; scaling = alpha / r", low_open=True)
STEPS = LabParam("steps", int, 1, MAX_STEPS, "steps", "Adam steps")
SEED = LabParam("seed", int, 0, MAX_SEED, "seed", "random seed: same seed, same numbers")
NOISE = LabParam("noise", float, 0.0, MAX_NOISE, "noise",
                 "Frobenius norm of added Gaussian noise, relative to the target's (makes it full rank)")
LR = LabParam("lr", float, 0.0, 1.0, "learning rate", "Adam learning rate (cosine-decayed to lr/100)", low_open=True)
BATCH = LabParam("batch", int, 1, MAX_BATCH, "batch", "inputs per step")
#: the settings every training lab shares, in the order the labs take them
TRAINING = (STEPS, SEED, ALPHA, NOISE, LR, BATCH)


@dataclass(frozen=True)
class Lab:
    """One lab, declared once: the command, the page and the library all read this record."""

    key: str  # what a URL (?lab=) or a command (loralens lab KEY) names
    tab: str  # the page's tab label
    title: str
    description: str
    params: tuple[LabParam, ...]
    run: Callable[..., Any]
    reading: Callable[[Any], str]  # a paragraph that reads the numbers of a result
    summary: Callable[[Any], list[tuple[str, str]]]  # the command's aligned lines

    def defaults(self) -> dict[str, Any]:
        """Each parameter's default: the run function's keyword default."""
        signature = inspect.signature(self.run).parameters
        return {p.name: signature[p.name].default for p in self.params}

    def param(self, name: str) -> LabParam:
        return next(p for p in self.params if p.name == name)

    def page_params(self) -> tuple[LabParam, ...]:
        return tuple(p for p in self.params if p.page)

    def check(self, values: Mapping[str, object]) -> dict[str, Any]:
        """Every parameter checked against its own range (each run also checks ranges that depend on others)."""
        return {p.name: p.check(values[p.name]) for p in self.params}


def check_params(params: tuple[LabParam, ...], values: Mapping[str, object]) -> list[Any]:
    """The values of ``params`` from ``values`` (a run's arguments), each checked, in the order of ``params``."""
    return [p.check(values[p.name]) for p in params]


def to_plain(value: Any) -> Any:
    """A result as JSON-ready data: dataclasses as dicts, tuples as lists, dict values converted (one style)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {key: to_plain(item) for key, item in asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: to_plain(item) for key, item in value.items()}
    return value


__all__ = ["ALPHA", "BATCH", "D", "K", "LR", "MAX_BATCH", "MAX_DIM", "MAX_NOISE", "MAX_SEED", "MAX_STEPS", "NOISE",
           "RANK", "SEED", "STEPS", "TARGET_RANK", "TRAINING", "Lab", "LabParam", "check_params", "to_plain"]
