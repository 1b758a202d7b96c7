"""Writing diffusers LoRA files: the current layout with each component's PEFT config in the
``lora_adapter_metadata`` entry (diffusers' save_lora_weights writes it; its loader reads alpha from it), or a
legacy file under its own key names when diffusers' rules reproduce every module's scaling."""

from __future__ import annotations

import json
from typing import Any

from loralens.adapters.formats.common import factor_tensors, number, scalar_tensor, synthesized_config
from loralens.adapters.formats.diffusers import METADATA_KEY, component_of
from loralens.adapters.safetensors_io import TensorData
from loralens.errors import AdapterError


def component_metadata(modules: list | tuple) -> str:
    """{"unet.r": ..., "unet.lora_alpha": ..., ...}: each component's config over its own module paths."""
    packed: dict[str, Any] = {}
    by_component: dict[str, list] = {}
    for m in modules:
        component = component_of(m.name)
        if component is None:
            raise AdapterError("a diffusers module name starts with its pipeline component (unet., text_encoder., "
                               "transformer.)", where=m.name)
        by_component.setdefault(component, []).append(m)
    for component, members in by_component.items():
        class _M:
            def __init__(self, m: Any) -> None:
                self.name, self.r, self.alpha = m.name[len(component) + 1:], m.r, m.alpha

        config = synthesized_config([_M(m) for m in members], use_rslora=False)
        for key, value in config.items():
            packed[f"{component}.{key}"] = value
    return json.dumps(packed, sort_keys=True)


def _check_scaling(modules: list | tuple) -> None:
    for m in modules:
        if abs(m.alpha / m.r - m.scaling) > 1e-12 * max(1.0, abs(m.scaling)):
            raise AdapterError(f"scaling {m.scaling:g} is not alpha/r = {m.alpha:g}/{m.r}; diffusers' layout "
                               "stores alpha and r", where=m.name)


def diffusers_files(adapter: Any) -> tuple[dict[str, TensorData], dict[str, str], None]:
    modules = adapter.modules
    _check_scaling(modules)
    tensors: dict[str, TensorData] = {}
    metadata = {k: v for k, v in adapter.metadata.items() if k != METADATA_KEY}
    legacy = adapter.format == "diffusers-legacy"
    for m in modules:
        if m.magnitude is not None:
            raise AdapterError("DoRA magnitudes are not written in the diffusers layout", where=m.name)
        a, b = factor_tensors(m, conv=True)
        if legacy:
            a_key, b_key = m.tensor_names[0], m.tensor_names[1]
        else:
            a_key, b_key = f"{m.key}.lora_A.weight", f"{m.key}.lora_B.weight"
        tensors[a_key], tensors[b_key] = a, b
        if legacy and getattr(m, "alpha_dtype", None):
            tensors[f"{m.key}.alpha"] = scalar_tensor(m.alpha, m.alpha_dtype)
    if legacy:
        _check_legacy(adapter, modules)
    else:
        metadata[METADATA_KEY] = component_metadata(modules)
    return tensors, metadata or {"format": "pt"}, None


def _check_legacy(adapter: Any, modules: list | tuple) -> None:
    """Without .alpha tensors, diffusers loads every module with scale 1 (alpha = r)."""
    for m in modules:
        if not getattr(m, "alpha_dtype", None) and m.scaling != 1.0:
            raise AdapterError(f"the legacy diffusers layout without .alpha tensors loads this module with scale 1, "
                               f"not {number(m.scaling)}; write it with 'loralens convert --to diffusers' (current "
                               "layout) instead", where=m.name)


__all__ = ["component_metadata", "diffusers_files"]
