"""Where an adapter of each format is written: a folder (PEFT, MLX-LM, or a folder holding the one file), or a
single ``.safetensors`` file for the single-file formats (kohya, diffusers) when the output name ends so.

Both go through a temporary name beside the target and a rename, and refuse to write over an input.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loralens.adapters.atomic import atomic_output_dir, check_output
from loralens.adapters.safetensors_io import TensorData, write_file
from loralens.errors import OutputError

SINGLE_FILE = ("kohya", "diffusers", "diffusers-legacy")


def file_names(adapter: Any) -> tuple[str, str | None]:
    """(weights file name, config file name or None) inside an output folder."""
    fmt = adapter.format
    if fmt == "mlx":
        return "adapters.safetensors", "adapter_config.json"
    if fmt in ("peft", "peft-weights"):
        return "adapter_model.safetensors", "adapter_config.json"
    if fmt == "kohya":
        return f"{adapter.name or 'lora'}.safetensors", None
    return "pytorch_lora_weights.safetensors", None


def _inputs(adapter: Any) -> list[Path]:
    return [Path(adapter.path)] if getattr(adapter, "path", None) is not None else []


def write_single_or_folder(adapter: Any, tensors: Mapping[str, TensorData], metadata: Mapping[str, str],
                           config: Mapping[str, Any] | None, out: str | Path, *, force: bool = False) -> Path:
    out = Path(out)
    if out.suffix == ".safetensors" and adapter.format in SINGLE_FILE:
        return _write_file(tensors, metadata, out, force=force, inputs=_inputs(adapter))
    weights_name, config_name = file_names(adapter)
    with atomic_output_dir(out, force=force, inputs=_inputs(adapter)) as temp:
        write_file(temp / weights_name, tensors, metadata)
        if config is not None and config_name:
            (temp / config_name).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


def check_output_path(out: str | Path, fmt: str, *, force: bool, inputs: list[Path]) -> None:
    """The checks a write will make, before any work."""
    out = Path(out)
    if out.suffix == ".safetensors" and fmt in SINGLE_FILE:
        _check_file(out, force=force, inputs=inputs)
    else:
        check_output(out, force=force, inputs=inputs)


def _check_file(out: Path, *, force: bool, inputs: list[Path]) -> None:
    resolved = out.resolve()
    for source in inputs:
        src = Path(source).resolve()
        if resolved == src or src in resolved.parents:
            raise OutputError(f"is the input {source}; choose another output file", where=str(out))
    if out.exists() and (not force or not out.is_file()):
        raise OutputError("already exists; pass --force to replace it" if not out.is_dir() else
                          "is a folder", where=str(out))
    if not resolved.parent.is_dir():
        raise OutputError(f"parent folder {resolved.parent} does not exist", where=str(out))


def _write_file(tensors: Mapping[str, TensorData], metadata: Mapping[str, str], out: Path, *, force: bool,
                inputs: list[Path]) -> Path:
    _check_file(out, force=force, inputs=inputs)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.loralens-tmp-", dir=out.resolve().parent)
    os.close(fd)
    try:
        write_file(name, tensors, metadata)
        os.replace(name, out)
    except OSError as error:
        Path(name).unlink(missing_ok=True)
        raise OutputError(f"cannot write: {error.strerror or error}", where=str(out)) from None
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return out
