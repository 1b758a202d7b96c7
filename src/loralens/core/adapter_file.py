"""The adapter_model.safetensors that PEFT's ``save_pretrained`` writes, predicted byte for byte in size.

The tensors, from huggingface/peft 0.21 (utils/save_and_load.py ``get_peft_model_state_dict``), under
"base_model.model." + the module's name, the adapter name removed:
- per adapted module: ``lora_A.weight`` (r, in) and ``lora_B.weight`` (out, r) (a Conv2d: (r, c, kh, kw) and
  (out, r, 1, 1)); an embedding: ``lora_embedding_A`` (r, rows) and ``lora_embedding_B`` (dim, r);
  ``lora_B.bias`` (out) with lora_bias; DoRA's ``lora_magnitude_vector`` (out; (1, out, 1, 1) for a conv);
- bias="lora_only": ``base_layer.bias`` of the adapted modules; "all": every key holding "bias" (a modules_to_save
  wrapper's under its own name, ``modules_to_save.`` (``modules_to_save.default.`` below the copy's top level)
  and ``original_module.``; a tied decoder's bias twice);
- ParamWrapper (target_parameters): ``lora_A.weight`` (r * experts, in) and ``lora_B.weight`` (out, r * experts) on
  the module holding the parameter, one ``base_layer.`` deeper for each parameter of it wrapped later;
- modules_to_save: every tensor of the copy under the module's own name; trainable tokens:
  ``token_adapter.trainable_tokens_delta`` (rows, dim);
- save_embedding_layers="auto": when target_modules names embed_tokens or lm_head (a list holding the name, or a
  regex matching a module whose name ends with it) and no trainable tokens, the base weight (``base_layer.weight``)
  of the input embedding and the output head, where each is adapted.
On a bf16/fp16 model the adapter's own tensors are float32 (PEFT's autocast_adapter_dtype), the copies of base
tensors keep the model's dtype. The file: 8 bytes of header length, the JSON header (``{"__metadata__":{"format":"pt"},...}``, tensors sorted by
name, no spaces) padded with spaces to a multiple of 8, then the tensors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from loralens.core.user_regex import user_pattern

_DTYPES = {"fp32": ("F32", 4), "bf16": ("BF16", 2), "fp16": ("F16", 2)}
_PREFIX = "base_model.model."
_EMBEDDING_LAYER_NAMES = ("embed_tokens", "lm_head")


def _embedding_targeted(arch: Any, spec: Any) -> bool:
    targets = spec.target_modules
    if spec.trainable_token_indices is not None or not targets:
        return False
    if isinstance(targets, str):
        if targets.lower() == "all-linear":
            return False
        regex = user_pattern(targets, "target_modules")
        return any(regex.fullmatch(n) for n in arch.module_names
                   if any(re.match(rf"(.*\.)?{e}$", n) for e in _EMBEDDING_LAYER_NAMES))
    return any(e in targets for e in _EMBEDDING_LAYER_NAMES)


def _subtree_tensors(arch: Any, name: str, biases_only: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """(key relative to ``name``, shape) of every tensor of module ``name``'s state dict."""
    out: list[tuple[str, tuple[int, ...]]] = []
    inside = lambda n: n == name or n.startswith(name + ".")  # noqa: E731
    rel = lambda n: n[len(name) + 1:] + "." if n != name else ""  # noqa: E731
    for m in arch.linear_modules:
        if inside(m.name):
            if not biases_only:
                out.append((rel(m.name) + "weight", (m.out_features, *m.kernel) if m.kernel else
                            ((m.in_features, m.out_features) if m.fan_in_fan_out else (m.out_features, m.in_features))))
            if m.bias:
                out.append((rel(m.name) + "bias", (m.out_features,)))
    for h in arch.other_modules:
        if h.kind == "param":
            if inside(h.module) and not biases_only:
                out.append((h.name[len(name) + 1:], h.shape))
            continue
        if not inside(h.name):
            continue
        if h.weight and not biases_only:
            out.append((rel(h.name) + "weight", h.shape or (h.weight,)))
        if h.bias:
            out.append((rel(h.name) + "bias", (h.bias,)))
    return out


def adapter_tensors(arch: Any, spec: Any, adapted: Sequence[Any], params: Sequence[Any],
                    tokens: Sequence[tuple[str, int, int]], saved: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Every tensor PEFT saves for this count: key -> shape."""
    out: dict[str, tuple[int, ...]] = {}
    embeddings = {h.name for h in arch.other_modules if h.kind == "embedding"}
    adapted_names = {m.name for m in adapted}
    for m in adapted:
        r, _ = spec.module_rank_alpha(m.name)
        key = _PREFIX + m.name + "."
        if m.name in embeddings:
            out[key + "lora_embedding_A"] = (r, m.in_features)
            out[key + "lora_embedding_B"] = (m.out_features, r)
        elif m.kernel:  # Conv2d (in, kh, kw) or Conv1d (in, k): B is a 1x1 (or 1) convolution
            ones = (1,) * (len(m.kernel) - 1)
            out[key + "lora_A.weight"] = (r, *m.kernel)
            out[key + "lora_B.weight"] = (m.out_features, r, *ones)
        else:
            out[key + "lora_A.weight"] = (r, m.in_features)
            out[key + "lora_B.weight"] = (m.out_features, r)
        if spec.lora_bias:
            out[key + "lora_B.bias"] = (m.out_features,)
        if spec.use_dora:
            out[key + "lora_magnitude_vector"] = ((1, m.out_features, *(1,) * (len(m.kernel) - 1)) if m.kernel
                                                  else (m.out_features,))
        if spec.bias != "none" and m.bias:
            out[key + "base_layer.bias"] = (m.out_features,)
    by_module: dict[str, list[Any]] = {}
    for p in params:
        by_module.setdefault(p.module, []).append(p)
    for module, wrapped in by_module.items():
        order = {h.name: i for i, h in enumerate(h for h in arch.other_modules if h.kind == "param")}
        wrapped.sort(key=lambda p: order.get(p.name, -1))
        for i, p in enumerate(wrapped):
            r, _ = spec.module_rank_alpha(p.name)
            key = _PREFIX + module + "." + "base_layer." * (len(wrapped) - 1 - i)
            # (out, in) of a 2-D parameter, (experts, out, in) of a 3-D one (not transposed)
            out[key + "lora_A.weight"] = (r * p.experts, p.b)
            out[key + "lora_B.weight"] = (p.a, r * p.experts)
    if spec.bias == "all":
        for rel, shape in _all_biases(arch):
            module = rel.rsplit(".", 1)[0]
            if module in adapted_names:
                continue  # saved above as base_layer.bias
            if any(module == s or module.startswith(s + ".") for s in saved):
                continue
            out[_PREFIX + rel] = shape
        for s in saved:
            for rel, shape in _subtree_tensors(arch, s, biases_only=True):
                # PEFT strips the adapter name only as the second-to-last part of a key
                copy = "modules_to_save." if "." not in rel else "modules_to_save.default."
                for middle in ("", copy, "original_module."):
                    out[_PREFIX + s + "." + middle + rel] = shape
    for s in saved:
        for rel, shape in _subtree_tensors(arch, s):
            out[_PREFIX + s + "." + rel] = shape
    for name, rows, width in tokens:
        out[_PREFIX + name + ".token_adapter.trainable_tokens_delta"] = (rows, width)
    if _embedding_targeted(arch, spec):
        token = next((h.name for h in arch.other_modules if h.kind == "embedding" and h.shape[0] == arch.vocab_size),
                     None)
        head = next((m for m in arch.linear_modules if m.is_output_head), None)
        if token in adapted_names:
            out[_PREFIX + token + ".base_layer.weight"] = next(h.shape for h in arch.other_modules if h.name == token)
        if head is not None and head.name in adapted_names:
            out[_PREFIX + head.name + ".base_layer.weight"] = (head.out_features, head.in_features)
            if head.bias:
                out[_PREFIX + head.name + ".base_layer.bias"] = (head.out_features,)
    return out


def _all_biases(arch: Any) -> list[tuple[str, tuple[int, ...]]]:
    out = [(m.name + ".bias", (m.out_features,)) for m in arch.linear_modules if m.bias]
    out += [(h.name + ".bias", (h.bias,)) for h in arch.other_modules if h.bias and h.kind != "param"]
    return out


def _upcast(key: str) -> bool:
    """PEFT's autocast_adapter_dtype: the adapter's own tensors (LoRA factors, magnitudes, lora_B biases, token
    deltas) are float32 on a bf16/fp16 model; copies of base tensors (biases, modules_to_save, embeddings) are not."""
    return ".lora_" in key or ".token_adapter." in key


def file_size(tensors: dict[str, tuple[int, ...]], dtype: str) -> int:
    """Bytes of the safetensors file holding ``tensors`` for a model in ``dtype`` (the adapter's own tensors in
    float32 then, see ``_upcast``), as the safetensors package writes it: wider dtypes first, then by name."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    kinds = {name: _DTYPES["fp32" if _upcast(name) else dtype] for name in tensors}
    for name in sorted(tensors, key=lambda n: (-kinds[n][1], n)):
        code, size = kinds[name]
        numel = 1
        for n in tensors[name]:
            numel *= n
        header[name] = {"dtype": code, "shape": list(tensors[name]), "data_offsets": [offset, offset + numel * size]}
        offset += numel * size
    length = len(json.dumps(header, separators=(",", ":")).encode())
    return 8 + length + (-length) % 8 + offset


def adapter_file_bytes(arch: Any, spec: Any, adapted: Sequence[Any], params: Sequence[Any],
                       tokens: Sequence[tuple[str, int, int]], saved: Sequence[str]) -> tuple[dict[str, int],
                                                                                                dict[str, int]]:
    """adapter_model.safetensors' size by dtype (fp32, bf16, fp16), and its tensors' bytes alone."""
    tensors = adapter_tensors(arch, spec, adapted, params, tokens, saved)
    numel = {True: 0, False: 0}
    for name, shape in tensors.items():
        count = 1
        for n in shape:
            count *= n
        numel[_upcast(name)] += count
    return ({dtype: file_size(tensors, dtype) for dtype in _DTYPES},
            {dtype: numel[True] * 4 + numel[False] * size for dtype, (_, size) in _DTYPES.items()})


__all__ = ["adapter_file_bytes", "adapter_tensors", "file_size"]
