"""LoRA files that are not PEFT folders (kohya, diffusers, MLX-LM, bare PEFT weights): detected and read into the
same ``Adapter`` that PEFT folders give, with ``Adapter.format`` naming what was read, and written back in the
layout they came from (a resize keeps the format).

``read_other`` is the hook ``load_adapter`` calls when a file has no adapter_config.json beside it;
``load_special`` the one it calls first (an MLX-LM folder has an adapter_config.json that is not PEFT's).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loralens.adapters.formats.common import NOTE_KEY, public_config
from loralens.adapters.formats.output import write_single_or_folder
from loralens.adapters.safetensors_io import SafetensorsFile, TensorData
from loralens.errors import AdapterError, InvalidParameterError

#: format name -> what it is, for messages and docs
FORMATS = {
    "peft": "PEFT folder (adapter_config.json + adapter_model.safetensors)",
    "peft-weights": "PEFT weights without adapter_config.json",
    "kohya": "kohya sd-scripts / ComfyUI / A1111 LoRA (lora_down, lora_up, alpha)",
    "diffusers": "diffusers LoRA (unet./text_encoder./transformer. + lora_A/lora_B)",
    "diffusers-legacy": "diffusers legacy LoRA (lora.down/up, lora_linear_layer, attention processors)",
    "mlx": "MLX-LM adapter (adapters.safetensors + lora_parameters)",
}


def read_other(weights: Path, file: SafetensorsFile, *, alpha: float | None = None) -> object | None:
    """The adapter in ``file`` if its keys are a known non-PEFT layout, else None (the caller explains PEFT's
    layout). Raises AdapterError naming a recognised but unsupported format."""
    from loralens.adapters.formats import diffusers, kohya, peft_weights, unsupported

    unsupported.refuse_unsupported(file)
    keys = file.keys()
    name = weights.stem
    if kohya.is_kohya(keys):
        _no_alpha(alpha, "kohya")
        return kohya.read_kohya(file, weights, name)
    fmt = diffusers.detect(keys)
    if fmt is not None:
        _no_alpha(alpha, fmt)
        return diffusers.read_diffusers(file, weights, name, fmt)
    if peft_weights.is_peft_weights(keys):
        return peft_weights.read_peft_weights(file, weights, name, alpha)
    for key in keys:
        if key.endswith((".lora_A.weight", ".lora_B.weight")):  # PEFT-style factors under a prefix nobody writes
            head = key.split(".", 1)[0]
            raise AdapterError(
                f"lora_A/lora_B under {head + '.'!r}, a prefix loralens does not know (PEFT weights start with "
                f"'base_model.model.', diffusers files with {', '.join(c + '.' for c in diffusers.COMPONENTS)})",
                where=file.where(key))
    return None


def read_single_file_bytes(data: bytes, name: str) -> Any:
    """A kohya or diffusers file given as bytes (an upload): these need no config. None for any other layout
    (PEFT weights wait for their adapter_config.json). AdapterError names an unsupported layout."""
    from loralens.adapters.formats import diffusers, kohya, unsupported

    file = SafetensorsFile.from_bytes(data, name)
    unsupported.refuse_unsupported(file)
    stem = Path(name).stem
    if kohya.is_kohya(file.keys()):
        return kohya.read_kohya(file, None, stem)
    fmt = diffusers.detect(file.keys())
    return diffusers.read_diffusers(file, None, stem, fmt) if fmt is not None else None


def _no_alpha(alpha: float | None, fmt: str) -> None:
    if alpha is not None:
        raise InvalidParameterError(f"applies only to PEFT weights without adapter_config.json; a {fmt} file "
                                    "carries its own alpha", where="--alpha")


def load_special(path: str | Path) -> object | None:
    """An MLX-LM adapter (folder, or its adapters.safetensors) if ``path`` is one, else None."""
    from loralens.adapters.formats import mlx

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_path = folder / mlx.CONFIG
    weights = path if path.is_file() and path.suffix == ".safetensors" else folder / mlx.WEIGHTS
    if not (config_path.is_file() and weights.is_file()):
        return None
    try:
        raw = config_path.read_bytes()
    except OSError:
        return None
    if len(raw) > 1 << 20 or not mlx.is_mlx_config(raw):
        return None
    return mlx.read_mlx(raw, str(config_path), SafetensorsFile.open(weights), folder, folder.resolve().name)


def load_any(path: str | Path, *, alpha: float | None = None, adapter_name: str | None = None) -> Any:
    """Any readable LoRA adapter; ``alpha`` sets lora_alpha for PEFT weights that have no config; ``adapter_name``
    picks one of the named adapters (subfolders) of a PEFT folder."""
    from loralens.adapters.peft_format import CONFIG_NAME, load_adapter, resolve_paths

    if alpha is None:
        return load_adapter(path, adapter_name)
    if adapter_name is not None:
        raise InvalidParameterError(f"applies only to weights without {CONFIG_NAME}; a named adapter has its own",
                                    where="--alpha")
    special = load_special(path)
    if special is not None:
        _no_alpha(alpha, "MLX-LM")
    config_path, weights = resolve_paths(path)
    if config_path.is_file():
        raise InvalidParameterError(f"applies only to weights without {CONFIG_NAME}; {config_path} gives lora_alpha",
                                    where="--alpha")
    adapter = read_other(weights, SafetensorsFile.open(weights), alpha=alpha)
    if adapter is None:
        raise AdapterError(f"missing: a PEFT adapter has {CONFIG_NAME} beside {weights.name}", where=str(config_path))
    return adapter


def describe(adapter: Any) -> str:
    """One line: the format and how its scaling was read."""
    note = adapter.config.get(NOTE_KEY)
    return note or FORMATS.get(adapter.format, adapter.format)


def output_files(adapter: Any) -> tuple[dict[str, TensorData], dict[str, str], dict[str, Any] | None]:
    """(tensors, safetensors metadata, config to write or None) of an adapter in its own format."""
    from loralens.adapters.formats import kohya, mlx
    from loralens.adapters.peft_format import adapter_tensors

    fmt = adapter.format
    if fmt == "kohya":
        return kohya.kohya_tensors(adapter.modules), kohya.kohya_metadata(adapter.metadata, adapter.modules), None
    if fmt in ("diffusers", "diffusers-legacy"):
        from loralens.adapters.formats.diffusers_write import diffusers_files

        return diffusers_files(adapter)
    if fmt == "mlx":
        tensors, config = mlx.mlx_files(adapter.modules, adapter.config.get("mlx_config") or {})
        return tensors, dict(adapter.metadata) or {"format": "mlx"}, config
    if fmt in ("peft", "peft-weights"):
        config = {k: v for k, v in public_config(adapter.config).items()}
        return adapter_tensors(adapter), dict(adapter.metadata) or {"format": "pt"}, config
    raise AdapterError(f"cannot write format {fmt!r}", where="format")


def output_bytes(adapter: Any) -> dict[str, bytes]:
    """File name -> bytes, for downloads: what ``write_other`` would write into a folder."""
    import json

    from loralens.adapters.formats.output import file_names
    from loralens.adapters.safetensors_io import to_bytes

    tensors, metadata, config = output_files(adapter)
    weights_name, config_name = file_names(adapter)
    files = {weights_name: to_bytes(tensors, metadata)}
    if config is not None and config_name:
        files[config_name] = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return files


def write_other(adapter: Any, out: str | Path, *, force: bool = False) -> Path:
    """Write the adapter in its own format: a folder, or a single .safetensors file when ``out`` ends so (for the
    single-file formats). Atomic; never over an input."""
    tensors, metadata, config = output_files(adapter)
    return write_single_or_folder(adapter, tensors, metadata, config, out, force=force)


def metadata_of(adapter: Any) -> Mapping[str, str]:
    return output_files(adapter)[1]


__all__ = ["FORMATS", "describe", "load_any", "load_special", "output_bytes", "output_files", "read_other",
           "read_single_file_bytes", "write_other"]
