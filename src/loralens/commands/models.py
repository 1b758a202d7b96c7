"""``loralens params`` (and the other model commands): exact LoRA counts for real architectures.

One function per subcommand: ``_register_params`` adds the parser, ``run_params(args) -> str`` renders.
``add_model_args(parser)`` and ``model_from_args(args) -> (Architecture, LoraConfigSpec)`` are shared by every
command that takes a model and a LoRA setting (params, memory, methods).
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from loralens.core.architectures import PRESETS, Architecture, architecture_from_config, get_architecture
from loralens.core.peft_count import ALL_LINEAR, BIAS_MODES, LoraConfigSpec, LoraCount, count_lora, group_modules
from loralens.errors import InvalidParameterError

_REGEX_CHARS = set("*+?[](){}|^$\\")


# ---- shared model arguments ------------------------------------------------------------------------------------


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """--model/--config and the LoRA settings: --rank --alpha --target --rslora --dora --bias --layers."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="ID", help="a preset: Hugging Face id or short name ("
                        + ", ".join(a.short_name for a in PRESETS.values()) + ")")
    source.add_argument("--config", metavar="FILE", help="a Hugging Face config.json (llama, mistral, qwen2, gpt2, "
                        "opt, bert)")
    parser.add_argument("--rank", "-r", metavar="R", default="8", help="LoRA rank r (default 8, PEFT's)")
    parser.add_argument("--alpha", metavar="A", default=None,
                        help="lora_alpha (default 8, PEFT's default); scaling = alpha/r, alpha/sqrt(r) with --rslora")
    parser.add_argument("--target", metavar="NAMES|all-linear|REGEX", default=None,
                        help="comma-separated module names (q_proj,v_proj: a name matches a module whose name is it "
                        "or ends with '.'+it), 'all-linear' (all but the output head), or a regex matched against "
                        "the full module name (recognised by a regex character such as * + ? [ ( |); default: "
                        "PEFT's default targets for the model type")
    parser.add_argument("--rslora", action="store_true", help="rank-stabilised scaling alpha/sqrt(r)")
    parser.add_argument("--dora", action="store_true", help="DoRA: adds one trainable magnitude per output feature")
    parser.add_argument("--bias", choices=BIAS_MODES, default="none",
                        help="which base biases train: none, lora_only (of adapted modules), all")
    parser.add_argument("--layers", metavar="0,1,...", default=None,
                        help="layers_to_transform: only these block indices (e.g. 0,1,2 or 0-3,8); needs NAMES")


def parse_targets(text: str | None) -> tuple[str, ...] | str | None:
    """--target text -> PEFT's target_modules: None, 'all-linear', a regex str, or a tuple of names."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        raise InvalidParameterError("must not be empty", where="--target")
    if text.lower() == ALL_LINEAR or _REGEX_CHARS & set(text):
        return text
    names = tuple(part.strip() for part in text.split(","))
    if any(not name for name in names):
        raise InvalidParameterError(f"empty module name in {text!r}", where="--target")
    return names


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    """'0,1,5-7' -> (0, 1, 5, 6, 7)."""
    if text is None:
        return None
    layers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        found = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not found:
            raise InvalidParameterError(f"expected layer numbers like 0,1,2 or 0-3, got {text!r}", where="--layers")
        low, high = int(found.group(1)), int(found.group(2) or found.group(1))
        if high < low:
            raise InvalidParameterError(f"range {part!r} runs backwards", where="--layers")
        layers.extend(range(low, high + 1))
    return tuple(dict.fromkeys(layers))


def _number(text: str, where: str, kind: type) -> Any:
    try:
        return kind(text)
    except (TypeError, ValueError):
        noun = "a whole number" if kind is int else "a number"
        raise InvalidParameterError(f"must be {noun}, got {text!r}", where=where) from None


def _renamed(error: InvalidParameterError, names: dict[str, str]) -> InvalidParameterError:
    if error.where in names:
        return InvalidParameterError(error.message, where=names[error.where])
    return error


def model_from_args(args: argparse.Namespace) -> tuple[Architecture, LoraConfigSpec]:
    """The architecture and the LoRA config the command line asks for (errors name the option)."""
    arch = architecture_from_config(args.config) if args.config else get_architecture(args.model)
    rank = _number(args.rank, "--rank", int)
    alpha = 8.0 if args.alpha is None else _number(args.alpha, "--alpha", float)
    layers = parse_layers(args.layers)
    if layers is not None and max(layers) >= arch.num_layers:
        raise InvalidParameterError(
            f"{arch.short_name} has layers 0 to {arch.num_layers - 1}, got {max(layers)}", where="--layers")
    options = {"r": "--rank", "lora_alpha": "--alpha", "target_modules": "--target", "bias": "--bias",
               "layers_to_transform": "--layers"}
    try:
        spec = LoraConfigSpec(r=rank, lora_alpha=alpha, target_modules=parse_targets(args.target),
                              use_rslora=args.rslora, use_dora=args.dora, bias=args.bias, layers_to_transform=layers)
    except InvalidParameterError as error:
        raise _renamed(error, options) from None
    return arch, spec


def count_from_args(args: argparse.Namespace) -> tuple[Architecture, LoraConfigSpec, LoraCount]:
    arch, spec = model_from_args(args)
    try:
        return arch, spec, count_lora(arch, spec)
    except InvalidParameterError as error:
        raise _renamed(error, {"target_modules": "--target"}) from None


# ---- params ----------------------------------------------------------------------------------------------------


def _register_params(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "params",
        help="count LoRA's trainable parameters on a real model, exactly as PEFT does",
        description="Count LoRA's trainable parameters, all parameters and the adapter size for a model preset or "
        "a config.json, with PEFT's rules (targets, all-linear, DoRA, bias, layers_to_transform).",
    )
    add_model_args(parser)
    parser.add_argument("--all-modules", action="store_true",
                        help="list every adapted module instead of one row per kind of module")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_params)


def params_json(arch: Architecture, spec: LoraConfigSpec, result: LoraCount, per_module: bool = False) -> dict:
    """The JSON object of ``loralens params --json``."""
    if per_module:
        modules = [{"name": m.name, "in_features": m.in_features, "out_features": m.out_features, "count": 1,
                    "r": m.r, "alpha": m.alpha, "scaling": m.scaling, "params": m.params,
                    "layers": [] if m.layer is None else [m.layer]} for m in result.modules]
    else:
        modules = [{"name": g.name, "in_features": g.in_features, "out_features": g.out_features, "count": g.count,
                    "r": g.r, "alpha": g.alpha, "scaling": g.scaling, "params": g.params, "layers": list(g.layers)}
                   for g in group_modules(result.modules)]
    targets = result.target_modules
    return {
        "model": arch.hf_id,
        "model_type": arch.model_type,
        "lora_config": {
            "r": spec.r, "lora_alpha": spec.lora_alpha,
            "target_modules": list(targets) if isinstance(targets, tuple) else targets,
            "use_rslora": spec.use_rslora, "use_dora": spec.use_dora, "bias": spec.bias,
            "layers_to_transform": list(spec.layers_to_transform) if isinstance(spec.layers_to_transform, tuple)
            else spec.layers_to_transform,
        },
        "trainable": result.trainable,
        "total": result.total,
        "base_total": result.base_total,
        "percent": result.percent,
        "lora_params": result.lora_params,
        "dora_params": result.dora_params,
        "bias_params": result.bias_params,
        "adapter_bytes": dict(result.adapter_bytes),
        "num_modules": len(result.modules),
        "modules": modules,
    }


def format_bytes(n: int) -> str:
    """Binary units: 37748736 -> '36.0 MiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _scaling_text(value: float) -> str:
    return f"{value:.4g}"


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(headers), line(["-" * w for w in widths])] + [line(r).rstrip() for r in rows]


def render_params(arch: Architecture, spec: LoraConfigSpec, result: LoraCount, per_module: bool = False) -> str:
    targets = result.target_modules
    target_text = ", ".join(targets) if isinstance(targets, tuple) else targets
    extra = ["rsLoRA" if spec.use_rslora else "", "DoRA" if spec.use_dora else "",
             f"bias={spec.bias}" if spec.bias != "none" else "",
             f"layers={','.join(map(str, spec.layers_to_transform))}" if isinstance(spec.layers_to_transform, tuple)
             else ""]
    settings = ", ".join(x for x in [f"r={spec.r}", f"alpha={spec.lora_alpha:g}", *extra] if x)
    size = result.adapter_bytes
    lines = [
        f"{arch.display_name or arch.hf_id} ({arch.hf_id}) - LoRA {settings}",
        f"targets: {target_text}" + (" (PEFT's default for " + arch.model_type + ")" if spec.target_modules is None
                                     else ""),
        "",
        f"trainable params   {result.trainable:>17,}   {result.percent:.4f}% of all params",
        f"all params         {result.total:>17,}   (base model + LoRA A, B{' + DoRA' if spec.use_dora else ''})",
        f"base model         {result.base_total:>17,}",
        f"  LoRA A and B     {result.lora_params:>17,}",
    ]
    if spec.use_dora:
        lines.append(f"  DoRA magnitudes  {result.dora_params:>17,}")
    if spec.bias != "none":
        lines.append(f"  trainable biases {result.bias_params:>17,}")
    lines += [
        f"adapter size       {format_bytes(size['fp32'])} fp32, {format_bytes(size['bf16'])} bf16/fp16 "
        f"(tensor bytes)",
        "",
    ]
    right = {1, 2, 3, 4, 5, 6}
    if per_module:
        shown = [[m.name, "1", str(m.in_features), str(m.out_features), str(m.r), _scaling_text(m.scaling),
                  f"{m.params:,}"] for m in result.modules]
    else:
        shown = [[g.name, str(g.count), str(g.in_features), str(g.out_features), str(g.r),
                  _scaling_text(g.scaling), f"{g.params:,}"] for g in group_modules(result.modules)]
    lines += _table(["module", "count", "in", "out", "r", "scaling", "params"], shown, right)
    if not per_module:
        lines.append(f"({len(result.modules)} adapted modules; --all-modules lists each one, --json for all fields)")
    return "\n".join(lines)


def run_params(args: argparse.Namespace) -> str:
    arch, spec, result = count_from_args(args)
    if args.json:
        return json.dumps(params_json(arch, spec, result, per_module=args.all_modules))
    return render_params(arch, spec, result, per_module=args.all_modules)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's subcommands: params (memory and methods are added next to it)."""
    _register_params(subparsers)
