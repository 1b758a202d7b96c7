"""Parameter counts of one d x k linear layer: full fine-tuning (d*k) against LoRA (r*(d+k)).

Pure Python on purpose (no numpy): the Explorer's view model uses it, and it must also run where numpy
does not (Pyodide's core runtime). Shapes follow PEFT: W is (d, k) = (out_features, in_features),
B is (d, r), A is (r, k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from loralens.core.validation import check_float, check_int

MAX_DIM = 65_536


def full_params(d: int, k: int) -> int:
    """Trainable parameters of full fine-tuning of a d x k weight."""
    return d * k


def lora_params(d: int, k: int, r: int) -> int:
    """Trainable parameters of a rank-r LoRA on a d x k weight: B (d x r) plus A (r x k)."""
    return r * (d + k)


def break_even_rank(d: int, k: int) -> Fraction:
    """The rank dk/(d+k) at which LoRA trains exactly as many parameters as full fine-tuning."""
    return Fraction(d * k, d + k)


def max_rank_for_savings(d: int, k: int, savings: float | Fraction = Fraction(99, 100)) -> int:
    """Largest r with r(d+k) <= (1 - savings)·dk; 0 when even r = 1 saves less than that.

    ``savings`` is converted through its decimal text so that 0.99 means exactly 99/100.
    """
    fraction = savings if isinstance(savings, Fraction) else Fraction(str(savings))
    return math.floor((1 - fraction) * d * k / (d + k))


def scaling(r: int, alpha: float, use_rslora: bool = False) -> float:
    """PEFT's LoRA scaling: alpha / r, or alpha / sqrt(r) with rsLoRA (the one copy of this rule)."""
    return alpha / math.sqrt(r) if use_rslora else alpha / r


def alpha_for_scaling(scale: float, r: int, use_rslora: bool = False) -> float:
    """The inverse of ``scaling``: the lora_alpha that gives ``scale`` at rank r (scale·r, or scale·√r)."""
    return scale * (math.sqrt(r) if use_rslora else r)


@dataclass(frozen=True)
class LayerCount:
    """Every number the Explorer shows for one layer shape and rank."""

    d: int
    k: int
    r: int
    full: int
    lora: int
    share: Fraction  # lora / full
    break_even: Fraction  # dk / (d + k)
    savings_target: Fraction
    max_rank_for_target: int

    @property
    def saves(self) -> bool:
        """True when LoRA trains fewer parameters than full fine-tuning."""
        return self.lora < self.full

    @property
    def savings(self) -> Fraction:
        """1 - share; negative when r is past the break-even rank."""
        return 1 - self.share


def count_layer(d: int, k: int, r: int, savings_target: float = 0.99) -> LayerCount:
    """Validate a layer shape and rank and count both ways."""
    d = check_int("d", d, 1, MAX_DIM)
    k = check_int("k", k, 1, MAX_DIM)
    r = check_int("r", r, 1, min(d, k))
    target = Fraction(str(check_float("savings", savings_target, 0.0, 1.0, low_open=True)))
    full, lora = full_params(d, k), lora_params(d, k, r)
    return LayerCount(
        d=d,
        k=k,
        r=r,
        full=full,
        lora=lora,
        share=Fraction(lora, full),
        break_even=break_even_rank(d, k),
        savings_target=target,
        max_rank_for_target=max_rank_for_savings(d, k, target),
    )

