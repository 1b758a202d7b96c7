"""loralens: see and measure low-rank adaptation (LoRA).

The public library API. Everything here is plain Python and numpy; the web app lives in ``loralens.app``.
"""

from loralens.adapters import (
    Adapter,
    AdapterReport,
    inspect_adapter,
    load_adapter,
    merge_adapter,
    resize_adapter,
    write_adapter,
)
from loralens.core.architectures import PRESETS, Architecture, LinearModule, architecture_from_config, get_architecture
from loralens.core.counting import (
    LayerCount,
    break_even_rank,
    count_layer,
    full_params,
    lora_params,
    max_rank_for_savings,
    scaling,
)
from loralens.core.labs import LABS, run_fit, run_init, run_merge, run_subspace
from loralens.core.lora import LoraSpec, delta_weight, forward, init_lora, merge, unmerge
from loralens.core.memory import MemoryBreakdown, MemoryEstimate, estimate_memory
from loralens.core.methods import MethodCount, compare_methods
from loralens.core.peft_count import LoraConfigSpec, LoraCount, ModuleCount, count_lora
from loralens.errors import AdapterError, ConfigError, InvalidParameterError, LoraLensError, OutputError

__version__ = "0.1.0"

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
