"""Convert a LoRA adapter between layouts: PEFT <-> kohya <-> diffusers (and from MLX-LM / bare PEFT weights).

Only well-defined mappings: the factors are copied unchanged (same bytes, same dtype; MLX's are transposed, which
is exact), each module keeps its r and alpha, so ΔW = alpha/r · B A is the same before and after. Names:

- PEFT ``base_model.model.<path>`` <-> kohya ``lora_te_`` + path with '.' -> '_' (transformers text models;
  ``--component`` picks another kohya prefix), back through ``formats.names`` (refused where the dots cannot be
  placed);
- kohya ``lora_unet_`` / ``lora_te_`` / ``lora_te1_`` / ``lora_te2_`` <-> diffusers ``unet.`` / ``text_encoder.`` /
  ``text_encoder_2.``;
- a file with several pipeline components becomes a PEFT adapter of one of them (``--component``); the others are
  dropped and listed, never silently.

A conv LoRA (4-D down (r, in, kh, kw), 1x1 up) is written as PEFT's Conv2d LoRA (lora_A the conv with the kernel,
lora_B 1x1) and back. What a target layout cannot hold (embeddings in kohya / diffusers, Conv1d/Conv3d LoRAs outside
PEFT, DoRA magnitudes, GPT-2's fan_in_fan_out, modules_to_save tensors) is refused by name, or dropped and listed
with ``drop_unsupported``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from loralens.adapters.formats.common import ForeignModule, synthesized_config
from loralens.adapters.formats.diffusers import COMPONENTS, component_of
from loralens.adapters.formats.names import COMPONENT_PREFIX, KOHYA_PREFIXES, from_kohya, split_prefix, to_kohya
from loralens.adapters.peft_format import PREFIX, Adapter, AdapterModule
from loralens.errors import AdapterError, InvalidParameterError

TARGETS = ("peft", "kohya", "diffusers")


@dataclass(frozen=True)
class ConvertReport:
    source_format: str
    target_format: str
    mapped: tuple[tuple[str, str], ...]  # (module in the input, module in the output)
    dropped: tuple[tuple[str, str], ...]  # (module or tensor, why)
    tensors_written: int
    renamed: int  # modules whose name changed

    def to_json(self) -> dict[str, Any]:
        return {"from": self.source_format, "to": self.target_format, "tensors_written": self.tensors_written,
                "renamed": self.renamed, "mapped": [list(m) for m in self.mapped],
                "dropped": [{"name": n, "reason": r} for n, r in self.dropped]}


@dataclass(frozen=True, eq=False)
class Converted:
    adapter: Adapter
    report: ConvertReport
    notes: tuple[str, ...] = field(default_factory=tuple)


def canonical(module: AdapterModule, fmt: str) -> tuple[str | None, str]:
    """(pipeline component or None, module path inside it) of a module of an adapter in layout ``fmt``."""
    if fmt == "kohya":
        prefix, rest = split_prefix(module.name)
        return KOHYA_PREFIXES[prefix], from_kohya(rest, where=module.name)
    if fmt in ("diffusers", "diffusers-legacy"):
        component = component_of(module.name)
        if component is None:  # a legacy attention-processor file: the UNet's own paths
            return "unet", module.name
        return component, module.name[len(component) + 1:]
    return None, module.name


#: kohya module paths in a model's original naming (SDXL's SGM UNet, Flux), not diffusers': diffusers' loaders remap
#: them with model-specific code (block numbers, qkv splits) that loralens does not reproduce
ORIGINAL_BLOCKS = ("input_blocks.", "middle_block.", "output_blocks.", "double_blocks.", "single_blocks.")


def _why_not(module: AdapterModule, fmt: str, to: str, path: str = "") -> str | None:
    if to == "diffusers" and path.startswith(ORIGINAL_BLOCKS):
        return ("uses the original model's block names (SDXL SGM / Flux), not diffusers'; diffusers remaps them with "
                "model-specific code loralens does not reproduce (load the kohya file in diffusers directly)")
    if module.magnitude is not None:
        return "DoRA magnitude vectors have no place in the " + to + " LoRA layout"
    if module.fan_in_fan_out and to != "peft":
        return "fan_in_fan_out (GPT-2 Conv1D, stored (in, out)) has no equivalent in the " + to + " layout"
    if module.kind == "embedding" and to != "peft":
        return "an embedding LoRA has no place in the " + to + " layout"
    if module.kernel and len(module.kernel) != 2 and to != "peft":
        return (f"a Conv{len(module.kernel)}d LoRA has no place in the {to} layout, whose conv factors are 4-D "
                "(Conv2d)")
    return None


def convert(adapter: Adapter, to: str, *, component: str | None = None, drop_unsupported: bool = False) -> Converted:
    """The adapter in layout ``to`` (in memory; write it with write_adapter), with what was mapped and dropped."""
    if to not in TARGETS:
        raise InvalidParameterError(f"must be one of {', '.join(TARGETS)}, got {to!r}", where="--to")
    valid = set(COMPONENTS) | set(COMPONENT_PREFIX)
    if component is not None and component not in valid:
        raise InvalidParameterError(f"must be one of {', '.join(sorted(valid))}, got {component!r}",
                                    where="--component")
    fmt = adapter.format
    if fmt in ("peft", "peft-weights") and adapter.spec.use_rslora and to != "peft":
        raise AdapterError("use_rslora (scaling alpha/√r) has no equivalent in the " + to + " layout, whose "
                           "loaders scale by alpha/r", where="adapter_config.json: use_rslora")
    placed: list[tuple[AdapterModule, str | None, str]] = []
    dropped: list[tuple[str, str]] = []
    comps = sorted({str(canonical(m, fmt)[0]) for m in adapter.modules})
    if to == "peft" and component is None and len(comps) > 1:
        raise AdapterError(f"holds modules of {len(comps)} models ({', '.join(comps)}); a PEFT adapter adapts "
                           "one: pass --component NAME (the others are dropped and listed)", where=adapter.name)
    for module in adapter.modules:
        comp, path = canonical(module, fmt)
        if to == "peft" and component is not None and comp != component:
            dropped.append((module.name, f"belongs to {comp}, not --component {component}"))
            continue
        why = _why_not(module, fmt, to, path)
        if why is not None:
            if not drop_unsupported:
                raise AdapterError(why + " (pass --drop-unsupported to leave it out, listed)", where=module.name)
            dropped.append((module.name, why))
            continue
        placed.append((module, comp, path))
    for key in adapter.other_tensors:
        if to != "peft" or fmt not in ("peft", "peft-weights"):
            if not drop_unsupported:
                raise AdapterError("is not a LoRA factor (e.g. modules_to_save); the " + to + " layout cannot hold "
                                   "it (pass --drop-unsupported to leave it out, listed)", where=key)
            dropped.append((key, "not a LoRA factor"))
    if not placed:
        raise AdapterError("no module is left to convert", where=adapter.name)
    rslora = fmt in ("peft", "peft-weights") and adapter.spec.use_rslora  # only to PEFT, checked above
    modules = [_renamed(m, comp, path, to, component, rslora) for m, comp, path in placed]
    mapped = tuple((m.name, new.name) for (m, _, _), new in zip(placed, modules, strict=True))
    out = _adapter(adapter, modules, to)
    per_module = 3 if to == "kohya" else 2
    tensors = per_module * len(modules) + (len(out.other_tensors) if to == "peft" else 0)
    report = ConvertReport(source_format=fmt, target_format=to, mapped=mapped, dropped=tuple(dropped),
                           tensors_written=tensors, renamed=sum(a != b for a, b in mapped))
    return Converted(adapter=out, report=report)


def _renamed(module: AdapterModule, comp: str | None, path: str, to: str, component: str | None,
             rslora: bool) -> ForeignModule:
    if to == "peft":
        name, key = path, PREFIX + path
    elif to == "kohya":
        prefix = COMPONENT_PREFIX.get(comp or component or "text_encoder", "lora_te_")
        name = key = to_kohya(prefix, path)
    else:
        target = comp or component
        if target is None:
            raise AdapterError("has no pipeline component; pass --component (e.g. transformer, unet, "
                               "text_encoder) to place it in a diffusers file", where=module.name)
        name = key = f"{target}.{path}"
    # alpha / r must give the scaling back; a few float64 ulps (MLX's scale·r cannot always be divided back
    # exactly) is far below what float32/16 factors resolve, anything more is refused
    if not rslora and abs(module.alpha / module.r - module.scaling) > 4 * math.ulp(module.scaling):
        raise AdapterError(f"scaling {module.scaling!r} is not alpha/r = {module.alpha!r}/{module.r}; the target "
                           "layout stores alpha and r", where=module.name)
    fields = {f: getattr(module, f) for f in AdapterModule.__dataclass_fields__}
    conv_shape = getattr(module, "conv_shape", ()) or (  # a PEFT Conv2d: A (r, in, kh, kw) flattened
        (module.in_features // math.prod(module.kernel), *module.kernel) if module.kernel else ())
    if to == "peft" and conv_shape:  # PEFT's Conv2d LoRA: A a conv with the kernel (r, in, kh, kw), B 1x1
        fields.update(kind=f"conv{len(conv_shape) - 1}d", kernel=tuple(conv_shape[1:]))
    elif to != "peft" and conv_shape:  # kohya / diffusers: the 4-D down and up tensors of conv_shape
        fields.update(kind="conv", kernel=())
    fields.update(name=name, key=key, tensor_names=(), conv_shape=conv_shape,
                  alpha_dtype=getattr(module, "alpha_dtype", None))
    return ForeignModule(**fields)


def _adapter(source: Adapter, modules: list[ForeignModule], to: str) -> Adapter:
    if to == "peft":
        base = {k: v for k, v in source.config.items() if not k.startswith("_loralens") and k != "mlx_config"} \
            if source.format in ("peft", "peft-weights") else {}
        config = synthesized_config(modules, use_rslora=bool(base.get("use_rslora", False)))
        config["target_modules"] = sorted(m.name for m in modules)
        for key in ("base_model_name_or_path", "task_type", "bias", "fan_in_fan_out", "peft_version",
                    "modules_to_save", "init_lora_weights"):
            if key in base:
                config[key] = base[key]
        config.setdefault("base_model_name_or_path", None)
        config.setdefault("task_type", None)
        other = dict(source.other_tensors) if source.format in ("peft", "peft-weights") else {}
        metadata = {"format": "pt"}
    else:
        config = synthesized_config(modules)
        other = {}
        metadata = dict(source.metadata) if source.format == to else {}
    return replace(source, config=config, modules=tuple(modules), format=to, other_tensors=other,
                   metadata=metadata, spec=None, file_bytes=0)  # type: ignore[arg-type]
