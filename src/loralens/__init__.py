"""loralens: see and measure low-rank adaptation (LoRA).

The public library API. Everything here is plain Python and numpy; the web app lives in ``loralens.app``.
"""

from loralens.core.counting import (
    LayerCount,
    break_even_rank,
    count_layer,
    full_params,
    lora_params,
    max_rank_for_savings,
    scaling,
)
from loralens.core.lora import LoraSpec, delta_weight, forward, init_lora, merge, unmerge
from loralens.errors import AdapterError, ConfigError, InvalidParameterError, LoraLensError, OutputError

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "ConfigError",
    "InvalidParameterError",
    "LayerCount",
    "LoraLensError",
    "LoraSpec",
    "OutputError",
    "__version__",
    "break_even_rank",
    "count_layer",
    "delta_weight",
    "forward",
    "full_params",
    "init_lora",
    "lora_params",
    "max_rank_for_savings",
    "merge",
    "scaling",
    "unmerge",
]
