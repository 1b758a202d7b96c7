"""What the Inspector page runs off the event loop (in ``app.workers``): open an adapter from a folder, from
uploaded bytes or a single uploaded file, and build the resized download. No NiceGUI here."""

from __future__ import annotations

import io
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

from loralens.adapters import adapter_to_bytes, inspect_adapter, load_adapter, load_adapter_from_bytes, resize_adapter


def sample_path() -> Path:
    """The small real PEFT adapter shipped inside the package."""
    return Path(str(resources.files("loralens") / "data" / "sample_adapter"))


def open_folder(path: str | Path) -> tuple[Any, Any]:
    """(adapter, report) of the adapter folder (or its .safetensors file) at ``path``."""
    adapter = load_adapter(path)
    return adapter, inspect_adapter(adapter)


def open_bytes(config: bytes, weights: bytes, name: str) -> tuple[Any, Any]:
    """(adapter, report) of an uploaded adapter_config.json + adapter_model.safetensors."""
    adapter = load_adapter_from_bytes(config, weights, name=name)
    return adapter, inspect_adapter(adapter)


def open_single_bytes(weights: bytes, name: str) -> tuple[Any, Any] | None:
    """(adapter, report) of an uploaded kohya / diffusers file (no config needed), or None for other layouts."""
    from loralens.adapters.formats import read_single_file_bytes

    adapter = read_single_file_bytes(weights, name)
    return None if adapter is None else (adapter, inspect_adapter(adapter))


def resized_zip(adapter: Any, rank: int | None, energy: float | None) -> bytes:
    """A zip holding the resized adapter's adapter_config.json and adapter_model.safetensors."""
    files = adapter_to_bytes(resize_adapter(adapter, rank=rank, energy=energy))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()
