"""Helpers for the adapter tests: the PEFT-made adapters in tests/fixtures/adapters and PEFT's own results."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "adapters"
ADAPTERS = ("plain", "rslora", "patterns", "dora", "gpt2", "bf16")
BASE_OF = {"plain": "base_llama", "rslora": "base_llama", "patterns": "base_llama", "dora": "base_llama",
           "gpt2": "base_gpt2", "bf16": "base_llama"}


def reference(name: str) -> dict[str, np.ndarray]:
    """What PEFT computed for this fixture (written by scripts/generate_adapter_fixtures.py)."""
    with np.load(FIXTURES / "reference" / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def bad_safetensors(header: object, data: bytes = b"", *, header_len: int | None = None) -> bytes:
    """A safetensors file built by hand (header: dict serialised to JSON, or raw bytes)."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if header_len is None else header_len) + text + data


def copy_adapter(name: str, dest: Path) -> Path:
    shutil.copytree(FIXTURES / name, dest)
    return dest


def truncated(delta: np.ndarray, k: int) -> np.ndarray:
    """The best rank-k approximation of ``delta`` from a float64 full SVD (Eckart–Young)."""
    u, s, vt = np.linalg.svd(delta, full_matrices=False)
    return (u[:, :k] * s[:k]) @ vt[:k]
