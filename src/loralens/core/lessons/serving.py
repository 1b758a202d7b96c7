"""Activities 5 to 9: why B = 0 and A random, merging, swapping adapters, other methods, and the overhead of
training vs inference. The numbers come from the labs (``core.labs``), ``core.counting``, ``core.peft_count``,
``core.methods`` and ``core.memory``: the same functions the Labs and Models pages show."""

from __future__ import annotations

from fractions import Fraction
from functools import cache

from loralens.core.architectures import get_architecture
from loralens.core.counting import full_params, lora_params
from loralens.core.lessons.kit import (
    CHOICE, NUMBER, Activity, Choice, Question, choice_checker, link, number_checker,
)
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora

INIT_LAB = link("Init lab: the gradients at step 0 and the loss curve of each start", "/labs", lab="init")
MERGE_LAB = link("Merge lab: merged vs unmerged outputs, FLOPs, swapping two adapters", "/labs", lab="merge")
LLAMA, LLAMA_R = "llama-2-7b", 8
MODELS_LLAMA = link("Llama 2 7B, r = 8 on the Models page (memory chart, methods table)", "/models",
                    model=LLAMA, r=LLAMA_R)


@cache
def init_facts() -> dict[str, dict[str, float]]:
    """Step-0 numbers of every init scheme from a small run of the init lab (the lab the page links to)."""
    from loralens.core.labs.init import run_init  # numpy: only when a checker first needs it

    result = run_init(d=16, k=16, rank=4, steps=1, batch=16, target_rank=4)
    return {name: {"grad_a": r.grad_a_norm_at_init, "grad_b": r.grad_b_norm_at_init,
                   "delta": r.delta_w_fro_at_init, "change": r.output_change_at_init}
            for name, r in result.results.items()}


def _nonzero_gradients(scheme: str) -> str:
    facts = init_facts()[scheme]
    a, b = facts["grad_a"] > 0, facts["grad_b"] > 0
    return "both" if a and b else "a" if a else "b" if b else "neither"


def init_activity() -> Activity:
    grads = (
        Choice("a", "Only ∂L/∂A", "∂L/∂A = s·Bᵀ·(∂L/∂h)·xᵀ: what is B at step 0?"),
        Choice("b", "Only ∂L/∂B"),
        Choice("both", "Both", "One of the two gradients has B as a factor: ∂L/∂A = s·Bᵀ·(∂L/∂h)·xᵀ."),
        Choice("neither", "Neither", "∂L/∂B = s·(∂L/∂h)·(A·x)ᵀ: is A·x zero when A is random?"),
    )
    zero = (
        Choice("stuck", "Both gradients are exactly zero, so the adapter never learns"),
        Choice("outputs", "The outputs change before training starts",
               "With B = 0 the update s·B·A is zero whatever A is: look at the gradients instead."),
        Choice("slow", "It trains, only more slowly",
               "Write out ∂L/∂A and ∂L/∂B when A = 0 and B = 0: what is left of each?"),
        Choice("memory", "It needs more memory", "A and B have the same shapes whatever their first values."),
    )
    both_zero = "stuck" if _nonzero_gradients("both_zero") == "neither" else "slow"
    facts = init_facts()
    questions = (
        Question("init-gradient", "PEFT starts LoRA with B = 0 and A random. Which gradients are non-zero at "
                 "step 0?", CHOICE, answer="Only ∂L/∂B",
                 solution="∂L/∂B = s·(∂L/∂h)·(A·x)ᵀ is non-zero because A·x is; ∂L/∂A = s·Bᵀ·(∂L/∂h)·xᵀ is exactly "
                          "0 because B is. After the first step B ≠ 0 and A gets gradients too. The update s·B·A "
                          "starts at exactly 0, so training starts from the pretrained model's own outputs.",
                 check=choice_checker(grads, _nonzero_gradients("default")), choices=grads,
                 secret_texts=("Only ∂L/∂B",), after=INIT_LAB),
        Question("init-zero", "Why not start with both A = 0 and B = 0 (the update would be zero too)?", CHOICE,
                 answer=next(c.text for c in zero if c.key == both_zero),
                 solution="Each gradient has the other matrix as a factor, so with both zero both gradients are "
                          "exactly 0 and stay 0: the adapter never moves. Both random is the other failure: the "
                          f"outputs move before any training (by {facts['both_random']['change']:.0%} in the lab's "
                          "small run) and training must undo that first.",
                 check=choice_checker(zero, both_zero), choices=zero,
                 secret_texts=(next(c.text for c in zero if c.key == both_zero),), after=INIT_LAB),
    )
    return Activity(
        key="init", title="Why B starts at zero and A random",
        intro=("LoRA adds s·B·A to a frozen W. Where B and A start decides two things: whether the model's outputs "
               "change before training, and whether the gradients can move B and A at all. Predict, then check "
               "your prediction in the init lab, which trains the same task from five different starts.",),
        links=(), questions=questions,
        in_class="Write ∂L/∂A and ∂L/∂B on the board and ask which vanishes for each start. Then open the init lab "
                 "(its gradient chart shows the answer): both-zero never moves, both-random starts from a changed "
                 "model. PiSSA is a good extension for strong students.",
        covers="Why B starts at zero and A random",
    )


# ---------------------------------------------------------------------------------------------------------
# Merging, swapping, methods, overhead

MERGE_D, MERGE_K, MERGE_R = 4096, 4096, 16


def inference_multiply_adds(d: int, k: int, r: int) -> tuple[int, int]:
    """Multiply-adds per token (merged, unmerged): d·k, and d·k + r(d + k) (the merge lab's counts)."""
    return full_params(d, k), full_params(d, k) + lora_params(d, k, r)


def training_multiply_adds(d: int, k: int, r: int) -> tuple[int, int]:
    """Multiply-adds per token of one training step (forward + backward) of a d×k layer: (full, LoRA).

    Full fine-tuning: forward W·x, input gradient Wᵀ·g and weight gradient g·xᵀ, d·k each. LoRA: the forward and
    the input gradient through the frozen W (2·d·k, no weight gradient for W), plus its own path: forward A·x and
    B·(A·x), input gradients Bᵀ·g and Aᵀ·(Bᵀ·g), weight gradients g·(A·x)ᵀ and (Bᵀ·g)·xᵀ: 3·r(d + k).
    """
    dk, small = full_params(d, k), lora_params(d, k, r)
    return 3 * dk, 2 * dk + 3 * small


@cache
def llama_facts() -> dict[str, float]:
    """Llama 2 7B with r = 8 on PEFT's default targets: the counts, methods and memory the Models page shows."""
    from loralens.core.memory import compare_training
    from loralens.core.methods import compare_methods

    arch, spec = get_architecture(LLAMA), LoraConfigSpec(r=LLAMA_R)
    count = count_lora(arch, spec)
    methods = {m.key: m.trainable for m in compare_methods(arch, spec)}
    memory = compare_training(arch, spec, dtype="bf16", optimizer="adamw", batch_size=4, seq_len=512,
                              gradient_checkpointing=True)  # the Models page's defaults
    return {"trainable": count.trainable, "base": count.base_total, "percent": count.percent,
            "adapter_bytes": 2 * count.trainable, "ia3": methods["ia3"],
            "memory_full": memory["full"].per_device.total, "memory_lora": memory["lora"].per_device.total}


def merge_activity() -> Activity:
    d, k, r = MERGE_D, MERGE_K, MERGE_R
    merged, unmerged = inference_multiply_adds(d, k, r)
    extra = unmerged - merged
    after = (
        Choice("none", "None: W′ has the same shape as W"),
        Choice("same", "r(d + k), as unmerged", "After merging, is there still a separate B·(A·x) to compute?"),
        Choice("double", "d·k more: a second matrix", "W′ = W + s·B·A is one d×k matrix: how many does the layer "
                                                      "multiply by?"),
        Choice("flops", "2·r(d + k)", "Merging replaces W by W′ of the same shape: what is left of the adapter?"),
    )
    questions = (
        Question("merge-extra", f"A {d:,}×{k:,} projection with a rank-{r} adapter is served unmerged, as W·x + "
                 "s·B·(A·x). How many extra multiply-adds per token does the adapter's path add?", NUMBER,
                 answer=f"r(d + k) = {extra:,}",
                 solution=f"A·x is an r×k matrix times a vector: r·k = {r * k:,}; B·(A·x) is d×r: d·r = {d * r:,}; "
                          f"together r(d + k) = {extra:,}, {extra / merged:.2%} of the d·k = {merged:,} of W·x.",
                 check=number_checker(extra, right=f"Correct: r(d + k) = {extra:,}.",
                                      hint="Count the multiply-adds of each product: A·x is an r×k matrix times a "
                                           "vector, B·(A·x) a d×r matrix times a vector.",
                                      mistakes=((merged, "That is W·x itself: count only A·x and B·(A·x)."),
                                                (2 * extra, "That counts FLOPs (2 per multiply-add): count "
                                                            "multiply-adds."),
                                                (r * k, "That is A·x alone: add B·(A·x)."),
                                                (d * r, "That is B·(A·x) alone: add A·x."))),
                 label="Multiply-adds", placeholder="e.g. 1,000", secrets=(float(extra),),
                 tries=(str(merged), str(2 * extra), str(r * k), str(d * r), "0", "16", "1e6", "abc", "5%")),
        Question("merge-merged", "After merging, W′ = W + s·B·A, how many extra multiply-adds per token does the "
                 "adapter cost?", CHOICE, answer="None: W′ has the same shape as W",
                 solution="None: W′ is one d×k matrix, so a token costs d·k multiply-adds, exactly the base "
                          "layer's. The merge lab shows the merged and unmerged outputs agree to float32 round-off.",
                 check=choice_checker(after, "none"), choices=after, secret_texts=("None: W′",), after=MERGE_LAB),
    )
    return Activity(
        key="merge", title="Merging for zero inference latency",
        intro=("At inference, W·x + s·B·(A·x) costs two extra small products per token. But B·A is a d×k matrix "
               "like W, so it can be added into W once: W′ = W + s·B·A.",),
        links=(link("Forward pass worked by hand: merged and unmerged give the same h", "/lessons",
                    activity="forward"),),
        questions=questions,
        in_class="Students count the products first; then the merge lab shows the FLOPs and measured times. "
                 "Discuss when one would not merge: serving many adapters from one base model at once.",
        covers="Merging W′ = W + BA for no inference latency",
    )


def swap_activity() -> Activity:
    facts = llama_facts()
    ratio = Fraction(int(facts["base"]), int(facts["trainable"]))
    how = (
        Choice("swap", "Subtract s·B₁·A₁, then add s·B₂·A₂"),
        Choice("add", "Add s·B₂·A₂", "W′ still holds adapter 1's update: what does W′ + s·B₂·A₂ contain?"),
        Choice("reload", "Reload the base model from disk first",
               "That works, but is there a cheaper way? What is W′ − s·B₁·A₁?"),
        Choice("retrain", "Retrain adapter 2 on the merged model", "Adapter 2 was trained against W, not W′: "
                                                                   "what do you need to get W back?"),
    )
    questions = (
        Question("swap-how", "One frozen model serves two tasks with adapters 1 and 2. Adapter 1 is merged in "
                 "(W′ = W + s·B₁·A₁). To serve task 2 you:", CHOICE, answer="Subtract s·B₁·A₁, then add s·B₂·A₂",
                 solution="Unmerge adapter 1 (W = W′ − s·B₁·A₁, exact up to round-off) and merge adapter 2. The "
                          "merge lab does exactly this and gets W back within float32 round-off.",
                 check=choice_checker(how, "swap"), choices=how, secret_texts=("Subtract s·B₁·A₁",), after=MERGE_LAB),
        Question("swap-count", f"Llama 2 7B with r = {LLAMA_R} on PEFT's default targets trains "
                 f"{int(facts['trainable']):,} LoRA parameters. Stored in 16 bits (2 bytes each), how many such "
                 f"adapters take as much disk as one 16-bit copy of the base model ({int(facts['base']):,} "
                 "parameters)?", NUMBER, answer=f"about {round(ratio):,}",
                 solution=f"One adapter: {int(facts['trainable']):,} × 2 bytes = {int(facts['adapter_bytes']):,} "
                          f"bytes; the base model: {int(facts['base']):,} × 2 bytes. The bytes per number cancel: "
                          f"{int(facts['base']):,} / {int(facts['trainable']):,} ≈ {float(ratio):,.0f} adapters.",
                 check=number_checker(float(ratio), tolerance=0.02, relative=True,
                                      right=f"Correct: about {float(ratio):,.0f} adapters per copy of the base model.",
                                      hint="Work out the bytes of one adapter and of the base model, each at 2 bytes "
                                           "per number, and compare them."),
                 label="Adapters", placeholder="e.g. 100", secrets=(float(ratio),),
                 tries=("1", "10", "100", "800", "1000", "2000", "3000", "16000", "0.0006", "x")),
    )
    return Activity(
        key="swap", title="Swapping adapters on one base model",
        intro=("An adapter is only B and A for each adapted matrix: small enough to keep one per task and switch "
               "between them on a single copy of the base model, merged or not.",),
        links=(MODELS_LLAMA,), questions=questions,
        in_class="Ask how a service would host 100 customer-specific models. The merge lab's swap-back number "
                 "shows that unmerging is exact up to round-off; the Models page gives the adapter's size.",
        covers="Swapping adapters",
    )


def methods_activity() -> Activity:
    facts = llama_facts()
    ratio = facts["trainable"] / facts["ia3"]
    latency = (
        Choice("lora", "LoRA", "B·A has W's shape and can be added into W: see the merge activity."),
        Choice("houlsby", "Houlsby adapter layers"),
        Choice("ia3", "IA³", "IA³ rescales activations by learned vectors; a fixed scaling can be folded into the "
                             "weight next to it."),
        Choice("bitfit", "BitFit", "BitFit trains biases the model already has: nothing is added to it."),
    )
    questions = (
        Question("methods-latency", "Which of these methods adds inference latency that cannot be merged away?",
                 CHOICE, answer="Houlsby adapter layers",
                 solution="Adapter layers (Houlsby et al. 2019) insert small bottleneck modules in series; they run "
                          "one after another at inference, which the LoRA paper measured as extra latency at small "
                          "batch sizes. LoRA and IA³ can be merged into the weights; BitFit adds nothing.",
                 check=choice_checker(latency, "houlsby"), choices=latency, secret_texts=("Houlsby",)),
        Question("methods-ratio", f"On Llama 2 7B (r = {LLAMA_R}, PEFT's default targets), how many times more "
                 "parameters does LoRA train than IA³? Read both counts from the Models page's methods table.",
                 NUMBER, answer=f"about {ratio:.3g}",
                 solution=f"LoRA {int(facts['trainable']):,} / IA³ {int(facts['ia3']):,} = {ratio:.3g}. IA³ trains "
                          "one vector per adapted module's outputs (or inputs), LoRA two matrices of rank r.",
                 check=number_checker(ratio, tolerance=0.03, relative=True, right=f"Correct: about {ratio:.3g}×.",
                                      hint="Find the LoRA and IA³ rows under 'Methods side by side' on the Models "
                                           "page and divide LoRA's trainable count by IA³'s."),
                 label="Times more", placeholder="e.g. 2", secrets=(ratio,),
                 tries=("1", "2", "5", "10", "68", "0.15", "x")),
    )
    return Activity(
        key="methods", title="LoRA vs other parameter-efficient methods",
        intro=("LoRA is one of several ways to fine-tune a few parameters. The Models page counts each method's "
               "trainable parameters on a real model with PEFT's own rules: full fine-tuning, LoRA, rsLoRA, DoRA, "
               "VeRA, AdaLoRA, IA³, prompt and prefix tuning, Houlsby adapters and BitFit.",),
        links=(MODELS_LLAMA,), questions=questions,
        in_class="Split the class over the methods: each group explains its method's formula from the table in "
                 "one sentence. Then discuss what the count does not show: latency, sequence length, quality.",
        covers="LoRA vs other efficient methods",
    )


def memory_band(ratio: float) -> str:
    """Which choice of the memory question a ratio (LoRA's memory / full's) falls in."""
    return "share" if ratio < 0.02 else "band" if ratio <= 0.5 else "same"


def overhead_activity() -> Activity:
    facts = llama_facts()
    d, k, r = MERGE_D, MERGE_K, MERGE_R
    full, lora = training_multiply_adds(d, k, r)
    compute = lora / full
    share = facts["trainable"] / facts["base"]
    memory = (
        Choice("share", f"About {share:.2%} of full's, like the parameters",
               "Which parts of training memory does LoRA not shrink? Think of the frozen weights and the "
               "activations."),
        Choice("band", "Between a fiftieth and a half of full's: the frozen weights and activations stay"),
        Choice("same", "About the same as full's", "Gradients and optimizer states exist only for trained "
                                                   "parameters: how many does LoRA train?"),
    )
    band = memory_band(facts["memory_lora"] / facts["memory_full"])
    questions = (
        Question("overhead-memory", f"LoRA trains {share:.2%} of Llama 2 7B's parameters. With the Models page's "
                 "default settings (bf16, AdamW, batch 4, 512 tokens, gradient checkpointing), how much training "
                 "memory per GPU does LoRA need compared with full fine-tuning?", CHOICE,
                 answer=next(c.text for c in memory if c.key == band),
                 solution=f"{facts['memory_lora'] / 1e9:.1f} GB against {facts['memory_full'] / 1e9:.1f} GB "
                          f"({facts['memory_lora'] / facts['memory_full']:.0%}): LoRA removes the gradients and "
                          "Adam states of the frozen weights, but the weights themselves and the activations stay.",
                 check=choice_checker(memory, band), choices=memory,
                 secret_texts=(next(c.text for c in memory if c.key == band),), after=MODELS_LLAMA),
        Question("overhead-compute", f"For one {d:,}×{k:,} layer with r = {r}, what fraction of full fine-tuning's "
                 "multiply-adds per token does a LoRA training step (forward and backward) need?", NUMBER,
                 answer=f"about {compute:.2f}",
                 solution=f"Full: forward, input gradient and weight gradient, 3·d·k = {full:,}. LoRA: forward and "
                          f"input gradient through W (2·d·k), no weight gradient for W, plus 3·r(d + k) for its own "
                          f"path: {lora:,}. Ratio {compute:.3f}: about two thirds. At inference, merged, the "
                          "overhead is zero.",
                 check=number_checker(compute, tolerance=0.03, percent_ok=True, right=f"Correct: about {compute:.2f}.",
                                      hint="Full fine-tuning does three d·k products per token: the forward pass, "
                                           "the gradient with respect to the input, and the weight gradient. Which "
                                           "of them can LoRA skip for the frozen W, and what does its small path "
                                           "add?",
                                      mistakes=((share, "That is LoRA's share of the parameters; the compute still "
                                                        "runs through the frozen W."),
                                                (1.0, "LoRA does skip one of the three d·k products: which?"))),
                 label="Fraction", placeholder="e.g. 0.5", secrets=(compute,),
                 tries=("0.01", "0.1", "0.33", "0.5", "0.8", "1", "1.5", "50%", "x")),
    )
    return Activity(
        key="overhead", title="Overhead in training vs inference",
        intro=("LoRA's savings are different in training and at inference. In training it saves most of the "
               "memory (no gradients or optimizer states for W) but not all of the compute; at inference, merged, "
               "it costs nothing extra. The merge lab shows one layer's training-time cost; the Models page the "
               "memory of a whole model.",),
        links=(link("Merge lab: training-time cost of one layer (trainable parameters, gradients, Adam states)",
                    "/labs", lab="merge"),),
        questions=questions,
        in_class="A good closing discussion: what does LoRA save, when? Ask students to fill a 2×2 table "
                 "(training/inference × memory/compute) before checking with the Models page.",
        covers="Overhead in training vs inference",
    )


__all__ = [
    "MERGE_D", "MERGE_K", "MERGE_R", "inference_multiply_adds", "init_activity", "init_facts", "llama_facts",
    "memory_band", "merge_activity", "methods_activity", "overhead_activity", "swap_activity",
    "training_multiply_adds",
]
