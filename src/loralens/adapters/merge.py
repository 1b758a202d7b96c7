"""Merge an adapter into its base model's safetensors: W' = W + s·B A for every adapted weight, shard by shard.

Same key names, dtypes and shard layout (and the index file) as the base. Each output shard is streamed: its
header is the input's (shapes and dtypes do not change), then each tensor is copied, or merged a block of rows at
a time, so memory stays near one block (~16 MB of float32), far below one shard. fan_in_fan_out (GPT-2 Conv1D)
and embeddings get ΔW transposed, as PEFT's get_delta_weight does. DoRA (linear) follows PEFT's merge:
W' = m / ‖W + ΔW‖_row · (W + ΔW).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loralens.core.blas import single_threaded_blas
from loralens.adapters.atomic import atomic_output_dir, check_output
from loralens.adapters.merge_arithmetic import apply_plan, check_finite, decode, read_whole, round_to
from loralens.adapters.merge_plan import (
    BaseView,
    TensorPlan,
    plan_merge,
    read_base_config,
    resized_config,
    vocabulary_rows,
)
from loralens.adapters.peft_format import PICKLE_SUFFIXES, Adapter, AdapterModule, load_adapter, refuse_pickle
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
    replaced: tuple[str, ...] = field(default_factory=tuple)  # base keys replaced by saved copies / token rows

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "shards": list(self.shards), "merged": list(self.merged),
                "tensors": self.tensors, "bytes_written": self.bytes_written, "replaced": list(self.replaced)}


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


def merged_rows(module: AdapterModule, rows: np.ndarray, row_start: int, stored: str | None = None) -> np.ndarray:
    """Rows ``row_start:row_start+len(rows)`` of W + ΔW in the base orientation (float32 for 16/32-bit bases,
    float64 for float64). For DoRA on a fan_in_fan_out weight or an embedding, ``rows`` must be the whole weight
    (PEFT's DoRA embedding: magnitude per embedding dimension, norms over the vocabulary).

    ``stored``: the base's dtype. PEFT's Embedding.merge rounds ΔW to it before adding (``delta.to(orig_dtype)``);
    its Linear adds the float32 ΔW (one rounding, by the caller).
    """
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
    if module.kind == "embedding" and stored is not None and module.magnitude is None:
        delta = round_to(delta, stored)
    if module.magnitude is None:
        return w + delta
    natural = w + delta
    magnitude = module.magnitude.astype(work)
    if module.fan_in_fan_out or module.kind == "embedding":  # stored (in, out): norms over its columns
        return natural * (magnitude / np.linalg.norm(natural, axis=0))[None, :]
    return natural * (magnitude[row_start:stop] / np.linalg.norm(natural, axis=1))[:, None]



def merge_adapter(adapter_path: str | Path | Adapter, base_path: str | Path, out_dir: str | Path, *,
                  force: bool = False) -> MergeReport:
    """Write the merged model to ``out_dir`` (atomically). Nothing is written if any check fails: everything the
    adapter holds is applied as PEFT's merge_and_unload applies it (merge_plan.py), or the merge is refused."""
    adapter = adapter_path if isinstance(adapter_path, Adapter) else load_adapter(adapter_path)
    if adapter.format != "peft":  # its module names are not a transformers base's keys: never guess the mapping
        raise AdapterError(f"merge applies PEFT adapters to a transformers base; this is a {adapter.format} adapter "
                           "(loralens convert IN --to peft -o OUT first, if its modules are a transformers model's)",
                           where=str(adapter.path or adapter.name))
    base = locate_base(base_path)
    inputs = [p for p in (adapter.path, Path(base_path)) if p is not None]
    check_output(out_dir, force=force, inputs=inputs)
    # check everything before writing anything
    files = {shard.name: SafetensorsFile.open(shard) for shard in base.shards}
    for name, file in files.items():
        missing = [k for k, v in base.weight_map.items() if v == name and k not in file.tensors]
        if missing:
            raise AdapterError(f"the index puts {missing[0]!r} here, but the shard does not hold it",
                               where=str(file.label))
    for module in adapter.modules:
        if not (np.isfinite(module.a).all() and np.isfinite(module.b).all()):
            raise AdapterError("holds NaN or Inf values; refusing to merge", where=module.tensor_names[0])
        if not module.finite:
            raise AdapterError(f"ΔW = scaling ({module.scaling:.3g}) x B A overflows; refusing to merge",
                               where=module.tensor_names[0])
    for name, data in adapter.other_tensors.items():
        if data.dtype in FLOAT_DTYPES and not np.isfinite(decode(data, np.float64)).all():
            raise AdapterError("holds NaN or Inf values; refusing to merge", where=name)
    view = BaseView(keys={k: (files[v].tensors[k].dtype, files[v].tensors[k].shape)
                          for k, v in base.weight_map.items()}, config=read_base_config(base.folder))
    label = str(adapter.path) if adapter.path is not None else adapter.name
    plans = plan_merge(adapter, view, label)
    written = 0
    with atomic_output_dir(out_dir, force=force, inputs=inputs) as temp:
        for shard in base.shards:
            written += _write_shard(files[shard.name], plans, temp / shard.name)
        rows = vocabulary_rows(plans)
        if base.index is not None:
            _write_index(base.index, temp / base.index.name, temp, rows is not None)
        if base.folder is not None:
            _copy_side_files(base, temp)
            if rows is not None and (base.folder / "config.json").is_file():  # checked by plan_merge
                (temp / "config.json").write_bytes(resized_config((base.folder / "config.json").read_bytes(), rows))
    replaced = tuple(sorted(k for k, p in plans.items() if p.replace is not None or p.rows is not None))
    return MergeReport(out_dir=Path(out_dir), shards=tuple(s.name for s in base.shards),
                       merged=tuple(sorted(k for k, p in plans.items() if p.deltas or p.bias_of)),
                       tensors=sum(len(f.tensors) for f in files.values()), bytes_written=written,
                       replaced=replaced)


def _write_index(index: Path, out: Path, temp: Path, sizes_changed: bool) -> None:
    """The base's index file; when a resized vocabulary changed the shards, its total_size follows them."""
    if not sizes_changed:
        shutil.copyfile(index, out)
        return
    data = json.loads(index.read_text(encoding="utf-8"))
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and "total_size" in metadata:
        shards = {temp / name for name in data["weight_map"].values()}
        metadata["total_size"] = sum(sum(t.nbytes for t in SafetensorsFile.open(p).tensors.values())
                                     for p in sorted(shards))
    out.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _copy_side_files(base: BaseModel, temp: Path) -> None:
    """config.json, tokenizer files and the like, so the merged folder loads like the base one."""
    assert base.folder is not None
    skip = {s.name for s in base.shards} | ({base.index.name} if base.index else set())
    for item in sorted(base.folder.iterdir()):
        if item.is_file() and item.name not in skip and item.suffix.lower() not in (*PICKLE_SUFFIXES, ".safetensors"):
            shutil.copyfile(item, temp / item.name)


CHUNK_BYTES = 16 << 20  # rows are merged and copied in pieces of about this size


def _write_shard(file: SafetensorsFile, plans: dict[str, TensorPlan], out: Path) -> int:
    """Stream one shard: the same header, then each tensor copied or merged piece by piece.

    The input is read with plain file reads (not a memory map), so the process holds about one piece at a time;
    a tensor with more than one change (a saved copy, token rows, lora_bias, two tied modules) is built whole.
    """
    infos = sorted(file.tensors.values(), key=lambda t: (t.start, t.name))

    def shape_of(info: Any) -> tuple[int, ...]:
        target = plans.get(info.name)
        return target.new_shape if target is not None and target.new_shape is not None else info.shape

    head = header_bytes([(t.name, t.dtype, shape_of(t)) for t in infos], file.metadata)
    total = len(head)
    with open(file.label, "rb") as source, open(out, "wb") as stream:
        stream.write(head)
        for info in infos:
            source.seek(info.start)
            target = plans.get(info.name)
            if target is None:
                left = info.nbytes
                while left:
                    piece = source.read(min(left, CHUNK_BYTES))
                    if not piece:
                        raise AdapterError("file changed while merging (shorter than its header says)",
                                           where=file.where(info.name))
                    stream.write(piece)
                    left -= len(piece)
            elif not target.streamable:
                old = read_whole(file, info.name)
                with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
                    new = apply_plan(target, old, info.dtype, merged_rows)
                check_finite(new, old if new.shape == old.shape else np.zeros_like(new), info.dtype, file.where(info.name))
                encoded = encode(new, info.dtype)
                stream.write(memoryview(encoded.data))
                total += encoded.nbytes
                continue
            else:
                module = target.deltas[0]
                rows, cols = info.shape[0], math.prod(info.shape[1:])  # a conv kernel: (out, in·prod(kernel))
                stored = DTYPES[info.dtype]
                whole = module.magnitude is not None and (module.fan_in_fan_out or module.kind == "embedding")
                step = rows if whole else max(1, CHUNK_BYTES // max(1, cols * 4))
                for row in range(0, rows, step):
                    count = min(step, rows - row)
                    data = source.read(count * cols * stored.itemsize)
                    bits = np.frombuffer(data, dtype=stored).reshape(count, cols)
                    values = bf16_bits_to_float32(bits) if info.dtype == "BF16" else bits
                    with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
                        merged = merged_rows(module, values, row, info.dtype)
                        encoded = encode(merged, info.dtype)
                        rounded = merged if info.dtype in ("F32", "F64") else round_to(merged, info.dtype)
                    check_finite(rounded, values, info.dtype, file.where(info.name))
                    stream.write(memoryview(encoded.data))
            total += info.nbytes
    return total
