"""The LoRA lesson plan as plain data and checking functions.

The Lessons page only renders what is here: the learning objectives, nine activities (each backed by a live
view or lab, with checked questions, hints, worked solutions and notes for the teacher), and the assessment.
Every number a checker quotes comes from ``core.counting``, ``core.peft_count``, ``core.methods``,
``core.memory`` or the labs, never from a formula re-derived here. No UI.
"""

from __future__ import annotations

from dataclasses import dataclass

from loralens.core.lessons.assessment import ASSESSMENT
from loralens.core.lessons.basics import (
    HINT_DEFAULT_RANK, SAVINGS_D, SAVINGS_K, SAVINGS_TARGET, check_forward, check_savings_rank, forward_activity,
    forward_pass, parse_rank, savings_activity, savings_hint_link,
)
from loralens.core.lessons.kit import (
    CHOICE, CORRECT, INVALID, NOT_ENOUGH, NOT_LARGEST, NUMBER, OPEN, VECTOR, WRONG, Activity, Choice, Link,
    Question, Step, Verdict, leaks, link, numbers_in,
)
from loralens.core.lessons.serving import (
    init_activity, merge_activity, methods_activity, overhead_activity, swap_activity, training_multiply_adds,
)
from loralens.core.lessons.sizes import (
    LIMITS_R, LIMITS_S, LIMITS_TOLERANCE, MODELS_QUESTION, RANK_CHOICES, TARGET_CHOICES, ModelComparison, ModelRow,
    best_rank_r_error, check_limits_answer, check_model_choice, compare_models, limits_activity, models_activity,
    models_link,
)

#: the activities in the order of the lesson (the anchors are #activity-<key>)
ACTIVITIES: tuple[Activity, ...] = (
    forward_activity(), savings_activity(), models_activity(), limits_activity(), init_activity(),
    merge_activity(), swap_activity(), methods_activity(), overhead_activity(),
)
ACTIVITY_KEYS = tuple(a.key for a in ACTIVITIES)

#: the seed MicroSim's lesson plan, item by item: every item is some activity's ``covers``
SEED_PLAN = (
    "LoRA's decomposition W′ = W + BA",
    "Find the rank that saves 99% on a 1024×1024 matrix",
    "Compare model sizes",
    "When LoRA fails: a task that needs a full-rank update",
    "Why B starts at zero and A random",
    "Merging W′ = W + BA for no inference latency",
    "Swapping adapters",
    "LoRA vs other efficient methods",
    "Overhead in training vs inference",
)


@dataclass(frozen=True)
class Objective:
    key: str
    text: str
    activity: str  # the activity that practises it


OBJECTIVES: tuple[Objective, ...] = (
    Objective("decomposition", "Compute a LoRA layer's output h = W·x + s·B·(A·x) and explain W′ = W + s·B·A.",
              "forward"),
    Objective("savings", "Compute the parameter savings: LoRA trains r(d + k) numbers instead of d·k.", "savings"),
    Objective("sizes", "Compare LoRA's size on models of different sizes.", "models"),
    Objective("limits", "Recognise when LoRA fails: an update that needs a higher rank than r.", "limits"),
    Objective("init", "Explain the initialisation: B starts at zero and A random.", "init"),
    Objective("merge", "Explain why a merged adapter costs nothing extra at inference.", "merge"),
    Objective("swap", "Explain how adapters are swapped on one frozen model.", "swap"),
    Objective("methods", "Compare LoRA with other parameter-efficient methods.", "methods"),
    Objective("overhead", "Tell LoRA's savings in training from its cost at inference.", "overhead"),
)


def activity(key: str) -> Activity | None:
    return next((a for a in ACTIVITIES if a.key == key), None)


def all_questions() -> tuple[Question, ...]:
    """Every question of the lesson: each activity's, then the assessment's."""
    return (*(q for a in ACTIVITIES for q in a.questions), *ASSESSMENT)


def question(key: str) -> Question | None:
    return next((q for q in all_questions() if q.key == key), None)


#: what progress counts: every question (checked ones when answered correctly, open ones when compared)
PROGRESS_KEYS = tuple(q.key for q in all_questions())

__all__ = [
    "ACTIVITIES", "ACTIVITY_KEYS", "ASSESSMENT", "CHOICE", "CORRECT", "HINT_DEFAULT_RANK", "INVALID", "LIMITS_R",
    "LIMITS_S", "LIMITS_TOLERANCE", "MODELS_QUESTION", "NOT_ENOUGH", "NOT_LARGEST", "NUMBER", "OBJECTIVES", "OPEN",
    "PROGRESS_KEYS", "RANK_CHOICES", "SAVINGS_D", "SAVINGS_K", "SAVINGS_TARGET", "SEED_PLAN", "TARGET_CHOICES",
    "VECTOR", "WRONG", "Activity", "Choice", "Link", "ModelComparison", "ModelRow", "Objective", "Question", "Step",
    "Verdict", "activity", "all_questions", "best_rank_r_error", "check_forward", "check_limits_answer",
    "check_model_choice", "check_savings_rank", "compare_models", "forward_pass", "leaks", "link", "models_link",
    "numbers_in", "parse_rank", "question", "savings_hint_link", "training_multiply_adds",
]
