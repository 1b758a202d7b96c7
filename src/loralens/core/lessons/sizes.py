"""Activities 3 and 4: LoRA's size on real models (``core.peft_count``), and when a rank-r LoRA cannot fit
(the Eckart–Young bound the fit lab draws)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from loralens.core.architectures import PRESET_GROUPS, PRESETS
from loralens.core.lessons.kit import (
    CHOICE, CORRECT, INVALID, NUMBER, WRONG, Activity, Choice, Link, Question, Verdict, choice_checker, exact, link,
    parse_number, sentence,
)
from loralens.core.peft_config import ALL_LINEAR, LoraConfigSpec
from loralens.core.peft_count import count_lora
from loralens.core.validation import check_int
from loralens.errors import InvalidParameterError

# ---------------------------------------------------------------------------------------------------------
# Activity 3: compare parameter counts for different model sizes (the Models page's presets)

# target choice -> (target_modules for LoraConfigSpec, description)
TARGET_CHOICES: dict[str, tuple[str | None, str]] = {
    "default": (None, "PEFT's default targets: the q and v attention projections (GPT-2: its fused c_attn)"),
    "all-linear": (ALL_LINEAR, "all-linear: every linear layer except the output head"),
}
RANK_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MODELS_R = 8
MODELS_QUESTION = (f"With r = {MODELS_R} on PEFT's default targets, which model trains the most LoRA parameters "
                   "per billion base parameters?")


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


def models_link(model_id: str, r: int, targets: str = "default", label: str = "") -> Link:
    """The Models page for a preset, rank and TARGET_CHOICES key (its URL parameters model, r, targets)."""
    query: dict[str, object] = {"model": model_id, "r": r}
    if TARGET_CHOICES[targets][0] is not None:
        query["targets"] = TARGET_CHOICES[targets][0]
    return link(label or f"{model_id} with r = {r} on the Models page", "/models", **query)


@cache
def compare_models(r: int = MODELS_R, targets: str = "default") -> ModelComparison:
    """LoRA's trainable parameters on every Models-page preset, for rank r and a TARGET_CHOICES key."""
    r = check_int("r", r, 1, 4096)
    if targets not in TARGET_CHOICES:
        raise InvalidParameterError(f"must be one of {', '.join(TARGET_CHOICES)}, got {targets!r}", where="targets")
    spec = LoraConfigSpec(r=r, target_modules=TARGET_CHOICES[targets][0])
    rows = []
    for arch in (PRESETS[hf_id] for hf_id in PRESET_GROUPS["gpt2-bert-opt-gpt3"]):  # the lesson's ten models
        count = count_lora(arch, spec)
        used = count.target_modules
        rows.append(ModelRow(
            model_id=arch.short_name, name=arch.display_name or arch.short_name, hidden_size=arch.hidden_size,
            base_params=count.base_total, trainable=count.trainable, percent=count.percent,
            per_billion=Fraction(count.trainable * 10**9, count.base_total),
            targets=used if isinstance(used, str) else ", ".join(used),
        ))
    return ModelComparison(r=r, targets=targets, rows=tuple(rows))


def check_model_choice(choice: object, comparison: ModelComparison | None = None) -> Verdict:
    """Check MODELS_QUESTION (a preset's short name) against the computed table."""
    comparison = comparison or compare_models()
    row = comparison.row(choice) if isinstance(choice, str) else None
    if row is None:
        return Verdict(INVALID, "Choose a model from the list first.")
    per_billion = exact(round(row.per_billion))
    if row in comparison.most_per_billion:
        lowest = min(comparison.rows, key=lambda item: item.per_billion)
        return Verdict(CORRECT, f"Correct: {row.name} trains {per_billion} LoRA parameters per billion base "
                                f"parameters (r = {comparison.r}), the most of these models.",
                       explanation=models_solution(comparison) + f" {lowest.name}, with the widest layers, gets the "
                                                                 "fewest.")
    return Verdict(WRONG, f"Not quite: {row.name} trains {per_billion} per billion base parameters; another model "
                          "trains more.",
                   "Divide each model's LoRA count by its base parameters in billions; or think of one d×k matrix, "
                   "where LoRA's share is r(d + k)/(d·k) = r/k + r/d: which models have the thinnest layers?")


def models_solution(comparison: ModelComparison | None = None) -> str:
    comparison = comparison or compare_models()
    best = comparison.most_per_billion[0]
    return (f"{best.name}: {exact(round(best.per_billion))} LoRA parameters per billion base parameters at "
            f"r = {comparison.r}. Each adapted d×k matrix holds d·k weights and LoRA trains r(d + k) of its own, a "
            "share of r/k + r/d: the thinner the layers (the smaller the hidden size), the larger LoRA's share.")


def _share_trend(comparison: ModelComparison) -> str:
    """Whether LoRA's share falls or rises from the smallest model to the largest, read from the table."""
    small = min(comparison.rows, key=lambda row: row.base_params)
    large = max(comparison.rows, key=lambda row: row.base_params)
    return "small" if small.percent > large.percent else "large" if small.percent < large.percent else "same"


def models_activity() -> Activity:
    table = compare_models()
    best = table.most_per_billion[0]
    small = min(table.rows, key=lambda row: row.base_params)
    large = max(table.rows, key=lambda row: row.base_params)
    trend = (
        Choice("small", "Larger for small models", "Compare LoRA trainable ÷ base parameters for the smallest and "
                                                   "the largest model in the table."),
        Choice("large", "Larger for large models", "Compare LoRA trainable ÷ base parameters for the smallest and "
                                                   "the largest model in the table."),
        Choice("same", "The same for every model", "LoRA's count grows like r(d + k), the model's like d·k: which "
                                                   "grows faster as the layers get wider?"),
    )
    correct_trend = _share_trend(table)
    questions = (
        Question("models-most", MODELS_QUESTION, CHOICE, answer=best.name, solution=models_solution(),
                 check=check_model_choice, label="Model",
                 choices=tuple(Choice(row.model_id, row.name) for row in table.rows),
                 secret_texts=tuple(row.name for row in table.most_per_billion)),
        Question("models-share", "As models get larger, does LoRA (same r, same kind of targets) train a larger or "
                 "a smaller share of the model's parameters?", CHOICE,
                 answer=next(c.text for c in trend if c.key == correct_trend),
                 solution=f"A smaller share for larger models: {small.name} {small.percent:.3g}% against "
                          f"{large.name} {large.percent:.3g}%. Wider layers make r(d + k) a smaller part of d·k.",
                 check=choice_checker(trend, correct_trend), choices=trend,
                 secret_texts=(next(c.text for c in trend if c.key == correct_trend),)),
    )
    return Activity(
        key="models", title="Compare parameter counts for different model sizes",
        intro=("The same LoRA configuration on real models, counted exactly as PEFT counts it (the Models page's "
               "presets). Choose a rank and the adapted layers to fill the table, then answer the questions.",),
        links=(models_link("llama-2-7b", MODELS_R, label="Llama 2 7B on the Models page (every module counted)"),),
        questions=questions, widget="models-table",
        in_class="Give each group two models to compare on the Models page, then pool the numbers on the board. "
                 "The per-billion column (shown after answering, and in this view) makes the point: LoRA's share "
                 "shrinks as the layers widen, while its absolute size grows.",
        covers="Compare model sizes",
    )


# ---------------------------------------------------------------------------------------------------------
# Activity 4: when might LoRA not work

LIMITS_S = 16
LIMITS_R = 4
LIMITS_TOLERANCE = 0.02


def best_rank_r_error(s: int, r: int) -> float:
    """Lowest relative error ‖ΔW − ΔW*‖_F / ‖ΔW*‖_F of any rank-r ΔW, when ΔW* has s equal singular values.

    Eckart–Young: the best rank-r approximation keeps the r largest singular values and loses the rest, so
    the error is sqrt(sum of the lost σ²) / sqrt(sum of all σ²) = sqrt((s − r) / s), and 0 when r ≥ s.
    """
    if s < 1 or r < 1:
        raise InvalidParameterError("ranks must be at least 1", where="s" if s < 1 else "r")
    return math.sqrt(max(s - r, 0) / s)


def parse_error_guess(text: object) -> float:
    """A relative error typed as 0.87, .87 or 87%."""
    if text is None or not str(text).strip():
        raise InvalidParameterError("enter the relative error, a number from 0 to 1 such as 0.3", where="error")
    value = parse_number(text, "error", percent_ok=True)
    if value < 0 or value > 1:
        raise InvalidParameterError(f"a relative error here lies from 0 to 1 (0% to 100%), not {str(text).strip()}",
                                    where="error")
    return value


def limits_solution(s: int = LIMITS_S, r: int = LIMITS_R) -> str:
    best = best_rank_r_error(s, r)
    if s <= r:
        return f"With r = {r} ≥ s = {s}, LoRA can represent the target exactly, so the error can reach 0."
    return (f"A rank-{r} update can match at most {r} of the target's {s} directions. Eckart–Young: the best "
            f"rank-{r} approximation keeps the top {r} singular values, so the error left is sqrt((s − r) / s) = "
            f"sqrt({s - r}/{s}) = {best:.3f}. Training stalls at this floor, however long it runs.")


def check_limits_answer(answer: object, s: int = LIMITS_S, r: int = LIMITS_R,
                        tolerance: float = LIMITS_TOLERANCE) -> Verdict:
    """Check a predicted final error of a rank-r LoRA against a target of s equal singular values."""
    try:
        guess = parse_error_guess(answer)
    except InvalidParameterError as error:
        return Verdict(INVALID, sentence(error.message))
    best = best_rank_r_error(s, r)
    if abs(guess - best) <= tolerance:
        return Verdict(CORRECT, f"Correct: about {best:.2f} ({best:.0%}) of the target stays out of reach.",
                       explanation=limits_solution(s, r))
    look = ("Eckart–Young: the best rank-r approximation keeps the r largest singular values and loses the rest. "
            "Which share of the target's energy (the sum of the σ²) do the lost ones carry? The relative error is "
            "the square root of that share.")
    if guess < best and s > r:
        return Verdict(WRONG, f"{guess:g} is too low: a rank-{r} LoRA cannot get below the best rank-{r} "
                              "approximation of the target.", look)
    return Verdict(WRONG, f"{guess:g} is too high: the best rank-{r} update does better than that.", look)


def limits_activity() -> Activity:
    s, r = LIMITS_S, LIMITS_R
    best = best_rank_r_error(s, r)
    fixes = (
        Choice("steps", "Train for more steps", "In the fit lab, look at the rank-4 loss curve: does it keep "
                                               "falling, or does it flatten at the Eckart–Young line?"),
        Choice("lr", "A higher learning rate", "The floor is not about the optimiser: compare the error of each "
                                               "rank with the Eckart–Young line."),
        Choice("alpha", "A larger alpha", "alpha only scales s·B·A; which updates can a product B·A of inner size "
                                          "r represent at all?"),
        Choice("rank", "A higher rank r"),
    )
    questions = (
        Question("limits-error", f"Predict: the target update ΔW* has rank s = {s} with all {s} singular values "
                 f"equal, and the LoRA has rank r = {r}. After long training, what relative error "
                 "‖ΔW − ΔW*‖_F / ‖ΔW*‖_F remains (a number from 0 to 1, or a percentage)?", NUMBER,
                 answer=f"sqrt(({s} − {r}) / {s}) = {best:.3f}", solution=limits_solution(),
                 check=check_limits_answer, label="Relative error", placeholder="e.g. 0.3",
                 secrets=(best,), secret_texts=(f"{s - r}/{s}",),
                 tries=("0", "0.1", "0.25", "0.5", "0.75", "0.8", "0.9", "1", "50%", "x", "1.5", ""),
                 after=link(f"Fit lab: a rank-{s} target and a rank-{r} LoRA (its σ are not all equal, so its "
                            "floor differs; the lab draws it)", "/labs", lab="fit", d=64, k=64, rank=r,
                            target_rank=s)),
        Question("limits-fix", "The fit lab's rank-4 LoRA stalls against a full-rank 64×64 target. Which change "
                 "lets it get close to the target?", CHOICE, answer="A higher rank r",
                 solution="Only a higher rank: the Eckart–Young floor depends on r alone. More steps, another "
                          "learning rate or a larger alpha change how fast LoRA approaches the floor, not the floor.",
                 check=choice_checker(fixes, "rank"), choices=fixes, secret_texts=("A higher rank",),
                 after=link("Fit lab: the error of every rank against the full-rank target", "/labs", lab="fit",
                            d=64, k=64, rank=4, target_rank=64)),
    )
    return Activity(
        key="limits", title="When might LoRA not work?",
        intro=("LoRA can only learn updates of rank at most r. When a task needs an update of higher rank — a new "
               "language, a very different domain, or a target spread evenly over many directions — a rank-r "
               "adapter stalls at an error that no amount of training removes. The fit lab trains a LoRA against a "
               "target update of chosen rank and draws that floor (the Eckart–Young bound) beside the learned "
               "error.",),
        links=(),  # the fit lab shows both answers: each question offers it after a first attempt
        questions=questions,
        in_class="Ask for a prediction first (show of hands: 0, 0.5, 0.9?). Then open the fit lab with the "
                 "full-rank target and let students raise the rank until the error falls: the floor moves only "
                 "with r.",
        covers="When LoRA fails: a task that needs a full-rank update",
    )


__all__ = [
    "LIMITS_R", "LIMITS_S", "LIMITS_TOLERANCE", "MODELS_QUESTION", "MODELS_R", "RANK_CHOICES", "TARGET_CHOICES",
    "ModelComparison", "ModelRow", "best_rank_r_error", "check_limits_answer", "check_model_choice",
    "compare_models", "limits_activity", "limits_solution", "models_activity", "models_link", "models_solution",
    "parse_error_guess",
]
