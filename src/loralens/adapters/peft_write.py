"""Writing PEFT adapters: every tensor under PEFT's key names in its stored dtype, config, atomic folders."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loralens.adapters.atomic import atomic_output_dir
from loralens.adapters.peft_format import CONFIG_NAME, WEIGHTS_NAME, Adapter, _key_for
from loralens.adapters.safetensors_io import TensorData, encode, to_bytes, write_file


def adapter_tensors(adapter: Adapter) -> dict[str, TensorData]:
    """Every tensor of the adapter under PEFT's key names, in its stored dtype."""
    tensors: dict[str, TensorData] = {}
    for module in adapter.modules:
        a_key = _key_for(module.key, "a", module.kind)
        b_key = _key_for(module.key, "b", module.kind)
        b_dtype = module.b_dtype or module.dtype
        a, b, k = module.a, module.b, module.a.shape[0]
        if module.kernel:  # Conv: A (k, in_channels, *kernel), B (out, k, 1, ...)
            a = a.reshape(k, -1, *module.kernel)
            b = b.reshape(b.shape[0], k, *([1] * len(module.kernel)))
        tensors[a_key] = encode(a, module.dtype)
        tensors[b_key] = encode(b, b_dtype)
        if module.magnitude is not None:
            names = [n for n in module.tensor_names if "lora_magnitude_vector" in n]
            name = names[0] if names else f"{module.key}.lora_magnitude_vector"
            magnitude = module.magnitude.reshape(module.magnitude_shape or module.magnitude.shape)
            tensors[name] = encode(magnitude, module.magnitude_dtype or module.dtype)
    tensors.update(adapter.other_tensors)
    return tensors


def config_bytes(config: Mapping[str, Any]) -> bytes:
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _as_adapter(value: object) -> Adapter:
    adapter = getattr(value, "adapter", value)
    if not isinstance(adapter, Adapter):
        raise TypeError(f"expected an Adapter or ResizedAdapter, got {type(value).__name__}")
    return adapter


def adapter_to_bytes(resized_or_adapter: object) -> dict[str, bytes]:
    """{"adapter_config.json": ..., "adapter_model.safetensors": ...} (for downloads)."""
    adapter = _as_adapter(resized_or_adapter)
    if adapter.format != "peft":  # written in the layout it was read from
        from loralens.adapters.formats import output_bytes

        return output_bytes(adapter)
    metadata = dict(adapter.metadata) or {"format": "pt"}
    return {CONFIG_NAME: config_bytes(adapter.config), WEIGHTS_NAME: to_bytes(adapter_tensors(adapter), metadata)}


def write_adapter(resized_or_adapter: object, out_dir: str | Path, *, force: bool = False) -> Path:
    """Write the adapter folder atomically (temporary folder, renamed when complete). Returns the folder."""
    adapter = _as_adapter(resized_or_adapter)
    if adapter.format != "peft":  # written in the layout it was read from
        from loralens.adapters.formats import write_other

        return write_other(adapter, out_dir, force=force)
    inputs = [adapter.path] if adapter.path is not None else []
    with atomic_output_dir(out_dir, force=force, inputs=inputs) as temp:
        (temp / CONFIG_NAME).write_bytes(config_bytes(adapter.config))
        write_file(temp / WEIGHTS_NAME, adapter_tensors(adapter), dict(adapter.metadata) or {"format": "pt"})
    return Path(out_dir)
