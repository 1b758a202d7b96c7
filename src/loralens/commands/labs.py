"""``loralens lab NAME [options] [--json]``: run one of the labs and print a summary (or one JSON object).

The options of each lab are its function's parameters (``target_rank`` is ``--target-rank``), with the
function's defaults, so that the command, the library and the app always run the same experiment.
"""

from __future__ import annotations

import argparse
import inspect
import json
import textwrap
from collections.abc import Callable
from typing import Any

from loralens.core.labs import LABS, READINGS
from loralens.core.labs.common import MAX_BATCH, MAX_DIM, MAX_STEPS
from loralens.core.labs.init import DESCRIPTIONS
from loralens.core.units import label_table
from loralens.errors import InvalidParameterError

DESCRIPTION = {
    "fit": "Train a rank-r LoRA towards a target update of rank s; compare with the Eckart–Young bound.",
    "init": "Compare five initialisations (PEFT default, A=0, both random, both zero, PiSSA).",
    "merge": "Merged vs unmerged outputs, swapping two adapters, FLOPs and training-time cost.",
    "subspace": "The LoRA paper's §7: subspace similarity of rank-8 and rank-64 adapters; amplification.",
}
HELP = {
    "d": f"output features of the layer (1..{MAX_DIM})",
    "k": f"input features of the layer (1..{MAX_DIM})",
    "rank": "LoRA rank r (at most min(d, k))",
    "rank_large": "rank of the second, larger adapter",
    "alpha": "lora_alpha; scaling = alpha / r",
    "steps": f"Adam steps (1..{MAX_STEPS})",
    "seed": "random seed (0..2**32-1): same seed, same numbers",
    "target_rank": "intrinsic rank s of the target update",
    "noise": "Frobenius norm of added Gaussian noise, relative to the target's (makes it full rank)",
    "lr": "Adam learning rate (cosine-decayed to lr/100)",
    "batch": f"inputs per step (merge: tokens in the timed batch) (1..{MAX_BATCH})",
    "repeats": "timed repetitions (the median is reported)",
    "sweep": "comma-separated ranks to train for the error-vs-rank sweep (default: 1,2,4,...,64 plus r and s)",
}


def _ranks(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _options(function: Callable[..., Any]) -> list[tuple[str, Any]]:
    return [(name, p.default) for name, p in inspect.signature(function).parameters.items() if name != "progress"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lab`` with one sub-command per lab."""
    parser = subparsers.add_parser(
        "lab", help="run a lab: fit, init, merge or subspace",
        description="Run a seeded numpy experiment that shows why LoRA works. " + " ".join(
            f"{name}: {text}" for name, text in DESCRIPTION.items()))
    labs = parser.add_subparsers(dest="lab", metavar="NAME", parser_class=type(parser), required=True)
    for name, function in LABS.items():
        lab = labs.add_parser(name, help=DESCRIPTION[name], description=DESCRIPTION[name])
        for option, default in _options(function):
            flag = "--" + option.replace("_", "-")
            if option == "sweep":
                lab.add_argument(flag, type=_ranks, default=None, metavar="R1,R2,...", help=HELP[option])
                continue
            kind = int if isinstance(default, int) else float
            lab.add_argument(flag, dest=option, type=kind, default=default, metavar=option.upper(),
                             help=f"{HELP[option]} (default {default:g})")
        lab.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
        lab.set_defaults(handler=run_lab)


def run_lab(args: argparse.Namespace) -> str:
    """Run the lab named in ``args`` and return the text to print."""
    function = LABS[args.lab]
    params = {name: getattr(args, name) for name, _ in _options(function)}
    result = function(**params)
    if args.json:
        try:
            return json.dumps(result.to_json(), allow_nan=False)
        except ValueError as error:  # an infinite or NaN number cannot be written as JSON
            raise InvalidParameterError(str(error), where="--json") from None
    return summary(args.lab, result)



def summary(lab: str, result: Any) -> str:
    """A few aligned lines with the key numbers, then the reading of the result."""
    r = result
    if lab == "fit":
        rows = [
            ("layer", f"{r.d} x {r.k}, rank {r.rank}, alpha {r.alpha:g} (scaling {r.scaling:g})"),
            ("target", f"rank {r.target_rank}, noise {r.noise:g}"),
            ("training", f"{r.steps} Adam steps, lr {r.lr:g}, batch {r.batch}, seed {r.seed}"),
            ("loss", f"{r.loss[0]:.4g} -> {r.loss[-1]:.4g}"),
            ("final relative error", f"{r.final_relative_error:.4g}"),
            ("Eckart–Young bound", f"{r.optimal_relative_error:.4g}"),
            ("sweep (rank: error / bound)", "  ".join(
                f"{rank}: {e:.3g}/{b:.3g}" for rank, e, b in zip(
                    r.sweep_ranks, r.sweep_final_relative_error, r.sweep_optimal_relative_error))),
        ]
    elif lab == "init":
        rows = [("layer", f"{r.d} x {r.k}, rank {r.rank}, alpha {r.alpha:g}; {r.steps} steps, seed {r.seed}"),
                ("scheme", "|ΔW| at init  |∂A| at init  |∂B| at init  final error")]
        for name in r.schemes:
            one = r.results[name]
            rows.append((name, f"{one.delta_w_fro_at_init:12.4g}  {one.grad_a_norm_at_init:12.4g}  "
                               f"{one.grad_b_norm_at_init:12.4g}  {one.final_relative_error:11.4g}"))
        rows += [(name, text) for name, text in DESCRIPTIONS.items()]
    elif lab == "merge":
        rows = [
            ("layer", f"{r.d} x {r.k}, rank {r.rank}, alpha {r.alpha:g}, {r.dtype}, batch {r.batch}"),
            ("merged vs unmerged", f"max |diff| {r.merged_vs_unmerged_max_abs_diff:.3g} (outputs up to "
                                   f"{r.output_max_abs:.3g})"),
            ("swap back to W", f"max |diff| {r.swap_back_max_abs_diff:.3g}"),
            ("FLOPs per token", f"merged {r.flops_per_token_merged:,}, unmerged {r.flops_per_token_unmerged:,} "
                                f"(FLOPs = 2 x multiply-adds)"),
            ("batch time", f"merged {r.seconds_merged * 1e3:.3f} ms, unmerged {r.seconds_unmerged * 1e3:.3f} ms"),
            ("trainable params", f"LoRA {r.trainable_params_lora:,}, full {r.trainable_params_full:,}"),
            ("grad + Adam bytes", f"LoRA {r.gradient_bytes_lora + r.adam_state_bytes_lora:,}, full "
                                  f"{r.gradient_bytes_full + r.adam_state_bytes_full:,}"),
        ]
    else:
        rows = [
            ("layer", f"{r.d} x {r.k}, ranks {r.rank} and {r.rank_large}; target rank {r.target_rank}, "
                      f"noise {r.noise:g}; {r.steps} steps, seed {r.seed}"),
            ("phi(1, j)", " ".join(f"{v:.2f}" for v in r.phi[0][:16]) + (" ..." if len(r.phi[0]) > 16 else "")),
            ("phi(i, i)", " ".join(f"{r.phi[i][i]:.2f}" for i in range(min(r.rank, r.rank_large)))),
            ("amplification", f"r={r.rank}: {r.amplification:.4g}, r={r.rank_large}: {r.amplification_large:.4g}"),
        ]
    return label_table(rows) + "\n\n" + textwrap.fill(READINGS[lab](result), width=100)
