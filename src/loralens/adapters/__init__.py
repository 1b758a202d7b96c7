"""PEFT LoRA adapters without torch: read, inspect, resize, merge; a strict safetensors reader and writer."""

from pathlib import Path

from loralens.adapters.inspect import AdapterReport, AdapterSummary, ModuleReport, inspect_adapter
from loralens.adapters.merge import MergeReport, merge_adapter
from loralens.adapters.peft_format import (
    Adapter,
    AdapterModule,
    load_adapter,
    load_adapter_from_bytes,
    refuse_pickle,
)
from loralens.adapters.peft_write import adapter_to_bytes, write_adapter
from loralens.adapters.resize import ResizedAdapter, ResizedModule, resize_adapter
from loralens.adapters.safetensors_io import SafetensorsFile

SAMPLE_ADAPTER_NAME = "sample_adapter"


def sample_adapter_path() -> Path:
    """The small real PEFT adapter shipped with loralens (a LLaMA-shaped model, 8 layers, r=8 on q, k, v, o)."""
    return Path(__file__).resolve().parent.parent / "data" / SAMPLE_ADAPTER_NAME


__all__ = [
    "Adapter",
    "AdapterModule",
    "AdapterReport",
    "AdapterSummary",
    "MergeReport",
    "ModuleReport",
    "ResizedAdapter",
    "ResizedModule",
    "SafetensorsFile",
    "adapter_to_bytes",
    "inspect_adapter",
    "load_adapter",
    "load_adapter_from_bytes",
    "merge_adapter",
    "refuse_pickle",
    "resize_adapter",
    "sample_adapter_path",
    "write_adapter",
]
