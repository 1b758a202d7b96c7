"""PEFT key names: a raw state dict's keys (with the adapter name inside) read as save_pretrained writes them."""

from __future__ import annotations

from typing import Any

import numpy as np

from loralens.adapters.safetensors_io import SafetensorsFile, TensorData

_PARTS = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector", "modules_to_save",
          "trainable_tokens_delta")


def standard_key(key: str) -> str:
    """A key as PEFT's save_pretrained writes it: without the adapter name that a raw state dict keeps inside
    (``lora_A.default.weight`` -> ``lora_A.weight``, ``score.modules_to_save.default.weight`` -> ``score.weight``)."""
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        if part in _PARTS and (i + 2 < len(parts) or part in ("lora_embedding_A", "lora_embedding_B",
                                                              "lora_magnitude_vector", "trainable_tokens_delta")):
            if parts[i + 1] in ("weight", "bias"):
                continue
            kept = parts[:i] if part == "modules_to_save" else parts[: i + 1]
            return ".".join(kept + parts[i + 2:])
    return key


class RenamedFile:
    """A SafetensorsFile seen under PEFT's standard key names (``standard_key``)."""

    def __init__(self, file: SafetensorsFile, renamed: dict[str, str]) -> None:
        self._file, self._to_raw = file, renamed
        self.label, self.metadata, self.file_bytes = file.label, file.metadata, file.file_bytes
        self.tensors = {new: file.tensors[raw] for new, raw in renamed.items()}

    def keys(self) -> list[str]:
        return list(self._to_raw)

    def where(self, name: str) -> str:
        return self._file.where(self._to_raw.get(name, name))

    def tensor_data(self, name: str) -> TensorData:
        return self._file.tensor_data(self._to_raw[name])

    def array(self, name: str, dtype: Any = None) -> np.ndarray:
        return self._file.array(self._to_raw[name], dtype)
