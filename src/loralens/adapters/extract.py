"""Extract a LoRA from a fine-tuned model: per linear weight, the best rank-N approximation of D = tuned − base.

One weight at a time, shard by shard, with plain file reads (not the memory map, whose touched pages would stay in
the process's RSS): the process holds D and its factors, a few copies of one matrix. The SVD is a randomized range finder (Halko, Martinsson & Tropp 2011: oversampling 8, power
iterations with re-orthonormalisation) run until the captured energy Σ_{i≤N} ŝ_i² changes by less than 1e-7
(relative) between two iterations — "exact enough" — else the exact LAPACK SVD. Either way the error written in the
report is exact: for the written D_N = U_N U_Nᵀ D, ‖D − D_N‖²_F = ‖D‖²_F − Σ_{i≤N} ŝ_i². Eckart–Young's optimum
(the tail of the true spectrum) is reported where the exact SVD ran (``exact=True`` runs it everywhere).

The adapter: B = U_N √S_N, A = √S_N V_Nᵀ, lora_alpha = r (scaling 1), per-module r in rank_pattern with --energy.
Embeddings and the output head are not extracted (listed); changed tensors that are not 2-D weights (norms,
biases) cannot be a LoRA and are listed too, never silently left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loralens.adapters.formats.common import ForeignModule, natural, synthesized_config
from loralens.adapters.merge import locate_base
from loralens.adapters.peft_format import PREFIX, Adapter
from loralens.adapters.resize import check_resize_target
from loralens.adapters.safetensors_io import DTYPES, FLOAT_DTYPES, SafetensorsFile, bf16_bits_to_float32
from loralens.core.blas import single_threaded_blas
from loralens.core.lowrank import rank_for_energy
from loralens.errors import AdapterError

SKIP = re.compile(r"(^|\.)(embed_tokens|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings|"
                  r"embed_positions|lm_head|embed_out)(\.|$)")
EXACT_BELOW = 512  # min(out, in) at or below which the exact SVD is as cheap as the randomized one
TOLERANCE = 1e-7


@dataclass(frozen=True)
class ExtractedModule:
    name: str
    shape: tuple[int, int]
    r: int
    method: str  # "randomized" | "exact"
    delta_fro: float  # ‖tuned − base‖_F
    error: float  # ‖D − D_r‖_F / ‖D‖_F of what was written (exact)
    optimal_error: float | None  # Eckart–Young: the tail of the exact spectrum (when the exact SVD ran)
    energy_kept: float

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "r": self.r, "method": self.method,
                "delta_fro": self.delta_fro, "error": self.error, "optimal_error": self.optimal_error,
                "energy_kept": self.energy_kept}


@dataclass(frozen=True, eq=False)
class Extracted:
    adapter: Adapter
    modules: tuple[ExtractedModule, ...]
    skipped: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (tensor, why)
    unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"modules": [m.to_json() for m in self.modules], "unchanged": self.unchanged,
                "skipped": [{"name": n, "reason": r} for n, r in self.skipped]}


def _read(file: SafetensorsFile, key: str) -> np.ndarray:
    """A tensor as float64 by a plain file read (not the memory map, whose touched pages would stay in RSS)."""
    info = file.tensors[key]
    stored = DTYPES[info.dtype]
    if file.label and Path(file.label).is_file():
        with open(file.label, "rb") as stream:
            stream.seek(info.start)
            data = stream.read(info.nbytes)
        if len(data) != info.nbytes:
            raise AdapterError("file changed while reading (shorter than its header says)", where=file.where(key))
        bits = np.frombuffer(data, dtype=stored).reshape(info.shape)
    else:
        bits = file.raw(key).view(stored).reshape(info.shape)
    values = bf16_bits_to_float32(bits) if info.dtype == "BF16" else bits
    return values.astype(np.float64)


def _randomized(d: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Top-k SVD of d by the randomized range finder, or None when it does not settle (then: exact)."""
    m, n = d.shape
    width = min(k + 8, m, n)
    y = d @ rng.standard_normal((n, width))  # (m, width)
    q, _ = np.linalg.qr(y)
    last = -1.0
    for _ in range(8):
        z, _ = np.linalg.qr(d.T @ q)  # (n, width)
        q, _ = np.linalg.qr(d @ z)  # (m, width)
        small = q.T @ d  # (width, n)
        ub, s, vt = np.linalg.svd(small, full_matrices=False)
        captured = float(np.sum(s[:k].astype(np.float64) ** 2))
        if last > 0 and abs(captured - last) <= TOLERANCE * captured:
            return q @ ub[:, :k], s[:k], vt[:k]
        last = captured
    return None


def _same_bytes(a: SafetensorsFile, b: SafetensorsFile, key: str) -> bool:
    """Whether a tensor is byte-identical in both files, read piece by piece (bounded memory)."""
    ia, ib = a.tensors[key], b.tensors[key]
    if ia.dtype != ib.dtype:
        return False
    if ia.nbytes != ib.nbytes:
        return False
    step = 16 << 20
    with open(a.label, "rb") as fa, open(b.label, "rb") as fb:
        fa.seek(ia.start)
        fb.seek(ib.start)
        for offset in range(0, ia.nbytes, step):
            n = min(step, ia.nbytes - offset)
            if fa.read(n) != fb.read(n):
                return False
    return True


def _factor(d: np.ndarray, rank: int | None, energy: float | None, exact: bool, rng: np.random.Generator,
            total: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, np.ndarray | None]:
    """(U_k, S_k, V_kᵀ, method, full spectrum or None) for this module's target."""
    small = min(d.shape)
    if not exact and small > EXACT_BELOW and (rank is None or 2 * rank < small):
        ks = [min(rank, small)] if rank is not None else [k for k in (16, 64, 256) if k < small // 2]
        for k in ks:
            found = _randomized(d, k, rng)
            if found is None:
                break
            u, s, vt = found
            if rank is not None:
                return u, s, vt, "randomized", None
            kept = np.cumsum(s.astype(np.float64) ** 2) / total if total else np.ones_like(s)
            if kept[-1] >= energy - 1e-12:  # type: ignore[operator]
                k_needed = int(np.searchsorted(kept, energy - 1e-12) + 1)  # type: ignore[operator]
                return u[:, :k_needed], s[:k_needed], vt[:k_needed], "randomized", None
    u, s, vt = np.linalg.svd(d, full_matrices=False)
    k = min(rank, s.size) if rank is not None else rank_for_energy(s, energy)  # type: ignore[arg-type]
    return u[:, :k], s[:k], vt[:k], "exact", s


def extract_lora(base_path: str | Path, tuned_path: str | Path, *, rank: int | None = None,
                 energy: float | None = None, exact: bool = False, seed: int = 0) -> Extracted:
    """The LoRA (in memory) of tuned − base for every 2-D weight both models share; nothing is written."""
    rank, energy = check_resize_target(rank, energy)
    base, tuned = locate_base(base_path), locate_base(tuned_path)
    base_files = {s.name: SafetensorsFile.open(s) for s in base.shards}
    rng = np.random.default_rng(seed)
    modules: list[ForeignModule] = []
    reports: list[ExtractedModule] = []
    skipped: list[tuple[str, str]] = []
    unchanged = 0
    missing = sorted(set(base.weight_map) - set(tuned.weight_map))
    if missing:
        raise AdapterError(f"has no tensor {missing[0]!r} that the base model has", where=str(tuned_path))
    for shard in tuned.shards:
        tuned_file = SafetensorsFile.open(shard)
        for key in sorted(tuned_file.keys(), key=natural):
            if key not in base.weight_map:
                raise AdapterError("is not in the base model", where=tuned_file.where(key))
            base_file = base_files[base.weight_map[key]]
            t_info, b_info = tuned_file.tensors[key], base_file.tensors[key]
            if t_info.shape != b_info.shape:
                raise AdapterError(f"shape {list(t_info.shape)} differs from the base's {list(b_info.shape)}",
                                   where=tuned_file.where(key))
            if t_info.dtype not in FLOAT_DTYPES or b_info.dtype not in FLOAT_DTYPES:
                if bytes(tuned_file.raw(key)) != bytes(base_file.raw(key)):
                    skipped.append((key, f"changed, but dtype {t_info.dtype} is not a floating type"))
                continue
            if len(t_info.shape) != 2 or not key.endswith(".weight") or SKIP.search(key):
                if not _same_bytes(tuned_file, base_file, key):
                    skipped.append((key, "changed embedding or output head: not extracted" if SKIP.search(key)
                                    and len(t_info.shape) == 2 else
                                    "changed, but not a 2-D weight: a LoRA cannot hold it"))
                else:
                    unchanged += 1
                continue
            with single_threaded_blas():
                d = _read(tuned_file, key)
                d -= _read(base_file, key)  # (out, in)
                total = float(np.sum(d * d))
                if total == 0:
                    unchanged += 1
                    continue
                u, s, vt, method, full = _factor(d, rank, energy, exact, rng, total)
            del d
            name = key[: -len(".weight")]
            k = int(s.size)
            root = np.sqrt(s)
            kept = float(np.sum(s**2) / total)
            error = float(np.sqrt(max(0.0, 1.0 - kept)))
            optimal = float(np.sqrt(np.sum(full[k:] ** 2) / total)) if full is not None else None
            modules.append(ForeignModule(
                name=name, a=(root[:, None] * vt).astype(np.float32), b=(u * root).astype(np.float32), r=k,
                alpha=float(k), scaling=1.0, in_features=int(t_info.shape[1]), out_features=int(t_info.shape[0]),
                key=PREFIX + name, dtype="F32"))
            reports.append(ExtractedModule(name, (int(t_info.shape[0]), int(t_info.shape[1])), k, method,
                                           float(np.sqrt(total)), error, optimal, kept))
    if not modules:
        raise AdapterError("no 2-D weight differs between the two models; nothing to extract", where=str(tuned_path))
    config = synthesized_config(modules, use_rslora=False, base_model_name_or_path=str(base_path), task_type=None,
                                bias="none")
    config["target_modules"] = sorted(m.name for m in modules)
    adapter = Adapter(config=config, modules=tuple(modules), dtype="float32", path=None, file_bytes=0,
                      name="extracted", metadata={"format": "pt"}, format="peft")
    return Extracted(adapter=adapter, modules=tuple(reports), skipped=tuple(skipped), unchanged=unchanged)
