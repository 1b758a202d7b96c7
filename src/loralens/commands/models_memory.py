"""``loralens memory`` and ``loralens methods``: training memory per GPU and the other PEFT methods, for the
model and LoRA options of ``commands/models.py`` (``add_model_args``, ``model_from_args``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from loralens.commands.models import _number, _renamed, add_model_args, model_from_args
from loralens.core import defaults as D
from loralens.core.architectures import Architecture
from loralens.core.units import text_table
from loralens.errors import InvalidParameterError

# ---- memory and methods (training memory per GPU; other PEFT methods side by side) ----------------------------

GPU_SIZES_GIB = (24, 40, 80)


def _count_option(args: argparse.Namespace, attr: str, option: str, low: int, high: int) -> int:
    from loralens.core.validation import check_int

    value = getattr(args, attr)
    return check_int(option, _number(value, option, int), low, high)


def register_memory(subparsers: argparse._SubParsersAction) -> None:
    from loralens.core import memory

    parser = subparsers.add_parser(
        "memory",
        help="estimate training memory per GPU (weights, gradients, optimizer, activations, overhead)",
        description="Estimate the memory one GPU needs to train a model with full fine-tuning, LoRA or QLoRA. "
        "Formulas and sources: docs/models-memory.md in the loralens source repository (not installed by pip).",
    )
    add_model_args(parser)
    parser.add_argument("--method", choices=memory.METHODS, default="lora", help="what trains (default lora)")
    parser.add_argument("--dtype", choices=memory.DTYPES, default="bf16",
                        help="training precision: fp32, or bf16/fp16 mixed precision (default bf16)")
    parser.add_argument("--base", choices=memory.BASES, default="auto",
                        help="storage of the frozen base for lora: auto (= dtype; nf4 for qlora), int8, nf4, ...")
    parser.add_argument("--optimizer", choices=memory.OPTIMIZERS, default="adamw",
                        help="adamw (2 fp32 states), adamw8bit (2 one-byte states), sgd (momentum)")
    parser.add_argument("--batch-size", default=str(D.BATCH_SIZE), metavar="B",
                        help=f"micro-batch per GPU (default {D.BATCH_SIZE}, as on the Models page)")
    parser.add_argument("--seq-len", default=str(D.SEQ_LEN), metavar="S", help=f"tokens per sequence (default {D.SEQ_LEN})")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction,
                        default=D.GRADIENT_CHECKPOINTING,
                        help="recompute activations per layer (default on, as on the Models page)")
    parser.add_argument("--attention", choices=memory.ATTENTIONS, default="sdpa",
                        help="sdpa (memory-efficient/flash: no s^2 terms, default) or eager")
    parser.add_argument("--gpus", default="1", metavar="N", help="data-parallel GPUs (default 1)")
    parser.add_argument("--sharding", choices=memory.SHARDINGS, default="none",
                        help="none, zero1 (optimizer), zero2 (+gradients), zero3 or fsdp (+weights)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (bytes)")
    parser.set_defaults(handler=run_memory)


def memory_from_args(args: argparse.Namespace):  # noqa: ANN201
    """The MemoryEstimate the command line asks for (errors name the option)."""
    from loralens.core.memory import estimate_memory

    arch, spec = model_from_args(args)
    batch = _count_option(args, "batch_size", "--batch-size", 1, 1_000_000)
    seq = _count_option(args, "seq_len", "--seq-len", 1, 10_000_000)
    gpus = _count_option(args, "gpus", "--gpus", 1, 65_536)
    options = {"target_modules": "--target", "sharding": "--sharding", "base": "--base", "method": "--method"}
    try:
        return arch, estimate_memory(
            arch, spec, method=args.method, dtype=args.dtype, base=args.base, optimizer=args.optimizer,
            batch_size=batch, seq_len=seq, gradient_checkpointing=args.gradient_checkpointing, gpus=gpus,
            sharding=args.sharding, attention=args.attention)
    except InvalidParameterError as error:
        raise _renamed(error, options) from None


def memory_json(arch: Architecture, estimate: Any) -> dict:
    """The JSON object of ``loralens memory --json`` (every size in bytes)."""
    data = {"model": arch.hf_id, "model_type": arch.model_type, **estimate.as_dict()}
    data["fits_gib"] = {str(g): estimate.per_device.total <= g * 2**30 for g in GPU_SIZES_GIB}
    return data


def render_memory(arch: Architecture, estimate: Any) -> str:
    e, d = estimate, estimate.per_device
    ckpt = "gradient checkpointing" if e.gradient_checkpointing else "no checkpointing"
    shard = f", {e.gpus} GPUs {e.sharding}" if e.gpus > 1 else ""
    lines = [
        f"{arch.display_name or arch.hf_id} ({arch.hf_id}) - {e.method}, {e.dtype}, base {e.base}, {e.optimizer}",
        f"micro-batch {e.batch_size} x {e.seq_len} tokens, {ckpt}, {e.attention} attention{shard}",
        f"trainable params {e.trainable_params:,} of {e.total_params:,}",
        "",
    ]
    rows = [[name, f"{value / 2**30:,.2f}", f"{value / 1e9:,.2f}", f"{100 * value / d.total:.1f}%"]
            for name, value in d.as_dict().items()]
    lines += text_table(["per device", "GiB", "GB", "share"], rows, {1, 2, 3}).split("\n")
    fits = ", ".join(f"{g} GB {'yes' if d.total <= g * 2**30 else 'no'}" for g in GPU_SIZES_GIB)
    lines += ["", f"fits on one card: {fits} (cards' sizes are GiB)",
              "estimate: formulas and sources in docs/models-memory.md of the loralens source repository"]
    return "\n".join(lines)


def run_memory(args: argparse.Namespace) -> str:
    arch, estimate = memory_from_args(args)
    if args.json:
        return json.dumps(memory_json(arch, estimate))
    return render_memory(arch, estimate)


def register_methods(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "methods",
        help="compare trainable parameters of LoRA, DoRA, VeRA, AdaLoRA, IA3, prompt/prefix tuning, adapters...",
        description="Trainable parameters of full fine-tuning and parameter-efficient methods on the same model; "
        "the LoRA-family methods use the LoRA settings (--rank, --target, ...).",
    )
    add_model_args(parser)
    parser.add_argument("--virtual-tokens", default="20", metavar="N", help="prompt/prefix tuning tokens (20)")
    parser.add_argument("--adapter-size", default="64", metavar="M", help="Houlsby adapter bottleneck (64)")
    parser.add_argument("--vera-rank", default=None, metavar="R", help="VeRA's r (default: --rank)")
    parser.add_argument("--adalora-init-rank", default=None, metavar="R", help="AdaLoRA's init_r (default: --rank)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_methods)


def run_methods(args: argparse.Namespace) -> str:
    from loralens.core.methods import compare_methods

    arch, spec = model_from_args(args)
    tokens = _count_option(args, "virtual_tokens", "--virtual-tokens", 1, 100_000)
    size = _count_option(args, "adapter_size", "--adapter-size", 1, 1_000_000)
    vera = None if args.vera_rank is None else _count_option(args, "vera_rank", "--vera-rank", 1, 1_000_000)
    ada = None if args.adalora_init_rank is None else _count_option(
        args, "adalora_init_rank", "--adalora-init-rank", 1, 1_000_000)
    try:
        rows = compare_methods(arch, spec, num_virtual_tokens=tokens, adapter_size=size, vera_r=vera,
                               adalora_init_r=ada)
    except InvalidParameterError as error:
        raise _renamed(error, {"target_modules": "--target"}) from None
    if args.json:
        return json.dumps({"model": arch.hf_id, "model_type": arch.model_type, "base_total": arch.total_params,
                           "methods": [m.as_dict() for m in rows]})
    lines = [f"{arch.display_name or arch.hf_id} ({arch.hf_id}): {arch.total_params:,} parameters", ""]
    lines += text_table(["method", "trainable", "% of all params", "formula"],
                    [[m.name, f"{m.trainable:,}", f"{m.percent:.4f}%", m.formula] for m in rows], {1, 2}).split("\n")
    return "\n".join(lines)


__all__ = ["memory_from_args", "memory_json", "register_memory", "register_methods", "render_memory", "run_memory", "run_methods"]
