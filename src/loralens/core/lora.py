"""One LoRA adapter on one linear layer, exactly as PEFT defines it.

W is (d, k) = (out_features, in_features); A is (r, k); B is (d, r); ΔW = scaling · B @ A.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from loralens.core.counting import scaling as _scaling
from loralens.core.validation import check_float, check_int


@dataclass(frozen=True)
class LoraSpec:
    """PEFT's rank, lora_alpha and use_rslora for one layer."""

    r: int
    alpha: float = 8.0
    use_rslora: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "r", check_int("r", self.r, 1))
        object.__setattr__(self, "alpha", check_float("alpha", self.alpha, 0.0, low_open=True))

    @property
    def scaling(self) -> float:
        """alpha / r, or alpha / sqrt(r) with rsLoRA."""
        return _scaling(self.r, self.alpha, self.use_rslora)


def init_lora(d: int, k: int, r: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """PEFT's default init: A kaiming-uniform with a=sqrt(5), i.e. U(-1/sqrt(k), 1/sqrt(k)); B = 0."""
    bound = 1.0 / math.sqrt(k)
    a = rng.uniform(-bound, bound, size=(r, k))  # (r, k)
    b = np.zeros((d, r))  # (d, r)
    return a, b


def delta_weight(b: np.ndarray, a: np.ndarray, scaling: float) -> np.ndarray:
    """ΔW = scaling · B @ A, shape (d, k)."""
    return scaling * (b @ a)


def merge(w: np.ndarray, b: np.ndarray, a: np.ndarray, scaling: float) -> np.ndarray:
    """W' = W + scaling · B @ A (a new array; W is not modified)."""
    return w + delta_weight(b, a, scaling)


def unmerge(w_merged: np.ndarray, b: np.ndarray, a: np.ndarray, scaling: float) -> np.ndarray:
    """W = W' - scaling · B @ A."""
    return w_merged - delta_weight(b, a, scaling)


def forward(w: np.ndarray, b: np.ndarray, a: np.ndarray, scaling: float, x: np.ndarray) -> np.ndarray:
    """Unmerged forward pass for a batch x of shape (n, k): x Wᵀ + scaling · (x Aᵀ) Bᵀ, shape (n, d)."""
    return x @ w.T + scaling * ((x @ a.T) @ b.T)
