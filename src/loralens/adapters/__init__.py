"""PEFT LoRA adapters without torch: read, inspect, resize, merge; a strict safetensors reader and writer."""

from loralens.adapters.inspect import AdapterReport, AdapterSummary, ModuleReport, inspect_adapter
from loralens.adapters.peft_format import (
    Adapter,
    AdapterModule,
    adapter_to_bytes,
    load_adapter,
    load_adapter_from_bytes,
    write_adapter,
)

__all__ = [
    "Adapter",
    "AdapterModule",
    "AdapterReport",
    "AdapterSummary",
    "ModuleReport",
    "adapter_to_bytes",
    "inspect_adapter",
    "load_adapter",
    "load_adapter_from_bytes",
    "write_adapter",
]
