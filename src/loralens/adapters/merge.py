"""Merge an adapter into its base model's safetensors: W' = W + s·B A for every adapted weight, shard by shard.

Same key names, dtypes and shard layout (and the index file) as the base. Each output shard is streamed: its
header is the input's (shapes and dtypes do not change), then each tensor is copied, or merged a block of rows at
a time, so memory stays near one block (~16 MB of float32), far below one shard. fan_in_fan_out (GPT-2 Conv1D)
and embeddings get ΔW transposed, as PEFT's get_delta_weight does. DoRA (linear) follows PEFT's merge:
W' = m / ‖W + ΔW‖_row · (W + ΔW).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loralens.core.blas import single_threaded_blas
from loralens.adapters.atomic import atomic_output_dir, check_output
from loralens.adapters.peft_format import PICKLE_SUFFIXES, PREFIX, Adapter, AdapterModule, refuse_pickle, load_adapter
from loralens.adapters.safetensors_io import (
    DTYPES,
    FLOAT_DTYPES,
    SafetensorsFile,
    bf16_bits_to_float32,
    encode,
    header_bytes,
)
from loralens.errors import AdapterError

INDEX_NAME = "model.safetensors.index.json"


@dataclass(frozen=True)
class MergeReport:
    out_dir: Path
    shards: tuple[str, ...]
    merged: tuple[str, ...]  # base weight keys that were changed
    tensors: int  # tensors written in total
    bytes_written: int
    skipped: tuple[str, ...] = field(default_factory=tuple)  # adapter tensors that are not LoRA factors

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "shards": list(self.shards), "merged": list(self.merged),
                "tensors": self.tensors, "bytes_written": self.bytes_written, "skipped": list(self.skipped)}


@dataclass(frozen=True)
class BaseModel:
    folder: Path | None  # the folder whose other files (config.json, ...) are copied; None for a lone file
    shards: tuple[Path, ...]
    index: Path | None
    weight_map: dict[str, str]  # key -> shard file name


def locate_base(path: str | Path) -> BaseModel:
    """A base model: a folder (model.safetensors, or shards with model.safetensors.index.json), a .safetensors
    file, or the index file itself."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise refuse_pickle(path)
    if path.is_dir():
        if (path / INDEX_NAME).is_file():
            return _from_index(path / INDEX_NAME)
        files = sorted(path.glob("*.safetensors"))
        if len(files) == 1:
            return _single(files[0], folder=path)
        if not files:
            pickles = [p for s in PICKLE_SUFFIXES for p in sorted(path.glob(f"*{s}"))]
            if pickles:
                raise refuse_pickle(pickles[0])
            raise AdapterError("no .safetensors weights in this folder", where=str(path))
        raise AdapterError(f"{len(files)} .safetensors files but no {INDEX_NAME}", where=str(path))
    if not path.exists():
        raise AdapterError("not found", where=str(path))
    if path.name.endswith(".index.json"):
        return _from_index(path)
    if path.suffix.lower() != ".safetensors":
        raise AdapterError("expected a base model folder, a .safetensors file or its index.json", where=str(path))
    return _single(path, folder=None)


def _single(file: Path, folder: Path | None) -> BaseModel:
    header = SafetensorsFile.open(file)
    return BaseModel(folder=folder, shards=(file,), index=None, weight_map={k: file.name for k in header.keys()})


def _from_index(index: Path) -> BaseModel:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise AdapterError(f"is not valid JSON ({error})", where=str(index)) from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise AdapterError("needs a weight_map object of key -> shard file", where=f"{index}: weight_map")
    names = sorted(set(weight_map.values()))
    for name in names:
        if Path(name).name != name or not (index.parent / name).is_file():
            raise AdapterError(f"shard {name!r} is not a file beside the index", where=f"{index}: weight_map")
    return BaseModel(folder=index.parent, shards=tuple(index.parent / n for n in names), index=index,
                     weight_map=dict(weight_map))


def _base_key(module: AdapterModule, keys: set[str], where: str) -> str:
    exact = module.name + ".weight"
    if exact in keys:
        return exact
    matches = [k for k in keys if k.endswith("." + exact)] or [k for k in keys if exact.endswith("." + k)]
    if len(matches) == 1:
        return matches[0]
    raise AdapterError(f"adapted module {module.name!r} has no weight {exact!r} in the base model", where=where)


def merged_rows(module: AdapterModule, rows: np.ndarray, row_start: int) -> np.ndarray:
    """Rows ``row_start:row_start+len(rows)`` of W + ΔW in the base orientation (float32 for 16/32-bit bases,
    float64 for float64). For DoRA on a fan_in_fan_out weight, ``rows`` must be the whole weight."""
    work = np.float64 if rows.dtype == np.float64 else np.float32
    stop = row_start + rows.shape[0]
    a = module.a.astype(work, copy=False)  # (r, in)
    b = module.b.astype(work, copy=False)  # (out, r)
    scaling = work(module.scaling)
    w = rows.astype(work, copy=False)
    if module.fan_in_fan_out or module.kind == "embedding":  # stored (in, out): rows index the inputs
        delta = ((b @ a[:, row_start:stop]) * scaling).T  # (rows, out)
    else:  # stored (out, in): rows index the outputs
        delta = (b[row_start:stop] @ a) * scaling  # (rows, in)
    if module.magnitude is None:
        return w + delta
    if module.kind == "embedding":
        raise AdapterError("merging a DoRA embedding is not supported", where=module.key)
    natural = w + delta
    magnitude = module.magnitude.astype(work)
    if module.fan_in_fan_out:  # natural (out, in) is the transpose: norms over columns of the stored weight
        return natural * (magnitude / np.linalg.norm(natural, axis=0))[None, :]
    return natural * (magnitude[row_start:stop] / np.linalg.norm(natural, axis=1))[:, None]


def merge_adapter(adapter_path: str | Path | Adapter, base_path: str | Path, out_dir: str | Path, *,
                  force: bool = False) -> MergeReport:
    """Write the merged model to ``out_dir`` (atomically). Nothing is written if any check fails."""
    adapter = adapter_path if isinstance(adapter_path, Adapter) else load_adapter(adapter_path)
    base = locate_base(base_path)
    inputs = [p for p in (adapter.path, Path(base_path)) if p is not None]
    check_output(out_dir, force=force, inputs=inputs)
    if adapter.config.get("lora_bias"):
        raise AdapterError("merging an adapter with lora_bias is not supported", where="adapter_config.json: lora_bias")
    # check everything before writing anything
    files = {shard.name: SafetensorsFile.open(shard) for shard in base.shards}
    keys = set(base.weight_map)
    for name, file in files.items():
        missing = [k for k, v in base.weight_map.items() if v == name and k not in file.tensors]
        if missing:
            raise AdapterError(f"the index puts {missing[0]!r} here, but the shard does not hold it",
                               where=str(file.label))
    targets: dict[str, AdapterModule] = {}
    for module in adapter.modules:
        if not (np.isfinite(module.a).all() and np.isfinite(module.b).all()):
            raise AdapterError("holds NaN or Inf values; refusing to merge", where=module.tensor_names[0])
        key = _base_key(module, keys, where=str(base_path))
        file = files[base.weight_map[key]]
        info = file.tensors[key]
        expected = ((module.in_features, module.out_features) if module.fan_in_fan_out or module.kind == "embedding"
                    else (module.out_features, module.in_features))
        if info.shape != expected:
            raise AdapterError(
                f"base shape {list(info.shape)} does not match the adapter's {list(expected)} for {module.name}",
                where=file.where(key),
            )
        if info.dtype not in FLOAT_DTYPES:
            raise AdapterError(f"dtype {info.dtype} is not a floating type", where=file.where(key))
        targets[key] = module
    skipped = tuple(k for k in adapter.other_tensors if not k.endswith(".base_layer.weight"))
    written = 0
    with atomic_output_dir(out_dir, force=force, inputs=inputs) as temp:
        for shard in base.shards:
            written += _write_shard(files[shard.name], targets, temp / shard.name)
        if base.index is not None:
            shutil.copyfile(base.index, temp / base.index.name)
        if base.folder is not None:
            _copy_side_files(base, temp)
    return MergeReport(out_dir=Path(out_dir), shards=tuple(s.name for s in base.shards),
                       merged=tuple(sorted(targets)), tensors=sum(len(f.tensors) for f in files.values()),
                       bytes_written=written, skipped=tuple(s.removeprefix(PREFIX) for s in skipped))


def _copy_side_files(base: BaseModel, temp: Path) -> None:
    """config.json, tokenizer files and the like, so the merged folder loads like the base one."""
    assert base.folder is not None
    skip = {s.name for s in base.shards} | ({base.index.name} if base.index else set())
    for item in sorted(base.folder.iterdir()):
        if item.is_file() and item.name not in skip and item.suffix.lower() not in (*PICKLE_SUFFIXES, ".safetensors"):
            shutil.copyfile(item, temp / item.name)


CHUNK_BYTES = 16 << 20  # rows are merged and copied in pieces of about this size


def _write_shard(file: SafetensorsFile, targets: dict[str, AdapterModule], out: Path) -> int:
    """Stream one shard: the same header, then each tensor copied or merged piece by piece.

    The input is read with plain file reads (not a memory map), so the process holds about one piece at a time.
    """
    infos = sorted(file.tensors.values(), key=lambda t: (t.start, t.name))
    head = header_bytes([(t.name, t.dtype, t.shape) for t in infos], file.metadata)
    total = len(head)
    with open(file.label, "rb") as source, open(out, "wb") as stream:
        stream.write(head)
        for info in infos:
            source.seek(info.start)
            module = targets.get(info.name)
            if module is None:
                left = info.nbytes
                while left:
                    piece = source.read(min(left, CHUNK_BYTES))
                    if not piece:
                        raise AdapterError("file changed while merging (shorter than its header says)",
                                           where=file.where(info.name))
                    stream.write(piece)
                    left -= len(piece)
            else:
                rows, cols = info.shape
                stored = DTYPES[info.dtype]
                whole = module.magnitude is not None and module.fan_in_fan_out
                step = rows if whole else max(1, CHUNK_BYTES // max(1, cols * 4))
                for row in range(0, rows, step):
                    count = min(step, rows - row)
                    data = source.read(count * cols * stored.itemsize)
                    bits = np.frombuffer(data, dtype=stored).reshape(count, cols)
                    values = bf16_bits_to_float32(bits) if info.dtype == "BF16" else bits
                    with single_threaded_blas():
                        merged = merged_rows(module, values, row)
                    stream.write(memoryview(encode(merged, info.dtype).data))
            total += info.nbytes
    return total
