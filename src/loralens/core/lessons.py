"""The textbook's LoRA lesson plan as plain data and checking functions.

The Lessons page only renders what is here: the learning objectives (each with a link to the place in the
app that shows it), three activities with their answer checkers, and the assessment questions with their
answers. Every number a checker quotes comes from ``core.counting`` (or ``core.peft_count`` for the model
presets), never from a formula re-derived here. Pure Python: no numpy, no UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from urllib.parse import urlencode

from loralens.core.architectures import PRESETS
from loralens.core.counting import count_layer
from loralens.core.units import percent
from loralens.core.peft_config import ALL_LINEAR, LoraConfigSpec
from loralens.core.peft_count import count_lora
from loralens.core.validation import check_int
from loralens.errors import InvalidParameterError

# Verdict statuses. Only "correct" counts as progress.
CORRECT = "correct"
NOT_ENOUGH = "not_enough"
NOT_LARGEST = "not_largest"
WRONG = "wrong"
INVALID = "invalid"

# Activity keys, in the order the page shows them; the progress indicator counts these.
ACTIVITIES = ("savings", "models", "limits")


@dataclass(frozen=True)
class Link:
    """Where in the app something is shown: a label and a path with its query."""

    label: str
    href: str


@dataclass(frozen=True)
class Verdict:
    """The result of checking one answer: a status, one sentence, and the explanation with the formula."""

    status: str
    message: str
    explanation: str = ""

    @property
    def correct(self) -> bool:
        return self.status == CORRECT


def explorer_href(d: int, k: int, r: int) -> str:
    """The Explorer at a layer shape and rank (its URL parameters d, k, r)."""
    return "/?" + urlencode({"d": d, "k": k, "r": r})


def fit_lab_href(d: int = 64, k: int = 64, rank: int = 4, target_rank: int = 64) -> str:
    """The fit lab with a target update of rank ``target_rank`` (full rank by default)."""
    return "/labs?" + urlencode({"lab": "fit", "d": d, "k": k, "rank": rank, "target_rank": target_rank})


def lab_href(lab: str) -> str:
    return "/labs?" + urlencode({"lab": lab})


# ---------------------------------------------------------------------------------------------------------
# Learning objectives


@dataclass(frozen=True)
class Objective:
    key: str
    text: str
    link: Link


OBJECTIVES: tuple[Objective, ...] = (
    Objective(
        "decomposition",
        "Understand LoRA's decomposition W' = W + BA: a frozen d×k weight W plus the product of B (d×r) "
        "and A (r×k).",
        Link("See W, B and A in the Explorer", explorer_href(1024, 1024, 8)),
    ),
    Objective(
        "savings",
        "Compute the parameter savings: LoRA trains r(d + k) numbers instead of d·k.",
        Link("Drag the rank in the Explorer (d = k = 4096)", explorer_href(4096, 4096, 16)),
    ),
    Objective(
        "low_rank",
        "Explain why a low rank works: fine-tuning updates lie close to a low-dimensional subspace.",
        Link("Fit lab: a rank-4 target learned by a rank-8 LoRA", fit_lab_href(64, 64, 8, 4)),
    ),
    Objective(
        "init",
        "Explain the initialisation: B starts at zero and A random, so training starts from the pretrained model.",
        Link("Init lab: compare the initialisation schemes", lab_href("init")),
    ),
    Objective(
        "merge",
        "Explain merging for inference: W' = W + (alpha/r)·BA costs nothing extra at inference time.",
        Link("Merge lab: merged and unmerged outputs, FLOPs and timings", lab_href("merge")),
    ),
    Objective(
        "limits",
        "Recognise when LoRA fails: an update that needs a higher rank than r.",
        Link("Fit lab with a full-rank target", fit_lab_href()),
    ),
    Objective(
        "methods",
        "Compare LoRA with full fine-tuning and other parameter-efficient methods on real models.",
        Link("Models page: trainable parameters of real models", "/models"),
    ),
)


# ---------------------------------------------------------------------------------------------------------
# Activity 1: the largest rank that saves a target share of the parameters


SAVINGS_D = 1024
SAVINGS_K = 1024
SAVINGS_TARGET = 0.99
HINT_DEFAULT_RANK = 8


def parse_rank(text: object) -> int:
    """A rank typed by a learner ('5', ' 5 ', '5.0') as an int; InvalidParameterError with a plain message."""
    raw = str(text).strip() if text is not None else ""
    if not raw:
        raise InvalidParameterError("enter a rank, a whole number such as 8", where="r")
    try:
        value = float(raw.replace(",", "").replace("_", ""))
    except ValueError:
        raise InvalidParameterError(f"enter the rank as a whole number such as 8, not {raw!r}", where="r") from None
    if not math.isfinite(value) or not value.is_integer():
        raise InvalidParameterError(f"the rank is a whole number (columns of B, rows of A), not {raw}", where="r")
    rank = int(value)
    if rank < 1:
        raise InvalidParameterError(f"the rank must be at least 1 (B needs at least one column), not {rank}", where="r")
    return rank


def _number(value: Fraction | int) -> str:
    """An exact number as short decimal text with thousands separators: 1,048,576; 5.12; 10,485.76."""
    value = Fraction(value)
    if value.denominator == 1:
        return f"{value.numerator:,}"
    text = f"{float(value):,.6f}".rstrip("0").rstrip(".")
    return text


def _exact_percent(share: Fraction) -> str:
    """An exact share as a percentage without spurious digits: 99/100 -> '99%', 1/100 -> '1%'."""
    return _number(share * 100) + "%"


def _saved_text(saved: Fraction, target: Fraction) -> str:
    """``saved`` as a percentage (3 significant digits or more) that does not look equal to ``target``
    unless it is, nor on the wrong side of it."""
    for digits in range(3, 12):
        text = percent(saved, digits)
        shown = Fraction(text.rstrip("%")) / 100
        if (shown >= target) == (saved >= target) and (shown == target) == (saved == target):
            return text
    return _exact_percent(saved)


def check_savings_rank(
    answer: object, d: int = SAVINGS_D, k: int = SAVINGS_K, target: float = SAVINGS_TARGET
) -> Verdict:
    """Check a learner's answer to "the largest rank r whose LoRA saves at least ``target`` of d·k".

    correct: the answer is the largest such r; not_enough: it saves less than the target; not_largest: it
    meets the target but a larger rank does too; invalid: not a rank (text, 0, negative, above min(d, k)).
    """
    count_layer(d, k, 1, target)  # a bad d, k or target is the caller's mistake: raise
    try:
        r = parse_rank(answer)
    except InvalidParameterError as error:
        return Verdict(INVALID, _sentence(error.message))
    if r > min(d, k):
        return Verdict(INVALID, f"The rank cannot exceed min(d, k) = {min(d, k):,}; {r:,} is too large.")
    layer = count_layer(d, k, r, target)
    best = layer.max_rank_for_target
    goal = layer.savings_target
    allowed = (1 - goal) * layer.full  # the most parameters LoRA may train
    goal_text = _exact_percent(goal)
    saved_text = _saved_text(layer.savings, goal) if layer.savings >= 0 else "nothing (it trains more than W has)"
    trains = (
        f"LoRA trains r(d + k) = {r:,} × ({d:,} + {k:,}) = {layer.lora:,} parameters, "
        f"{percent(layer.share)} of the d·k = {layer.full:,} in W, so it saves {saved_text}."
    )
    need = (
        f"Saving {goal_text} means r(d + k) ≤ {_exact_percent(1 - goal)} of d·k: "
        f"r × {d + k:,} ≤ {_number(allowed)}."
    )
    if best == 0:
        return Verdict(
            NOT_ENOUGH,
            f"r = {r:,} saves {saved_text}, not enough: on a {d:,}×{k:,} layer even r = 1 cannot save {goal_text}.",
            f"{trains} {need} Even r = 1 trains {d + k:,} parameters.",
        )
    bound = allowed / (d + k)
    solved = f"So r ≤ {_number(allowed)} / {d + k:,} = {_number(bound)}, and the largest whole rank is {best:,}."
    if r == best:
        return Verdict(
            CORRECT,
            f"Correct: r = {r:,} is the largest rank that saves at least {goal_text} "
            f"({layer.lora:,} parameters, {percent(layer.share)}).",
            f"{trains} {need} {solved}",
        )
    if r > best:
        return Verdict(NOT_ENOUGH, f"r = {r:,} saves {saved_text}, not enough (the goal is {goal_text}).",
                       f"{trains} {need}")
    return Verdict(
        NOT_LARGEST,
        f"r = {r:,} saves {saved_text}, at least {goal_text}, but it is not the largest rank that does: "
        "try a larger one.",
        f"{trains} {need}",
    )


def savings_hint_href(answer: object, d: int = SAVINGS_D, k: int = SAVINGS_K) -> str:
    """The Explorer at d×k with the learner's rank when it is a usable one, else rank 8 (or min(d, k))."""
    try:
        r = parse_rank(answer)
    except InvalidParameterError:
        r = HINT_DEFAULT_RANK
    return explorer_href(d, k, max(1, min(r, d, k)))


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


# ---------------------------------------------------------------------------------------------------------
# Activity 2: compare parameter counts for different model sizes (the Models page's presets)


# target choice -> (target_modules for LoraConfigSpec, description)
TARGET_CHOICES: dict[str, tuple[str | None, str]] = {
    "default": (None, "PEFT's default targets: the q and v attention projections (GPT-2: its fused c_attn)"),
    "all-linear": (ALL_LINEAR, "all-linear: every linear layer except the output head"),
}
RANK_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MODELS_QUESTION = "Which model trains the most LoRA parameters per billion base parameters?"


@dataclass(frozen=True)
class ModelRow:
    """One preset's LoRA count (from core.peft_count) and its share of the base model."""

    model_id: str  # the preset's short name, as the Models page's ?model= takes it
    name: str
    hidden_size: int
    base_params: int
    trainable: int
    percent: float  # PEFT's trainable%: 100 · trainable / (base + LoRA)
    per_billion: Fraction  # trainable per 10⁹ base parameters, exact
    targets: str


@dataclass(frozen=True)
class ModelComparison:
    r: int
    targets: str  # a TARGET_CHOICES key
    rows: tuple[ModelRow, ...]  # in the presets' order

    @property
    def most_per_billion(self) -> tuple[ModelRow, ...]:
        """The row(s) with the largest trainable count per billion base parameters."""
        top = max(row.per_billion for row in self.rows)
        return tuple(row for row in self.rows if row.per_billion == top)

    def row(self, model_id: str) -> ModelRow | None:
        return next((row for row in self.rows if row.model_id == model_id), None)


def models_href(model_id: str, r: int, targets: str = "default") -> str:
    """The Models page for a preset, rank and TARGET_CHOICES key (its URL parameters model, r, targets)."""
    query = {"model": model_id, "r": r}
    if TARGET_CHOICES[targets][0] is not None:
        query["targets"] = TARGET_CHOICES[targets][0]
    return "/models?" + urlencode(query)


def compare_models(r: int = 8, targets: str = "default") -> ModelComparison:
    """LoRA's trainable parameters on every Models-page preset, for rank r and a TARGET_CHOICES key."""
    r = check_int("r", r, 1, 4096)
    if targets not in TARGET_CHOICES:
        raise InvalidParameterError(f"must be one of {', '.join(TARGET_CHOICES)}, got {targets!r}", where="targets")
    spec = LoraConfigSpec(r=r, target_modules=TARGET_CHOICES[targets][0])
    rows = []
    for arch in PRESETS.values():
        count = count_lora(arch, spec)
        used = count.target_modules
        rows.append(ModelRow(
            model_id=arch.short_name,
            name=arch.display_name or arch.short_name,
            hidden_size=arch.hidden_size,
            base_params=count.base_total,
            trainable=count.trainable,
            percent=count.percent,
            per_billion=Fraction(count.trainable * 10**9, count.base_total),
            targets=used if isinstance(used, str) else ", ".join(used),
        ))
    return ModelComparison(r=r, targets=targets, rows=tuple(rows))


def check_model_choice(choice: object, comparison: ModelComparison) -> Verdict:
    """Check the learner's answer to MODELS_QUESTION (a preset's short name) against the computed table."""
    row = comparison.row(choice) if isinstance(choice, str) else None
    if row is None:
        return Verdict(INVALID, "Choose a model from the list first.")
    best = comparison.most_per_billion
    lowest = min(comparison.rows, key=lambda item: item.per_billion)
    why = (
        "Each adapted d×k matrix holds d·k weights and LoRA trains r(d + k) of its own, a share of "
        "r(d + k)/(d·k) = r/k + r/d: the thinner the layers, the larger LoRA's share. So the models with the "
        f"smallest hidden size get the most per billion, and {lowest.name}, with the widest layers, the fewest "
        f"({_number(round(lowest.per_billion)) if lowest.per_billion >= 1 else '< 1'} per billion)."
    )
    per_billion = _number(round(row.per_billion))
    if row in best:
        return Verdict(
            CORRECT,
            f"Correct: {row.name} trains {per_billion} LoRA parameters per billion base parameters "
            f"(r = {comparison.r}), the most of these models.",
            why,
        )
    return Verdict(
        WRONG,
        f"Not quite: {row.name} trains {per_billion} per billion base parameters; another model trains more. "
        "Compare the last column of the table.",
    )


# ---------------------------------------------------------------------------------------------------------
# Activity 3: when might LoRA not work


LIMITS_S = 16
LIMITS_R = 4
LIMITS_TOLERANCE = 0.02


def best_rank_r_error(s: int, r: int) -> float:
    """Lowest relative error ‖ΔW − ΔW*‖_F / ‖ΔW*‖_F of any rank-r ΔW, when ΔW* has s equal singular
    values.

    Eckart–Young: the best rank-r approximation keeps the r largest singular values and loses the rest, so
    the error is sqrt(sum of the lost σ²) / sqrt(sum of all σ²) = sqrt((s − r) / s), and 0 when r ≥ s.
    """
    if s < 1 or r < 1:
        raise InvalidParameterError("ranks must be at least 1", where="s" if s < 1 else "r")
    return math.sqrt(max(s - r, 0) / s)


def parse_error_guess(text: object) -> float:
    """A relative error typed as 0.87, .87 or 87%."""
    raw = str(text).strip() if text is not None else ""
    if not raw:
        raise InvalidParameterError("enter the relative error, a number from 0 to 1 such as 0.5", where="error")
    is_percent = raw.endswith("%")
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        raise InvalidParameterError(f"enter a number from 0 to 1 such as 0.5, not {raw!r}", where="error") from None
    if is_percent:
        value /= 100
    if not math.isfinite(value) or value < 0 or value > 1:
        raise InvalidParameterError(f"a relative error here lies from 0 to 1 (0% to 100%), not {raw}", where="error")
    return value


def check_limits_answer(answer: object, s: int = LIMITS_S, r: int = LIMITS_R,
                        tolerance: float = LIMITS_TOLERANCE) -> Verdict:
    """Check a predicted final error of a rank-r LoRA against a target of s equal singular values."""
    try:
        guess = parse_error_guess(answer)
    except InvalidParameterError as error:
        return Verdict(INVALID, _sentence(error.message))
    best = best_rank_r_error(s, r)
    why = (
        f"A rank-{r} update can match at most {min(r, s)} of the target's {s} directions. Eckart–Young: the best "
        f"rank-{r} approximation keeps the top {min(r, s)} singular values, so the error left is "
        f"sqrt((s − r) / s) = sqrt({max(s - r, 0)}/{s}) = {best:.3f}. Training with Adam stalls at this bound, "
        "however long it runs."
        if s > r
        else f"With r = {r} ≥ s = {s}, LoRA can represent the target exactly, so the error can reach 0."
    )
    if abs(guess - best) <= tolerance:
        return Verdict(CORRECT, f"Correct: about {best:.2f} ({best:.0%}) of the target stays out of reach.", why)
    if guess < best and s > r:
        hint = "too low: a rank-{r} LoRA cannot get below the best rank-{r} approximation of the target."
        return Verdict(WRONG, f"{guess:g} is " + hint.format(r=r), why)
    return Verdict(WRONG, f"{guess:g} is too high: the best rank-{r} update does better than that.", why)


# ---------------------------------------------------------------------------------------------------------
# Assessment


@dataclass(frozen=True)
class Question:
    key: str
    question: str
    answer: str
    link: Link


ASSESSMENT: tuple[Question, ...] = (
    Question(
        "init",
        "Why does LoRA start with B = 0 and A random, and not with both random or both zero?",
        "With B = 0 the update ΔW = (alpha/r)·BA is exactly zero at step 0, so training starts from the pretrained "
        "model's own outputs. A random makes the gradient of B, (alpha/r)·(∂L/∂h)(Ax)ᵀ, non-zero, so learning "
        "starts at once (and A gets gradients from the first step after B moves). Both zero: both gradients are "
        "exactly zero and the adapter never learns. Both random: the model's outputs change before any training.",
        Link("Init lab: gradients at step 0 and loss curves of each scheme", lab_href("init")),
    ),
    Question(
        "methods",
        "How does LoRA compare with other parameter-efficient fine-tuning methods?",
        "Adapter layers insert extra modules in series that stay at inference time and add latency. Prefix and "
        "prompt tuning train a few vectors but take up part of the sequence length and are harder to optimise. "
        "(IA)³ trains only scaling vectors: fewer parameters, less expressive. LoRA trains r(d + k) numbers per "
        "adapted matrix, can be merged into W so that inference costs nothing extra, and several adapters can be "
        "swapped on one frozen model. Full fine-tuning trains all d·k numbers of every matrix.",
        Link("Models page: LoRA's trainable parameters on real models", "/models"),
    ),
    Question(
        "compute",
        "What does LoRA cost in compute during training, and during inference?",
        "Training: each adapted layer adds r(d + k) multiply-adds per token for B(Ax) on top of d·k, and the "
        "backward pass still runs through the frozen W, but gradients and optimizer states exist only for the "
        "r(d + k) LoRA numbers, which saves most of the memory (the LoRA paper: GPT-3 175B training needed 350 GB "
        "instead of 1.2 TB). Inference: merge W' = W + (alpha/r)·BA once and each token costs exactly d·k, as "
        "before; unmerged it costs d·k + r(d + k).",
        Link("Merge lab: merged vs unmerged outputs, FLOPs per token and timings", lab_href("merge")),
    ),
)
