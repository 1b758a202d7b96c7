"""Trainable parameters of other parameter-efficient methods, side by side with LoRA on the same model.

Each count follows huggingface/peft's own layers (read from its source; tests compare with PEFT on small models):

* full fine-tuning: every parameter (tied weights once).
* LoRA / rsLoRA: A (r x in) and B (out x r) per adapted module; rsLoRA changes only the scaling (alpha/sqrt r).
* DoRA: LoRA plus a magnitude vector of out_features per adapted module (peft/tuners/lora/dora.py).
* VeRA: A and B are shared frozen random buffers; each adapted module trains ``vera_lambda_d`` (r) and
  ``vera_lambda_b`` (out_features) (peft/tuners/vera/layer.py ``update_layer``).
* AdaLoRA: per adapted module A (init_r x in), B (out x init_r), the singular values E (init_r x 1) and the
  one-element ``ranknum`` (peft/tuners/adalora/layer.py creates it with requires_grad=False, but
  get_peft_model's ``set_adapter`` marks every adapter parameter trainable, so PEFT counts it: we do too).
  Layers are created with ``init_r``.
* IA3: one learned vector per adapted module, of out_features, or of in_features for the feed-forward modules
  (peft/tuners/ia3/layer.py); targets and feed-forward modules default to PEFT's mapping for the model type
  (TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING / ..._FEEDFORWARD_MODULES_MAPPING); a module is
  feed-forward when its name ends with a listed name (plain ``str.endswith``, as PEFT checks).
* Prompt tuning: an embedding of num_virtual_tokens x token_dim (token_dim = hidden_size; one transformer
  sub-module for decoder-only and encoder-only models) (peft/tuners/prompt_tuning/model.py).
* Prefix tuning without the projection: an embedding of num_virtual_tokens x (num_layers * 2 * token_dim),
  with token_dim = head_dim * num_key_value_heads for configs that have num_key_value_heads (PEFT's
  ``_prepare_prompt_learning_config``, GQA) and hidden_size otherwise (peft/tuners/prefix_tuning/model.py).
* Houlsby adapters (Houlsby et al. 2019, not in PEFT): two bottleneck adapters per layer (after attention and
  after the MLP), each a down projection h x m with bias m and an up projection m x h with bias h:
  num_layers * 2 * (2*h*m + m + h). The paper also trains the layer norms; they are not counted here.
* BitFit (Ben Zaken et al. 2022): every bias of the model (linear layers, norms, a lone output bias).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from loralens.core.architectures import Architecture
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora
from loralens.core.validation import check_int
from loralens.errors import InvalidParameterError

METHOD_KEYS = ("full", "lora", "rslora", "dora", "vera", "adalora", "ia3", "prompt_tuning", "prefix_tuning",
               "houlsby", "bitfit")


@dataclass(frozen=True)
class MethodCount:
    """One method's trainable parameters on a model, the formula used, and its share of the base model."""

    key: str
    name: str
    trainable: int
    formula: str
    percent: float  # 100 * trainable / PEFT's "all params" (the base model + what the method adds): PEFT's trainable%

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _spec(spec: LoraConfigSpec | None) -> LoraConfigSpec:
    return spec if spec is not None else LoraConfigSpec()


def count_vera(arch: Architecture, spec: LoraConfigSpec | None = None, r: int | None = None) -> int:
    """VeRA on the spec's targets with rank ``r`` (default the spec's r): sum of r + out_features, plus biases."""
    spec = _spec(spec)
    r = check_int("vera_r", spec.r if r is None else r, 1)
    count = count_lora(arch, dataclasses.replace(spec, r=r, rank_pattern={}, alpha_pattern={}, use_dora=False))
    return sum(r + m.out_features for m in count.modules) + count.bias_params


def count_adalora(arch: Architecture, spec: LoraConfigSpec | None = None, init_r: int | None = None) -> int:
    """AdaLoRA at initialisation: init_r * (in + out) + init_r + 1 per adapted module, plus biases."""
    spec = _spec(spec)
    init_r = check_int("init_r", spec.r if init_r is None else init_r, 1)
    count = count_lora(arch, dataclasses.replace(spec, r=init_r, rank_pattern={}, alpha_pattern={},
                                                 use_dora=False))
    return count.lora_params + (init_r + 1) * len(count.modules) + count.bias_params


def ia3_targets(arch: Architecture) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """PEFT's default (target_modules, feedforward_modules) for IA3 on this model type."""
    family = arch.family
    if not family.ia3_targets:
        raise InvalidParameterError(f"no default IA3 targets for model type {arch.model_type!r}", where="ia3")
    return family.ia3_targets, family.ia3_feedforward


def count_ia3(
    arch: Architecture,
    target_modules: tuple[str, ...] | None = None,
    feedforward_modules: tuple[str, ...] | None = None,
) -> int:
    """IA3: out_features per adapted module, in_features for feed-forward ones."""
    default_targets, default_ff = ia3_targets(arch) if target_modules is None else ((), ())
    targets = tuple(target_modules) if target_modules is not None else default_targets
    feedforward = tuple(feedforward_modules) if feedforward_modules is not None else default_ff
    # a name that matches no module adds nothing in PEFT when others match (mixtral's w2, gone in transformers 5);
    # leaving it out also keeps count_lora's rewrite of MoE names, which is LoRA's only, out of IA3
    present = tuple(t for t in targets if any(m.name == t or m.name.endswith("." + t) for m in arch.linear_modules))
    count = count_lora(arch, LoraConfigSpec(r=1, target_modules=present or targets))
    return sum(m.in_features if m.name.endswith(feedforward) else m.out_features for m in count.modules)


def prefix_token_dim(arch: Architecture) -> int:
    """The per-layer key (and value) width PEFT's prefix tuning uses."""
    if arch.family.kv_heads_in_config:
        # head_dim * num_key_value_heads is k_proj's width (head_dim may differ from hidden / heads)
        k_proj = next((m for m in arch.linear_modules if m.name.endswith("self_attn.k_proj")), None)
        if k_proj is not None:
            return k_proj.out_features
        return arch.hidden_size // arch.num_attention_heads * arch.num_key_value_heads
    return arch.hidden_size


def count_prompt_tuning(arch: Architecture, num_virtual_tokens: int = 20) -> int:
    n = check_int("num_virtual_tokens", num_virtual_tokens, 1, 100_000)
    return n * arch.hidden_size


def count_prefix_tuning(arch: Architecture, num_virtual_tokens: int = 20) -> int:
    n = check_int("num_virtual_tokens", num_virtual_tokens, 1, 100_000)
    return n * arch.num_layers * 2 * prefix_token_dim(arch)


def count_houlsby(arch: Architecture, adapter_size: int = 64) -> int:
    m = check_int("adapter_size", adapter_size, 1, 1_000_000)
    h = arch.hidden_size
    return arch.num_layers * 2 * (2 * h * m + m + h)


def compare_methods(
    arch: Architecture,
    spec: LoraConfigSpec | None = None,
    *,
    num_virtual_tokens: int = 20,
    adapter_size: int = 64,
    vera_r: int | None = None,
    adalora_init_r: int | None = None,
) -> list[MethodCount]:
    """Every method's trainable count on ``arch``; LoRA-family methods use ``spec``'s targets and r."""
    spec = _spec(spec)
    base = arch.total_params
    lora = count_lora(arch, dataclasses.replace(spec, use_dora=False, use_rslora=False))
    dora = count_lora(arch, dataclasses.replace(spec, use_dora=True))
    n_mod = len(lora.modules)
    r = spec.r
    v_r = spec.r if vera_r is None else vera_r
    a_r = spec.r if adalora_init_r is None else adalora_init_r
    bias = f" + {lora.bias_params:,} biases (bias={spec.bias})" if lora.bias_params else ""
    ia3_t, ia3_ff = ia3_targets(arch) if arch.family.ia3_targets else ((), ())
    h, layers, n = arch.hidden_size, arch.num_layers, num_virtual_tokens
    rows = [
        ("full", "Full fine-tuning", base, "every parameter of the model (tied weights once)"),
        ("lora", "LoRA", lora.trainable, f"Σ r·(in + out) over {n_mod} modules, r = {r}{bias}"),
        ("rslora", "rsLoRA", lora.trainable,
         f"same as LoRA (only the scaling changes: α/√r instead of α/r){bias}"),
        ("dora", "DoRA", dora.trainable, f"LoRA + out_features magnitudes over {n_mod} modules{bias}"),
        ("vera", "VeRA", count_vera(arch, spec, v_r),
         f"Σ (r + out) over {n_mod} modules, r = {v_r} (A, B shared and frozen){bias}"),
        ("adalora", "AdaLoRA", count_adalora(arch, spec, a_r),
         f"Σ init_r·(in + out) + init_r (E) + 1 (ranknum) over {n_mod} modules, init_r = {a_r}{bias}"),
        *([("ia3", "IA³", count_ia3(arch),
            f"Σ out (in for {', '.join(ia3_ff)}) over PEFT's default targets {', '.join(ia3_t)}")]
          if ia3_t else []),  # PEFT has no IA3 default for the type (phi3, qwen3_moe, vit): the row is left out
        ("prompt_tuning", "Prompt tuning", count_prompt_tuning(arch, n),
         f"num_virtual_tokens·hidden = {n}·{h}"),
        ("prefix_tuning", "Prefix tuning", count_prefix_tuning(arch, n),
         f"num_virtual_tokens·layers·2·token_dim = {n}·{layers}·2·{prefix_token_dim(arch)} (no projection)"),
        ("houlsby", "Houlsby adapters", count_houlsby(arch, adapter_size),
         f"layers·2·(2·h·m + m + h) = {layers}·2·(2·{h}·{adapter_size} + {adapter_size} + {h})"),
        ("bitfit", "BitFit", arch.total_bias_params, "every bias of the model"),
    ]
    # PEFT's "all params": the base plus the parameters the method adds (its trainable ones, but the base's biases
    # that the bias mode trains, and nothing for full fine-tuning and BitFit), so that percent is PEFT's trainable%
    totals = {"full": base, "bitfit": base, "lora": lora.total, "rslora": lora.total, "dora": dora.total}
    biased = {"vera", "adalora"}

    def total(key: str, count: int) -> int:
        return totals.get(key, base + count - (lora.bias_params if key in biased else 0))

    return [MethodCount(key, name, int(count), formula, 100.0 * count / total(key, count))
            for key, name, count, formula in rows]


__all__ = [
    "METHOD_KEYS", "MethodCount", "compare_methods", "count_adalora", "count_houlsby", "count_ia3",
    "count_prefix_tuning", "count_prompt_tuning", "count_vera", "ia3_targets", "prefix_token_dim",
]
