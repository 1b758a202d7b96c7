"""Training memory per GPU: weights, gradients, optimizer states, activations and overhead.

Every number is bytes. The formulas, with their sources (docs/models-memory.md has the long version):

Model states (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models",
section 3.1; the same accounting as DeepSpeed's and as HF's "Model training anatomy" page):
  * a *trained* parameter in fp32 costs 4 (weight) + 4 (gradient) + K (optimizer) bytes;
  * in mixed precision (bf16/fp16), full fine-tuning as DeepSpeed/ZeRO keep it: 2 (16-bit working weight)
    + 2 (16-bit gradient) + 4 (fp32 master weight) + K bytes. As ZeRO does, the fp32 master copy is counted with
    the optimizer states (ZeRO-1 shards it together with them), so Adam's "K = 12" is 4 master + 4 + 4.
    (HF's "Model training anatomy" page counts AMP as 6 + 4 + 8 = 18 bytes: fp32 weights plus a 16-bit copy.)
  * LoRA in mixed precision: PEFT keeps adapter weights in fp32 (``autocast_adapter_dtype=True``), so an
    adapter parameter costs 4 + 4 + K and needs no master copy. QLoRA as the QLoRA paper's code trains it:
    adapters in the bf16 compute dtype with a 32-bit (paged) optimizer, 2 + 2 + K.
  * K: AdamW 8 (two fp32 states), 8-bit AdamW 2 (bitsandbytes' two 8-bit states; its per-block constants
    are < 0.1 % and ignored), SGD with momentum 4 (one fp32 state).
  * a *frozen* parameter costs its storage only: fp32 4, bf16/fp16 2, int8 1 (+ one fp32 scale per output row,
    LLM.int8()), NF4 0.5 (+ double-quantised absmax constants: an 8-bit absmax per 64-block and an fp32
    constant per 256 of those, 8/64 + 32/(64*256) = 0.127 bits per parameter: Dettmers et al. 2023, QLoRA,
    section 3). Quantisation applies to the linear layers only; embeddings, norms, biases and the output head
    stay in the compute dtype, as bitsandbytes/transformers leave them.

Activations (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
section 4.1): per transformer layer with 16-bit activations, no recomputation and no parallelism,
s*b*h*(34 + 5*a*s/h) bytes. We use the same term-by-term derivation, generalised (see ``layer_activation_bytes``)
to grouped-query attention (K and V have h_kv = kv_heads * head_dim features), the real MLP width i,
gated MLPs (SwiGLU: 4 stored tensors of width i instead of 2), models without dropout (no masks), 4-byte
activations in fp32, and memory-efficient attention (SDPA/flash: no s^2 terms, a 4-byte log-sum-exp per head and
token instead). With gradient checkpointing (one checkpoint per layer, as HF's ``gradient_checkpointing_enable``)
only each layer's input is kept, e*s*b*h per layer (Korthikanti's "2sbh"), plus one layer's full activations
while it is recomputed. Outside the layers: the final norm's and the output head's inputs (e*s*b*h each) and the
fp32 logits of the loss, 4*s*b*V (Korthikanti section 4.3); BERT's MLM head adds its transform's tensors.

Sharding over N data-parallel GPUs (ZeRO paper, figure 1): ZeRO-1 divides the optimizer states (with the master
weights) by N, ZeRO-2 also the gradients, ZeRO-3 and FSDP (full shard) also the weights; ZeRO-3/FSDP then hold
one layer's gathered weights plus the prefetched next one. Activations are per device (each GPU runs its own
micro-batch).

Overhead: ``CUDA_CONTEXT_BYTES`` for the CUDA context and kernels plus ``FRAGMENTATION`` times everything
else for the caching allocator's fragmentation and temporary buffers (both documented estimates, not laws).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loralens.core.architectures import Architecture
from loralens.core.memory_activations import ATTENTIONS, _layer_index, activation_bytes, layer_activation_bytes
from loralens.core.validation import check_int
from loralens.errors import InvalidParameterError

METHODS = ("full", "lora", "qlora")
#: bf16-pure: the model itself in bf16 and trained so (weights, gradients and the optimizer's states in bf16, no
#: fp32 master copy), as PEFT's MetaMathQA benchmark runs full fine-tuning; bf16/fp16 are mixed precision
DTYPES = ("fp32", "bf16", "fp16", "bf16-pure")
BASES = ("auto", "fp32", "bf16", "fp16", "int8", "nf4")
OPTIMIZERS = ("adamw", "adamw8bit", "sgd")
SHARDINGS = ("none", "zero1", "zero2", "zero3", "fsdp")

GB = 10**9
GiB = 2**30
MiB = 2**20

#: CUDA context, cuBLAS/cuDNN workspaces and kernels: PyTorch on a recent GPU typically shows 300-600 MiB before
#: the first tensor; we take 512 MiB.
CUDA_CONTEXT_BYTES = 512 * MiB
#: The caching allocator's fragmentation and short-lived buffers (gradients of activations, logits' softmax):
#: a fraction of everything else. EleutherAI/accelerate's estimator adds "up to 20 %" for inference; we take 10 %.
FRAGMENTATION = 0.10

#: Bytes of one optimizer state set per trained parameter (K without the master weights).
OPTIMIZER_STATE_BYTES = {"adamw": 8.0, "adamw8bit": 2.0, "sgd": 4.0}
#: Bytes per stored element of each dtype.
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "bf16-pure": 2}
#: Optimizer states in bf16 (bf16-pure full fine-tuning: torch's AdamW keeps them in the parameter's dtype)
PURE_STATE_BYTES = {"adamw": 4.0, "adamw8bit": 2.0, "sgd": 2.0}
#: NF4 with double quantisation: 4 bits + 8/64 + 32/(64*256) bits per parameter (QLoRA, section 3).
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes on one device."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int
    total: int

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in
                ("weights", "gradients", "optimizer", "activations", "overhead", "total")}


@dataclass(frozen=True)
class MemoryEstimate:
    """An estimate with the settings that produced it; ``per_device`` is what one GPU holds."""

    method: str
    dtype: str
    base: str
    optimizer: str
    batch_size: int
    seq_len: int
    gradient_checkpointing: bool
    gpus: int
    sharding: str
    attention: str
    total_params: int
    trainable_params: int
    frozen_params: int
    quantized_params: int
    per_device: MemoryBreakdown

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "per_device"}
        data["per_device"] = self.per_device.as_dict()
        return data


def _choice(name: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidParameterError(f"must be one of {', '.join(choices)}, got {value!r}", where=name)
    return value


def trained_bytes_per_param(dtype: str, optimizer: str, method: str = "full") -> tuple[float, float, float]:
    """(weight, gradient, optimizer) bytes of one trained parameter.

    fp32: 4, 4, K. bf16-pure full fine-tuning: 2, 2, K/2 (states in bf16, no master copy). Mixed precision (bf16/fp16): full fine-tuning as DeepSpeed/ZeRO keep it, 2, 2, 4 + K (the
    fp32 master copy counted with the optimizer); LoRA as PEFT keeps adapters (fp32 under autocast), 4, 4, K;
    QLoRA as the QLoRA paper's code keeps them (adapters in the bf16 compute dtype, 32-bit optimizer), 2, 2, K.
    """
    _choice("dtype", dtype, DTYPES)
    _choice("optimizer", optimizer, OPTIMIZERS)
    _choice("method", method, METHODS)
    states = OPTIMIZER_STATE_BYTES[optimizer]
    if dtype == "bf16-pure" and method == "full":
        return 2.0, 2.0, PURE_STATE_BYTES[optimizer]
    if dtype == "fp32" or method == "lora":
        return 4.0, 4.0, states
    if method == "qlora":
        return 2.0, 2.0, states
    return 2.0, 2.0, 4.0 + states


def model_state_bytes(
    trainable_params: int,
    frozen_weight_bytes: float = 0.0,
    *,
    dtype: str = "bf16",
    optimizer: str = "adamw",
    method: str = "full",
    gpus: int = 1,
    sharding: str = "none",
) -> tuple[int, int, int]:
    """Per-device (weights, gradients, optimizer) bytes of the model states, sharded as ZeRO/FSDP do.

    ZeRO paper figure 1 (7.5B parameters, Adam, mixed precision, 64 GPUs): 120 GB, then 31.4 GB (ZeRO-1),
    16.6 GB (ZeRO-2) and 1.9 GB (ZeRO-3) per GPU — tests/core/test_memory.py checks these.
    """
    trainable_params = check_int("trainable_params", trainable_params, low=0)
    gpus = check_int("gpus", gpus, low=1, high=65_536)
    sharding = _choice("sharding", sharding, SHARDINGS)
    w, g, o = trained_bytes_per_param(dtype, optimizer, method)
    weights = trainable_params * w + frozen_weight_bytes
    gradients = trainable_params * g
    states = trainable_params * o
    n = gpus
    if sharding != "none" and n > 1:
        states /= n
        if sharding in ("zero2", "zero3", "fsdp"):
            gradients /= n
        if sharding in ("zero3", "fsdp"):
            weights /= n
    return math.ceil(weights), math.ceil(gradients), math.ceil(states)


def _frozen_bytes(arch: Architecture, frozen_params: int, base: str, dtype: str) -> tuple[float, int]:
    """Bytes of the frozen parameters and how many of them are quantised (the rest stay in ``dtype``)."""
    if base in DTYPE_BYTES:
        return frozen_params * DTYPE_BYTES[base], 0
    quantized = 0
    rows = 0
    for module in arch.linear_modules:
        if module.is_output_head:
            continue
        quantized += module.in_features * module.out_features
        rows += module.out_features
    quantized = min(quantized, frozen_params)
    rest = frozen_params - quantized
    if base == "int8":
        return quantized * 1.0 + rows * 4.0 + rest * DTYPE_BYTES[dtype], quantized
    return quantized * NF4_BITS / 8 + rest * DTYPE_BYTES[dtype], quantized


def estimate_memory(
    arch: Architecture,
    spec: Any | None = None,
    *,
    method: str = "lora",
    dtype: str = "bf16",
    base: str = "auto",
    optimizer: str = "adamw",
    batch_size: int = 1,
    seq_len: int = 512,
    gradient_checkpointing: bool = False,
    gpus: int = 1,
    sharding: str = "none",
    attention: str = "sdpa",
) -> MemoryEstimate:
    """Training memory per device for ``arch`` (a loralens Architecture).

    ``spec`` (a LoraConfigSpec) says what LoRA trains; it is required for lora/qlora and ignored by full.
    ``base`` is the storage of the frozen weights: auto means ``dtype`` for full/lora and NF4 for qlora;
    int8/nf4 are quantised bases (nf4 with double quantisation). ``batch_size`` is the micro-batch per device.
    """
    method = _choice("method", method, METHODS)
    dtype = _choice("dtype", dtype, DTYPES)
    base = _choice("base", base, BASES)
    optimizer = _choice("optimizer", optimizer, OPTIMIZERS)
    sharding = _choice("sharding", sharding, SHARDINGS)
    attention = _choice("attention", attention, ATTENTIONS)
    batch_size = check_int("batch_size", batch_size, low=1, high=1_000_000)
    seq_len = check_int("seq_len", seq_len, low=1, high=10_000_000)
    gpus = check_int("gpus", gpus, low=1, high=65_536)
    if not isinstance(gradient_checkpointing, bool):
        raise InvalidParameterError(f"must be true or false, got {gradient_checkpointing!r}",
                                    where="gradient_checkpointing")
    if sharding != "none" and gpus == 1:
        raise InvalidParameterError(f"{sharding} shards over several GPUs; use --gpus 2 or more, or sharding none",
                                    where="sharding")
    if base == "auto":
        base = "nf4" if method == "qlora" else ("bf16" if dtype == "bf16-pure" else dtype)
    if method == "full" and base != ("bf16" if dtype == "bf16-pure" else dtype):
        raise InvalidParameterError(f"full fine-tuning trains every weight in {dtype}; a {base} base applies "
                                    "to lora/qlora only", where="base")
    if method == "qlora" and base != "nf4":
        raise InvalidParameterError(f"qlora uses an nf4 base, got {base}; use method lora for a {base} base",
                                    where="base")

    total = int(arch.total_params)
    lora_ranks: list[tuple[str, int]] = []
    if method == "full":
        trainable, frozen = total, 0
    else:
        if spec is None:
            raise InvalidParameterError(f"{method} needs a LoRA spec (r, targets)", where="spec")
        from loralens.core.peft_count import count_lora

        count = count_lora(arch, spec)
        trainable = int(count.trainable)
        lora_ranks = [(m.name, int(m.r)) for m in count.modules]
        # the whole base stays in memory; biases that bias="all"/"lora_only" makes trainable are counted
        # once more as trained parameters (a few kB: ignored)
        frozen = total
    frozen_weight_bytes, quantized = _frozen_bytes(arch, frozen, base, dtype) if frozen else (0.0, 0)
    weights, gradients, states = model_state_bytes(
        trainable, frozen_weight_bytes, dtype=dtype, optimizer=optimizer, method=method, gpus=gpus,
        sharding=sharding,
    )
    if sharding in ("zero3", "fsdp") and gpus > 1:
        weights += 2 * math.ceil(_largest_layer_bytes(arch, base))
    element_bytes = DTYPE_BYTES[dtype]
    activations = activation_bytes(
        arch, batch_size=batch_size, seq_len=seq_len, element_bytes=element_bytes,
        gradient_checkpointing=gradient_checkpointing, attention=attention, lora_ranks=lora_ranks,
    )
    subtotal = weights + gradients + states + activations
    overhead = CUDA_CONTEXT_BYTES + math.ceil(FRAGMENTATION * subtotal)
    breakdown = MemoryBreakdown(weights, gradients, states, activations, overhead, subtotal + overhead)
    return MemoryEstimate(
        method=method, dtype=dtype, base=base, optimizer=optimizer, batch_size=batch_size, seq_len=seq_len,
        gradient_checkpointing=gradient_checkpointing, gpus=gpus, sharding=sharding, attention=attention,
        total_params=total, trainable_params=trainable, frozen_params=frozen,
        quantized_params=quantized, per_device=breakdown,
    )


def _largest_layer_bytes(arch: Architecture, base: str) -> float:
    """Weight bytes of the largest decoder layer, gathered whole by ZeRO-3/FSDP while it computes."""
    per_layer: dict[int, int] = {}
    for module in arch.linear_modules:
        index = _layer_index(module.name)
        if index is not None:
            per_layer[index] = per_layer.get(index, 0) + module.in_features * module.out_features
    params = max(per_layer.values(), default=0)
    if base == "nf4":
        return params * NF4_BITS / 8
    if base == "int8":
        return float(params)
    return params * DTYPE_BYTES[base]


def compare_training(arch: Architecture, spec: Any, **settings: Any) -> dict[str, MemoryEstimate]:
    """Full fine-tuning, LoRA and QLoRA under the same settings (the Models page's stacked bars)."""
    settings = {k: v for k, v in settings.items() if k not in ("method", "base")}
    return {m: estimate_memory(arch, spec, method=m, **settings) for m in METHODS}


__all__ = [
    "ATTENTIONS", "BASES", "CUDA_CONTEXT_BYTES", "DTYPES", "FRAGMENTATION", "GB", "GiB", "METHODS", "NF4_BITS",
    "OPTIMIZERS", "SHARDINGS", "MemoryBreakdown", "MemoryEstimate", "activation_bytes", "compare_training",
    "estimate_memory", "layer_activation_bytes", "model_state_bytes", "trained_bytes_per_param",
]
