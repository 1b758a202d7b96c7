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

from loralens.core import defaults as D
from loralens.core.architectures import PRESETS, Architecture, architecture_from_config, get_architecture
from loralens.core.families import SUPPORTED_MODEL_TYPES
from loralens.core.heads import PEFT_TASK_TYPE, TASKS
from loralens.core.peft_config import ALL_LINEAR, BIAS_MODES, LoraConfigSpec
from loralens.core.peft_count import LoraCount, count_lora, group_modules
from loralens.core.units import binary_bytes, text_table
from loralens.errors import InvalidParameterError

_REGEX_CHARS = set("*+?[](){}|^$\\")
PEFT_TASK_TYPES = ("CAUSAL_LM", "SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS", "SEQ_2_SEQ_LM", "FEATURE_EXTRACTION")


# ---- shared model arguments ------------------------------------------------------------------------------------


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """--model/--config and the LoRA settings: --rank --alpha --target --rslora --dora --bias --layers."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="ID", help="a preset: Hugging Face id or short name ("
                        + ", ".join(a.short_name for a in PRESETS.values()) + ")")
    source.add_argument("--config", metavar="FILE", help="a Hugging Face config.json ("
                        + ", ".join(SUPPORTED_MODEL_TYPES) + ")")
    parser.add_argument("--rank", "-r", metavar="R", default=str(D.R), help=f"LoRA rank r (default {D.R}, PEFT's)")
    parser.add_argument("--alpha", metavar="A", default=None,
                        help=f"lora_alpha (default {D.LORA_ALPHA:g}, PEFT's default); scaling = alpha/r, "
                        "alpha/sqrt(r) with --rslora")
    parser.add_argument("--target", metavar="NAMES|all-linear|REGEX", default=None,
                        help="comma-separated module names (q_proj,v_proj: a name matches a module whose name is it "
                        "or ends with '.'+it), 'all-linear' (all but the output head), or a regex matched against "
                        "the full module name (recognised by a regex character such as * + ? [ ( |); default: "
                        "PEFT's default targets for the model type")
    parser.add_argument("--rslora", action="store_true", help="rank-stabilised scaling alpha/sqrt(r)")
    parser.add_argument("--dora", action="store_true", help="DoRA: adds one trainable magnitude per output feature")
    parser.add_argument("--bias", choices=BIAS_MODES, default="none",
                        help="which base biases train: none, lora_only (of adapted modules), all")
    parser.add_argument("--layers", "--layers-to-transform", dest="layers", metavar="0,1,...", default=None,
                        help="layers_to_transform: only these block indices (e.g. 0,1,2 or 0-3,8); needs NAMES")
    parser.add_argument("--layers-pattern", metavar="NAMES", default=None,
                        help="layers_pattern: the name(s) of the block list whose index --layers reads (layers,h)")
    parser.add_argument("--exclude-modules", metavar="NAMES|REGEX", default=None,
                        help="exclude_modules: names (a module equal to one or ending with '.'+it) or a regex")
    parser.add_argument("--modules-to-save", metavar="NAMES", default=None,
                        help="modules_to_save: modules trained and saved whole (a module whose name ends with one)")
    parser.add_argument("--target-parameters", metavar="NAMES", default=None,
                        help="target_parameters: LoRA on bare parameters, e.g. mlp.experts.gate_up_proj (fused MoE "
                        "experts) or self_attn.o_proj.weight")
    parser.add_argument("--trainable-token-indices", metavar="JSON", default=None,
                        help="trainable_token_indices: a JSON list of token ids, or {module: [ids]}")
    parser.add_argument("--rank-pattern", metavar="JSON", default=None,
                        help='rank_pattern: JSON {"regex": r}, the first key matching a module (re.match on '
                        "'(.*\\.)?(key)$') gives its r")
    parser.add_argument("--alpha-pattern", metavar="JSON", default=None, help="alpha_pattern: JSON {\"regex\": alpha}")
    parser.add_argument("--lora-bias", action="store_true", help="lora_bias: a trainable bias on each lora_B")
    parser.add_argument("--use-dora", dest="dora", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--use-rslora", dest="rslora", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="the model head (default: the config's architectures, else the family's first): "
                        + ", ".join(TASKS))
    parser.add_argument("--task-type", choices=PEFT_TASK_TYPES, default=None,
                        help="PEFT's task_type (default: the head's: SEQ_CLS and TOKEN_CLS save the classifier/score, "
                        "QUESTION_ANS qa_outputs)")


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


def _json_option(args: argparse.Namespace, attr: str, option: str) -> Any:
    text = getattr(args, attr, None)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidParameterError(f"not valid JSON ({error.msg})", where=option) from None


def _names_option(args: argparse.Namespace, attr: str, option: str, allow_regex: bool) -> Any:
    text = getattr(args, attr, None)
    if text is None:
        return None
    try:
        found = parse_targets(text)
    except InvalidParameterError as error:
        raise InvalidParameterError(error.message, where=option) from None
    if isinstance(found, str) and not allow_regex:
        raise InvalidParameterError(f"expected comma-separated names, got {text!r}", where=option)
    return found


def model_from_args(args: argparse.Namespace) -> tuple[Architecture, LoraConfigSpec]:
    """The architecture and the LoRA config the command line asks for (errors name the option)."""
    task = getattr(args, "task", None)
    if args.config:
        arch = architecture_from_config(args.config, task=task)
    else:
        arch = get_architecture(args.model)
        if task is not None and task != arch.task:
            raise InvalidParameterError(f"the preset {arch.short_name} is a {arch.task} model; pass its config.json "
                                        "with --config to count another head", where="--task")
    rank = _number(args.rank, "--rank", int)
    alpha = D.LORA_ALPHA if args.alpha is None else _number(args.alpha, "--alpha", float)
    layers = parse_layers(args.layers)
    if layers is not None and max(layers) >= arch.num_layers:
        raise InvalidParameterError(
            f"{arch.short_name} has layers 0 to {arch.num_layers - 1}, got {max(layers)}", where="--layers")
    extra = {
        "exclude_modules": _names_option(args, "exclude_modules", "--exclude-modules", True),
        "modules_to_save": _names_option(args, "modules_to_save", "--modules-to-save", False),
        "target_parameters": _names_option(args, "target_parameters", "--target-parameters", False),
        "layers_pattern": _names_option(args, "layers_pattern", "--layers-pattern", False),
        "trainable_token_indices": _json_option(args, "trainable_token_indices", "--trainable-token-indices"),
        "rank_pattern": _json_option(args, "rank_pattern", "--rank-pattern") or {},
        "alpha_pattern": _json_option(args, "alpha_pattern", "--alpha-pattern") or {},
        "lora_bias": bool(getattr(args, "lora_bias", False)),
    }
    task_type = getattr(args, "task_type", None) or PEFT_TASK_TYPE.get(arch.task)
    try:
        spec = LoraConfigSpec(r=rank, lora_alpha=alpha, target_modules=parse_targets(args.target),
                              use_rslora=args.rslora, use_dora=args.dora, bias=args.bias, layers_to_transform=layers,
                              task_type=task_type, **extra)
    except InvalidParameterError as error:
        raise _renamed(error, {**OPTIONS, **{f: "--" + f.replace("_", "-") for f in extra}}) from None
    return arch, spec


OPTIONS = {"r": "--rank", "lora_alpha": "--alpha", "target_modules": "--target", "bias": "--bias",
           "layers_to_transform": "--layers", "use_dora": "--dora", "use_rslora": "--rslora",
           "task_type": "--task-type"}
_SPEC_OPTIONS = {**OPTIONS, **{f: "--" + f.replace("_", "-") for f in (
    "exclude_modules", "modules_to_save", "target_parameters", "layers_pattern", "trainable_token_indices",
    "rank_pattern", "alpha_pattern", "lora_bias")}}


def count_from_args(args: argparse.Namespace) -> tuple[Architecture, LoraConfigSpec, LoraCount]:
    arch, spec = model_from_args(args)
    try:
        return arch, spec, count_lora(arch, spec)
    except InvalidParameterError as error:
        raise _renamed(error, _SPEC_OPTIONS) from None


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
            **{name: _plain(getattr(spec, name)) for name in (
                "layers_pattern", "exclude_modules", "modules_to_save", "target_parameters",
                "trainable_token_indices", "rank_pattern", "alpha_pattern", "lora_bias", "task_type")},
        },
        "task": arch.task,
        "trainable": result.trainable,
        "total": result.total,
        "base_total": result.base_total,
        "percent": result.percent,
        "lora_params": result.lora_params,
        "dora_params": result.dora_params,
        "bias_params": result.bias_params,
        "adapter_bytes": dict(result.adapter_bytes),
        "tensor_bytes": dict(result.tensor_bytes),
        "modules_to_save": [{"name": n, "params": p} for n, p in result.saved_modules],
        "token_params": result.token_params,
        "num_modules": result.num_modules,
        "modules": modules,
    }



def _plain(value: Any) -> Any:
    """A spec value as JSON: tuples as lists, mappings as dicts."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _scaling_text(value: float) -> str:
    return f"{value:.4g}"



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
        f"{arch.display_name or arch.hf_id} ({arch.hf_id}, {arch.model_type} {arch.task}) - LoRA {settings}",
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
    for name, params in result.saved_modules:
        lines.append(f"  saved whole      {params:>17,}   {name} (modules_to_save"
                     + (f", task_type {spec.task_type})" if spec.task_type else ")"))
    if result.token_params:
        lines.append(f"  token deltas     {result.token_params:>17,}")
    lines += [
        f"adapter file       {binary_bytes(size['fp32'])} fp32, {binary_bytes(size['bf16'])} bf16/fp16 "
        f"(adapter_model.safetensors as PEFT saves it)",
        "",
    ]
    right = {1, 2, 3, 4, 5, 6}
    if per_module:
        shown = [[m.name, "1", str(m.in_features), str(m.out_features), str(m.r), _scaling_text(m.scaling),
                  f"{m.params:,}"] for m in result.modules]
    else:
        shown = [[g.name, str(g.count), str(g.in_features), str(g.out_features), str(g.r),
                  _scaling_text(g.scaling), f"{g.params:,}"] for g in group_modules(result.modules)]
    lines += text_table(["module", "count", "in", "out", "r", "scaling", "params"], shown, right).split("\n")
    if not per_module:
        lines.append(f"({result.num_modules} adapted modules; --all-modules lists each one, --json for all fields)")
    return "\n".join(lines)


def run_params(args: argparse.Namespace) -> str:
    arch, spec, result = count_from_args(args)
    if args.json:
        return json.dumps(params_json(arch, spec, result, per_module=args.all_modules))
    return render_params(arch, spec, result, per_module=args.all_modules)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's subcommands: params (memory and methods are added next to it)."""
    from loralens.commands.models_memory import register_memory, register_methods

    _register_params(subparsers)
    register_memory(subparsers)
    register_methods(subparsers)
