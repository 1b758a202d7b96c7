"""The assessment: checked questions where an answer can be checked (numbers, choices), and open questions
with a model answer to reveal once the learner has written their own."""

from __future__ import annotations

from loralens.core.counting import break_even_rank, full_params, lora_params
from loralens.core.lessons.kit import CHOICE, NUMBER, OPEN, Choice, Question, choice_checker, link, number_checker

INIT_LAB = link("Init lab: gradients at step 0 and loss curves of each scheme", "/labs", lab="init")
MODELS = link("Models page: the methods side by side on a real model", "/models", model="llama-2-7b", r=8)
MERGE_LAB = link("Merge lab: merged vs unmerged outputs, FLOPs per token and timings", "/labs", lab="merge")
FIT_LAB = link("Fit lab: a rank-8 LoRA against a rank-64 target", "/labs", lab="fit", d=128, k=128, rank=8,
               target_rank=64)


def _count_question() -> Question:
    d, k, r = 768, 3072, 4
    count = lora_params(d, k, r)
    return Question(
        "assess-count", f"How many parameters does LoRA train on one {d:,}×{k:,} matrix (GPT-2's MLP) at r = {r}?",
        NUMBER, answer=f"{count:,}",
        solution=f"r(d + k) = {r} × ({d:,} + {k:,}) = {count:,}, against d·k = {full_params(d, k):,}.",
        check=number_checker(count, right=f"Correct: r(d + k) = {count:,}.",
                             hint="B is d×r and A is r×k: add up their entries.",
                             mistakes=((full_params(d, k), "That is d·k, the full matrix: count B and A."),
                                       (r * d, "That is B alone: add A."), (r * k, "That is A alone: add B."),
                                       (r * d * k, "B·A has d·k entries, but LoRA trains B and A, not their "
                                                   "product."))),
        label="Parameters", placeholder="e.g. 1,000", secrets=(float(count),),
        tries=(str(full_params(d, k)), str(r * d), str(r * k), "3840", "0", "x"),
    )


def _break_even_question() -> Question:
    d, k = 4096, 11008
    bound = break_even_rank(d, k)
    return Question(
        "assess-break-even", f"From which rank on does LoRA on a {d:,}×{k:,} matrix (Llama 2 7B's MLP) train at "
        "least as many parameters as the matrix has (the break-even rank)?", NUMBER,
        answer=f"dk/(d + k) ≈ {float(bound):,.1f}",
        solution=f"r(d + k) = d·k at r = dk/(d + k) = {d * k:,} / {d + k:,} ≈ {float(bound):,.1f}; any rank from "
                 f"there up saves nothing. LoRA ranks in practice (8 to 64) are far below.",
        check=number_checker(float(bound), tolerance=1.0, right=f"Correct: dk/(d + k) ≈ {float(bound):,.1f}.",
                             hint="Set LoRA's count r(d + k) equal to the matrix's d·k and solve for r."),
        label="Rank", placeholder="e.g. 100", secrets=(float(bound),),
        tries=("8", "64", "1000", "4096", "7552", "11008", "x"),
    )


def _rank_question() -> Question:
    choices = (
        Choice("floor", "The error stalls at a floor set by the singular values r = 8 cannot hold"),
        Choice("slow", "It reaches the target, only more slowly", "Can a product B·A of inner size 8 have rank 64?"),
        Choice("diverge", "Training diverges", "Nothing about the rank makes the loss blow up: which updates can "
                                               "B·A represent?"),
        Choice("grow", "LoRA raises its rank by itself", "r is fixed by the shapes of B and A. (AdaLoRA moves rank "
                                                         "between layers; plain LoRA does not.)"),
    )
    return Question(
        "assess-rank", "A task needs an update of rank 64 and you train LoRA with r = 8. What happens?", CHOICE,
        answer=choices[0].text,
        solution="B·A has rank at most 8, so the best it can do is the best rank-8 approximation of the update "
                 "(Eckart–Young): the error stalls at the share of the update's energy in its other singular "
                 "directions. Only a higher rank lowers that floor.",
        check=choice_checker(choices, "floor"), choices=choices, secret_texts=("stalls at a floor",), after=FIT_LAB,
    )


ASSESSMENT: tuple[Question, ...] = (
    _count_question(),
    _break_even_question(),
    _rank_question(),
    Question(
        "assess-init", "Why does LoRA start with B = 0 and A random, and not with both random or both zero?", OPEN,
        answer="With B = 0 the update ΔW = (alpha/r)·BA is exactly zero at step 0, so training starts from the "
               "pretrained model's own outputs. A random makes the gradient of B, (alpha/r)·(∂L/∂h)(Ax)ᵀ, non-zero, "
               "so learning starts at once (and A gets gradients from the first step after B moves). Both zero: "
               "both gradients are exactly zero and the adapter never learns. Both random: the model's outputs "
               "change before any training.",
        solution="", after=INIT_LAB,
    ),
    Question(
        "assess-methods", "How does LoRA compare with other parameter-efficient fine-tuning methods?", OPEN,
        answer="Adapter layers insert extra modules in series that stay at inference time and add latency. Prefix "
               "and prompt tuning train a few vectors but take up part of the sequence length and are harder to "
               "optimise. (IA)³ trains only scaling vectors: fewer parameters, less expressive. LoRA trains "
               "r(d + k) numbers per adapted matrix, can be merged into W so that inference costs nothing extra, "
               "and several adapters can be swapped on one frozen model. Full fine-tuning trains all d·k numbers "
               "of every matrix.",
        solution="", after=MODELS,
    ),
    Question(
        "assess-compute", "What does LoRA cost in compute during training, and during inference?", OPEN,
        answer="Training: each adapted layer adds r(d + k) multiply-adds per token for B(Ax) on top of d·k, and the "
               "backward pass still runs through the frozen W (only W's weight gradient is skipped: about two "
               "thirds of full fine-tuning's compute), but gradients and optimizer states exist only for the "
               "r(d + k) LoRA numbers, which saves most of the memory (the LoRA paper: GPT-3 175B training needed "
               "350 GB instead of 1.2 TB). Inference: merge W' = W + (alpha/r)·BA once and each token costs "
               "exactly d·k, as before; unmerged it costs d·k + r(d + k).",
        solution="", after=MERGE_LAB,
    ),
    Question(
        "assess-full", "When would you choose full fine-tuning, or a much larger r, over a small-rank LoRA?", OPEN,
        answer="When the task needs an update that is not low rank: a new language or a very different domain, "
               "continued pre-training on much new data, or a target the fit lab would show stalling at a high "
               "Eckart–Young floor. Also when memory is no constraint and the last bit of quality matters. Signs: "
               "the validation loss keeps improving as r grows, or a LoRA stalls well above full fine-tuning.",
        solution="", after=FIT_LAB,
    ),
)

__all__ = ["ASSESSMENT"]
