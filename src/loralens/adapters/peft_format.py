"""PEFT LoRA adapters: adapter_config.json + adapter_model.safetensors <-> modules with their rank and scaling.

Rules follow huggingface/peft (tuners/lora/model.py ``_create_and_replace``, utils/other.py ``get_pattern_key``,
tuners/lora/layer.py ``update_layer``):

- keys: ``base_model.model.<module path>.lora_A.weight`` (r, in) and ``.lora_B.weight`` (out, r);
  ``.lora_magnitude_vector`` (out,) for DoRA; embeddings: ``.lora_embedding_A`` (r, num_embeddings) and
  ``.lora_embedding_B`` (embedding_dim, r), whose ΔW = (B A)ᵀ is added to the (num_embeddings, dim) weight;
- each module's r and alpha: the first key of rank_pattern / alpha_pattern that matches
  ``re.match(rf"(.*\\.)?({key})$", module_path)``, else ``r`` / ``lora_alpha``;
- scaling = alpha / sqrt(r) with use_rslora, else alpha / r;
- fan_in_fan_out (GPT-2 Conv1D): the base weight is stored (in, out), so ΔW is added transposed.

Writing is in peft_write.py, key names in peft_keys.py, fused MoE experts in peft_experts.py; this reader is a
little over 400 lines because its module-by-module checks each name the tensor they refuse.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loralens.adapters.peft_keys import RenamedFile, standard_key
from loralens.adapters.safetensors_io import FLOAT_DTYPES, SafetensorsFile, TensorData
from loralens.core.peft_config import LoraConfigSpec, spec_from_peft_config
from loralens.errors import AdapterError, InvalidParameterError

PREFIX = "base_model.model."
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_SUFFIXES = {
    ".lora_A.weight": ("a", "linear"),
    ".lora_B.weight": ("b", "linear"),
    ".lora_embedding_A": ("a", "embedding"),
    ".lora_embedding_B": ("b", "embedding"),
    ".lora_magnitude_vector": ("magnitude", None),
    ".lora_magnitude_vector.weight": ("magnitude", None),  # older PEFT versions
}
MAX_DELTA = 1e150  # largest ‖ΔW‖_F bound handled: its σ² stays finite in float64
DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def _fro(x: np.ndarray) -> float:
    with np.errstate(over="ignore"):
        return float(np.sqrt(np.sum(np.square(x, dtype=np.float64))))


@dataclass(frozen=True, eq=False)
class AdapterModule:
    """One adapted module. ``a`` (r, in) and ``b`` (out, r) are float32 (float64 if stored so).

    For an embedding, in_features is num_embeddings and out_features the embedding dim (ΔW is added transposed).
    ``key`` is the stem of its tensor names in the file; ``dtype`` the stored safetensors dtype of A and B.
    """

    name: str
    a: np.ndarray  # (r, in)
    b: np.ndarray  # (out, r)
    r: int
    alpha: float
    scaling: float
    in_features: int
    out_features: int
    fan_in_fan_out: bool = False
    magnitude: np.ndarray | None = None  # (out,) DoRA
    kind: str = "linear"
    key: str = ""
    dtype: str = "F32"
    tensor_names: tuple[str, ...] = ()
    b_dtype: str | None = None  # stored dtype of B when it differs from A's
    magnitude_dtype: str | None = None  # stored dtype of the magnitude when it differs from A's
    kernel: tuple[int, ...] = ()  # Conv1d/2d/3d: A is (r, in_channels, *kernel), B (out, r, 1, ...); in_features
    #                               is in_channels·prod(kernel): ΔW is the (out, in) matrix of the flattened kernel
    magnitude_shape: tuple[int, ...] | None = None  # as stored (conv DoRA: (1, out, 1, ...))
    parameters_wrapped: tuple[str, ...] = ()  # an expert: the parameter paths its ParamWrapper may hold (PEFT
    #                                           matches rank_pattern / alpha_pattern against them)

    @property
    def parameters(self) -> int:
        """Trainable numbers of this module in the file: A, B and the DoRA magnitude."""
        return self.a.size + self.b.size + (self.magnitude.size if self.magnitude is not None else 0)

    @property
    def finite(self) -> bool:
        """A, B (and the magnitude) hold no NaN/Inf, the scaling is finite, and ΔW = s·B A stays far inside float64
        (‖ΔW‖_F ≤ |s|·‖B‖_F·‖A‖_F ≤ MAX_DELTA, so σ² and every LAPACK call on it are finite)."""
        arrays = [self.a, self.b] + ([self.magnitude] if self.magnitude is not None else [])
        if not (math.isfinite(self.scaling) and all(np.isfinite(x).all() for x in arrays)):
            return False
        with np.errstate(over="ignore"):
            bound = abs(self.scaling) * _fro(self.b) * _fro(self.a)
        return bool(bound <= MAX_DELTA)

    def delta_weight(self) -> np.ndarray:
        """ΔW = scaling · B A as (out, in) float64 (the orientation of nn.Linear's weight)."""
        return self.scaling * (self.b.astype(np.float64) @ self.a.astype(np.float64))

    def delta_for_base(self) -> np.ndarray:
        """ΔW in the orientation of the base weight: transposed for fan_in_fan_out and embeddings."""
        delta = self.delta_weight()
        return delta.T if (self.fan_in_fan_out or self.kind == "embedding") else delta


@dataclass(frozen=True)
class UnsupportedModule:
    """A module of a kind loralens does not read (yet): inspect lists it, resize and merge refuse it by name."""

    name: str
    reason: str
    tensors: tuple[str, ...]
    bytes: int
    where: str = ""  # file: first tensor, for messages
    data: Mapping[str, TensorData] = field(default_factory=dict, compare=False)  # kept byte for byte on writing


@dataclass(frozen=True, eq=False)
class Adapter:
    """A PEFT LoRA adapter read into memory. ``other_tensors`` are kept byte for byte (e.g. modules_to_save)."""

    config: dict[str, Any]
    modules: tuple[AdapterModule, ...]
    dtype: str  # "float32" | "float16" | "bfloat16" | "float64" | "mixed"
    path: Path | None
    file_bytes: int
    name: str = "adapter"
    other_tensors: Mapping[str, TensorData] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    unsupported: tuple[UnsupportedModule, ...] = ()  # modules loralens cannot read: reported by name
    experts: tuple[AdapterModule, ...] = ()  # fused MoE experts (target_parameters), one per expert: inspect only
    spec: LoraConfigSpec = None  # type: ignore[assignment]  # ``config`` validated; derived from it when not given
    format: str = "peft"  # the layout it was read from (adapters.formats)

    def __post_init__(self) -> None:
        if self.spec is None:
            object.__setattr__(self, "spec", spec_from_peft_config(self.config))


# --- config -----------------------------------------------------------------------------------------------------


MAX_CONFIG_BYTES = 1 << 20  # an adapter_config.json is a few kB; a larger one is refused before it is read


def parse_config(raw: bytes, label: str) -> tuple[dict[str, Any], LoraConfigSpec]:
    """adapter_config.json -> (the dict as written, its validated spec); AdapterError names the field at fault.

    The fields are checked by the same rules as everywhere else (``core.peft_config.LoraConfigSpec``).
    """
    if len(raw) > MAX_CONFIG_BYTES:
        raise AdapterError(f"is {len(raw):,} bytes; an adapter config is at most {MAX_CONFIG_BYTES:,}", where=label)
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise AdapterError(f"is not valid JSON ({error})", where=label) from None
    except RecursionError:
        raise AdapterError("is not valid JSON (nested too deeply)", where=label) from None
    if not isinstance(config, dict):
        raise AdapterError("must be a JSON object", where=label)
    peft_type = config.get("peft_type", "LORA")
    if peft_type != "LORA":
        raise AdapterError(f"peft_type {peft_type!r} is not supported (only LORA)", where=f"{label}: peft_type")
    try:
        spec = spec_from_peft_config(config)
    except InvalidParameterError as error:
        raise AdapterError(error.message, where=f"{label}: {error.where}") from None
    return config, spec


# --- reading ----------------------------------------------------------------------------------------------------


def refuse_pickle(path: Path | str) -> AdapterError:
    """The error for a pickle file (.bin, .pt, ...): never loaded, with how to convert it. Nothing is read."""
    return AdapterError(
        "is a pickle file, which loralens never loads (unpickling can run code). Convert it to safetensors, e.g. "
        "load it in PEFT and call model.save_pretrained(out_dir, safe_serialization=True), or "
        "safetensors.torch.save_file(torch.load(path, weights_only=True), 'adapter_model.safetensors')",
        where=str(path),
    )


def resolve_paths(path: str | Path) -> tuple[Path, Path]:
    """(config path, weights path) for an adapter folder, its .safetensors file or its adapter_config.json."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise refuse_pickle(path)
    if path.is_dir():
        folder, weights = path, path / WEIGHTS_NAME
        if not weights.exists():
            for suffix in PICKLE_SUFFIXES:
                for candidate in sorted(folder.glob(f"*{suffix}")):
                    raise refuse_pickle(candidate)
            found = sorted(folder.glob("*.safetensors"))
            if len(found) != 1:
                named = named_adapters(folder)
                if named:
                    raise AdapterError(f"holds {len(named)} named adapters ({', '.join(named)}); choose one with "
                                       "--adapter NAME (or give its subfolder)", where=str(path))
                raise AdapterError(f"no {WEIGHTS_NAME} in this folder", where=str(path))
            weights = found[0]
    elif path.name == CONFIG_NAME:
        folder, weights = path.parent, path.parent / WEIGHTS_NAME
    elif path.exists():
        if path.suffix.lower() != ".safetensors":
            raise AdapterError("expected an adapter folder or its .safetensors file", where=str(path))
        folder, weights = path.parent, path
    else:
        raise AdapterError("not found", where=str(path))
    return folder / CONFIG_NAME, weights


def named_adapters(folder: Path) -> list[str]:
    """The subfolders holding an adapter (PEFT saves every adapter but "default" in a subfolder of its name)."""
    try:
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / CONFIG_NAME).is_file())
    except OSError:
        return []


def load_adapter(path: str | Path, adapter_name: str | None = None) -> Adapter:
    """Read a LoRA adapter: a PEFT folder, or its .safetensors file with adapter_config.json beside it, or a file
    of another known layout (``adapters.formats``). ``adapter_name``: one of the named adapters in the folder."""
    from loralens.adapters.formats import load_special, read_other  # formats import this module

    if adapter_name is not None:
        folder = Path(path)
        named = named_adapters(folder) if folder.is_dir() else []
        if adapter_name not in named or Path(adapter_name).name != adapter_name:
            listed = f" (it holds: {', '.join(named)})" if named else " (it holds no named adapters)"
            raise AdapterError(f"no adapter named {adapter_name!r} here{listed}", where=str(path))
        path = folder / adapter_name
    special = load_special(path)  # an MLX-LM folder: its adapter_config.json is not PEFT's
    if special is not None:
        return special  # type: ignore[return-value]
    config_path, weights_path = resolve_paths(path)
    if not config_path.is_file():

        other = read_other(weights_path, SafetensorsFile.open(weights_path)) if weights_path.is_file() else None
        if other is not None:
            return other  # type: ignore[return-value]
        raise AdapterError(f"missing: a PEFT adapter has {CONFIG_NAME} beside {weights_path.name}",
                           where=str(config_path))
    try:
        raw_config = config_path.read_bytes()
    except OSError as error:
        raise AdapterError(f"cannot read: {error.strerror or error}", where=str(config_path)) from None
    config, spec = parse_config(raw_config, str(config_path))
    file = SafetensorsFile.open(weights_path)
    return _build(config, spec, file, name=weights_path.parent.resolve().name, path=weights_path.parent)


def load_adapter_from_bytes(config_json: bytes, safetensors: bytes, name: str = "upload") -> Adapter:
    """The same, from the bytes of the two files (for uploads)."""
    from loralens.adapters.formats.mlx import is_mlx_config, read_mlx  # an MLX-LM adapter's two files

    if is_mlx_config(config_json[: MAX_CONFIG_BYTES + 1]):
        return read_mlx(config_json, f"{name}/{CONFIG_NAME}", SafetensorsFile.from_bytes(safetensors, name), None, name)
    config, spec = parse_config(config_json, f"{name}/{CONFIG_NAME}")
    file = SafetensorsFile.from_bytes(safetensors, f"{name}/{WEIGHTS_NAME}")
    return _build(config, spec, file, name=name, path=None)


def _natural(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _build(config: dict[str, Any], spec: LoraConfigSpec, file: SafetensorsFile, *, name: str,
           path: Path | None) -> Adapter:
    parts: dict[str, dict[str, str]] = {}
    kinds: dict[str, str] = {}
    other: dict[str, TensorData] = {}
    renamed = {standard_key(k): k for k in file.keys()}
    if len(renamed) != len(file.keys()):
        raise AdapterError("holds the same tensor with and without an adapter name in its key", where=file.label)
    file = RenamedFile(file, renamed)  # type: ignore[assignment] if any(k != v for k, v in renamed.items()) else file
    for key in file.keys():
        for suffix, (role, kind) in _SUFFIXES.items():
            if key.endswith(suffix):
                stem = key[: -len(suffix)]
                parts.setdefault(stem, {})[role] = key
                if kind is not None:
                    if kinds.setdefault(stem, kind) != kind:
                        raise AdapterError("mixes lora_A/B and lora_embedding_A/B names", where=file.where(key))
                break
        else:
            other[key] = file.tensor_data(key)
    modules = []
    unsupported = []
    experts: list[AdapterModule] = []
    dtypes = set()
    for stem in sorted(parts, key=_natural):
        roles = parts[stem]
        if "a" not in roles or "b" not in roles:
            have, missing = ("a", "b") if "a" in roles else ("b", "a")
            if have not in roles:
                raise AdapterError("lora_magnitude_vector without lora_A and lora_B",
                                   where=file.where(roles["magnitude"]))
            kind = kinds[stem]
            expected = _key_for(stem, missing, kind)
            raise AdapterError(
                f"{_label(have, kind)} has no matching {_label(missing, kind)} (expected {expected!r})",
                where=file.where(roles[have]),
            )
        try:
            module = _read_module(spec, file, stem, roles, kinds[stem])
        except InvalidParameterError as error:  # a user pattern of the config (rank_pattern, ...) that cannot run
            raise AdapterError(error.message, where=f"{CONFIG_NAME}: {error.where}") from None
        except _Unsupported as why:
            for expert in why.experts:
                dtypes.update({expert.dtype, expert.b_dtype or expert.dtype})
            experts.extend(why.experts)
            names = tuple(roles[k] for k in ("a", "b", "magnitude") if k in roles)
            unsupported.append(UnsupportedModule(stem.removeprefix(PREFIX), str(why), names,
                                                 sum(file.tensors[n].nbytes for n in names), file.where(names[0]),
                                                 {} if why.experts else {n: file.tensor_data(n) for n in names}))
            continue
        dtypes.update({module.dtype, module.b_dtype or module.dtype})
        modules.append(module)
    if not modules and not unsupported:
        raise AdapterError("holds no LoRA tensors (no lora_A/lora_B keys)", where=file.label)
    dtype = (DTYPE_NAMES.get(dtypes.pop(), "mixed") if len(dtypes) == 1 else "mixed") if dtypes else "-"
    return Adapter(config=config, modules=tuple(modules), dtype=dtype, path=path, file_bytes=file.file_bytes,
                   name=name, other_tensors=other, metadata=file.metadata, spec=spec, unsupported=tuple(unsupported),
                   experts=tuple(experts))


class _Unsupported(Exception):
    """A module of a kind loralens does not read (or only inspects: ``experts``); the rest is still read."""

    def __init__(self, reason: str, experts: tuple[AdapterModule, ...] = ()) -> None:
        super().__init__(reason)
        self.experts = experts


def _label(role: str, kind: str) -> str:
    return ("lora_embedding_" if kind == "embedding" else "lora_") + role.upper()


def _key_for(stem: str, role: str, kind: str) -> str:
    return f"{stem}.{_label(role, kind)}" + ("" if kind == "embedding" else ".weight")


def _read_module(spec: LoraConfigSpec, file: SafetensorsFile, stem: str, roles: dict[str, str],
                 kind: str) -> AdapterModule:
    name = stem[len(PREFIX):] if stem.startswith(PREFIX) else stem
    a_key, b_key = roles["a"], roles["b"]
    a_info, b_info = file.tensors[a_key], file.tensors[b_key]
    for info in (a_info, b_info):
        if info.dtype not in FLOAT_DTYPES:
            raise AdapterError(f"dtype {info.dtype} is not a floating type", where=file.where(info.name))
    kernel: tuple[int, ...] = ()
    if len(a_info.shape) != 2 or len(b_info.shape) != 2:
        a_shape, b_shape = a_info.shape, b_info.shape
        if (kind == "linear" and 3 <= len(a_shape) <= 5 and len(b_shape) == len(a_shape)
                and all(n == 1 for n in b_shape[2:])):
            kernel = tuple(a_shape[2:])
            kind = f"conv{len(kernel)}d"
        else:
            raise _Unsupported(f"lora_A shape {list(a_shape)} with lora_B shape {list(b_shape)} is not a Linear, "
                               "Embedding or Conv1d/2d/3d LoRA layout loralens reads")
    r, alpha, scaling = spec.module_scaling(name)
    a_rows, in_features = a_info.shape[0], math.prod(a_info.shape[1:])
    out_features, b_cols = b_info.shape[:2]
    if a_rows != b_cols:
        raise AdapterError(
            f"shape {list(a_info.shape)} has {a_rows} rows but {_label('b', kind)} shape {list(b_info.shape)} "
            f"has {b_cols} columns; they must agree (the rank)",
            where=file.where(a_key),
        )
    from loralens.adapters.peft_experts import expert_modules, wrapped_parameters  # they build AdapterModules

    params = wrapped_parameters(spec, name) if len(a_info.shape) == 2 else ()
    if params:  # PEFT's ParamWrapper: r and alpha are those of the parameter's path (rank_pattern matches it)
        found = {spec.module_scaling(path) for path in params}
        if len(found) > 1:  # the true r divides the E·r rows of lora_A: when only one candidate's r does, it is it
            fits = [path for path in params if a_rows % spec.module_scaling(path)[0] == 0]
            if len({spec.module_scaling(path) for path in fits}) != 1:
                raise _Unsupported(f"a ParamWrapper of {' or '.join(params)}, whose rank_pattern / alpha_pattern "
                                   f"values differ; which parameter it wraps is not in the file ({a_rows} rows of "
                                   "lora_A fit more than one)")
            params = tuple(fits)
            found = {spec.module_scaling(params[0])}
        (r, alpha, scaling), = found
        if a_rows % r == 0 and a_rows // r > 1:
            experts = expert_modules(spec, file, stem, a_key, b_key, a_rows // r, r, alpha, scaling, params)
            raise _Unsupported(f"LoRA on a fused parameter (target_parameters: {', '.join(spec.target_parameters)}):"
                               f" {a_rows // r} experts of rank {r}, inspected, resized and merged per expert",
                               experts)
    if a_rows != r:
        raise AdapterError(
            f"shape {list(a_info.shape)} has rank {a_rows} but adapter_config.json gives r={r} for this module",
            where=file.where(a_key),
        )
    magnitude = None
    magnitude_dtype = None
    if "magnitude" in roles:
        m_info = file.tensors[roles["magnitude"]]
        if m_info.dtype not in FLOAT_DTYPES:
            raise AdapterError(f"dtype {m_info.dtype} is not a floating type", where=file.where(m_info.name))
        magnitude_dtype = m_info.dtype if m_info.dtype != a_info.dtype else None
        conv_shape = (1, out_features) + (1,) * len(kernel)
        if m_info.shape != (out_features,) and not (kernel and m_info.shape == conv_shape):
            raise AdapterError(
                f"shape {list(m_info.shape)} does not match the {out_features} outputs of lora_B",
                where=file.where(m_info.name),
            )
        magnitude = file.array(m_info.name, np.float32).reshape(-1)
    store = np.float64 if a_info.dtype == "F64" else np.float32
    return AdapterModule(
        name=name, a=file.array(a_key, store).reshape(a_rows, -1), b=file.array(b_key, store).reshape(-1, b_cols),
        r=r, alpha=alpha, kernel=kernel, magnitude_shape=None if magnitude is None else m_info.shape,
        scaling=scaling, in_features=in_features, out_features=out_features,
        fan_in_fan_out=spec.fan_in_fan_out and kind == "linear", magnitude=magnitude, kind=kind, key=stem,
        dtype=a_info.dtype, tensor_names=tuple(roles[k] for k in ("a", "b", "magnitude") if k in roles),
        b_dtype=b_info.dtype if b_info.dtype != a_info.dtype else None, magnitude_dtype=magnitude_dtype,
    )


def __getattr__(name: str) -> Any:
    """The writers live in peft_write.py; older imports from here still work."""
    if name in ("adapter_tensors", "adapter_to_bytes", "write_adapter", "config_bytes"):
        from loralens.adapters import peft_write

        return getattr(peft_write, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
