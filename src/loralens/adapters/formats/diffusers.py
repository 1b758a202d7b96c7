"""diffusers LoRA files (``pytorch_lora_weights.safetensors``): no adapter_config.json beside them.

Current layout (PEFT keys under a pipeline component): ``unet.<path>.lora_A.weight`` / ``.lora_B.weight``, also
``text_encoder.``, ``text_encoder_2.``, ``transformer.``. Legacy layouts: ``<path>.lora.down.weight`` /
``.lora.up.weight`` (LoRACompatibleLinear), ``<path>.lora_linear_layer.down.weight`` (text encoders), and the
attention-processor names ``<path>.processor.to_q_lora.down.weight`` (``to_q_lora`` -> ``to_q`` in a UNet,
``q_proj`` in a text encoder; ``to_out_lora`` -> ``to_out.0`` / ``out_proj``), as diffusers'
utils/state_dict_utils.py maps them.

Scaling, as diffusers (0.42, utils/peft_utils.py ``get_peft_kwargs``) loads the file: the PEFT config in the
``lora_adapter_metadata`` metadata entry (``<component>.r``, ``<component>.lora_alpha``, patterns) when present;
else ``.alpha`` tensors (alpha / r); else alpha = r for every module ("W + lora_B @ lora_A", scale 1 — diffusers
mirrors the ranks into alpha_pattern; versions before it gave every module the first module's rank as alpha).
"""

from __future__ import annotations

import json
from pathlib import Path

from loralens.adapters.formats.common import ForeignModule, build_adapter, factors, make_module, read_scalar
from loralens.adapters.peft_format import Adapter
from loralens.adapters.safetensors_io import SafetensorsFile
from loralens.core.peft_config import spec_from_peft_config
from loralens.errors import AdapterError, InvalidParameterError

COMPONENTS = ("unet", "text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "prior", "decoder")
METADATA_KEY = "lora_adapter_metadata"
CURRENT = {".lora_A.weight": "a", ".lora_B.weight": "b"}
LEGACY = {".lora.down.weight": "a", ".lora.up.weight": "b", ".lora_linear_layer.down.weight": "a",
          ".lora_linear_layer.up.weight": "b", "_lora.down.weight": "a", "_lora.up.weight": "b"}
_PROCESSOR = {"to_q": ("to_q", "q_proj"), "to_k": ("to_k", "k_proj"), "to_v": ("to_v", "v_proj"),
              "to_out": ("to_out.0", "out_proj")}


def component_of(key: str) -> str | None:
    head = key.split(".", 1)[0]
    return head if head in COMPONENTS else None


def detect(keys: list[str]) -> str | None:
    """"diffusers" / "diffusers-legacy" when every LoRA key sits under a pipeline component (or is a legacy
    attention-processor key), else None."""
    lora = [k for k in keys if not k.endswith(".alpha")]
    if not lora:
        return None
    if all(k.endswith(tuple(CURRENT)) and component_of(k) for k in lora):
        return "diffusers"
    if all(k.endswith(tuple(LEGACY)) for k in lora) and (
            all(component_of(k) for k in lora) or all(".processor." in k for k in lora)):
        return "diffusers-legacy"
    return None


def _module_path(key: str, suffix: str) -> str:
    """The module path (with its component prefix) of a LoRA key, legacy names mapped as diffusers maps them."""
    stem = key[: -len(suffix)]
    if suffix.startswith("_lora."):  # attention-processor layout: ...processor.to_q_lora.down.weight
        parent, _, leaf = stem.rpartition(".")
        parent = parent.replace(".processor", "")
        if leaf not in _PROCESSOR:
            raise AdapterError(f"unknown attention-processor LoRA {leaf!r}_lora", where=key)
        unet_name, te_name = _PROCESSOR[leaf]
        is_te = (component_of(key) or "").startswith("text_encoder")
        stem = f"{parent}.{te_name if is_te else unet_name}"
    return stem.replace(".processor.", ".")


def _component_specs(file: SafetensorsFile) -> dict[str, object]:
    raw = file.metadata.get(METADATA_KEY)
    if raw is None:
        return {}
    try:
        packed = json.loads(raw)
    except ValueError as error:
        raise AdapterError(f"is not valid JSON ({error})", where=f"{file.label}: __metadata__[{METADATA_KEY}]") from None
    configs: dict[str, dict] = {}
    for key, value in (packed.items() if isinstance(packed, dict) else []):
        component, _, field = key.partition(".")
        configs.setdefault(component, {})[field] = value
    specs = {}
    for component, config in configs.items():
        try:
            specs[component] = spec_from_peft_config(config)
        except InvalidParameterError as error:
            raise AdapterError(error.message, where=f"{file.label}: __metadata__[{METADATA_KEY}]: "
                               f"{component}.{error.where}") from None
    return specs


def read_diffusers(file: SafetensorsFile, path: Path | None, name: str, fmt: str) -> Adapter:
    suffixes = CURRENT if fmt == "diffusers" else LEGACY
    parts: dict[str, dict[str, str]] = {}
    alphas: dict[str, str] = {}
    for key in sorted(file.keys()):
        if key.endswith(".alpha"):  # a module's, or (diffusers' network_alphas) its down tensor's: "….down.weight.alpha"
            base = key[: -len(".alpha")]
            down = next((x for x in sorted(LEGACY, key=len, reverse=True) if LEGACY[x] == "a" and base.endswith(x)),
                        None)
            alphas[_module_path(base, down) if down else base.replace(".processor.", ".")] = key
            continue
        suffix = next(s for s in sorted(suffixes, key=len, reverse=True) if key.endswith(s))
        parts.setdefault(_module_path(key, suffix), {})[suffixes[suffix]] = key
    specs = _component_specs(file)
    modules: list[ForeignModule] = []
    for stem, roles in parts.items():
        if "a" not in roles or "b" not in roles:
            have = roles.get("a") or roles["b"]
            raise AdapterError("has no matching " + ("B/up" if "a" in roles else "A/down") + " tensor",
                               where=file.where(have))
        a, b, conv_shape = factors(file, roles["a"], roles["b"])
        r = a.shape[0]
        component = component_of(stem)
        alpha_dtype = None
        if component in specs:
            inner = stem[len(component) + 1:]  # type: ignore[arg-type]
            spec_r, alpha = specs[component].module_rank_alpha(inner)  # type: ignore[attr-defined]
            if spec_r != r:
                raise AdapterError(f"has rank {r} but the {METADATA_KEY} metadata gives r={spec_r}",
                                   where=file.where(roles["a"]))
            scaling = specs[component].module_scaling(inner)[2]  # type: ignore[attr-defined]
        elif stem in alphas:
            alpha_key = alphas.pop(stem)
            alpha = read_scalar(file, alpha_key)
            alpha_dtype = file.tensors[alpha_key].dtype
            scaling = alpha / r
        else:  # diffusers: no alpha anywhere means scale 1
            alpha, scaling = float(r), 1.0
        names = (roles["a"], roles["b"])
        modules.append(make_module(stem, stem, a, b, alpha, scaling=scaling, dtype=file.tensors[roles["a"]].dtype,
                                   b_dtype=file.tensors[roles["b"]].dtype, tensor_names=names,
                                   conv_shape=conv_shape, alpha_dtype=alpha_dtype))
    if alphas:
        key = next(iter(alphas.values()))
        raise AdapterError("is an alpha for a module with no LoRA factors", where=file.where(key))
    how = ("the lora_adapter_metadata config" if specs else ".alpha tensors" if any(m.alpha_dtype for m in modules)
           else "diffusers' default (alpha = r: scale 1)")
    note = f"{fmt} layout, component prefixes kept in module names; alpha from {how}"
    return build_adapter(modules, fmt=fmt, file=file, path=path, name=name, note=note)
