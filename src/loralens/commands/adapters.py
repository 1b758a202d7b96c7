"""``loralens inspect``, ``loralens resize`` and ``loralens merge``: PEFT LoRA adapters from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from loralens.adapters import inspect_adapter, load_adapter, merge_adapter, resize_adapter, write_adapter
from loralens.adapters.formats import load_any
from loralens.adapters.formats.output import check_output_path
from loralens.adapters.inspect import AdapterReport
from loralens.adapters.resize import ResizedAdapter
from loralens.core.lowrank import rank_for_energy
from loralens.core.units import decimal_bytes, text_table


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's subcommands."""
    p = subparsers.add_parser("inspect", help="what is in a PEFT LoRA adapter: per-module spectra and a summary",
                              description="Read a PEFT LoRA adapter (folder, or its .safetensors with "
                              "adapter_config.json beside it) and show each module's ΔW spectrum.")
    p.add_argument("path", metavar="PATH", help="adapter folder or its adapter_model.safetensors")
    p.add_argument("--adapter", metavar="NAME", help="one of the named adapters (subfolders) in PATH")
    p.add_argument("--json", action="store_true", help="print one JSON object (summary + modules)")
    p.add_argument("--alpha", type=float, metavar="A", help="lora_alpha of PEFT weights that have no "
                   "adapter_config.json (default: PEFT's 8)")
    p.set_defaults(handler=run_inspect)

    p = subparsers.add_parser("resize", help="cut an adapter's rank (best rank-N approximation of each ΔW)",
                              description="Write a smaller PEFT adapter whose every ΔW is the best approximation "
                              "of the original at the new rank.")
    p.add_argument("path", metavar="PATH", help="adapter folder or its adapter_model.safetensors")
    p.add_argument("--adapter", metavar="NAME", help="one of the named adapters (subfolders) in PATH")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--rank", type=int, metavar="N", help="new rank of every module (at most its own r)")
    how.add_argument("--energy", type=float, metavar="F",
                     help="per module, the smallest rank that keeps this fraction of ‖ΔW‖²_F (e.g. 0.99)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="new adapter folder (must not exist)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--alpha", type=float, metavar="A", help="lora_alpha of PEFT weights that have no "
                   "adapter_config.json (default: PEFT's 8)")
    p.set_defaults(handler=run_resize)

    p = subparsers.add_parser("merge", help="merge an adapter into its base model's safetensors",
                              description="Write W' = W + scaling·B·A into a copy of the base model "
                              "(same keys, dtypes and shards), one shard at a time.")
    p.add_argument("path", metavar="PATH", help="adapter folder or its adapter_model.safetensors")
    p.add_argument("--adapter", metavar="NAME", help="one of the named adapters (subfolders) in PATH")
    p.add_argument("--base", required=True, metavar="BASE",
                   help="base model folder (model.safetensors or shards + model.safetensors.index.json)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="merged model folder (must not exist)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_merge)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False)



def _g(value: float, digits: int = 4) -> str:
    return "nan" if value != value else f"{value:.{digits}g}"



def format_report(report: AdapterReport, path: str) -> str:
    s = report.summary
    targets = s.target_modules if isinstance(s.target_modules, str) else ", ".join(sorted(s.target_modules or []))
    lines = [
        f"adapter       {path}",
        f"format        {s.format}: {s.format_note}",
        f"base model    {s.base_model or '-'}",
        f"PEFT version  {s.peft_version or '-'}",
        f"modules       {s.modules}    parameters {s.parameters:,}    file {decimal_bytes(s.bytes)}    dtype {s.dtype}",
        f"r {s.r}    lora_alpha {s.alpha:g}    rsLoRA {'yes' if s.use_rslora else 'no'}    "
        f"DoRA {'yes' if s.use_dora else 'no'}    ranks {', '.join(map(str, s.ranks))}",
        f"targets       {targets or '-'}",
        f"NaN/Inf       {', '.join(s.nonfinite) if s.nonfinite else 'none'}",
        "",
    ]
    rows = []
    for m in report.modules:
        r99 = "-" if m.nonfinite else str(rank_for_energy(m.singular_values, 0.99))
        rows.append([m.name, f"{m.out_features}x{m.in_features}", str(m.r), f"{m.alpha:g}", _g(m.scaling),
                     _g(m.delta_fro), _g(float(m.singular_values[0]) if m.r else 0.0), str(m.numerical_rank),
                     _g(m.effective_rank, 3), r99, "NaN/Inf" if m.nonfinite else ""])
    header = ["module", "out x in", "r", "alpha", "scaling", "|dW|_F", "sigma_1", "num.rank", "eff.rank",
              "rank@99%", ""]
    lines.append(text_table(header, rows, right={2, 3, 4, 5, 6, 7, 8, 9}))
    if report.other_tensors:
        share = sum(t.share for t in report.other_tensors)
        lines += ["", f"not LoRA factors: {len(report.other_tensors)} tensors, {share:.1%} of the file"]
        lines.append(text_table(["tensor", "what", "dtype", "shape", "bytes", "share"],
                                [[t.name, t.what, t.dtype, "x".join(map(str, t.shape)) or "scalar",
                                  decimal_bytes(t.bytes), f"{t.share:.1%}"] for t in report.other_tensors],
                                right={4, 5}))
    for u in report.unsupported:
        lines += ["", f"{'fused experts' if u['inspected'] else 'not read'}: module {u['name']}: {u['reason']}"]
    return "\n".join(lines).rstrip()


def run_inspect(args: argparse.Namespace) -> str:
    report = inspect_adapter(load_any(args.path, alpha=args.alpha, adapter_name=args.adapter))
    if args.json:
        return _dumps(report.to_json())
    return format_report(report, args.path)


def format_resize(resized: ResizedAdapter, out: str) -> str:
    config = resized.config
    lines = [
        f"wrote {out} ({resized.adapter.format})",
        f"r {config['r']}    lora_alpha {config['lora_alpha']:g}    "
        f"rank_pattern {len(config.get('rank_pattern') or {})} modules    alpha_pattern {len(config.get('alpha_pattern') or {})} modules",
        f"parameters {resized.parameters_before:,} -> {resized.parameters_after:,}    "
        f"file {decimal_bytes(resized.adapter_before_bytes)} -> {decimal_bytes(resized.bytes_after)}",
        "",
    ]
    rows = [[m.name, f"{m.r_before} -> {m.r_after}", f"{m.alpha:g}", f"{m.energy_kept:.6f}", _g(m.error)]
            for m in resized.modules]
    lines.append(text_table(["module", "rank", "alpha", "energy kept", "rel. error"], rows, right={1, 2, 3, 4}))
    return "\n".join(lines)


def run_resize(args: argparse.Namespace) -> str:
    adapter = load_any(args.path, alpha=args.alpha, adapter_name=args.adapter)
    check_output_path(args.output, adapter.format, force=args.force, inputs=[adapter.path] if adapter.path else [])
    resized = resize_adapter(adapter, rank=args.rank, energy=args.energy)
    write_adapter(resized, args.output, force=args.force)
    if args.json:
        return _dumps({"out_dir": args.output, **resized.to_json()})
    return format_resize(resized, args.output)


def run_merge(args: argparse.Namespace) -> str:
    report = merge_adapter(load_adapter(args.path, args.adapter), args.base, args.output, force=args.force)
    if args.json:
        return _dumps(report.to_json())
    return (f"wrote {args.output}: {len(report.merged)} weights merged, {report.tensors} tensors in "
            f"{len(report.shards)} shard(s), {decimal_bytes(report.bytes_written)}"
            + (f"\nreplaced by the adapter's saved copies: {', '.join(report.replaced)}" if report.replaced else ""))
