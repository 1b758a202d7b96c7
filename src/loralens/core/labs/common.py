"""What the four labs share: limits and checks, seeded random streams, the task, Adam, and the training loop.

The task of every training lab: a frozen W (d, k) and a target update ΔW* (d, k). Each step draws a fresh batch
of inputs x ~ N(0, I) (n, k) and trains a LoRA adapter so that its outputs h = W·x + s·B·A·x match the target
outputs h* = (W + ΔW*)·x, with the mean squared error over the batch and the d outputs as the loss. Because
E[x xᵀ] = I, the expected loss is ‖s·B·A − ΔW*‖²_F / d, so the best a rank-r adapter can do is the
Eckart–Young bound of ΔW*. Training on outputs (not on ΔW* itself) is what real fine-tuning does.

Arrays are float64. A ``progress(done, total)`` callback, if given, is called every few steps; it may raise to
stop the run (the app uses that to cancel a run that a newer setting superseded).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import numpy as np

from loralens.core.blas import one_blas_thread, single_threaded_blas  # noqa: F401  (the labs' decorator)
from loralens.core.labs import params
from loralens.core.labs.params import check_params
from loralens.core.validation import check_int
from loralens.errors import InvalidParameterError

PROGRESS_EVERY = 25  # steps between progress callbacks

Progress = Callable[[int, int], object]
P = ParamSpec("P")
R = TypeVar("R")


# ---------------------------------------------------------------------------------------------- checks


def check_shape(d: object, k: object) -> tuple[int, int]:
    """d (out_features) and k (in_features), each within its declared range."""
    return int(params.D.check(d)), int(params.K.check(k))


def check_rank(name: str, rank: object, d: int, k: int) -> int:
    """A rank from 1 to min(d, k); the message names min(d, k)."""
    rank = check_int(name, rank, 1)
    if rank > min(d, k):
        raise InvalidParameterError(f"must be at most min(d, k) = {min(d, k):,}, got {rank:,}", where=name)
    return rank


@dataclass(frozen=True)
class TrainingSettings:
    """The settings every training lab shares (``params.TRAINING``), checked."""

    steps: int
    seed: int
    alpha: float
    noise: float
    lr: float
    batch: int


def check_training(values: dict[str, object]) -> TrainingSettings:
    """The shared training settings from a run's arguments, each checked with the message that names it."""
    return TrainingSettings(*check_params(params.TRAINING, values))


# ---------------------------------------------------------------------------------------------- randomness


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator for one named part of a run (the task, the data, adapter i, ...).

    Streams are keyed, not drawn in sequence, so adding a part to a lab never changes the numbers of another.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(stream)))


STREAM_TASK, STREAM_DATA, STREAM_ADAPTER, STREAM_EXTRA = 1, 2, 3, 4


def random_orthonormal(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """n x m with orthonormal columns (m <= n), uniformly distributed (QR of a Gaussian with signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, m)))
    return q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))


# ---------------------------------------------------------------------------------------------- the task


@dataclass(frozen=True)
class Task:
    """A frozen W (d, k), a target update ΔW* (d, k) and its float64 singular values (descending)."""

    w: np.ndarray
    target: np.ndarray
    target_singular_values: np.ndarray


def target_spectrum(target_rank: int) -> np.ndarray:
    """σ_i = 1/√i for i = 1..s: a decaying spectrum, so that every extra rank helps a little less."""
    return 1.0 / np.sqrt(np.arange(1, target_rank + 1, dtype=np.float64))


def make_task(d: int, k: int, target_rank: int, noise: float, seed: int) -> Task:
    """W ~ N(0, 1/k); ΔW* = U·diag(σ)·Vᵀ of rank s with random orthonormal U, V, scaled to ‖ΔW*‖_F = √d
    (so that ΔW*·x changes each output by about as much as W·x), plus Gaussian noise of Frobenius norm
    ``noise``·‖ΔW*‖_F (which makes the target full rank)."""
    rng = rng_for(seed, STREAM_TASK)
    w = rng.standard_normal((d, k)) / math.sqrt(k)  # (d, k)
    sigma = target_spectrum(target_rank)
    sigma *= math.sqrt(d) / np.linalg.norm(sigma)
    u = random_orthonormal(rng, d, target_rank)  # (d, s)
    v = random_orthonormal(rng, k, target_rank)  # (k, s)
    target = (u * sigma) @ v.T  # (d, k)
    if noise > 0:
        g = rng.standard_normal((d, k))
        target = target + g * (noise * math.sqrt(d) / np.linalg.norm(g))
    s = np.linalg.svd(target, compute_uv=False)  # float64 full SVD: the Eckart–Young reference
    return Task(w=w, target=target, target_singular_values=s)


def relative_error(delta: np.ndarray, target: np.ndarray) -> float:
    """‖ΔW − ΔW*‖_F / ‖ΔW*‖_F."""
    norm = float(np.linalg.norm(target))
    return float(np.linalg.norm(delta - target)) / norm if norm else float(np.linalg.norm(delta))


# ---------------------------------------------------------------------------------------------- gradients


def loss_and_grads(
    a: np.ndarray, b: np.ndarray, scaling: float, x: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss = mean over the batch and outputs of (s·B·A·x − y)², and its gradients with respect to A and B.

    ``y`` (n, d) is what the adapter should add to W·x (the target outputs minus the frozen ones).
    """
    p = x @ a.T  # (n, r)
    residual = scaling * (p @ b.T) - y  # (n, d)
    n, d = residual.shape
    loss = float(np.sum(residual * residual)) / (n * d)
    g = residual * (2.0 / (n * d))  # dL/d(residual), (n, d)
    grad_b = scaling * (g.T @ p)  # (d, r)
    grad_a = scaling * ((g @ b).T @ x)  # (r, k)
    return loss, grad_a, grad_b


# ---------------------------------------------------------------------------------------------- Adam


class Adam:
    """Adam (Kingma & Ba) with bias correction, as torch.optim.Adam with weight_decay=0, for a list of arrays.

    One instance per training run; it updates the arrays in place.
    """

    def __init__(self, params: Sequence[np.ndarray], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, grads: Sequence[np.ndarray], lr: float | None = None) -> None:
        self.t += 1
        lr = self.lr if lr is None else lr
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * (g * g)
            p -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def learning_rate(lr: float, step: int, steps: int) -> float:
    """Cosine decay from lr to lr/100 over the run (step counts from 0), so that Adam settles at the end."""
    floor = lr / 100
    return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * step / max(steps - 1, 1)))


# ---------------------------------------------------------------------------------------------- training


@dataclass
class Run:
    """One adapter under training (private to a training call): A (r, k), B (d, r), its scaling, and the
    update that its outputs must add to W·x (ΔW* − (W_base − W), i.e. ΔW* unless the base weight was changed)."""

    a: np.ndarray
    b: np.ndarray
    scaling: float
    target: np.ndarray


def train(runs: Sequence[Run], steps: int, lr: float, batch: int, seed: int,
          progress: Progress | None = None) -> list[np.ndarray]:
    """Train every run with its own Adam on the same stream of batches; returns each run's loss per step.

    Sharing the batches makes the runs comparable: they differ only in what the lab varies.
    """
    data = rng_for(seed, STREAM_DATA)
    k = runs[0].a.shape[1]
    optimizers = [Adam([run.a, run.b], lr) for run in runs]
    losses = [np.empty(steps) for _ in runs]
    distinct = {id(run.target): run.target for run in runs}
    with np.errstate(over="ignore", invalid="ignore"):
        _train_steps(runs, optimizers, losses, distinct, data, steps, lr, batch, k, progress)
    return losses


def _train_steps(runs: Sequence[Run], optimizers: list[Adam], losses: list[np.ndarray], distinct: dict[int, np.ndarray],
                 data: np.random.Generator, steps: int, lr: float, batch: int, k: int,
                 progress: Progress | None) -> None:
    for step in range(steps):
        x = data.standard_normal((batch, k))  # (n, k)
        ys = {key: x @ target.T for key, target in distinct.items()}  # (n, d) each
        rate = learning_rate(lr, step, steps)
        for i, (run, opt) in enumerate(zip(runs, optimizers)):
            losses[i][step], grad_a, grad_b = loss_and_grads(run.a, run.b, run.scaling, x, ys[id(run.target)])
            if not math.isfinite(losses[i][step]):
                raise InvalidParameterError(
                    f"training diverged at step {step + 1} (the loss is {losses[i][step]}); lower the learning "
                    "rate or alpha", where="lr")
            opt.step([grad_a, grad_b], rate)
        if progress is not None and ((step + 1) % PROGRESS_EVERY == 0 or step + 1 == steps):
            progress(step + 1, steps)


def downsample(curve: np.ndarray, points: int = 500) -> tuple[list[int], list[float]]:
    """At most ``points`` (step, value) pairs of a curve, evenly spaced and always keeping the last step."""
    n = len(curve)
    if n <= points:
        idx = np.arange(n)
    else:
        idx = np.unique(np.linspace(0, n - 1, points).round().astype(int))
    return [int(i) + 1 for i in idx], [float(curve[i]) for i in idx]


def floats(values: np.ndarray | Sequence[float]) -> list[float]:
    return [float(v) for v in values]
