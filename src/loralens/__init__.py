"""loralens: see and measure low-rank adaptation (LoRA).

The public library API. Names are imported lazily (PEP 562): ``import loralens`` loads nothing heavy, and
``loralens.count_layer`` loads only the pure counting module (no numpy). The web app lives in ``loralens.app``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_SOURCES: dict[str, str] = {
    "Adapter": "loralens.adapters",
    "AdapterReport": "loralens.adapters",
    "inspect_adapter": "loralens.adapters",
    "load_adapter": "loralens.adapters",
    "merge_adapter": "loralens.adapters",
    "resize_adapter": "loralens.adapters",
    "write_adapter": "loralens.adapters",
    "PRESETS": "loralens.core.architectures",
    "Architecture": "loralens.core.architectures",
    "LinearModule": "loralens.core.architectures",
    "architecture_from_config": "loralens.core.architectures",
    "get_architecture": "loralens.core.architectures",
    "LayerCount": "loralens.core.counting",
    "break_even_rank": "loralens.core.counting",
    "count_layer": "loralens.core.counting",
    "full_params": "loralens.core.counting",
    "lora_params": "loralens.core.counting",
    "max_rank_for_savings": "loralens.core.counting",
    "scaling": "loralens.core.counting",
    "LABS": "loralens.core.labs",
    "run_fit": "loralens.core.labs",
    "run_init": "loralens.core.labs",
    "run_merge": "loralens.core.labs",
    "run_subspace": "loralens.core.labs",
    "LoraSpec": "loralens.core.lora",
    "delta_weight": "loralens.core.lora",
    "forward": "loralens.core.lora",
    "init_lora": "loralens.core.lora",
    "merge": "loralens.core.lora",
    "unmerge": "loralens.core.lora",
    "MemoryBreakdown": "loralens.core.memory",
    "MemoryEstimate": "loralens.core.memory",
    "estimate_memory": "loralens.core.memory",
    "MethodCount": "loralens.core.methods",
    "compare_methods": "loralens.core.methods",
    "LoraConfigSpec": "loralens.core.peft_config",
    "LoraCount": "loralens.core.peft_count",
    "ModuleCount": "loralens.core.peft_count",
    "count_lora": "loralens.core.peft_count",
    "AdapterError": "loralens.errors",
    "ConfigError": "loralens.errors",
    "InvalidParameterError": "loralens.errors",
    "LoraLensError": "loralens.errors",
    "OutputError": "loralens.errors",
}


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'loralens' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # static type checkers see the real imports
    from loralens.adapters import Adapter, AdapterReport, inspect_adapter, load_adapter, merge_adapter, resize_adapter, write_adapter
    from loralens.core.architectures import PRESETS, Architecture, LinearModule, architecture_from_config, get_architecture
    from loralens.core.counting import LayerCount, break_even_rank, count_layer, full_params, lora_params, max_rank_for_savings, scaling
    from loralens.core.labs import LABS, run_fit, run_init, run_merge, run_subspace
    from loralens.core.lora import LoraSpec, delta_weight, forward, init_lora, merge, unmerge
    from loralens.core.memory import MemoryBreakdown, MemoryEstimate, estimate_memory
    from loralens.core.methods import MethodCount, compare_methods
    from loralens.core.peft_config import LoraConfigSpec
    from loralens.core.peft_count import LoraCount, ModuleCount, count_lora
    from loralens.errors import AdapterError, ConfigError, InvalidParameterError, LoraLensError, OutputError

__all__ = [
    "LABS",
    "PRESETS",
    "Adapter",
    "AdapterError",
    "AdapterReport",
    "Architecture",
    "ConfigError",
    "InvalidParameterError",
    "LayerCount",
    "LinearModule",
    "LoraConfigSpec",
    "LoraCount",
    "LoraLensError",
    "LoraSpec",
    "MemoryBreakdown",
    "MemoryEstimate",
    "MethodCount",
    "ModuleCount",
    "OutputError",
    "__version__",
    "architecture_from_config",
    "break_even_rank",
    "compare_methods",
    "count_layer",
    "count_lora",
    "delta_weight",
    "estimate_memory",
    "forward",
    "full_params",
    "get_architecture",
    "init_lora",
    "inspect_adapter",
    "load_adapter",
    "lora_params",
    "max_rank_for_savings",
    "merge",
    "merge_adapter",
    "resize_adapter",
    "run_fit",
    "run_init",
    "run_merge",
    "run_subspace",
    "scaling",
    "unmerge",
    "write_adapter",
]
