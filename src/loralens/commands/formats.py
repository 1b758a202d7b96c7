"""``loralens convert``, ``combine`` and ``extract``: LoRA adapters across layouts, merged together, or made from
a fine-tuned model."""

from __future__ import annotations

import argparse
import json
from typing import Any

from loralens.adapters import write_adapter
from loralens.adapters.formats import describe, load_any
from loralens.adapters.formats.output import check_output_path
from loralens.core.units import text_table


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("convert", help="convert a LoRA between PEFT, kohya and diffusers layouts",
                              description="Copy the LoRA factors into another layout, alpha and r unchanged "
                              "(ΔW identical); lists every module mapped and anything dropped.")
    p.add_argument("path", metavar="IN", help="adapter: PEFT folder, kohya/diffusers .safetensors, MLX-LM folder")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder, or a .safetensors file for --to kohya / diffusers")
    p.add_argument("--to", required=True, choices=["peft", "kohya", "diffusers"], help="target layout")
    p.add_argument("--component", metavar="NAME", help="pipeline component: which one to keep for --to peft "
                   "(unet, text_encoder, ...), or where to put a PEFT/MLX adapter for --to kohya / diffusers")
    p.add_argument("--drop-unsupported", action="store_true",
                   help="leave out (and list) what the target layout cannot hold instead of refusing")
    p.add_argument("--alpha", type=float, metavar="A", help="lora_alpha of PEFT weights without adapter_config.json")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_convert)

    p = subparsers.add_parser("combine", help="combine PEFT adapters as PEFT's add_weighted_adapter does",
                              description="Weighted combination of LoRA adapters (linear, cat or svd, PEFT's "
                              "semantics) computed from the factors; writes a PEFT adapter.")
    p.add_argument("paths", nargs="+", metavar="ADAPTER", help="PEFT adapter folders (two or more)")
    p.add_argument("--weights", required=True, type=float, nargs="+", metavar="W", help="one weight per adapter")
    p.add_argument("--method", choices=["linear", "cat", "svd", "ties", "dare_linear", "dare_ties"], default="svd",
                   help="combination (default svd); dare_* are refused (PEFT draws their masks at random)")
    p.add_argument("--density", type=float, metavar="D", help="ties: the share of each factor's values kept")
    p.add_argument("--majority-sign-method", choices=["total", "frequency"], default="total",
                   help="ties: how the sign of each entry is elected (default total)")
    p.add_argument("--rank", type=int, metavar="N", help="rank of the svd result (default: the largest r)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="new adapter folder (must not exist)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_combine)

    p = subparsers.add_parser("extract", help="extract a LoRA from a fine-tuned model (best rank-N of tuned - base)",
                              description="Per 2-D weight, the best rank-N (or energy-F) approximation of "
                              "tuned - base, one weight at a time; writes a PEFT adapter and reports the error.")
    p.add_argument("--base", required=True, metavar="BASE", help="base model folder or .safetensors")
    p.add_argument("--tuned", required=True, metavar="TUNED", help="fine-tuned model folder or .safetensors")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--rank", type=int, metavar="N", help="rank of every module")
    how.add_argument("--energy", type=float, metavar="F", help="per module, the smallest rank keeping this "
                     "fraction of ‖tuned - base‖²_F")
    p.add_argument("--exact", action="store_true", help="full SVD for every module (no randomized SVD)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="new adapter folder (must not exist)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_extract)


def run_convert(args: argparse.Namespace) -> str:
    from loralens.adapters.convert import convert

    adapter = load_any(args.path, alpha=args.alpha)
    inputs = [adapter.path] if adapter.path else []
    check_output_path(args.output, args.to, force=args.force, inputs=inputs)
    converted = convert(adapter, args.to, component=args.component, drop_unsupported=args.drop_unsupported)
    write_adapter(converted.adapter, args.output, force=args.force)
    report = converted.report
    if args.json:
        return _dumps({"out": args.output, "source_note": describe(adapter), **report.to_json()})
    lines = [f"wrote {args.output} ({report.source_format} -> {report.target_format}): {len(report.mapped)} modules, "
             f"{report.tensors_written} tensors, {report.renamed} modules renamed, {len(report.dropped)} dropped",
             f"read as       {describe(adapter)}", ""]
    rows = [[a, b] for a, b in report.mapped]
    lines.append(text_table(["module in", "module out"], rows))
    if report.dropped:
        lines += ["", "dropped:"] + [f"  {name}: {why}" for name, why in report.dropped]
    return "\n".join(lines)


def run_combine(args: argparse.Namespace) -> str:
    from loralens.adapters.combine import combine_adapters

    adapters = [load_any(path) for path in args.paths]
    inputs = [a.path for a in adapters if a.path]
    check_output_path(args.output, "peft", force=args.force, inputs=inputs)
    combined = combine_adapters(adapters, args.weights, method=args.method, rank=args.rank, density=args.density,
                                majority_sign_method=args.majority_sign_method)
    write_adapter(combined.adapter, args.output, force=args.force)
    if args.json:
        return _dumps({"out": args.output, **combined.to_json()})
    lines = [f"wrote {args.output}: {combined.method} of {len(adapters)} adapters, r = lora_alpha = {combined.rank}, "
             f"{len(combined.modules)} modules", ""]
    rows = [[m.name, str(m.adapters), str(m.r), "-" if m.energy_kept is None else f"{m.energy_kept:.6f}"]
            for m in combined.modules]
    lines.append(text_table(["module", "adapters", "r", "energy kept"], rows, right={1, 2, 3}))
    return "\n".join(lines)


def run_extract(args: argparse.Namespace) -> str:
    from pathlib import Path

    from loralens.adapters.extract import extract_lora

    check_output_path(args.output, "peft", force=args.force, inputs=[Path(args.base), Path(args.tuned)])
    result = extract_lora(args.base, args.tuned, rank=args.rank, energy=args.energy, exact=args.exact)
    write_adapter(result.adapter, args.output, force=args.force)
    if args.json:
        return _dumps({"out": args.output, **result.to_json()})
    lines = [f"wrote {args.output}: {len(result.modules)} modules extracted, {result.unchanged} tensors unchanged, "
             f"{len(result.skipped)} changed tensors not extracted", ""]
    rows = [[m.name, f"{m.shape[0]}x{m.shape[1]}", str(m.r), m.method, f"{m.energy_kept:.6f}", f"{m.error:.4g}",
             "-" if m.optimal_error is None else f"{m.optimal_error:.4g}"] for m in result.modules]
    lines.append(text_table(["module", "out x in", "r", "svd", "energy kept", "rel. error", "optimal"], rows,
                            right={2, 4, 5, 6}))
    if result.skipped:
        lines += ["", "not extracted:"] + [f"  {name}: {why}" for name, why in result.skipped]
    return "\n".join(lines)


def register_export_gguf(kinds: argparse._SubParsersAction) -> None:
    """``loralens export gguf`` (called by commands/export.py, which owns ``export``)."""
    p = kinds.add_parser("gguf", help="a PEFT LoRA adapter as a llama.cpp LoRA GGUF (needs loralens[gguf])",
                         description="Write a PEFT LoRA adapter as llama.cpp's LoRA GGUF, tensor names mapped as "
                         "llama.cpp's convert_lora_to_gguf.py maps them.")
    p.add_argument("path", metavar="ADAPTER", help="PEFT adapter folder")
    p.add_argument("--base-config", required=True, metavar="CONFIG", help="the base model's config.json")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the .gguf file to write")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_export_gguf)


def run_export_gguf(args: argparse.Namespace) -> str:
    from loralens.adapters.gguf_export import export_gguf

    written = export_gguf(load_any(args.path), args.base_config, args.output, force=args.force)
    if args.json:
        return _dumps(written)
    return (f"wrote {written['out']}: llama.cpp LoRA for {written['architecture']}, alpha {written['alpha']:g}, "
            f"{len(written['tensors'])} tensors")
