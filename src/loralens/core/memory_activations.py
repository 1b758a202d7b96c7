"""Activation memory of training (the "Activations" part of ``core/memory.py``'s docstring, with its sources):
per transformer layer after Korthikanti et al. 2022, section 4.1, generalised to grouped-query attention, gated
MLPs, models without dropout, fp32 activations and memory-efficient attention; checkpointing; the head and the
fp32 logits of the loss."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from loralens.core.architectures import Architecture
from loralens.errors import InvalidParameterError

ATTENTIONS = ("sdpa", "eager")


def layer_activation_bytes(
    *,
    hidden: int,
    kv_hidden: int,
    intermediate: int,
    heads: int,
    seq_len: int,
    batch_size: int,
    element_bytes: int = 2,
    gated_mlp: bool = False,
    hidden_dropout: bool = True,
    attention_dropout: bool = True,
    attention: str = "eager",
    lora_rank_sum: int = 0,
    mlp_tensors: int | None = None,
    rope: bool = False,
) -> int:
    """Bytes one transformer layer keeps for the backward pass (Korthikanti et al. 2022, section 4.1, generalised).

    With element_bytes=2, kv_hidden=hidden, intermediate=4*hidden, no gate, both dropouts and eager attention
    this is exactly s*b*h*(34 + 5*a*s/h). Terms (s tokens, b sequences, e bytes per element):
      norms: the inputs of the two layer norms, 2*e*sbh;
      attention: QKV input e*sbh, Q and K e*sb(h + h_kv), V e*sb*h_kv, output-projection input e*sbh,
        residual dropout mask sbh; eager adds the softmax output e*a*s^2*b and, with attention dropout, its mask
        a*s^2*b and output e*a*s^2*b; SDPA/flash instead keeps a 4-byte log-sum-exp per head and token, 4*a*s*b;
      MLP: first-linear input e*sbh, then 2*e*sb*i (activation input and output) or, gated, 4*e*sb*i (gate and
        up outputs, SiLU output, their product), and the residual dropout mask sbh; ``mlp_tensors`` overrides
        the number of i-wide tensors (``Family.mlp_tensors``);
      rotary embeddings (``rope``): 2*e*sb*(h + h_kv) for Q and K before rotation and their rotated halves;
      LoRA: the output of each adapted module's A (the input of B), e*sb*r, summed over the layer's adapters.
    """
    if attention not in ATTENTIONS:
        raise InvalidParameterError(f"must be one of {', '.join(ATTENTIONS)}, got {attention!r}", where="attention")
    e, s, b, h, a = element_bytes, seq_len, batch_size, hidden, heads
    sbh = s * b * h
    mask = sbh if hidden_dropout else 0
    norms = 2 * e * sbh
    attn = e * sbh + e * s * b * (h + kv_hidden) + e * s * b * kv_hidden + e * sbh + mask
    if attention == "eager":
        attn += e * a * s * s * b
        if attention_dropout:
            attn += a * s * s * b + e * a * s * s * b
    else:
        attn += 4 * a * s * b
    if mlp_tensors is None:
        mlp_tensors = 4 if gated_mlp else 2
    mlp = e * sbh + mlp_tensors * e * s * b * intermediate + mask
    if rope:
        attn += 2 * e * s * b * (h + kv_hidden)
    return norms + attn + mlp + e * s * b * lora_rank_sum


def _layer_index(name: str) -> int | None:
    match = re.search(r"\.(\d+)\.", name)
    return int(match.group(1)) if match else None


def _arch_facts(arch: Architecture) -> dict[str, Any]:
    family = arch.family
    heads = arch.num_attention_heads
    kv_heads = arch.num_key_value_heads or heads
    hidden = arch.hidden_size
    modules = arch.linear_modules
    k_proj = next((m for m in modules if m.name.endswith("self_attn.k_proj")), None)
    kv_hidden = k_proj.out_features if k_proj is not None else kv_heads * (hidden // heads)
    hidden_dropout, attention_dropout = family.dropout
    return {
        "hidden": hidden,
        "kv_hidden": kv_hidden,
        "intermediate": int(arch.intermediate_size),
        "heads": heads,
        "layers": int(arch.num_layers),
        "vocab": int(arch.vocab_size),
        "gated_mlp": family.gated_mlp,
        "mlp_tensors": family.mlp_tensors,
        "rope": family.rope,
        "hidden_dropout": hidden_dropout,
        "attention_dropout": attention_dropout,
        "modules": modules,
        "head_transform_tensors": family.head_transform_tensors,
    }


def activation_bytes(
    arch: Architecture,
    *,
    batch_size: int,
    seq_len: int,
    element_bytes: int = 2,
    gradient_checkpointing: bool = False,
    attention: str = "sdpa",
    lora_ranks: Sequence[tuple[str, int]] = (),
) -> int:
    """Activation bytes of a whole forward pass kept for backward (see the module docstring)."""
    facts = _arch_facts(arch)
    per_layer_rank: dict[int | None, int] = {}
    for name, r in lora_ranks:
        index = _layer_index(name)
        per_layer_rank[index] = per_layer_rank.get(index, 0) + r

    def layer(rank_sum: int) -> int:
        return layer_activation_bytes(
            hidden=facts["hidden"], kv_hidden=facts["kv_hidden"], intermediate=facts["intermediate"],
            heads=facts["heads"], seq_len=seq_len, batch_size=batch_size, element_bytes=element_bytes,
            gated_mlp=facts["gated_mlp"], hidden_dropout=facts["hidden_dropout"],
            attention_dropout=facts["attention_dropout"], attention=attention, lora_rank_sum=rank_sum,
            mlp_tensors=facts["mlp_tensors"], rope=facts["rope"],
        )

    s, b, h, layers = seq_len, batch_size, facts["hidden"], facts["layers"]
    outside = 2 * element_bytes * s * b * h + 4 * s * b * facts["vocab"]
    if facts["hidden_dropout"]:
        outside += s * b * h  # the embeddings' dropout mask
    # a head's transform (BERT's MLM head: dense input, GELU in/out, LayerNorm)
    outside += facts["head_transform_tensors"] * element_bytes * s * b * h
    outside += element_bytes * s * b * per_layer_rank.get(None, 0)
    ranks = [per_layer_rank.get(i, 0) for i in range(layers)]
    if gradient_checkpointing:
        return layers * element_bytes * s * b * h + layer(max(ranks, default=0)) + outside
    return sum(layer(r) for r in ranks) + outside


__all__ = ["ATTENTIONS", "activation_bytes", "layer_activation_bytes"]
