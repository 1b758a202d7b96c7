"""``loralens lab NAME [options] [--json]``: run one of the labs and print a summary (or one JSON object).

Every option is made from the lab's declared parameters (``core.labs.LABS``): its name (``target_rank`` is
``--target-rank``), its range in the help, and its default (the lab function's own), so the command, the library
and the page always run the same experiment with the same limits.
"""

from __future__ import annotations

import argparse
import json
import textwrap

from loralens.core.labs import LABS
from loralens.core.labs.params import Lab, LabParam
from loralens.core.units import label_table
from loralens.errors import InvalidParameterError


def _ranks(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _add_option(parser: argparse.ArgumentParser, param: LabParam, default: object) -> None:
    flag = "--" + param.name.replace("_", "-")
    if param.kind is tuple:
        parser.add_argument(flag, dest=param.name, type=_ranks, default=default, metavar="R1,R2,...", help=param.help)
        return
    parser.add_argument(flag, dest=param.name, type=param.kind, default=default, metavar=param.name.upper(),
                        help=f"{param.help} ({param.range_text()}; default {default:g})")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lab`` with one sub-command per lab."""
    parser = subparsers.add_parser(
        "lab", help="run a lab: " + ", ".join(LABS),
        description="Run a seeded numpy experiment that shows why LoRA works. " + " ".join(
            f"{lab.key}: {lab.description}" for lab in LABS.values()))
    labs = parser.add_subparsers(dest="lab", metavar="NAME", parser_class=type(parser), required=True)
    for lab in LABS.values():
        sub = labs.add_parser(lab.key, help=lab.description, description=lab.description)
        for param, default in zip(lab.params, lab.defaults().values()):
            _add_option(sub, param, default)
        sub.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
        sub.set_defaults(handler=run_lab)


def run_lab(args: argparse.Namespace) -> str:
    """Run the lab named in ``args`` and return the text to print."""
    lab: Lab = LABS[args.lab]
    result = lab.run(**{p.name: getattr(args, p.name) for p in lab.params})
    if args.json:
        try:
            return json.dumps(result.to_json(), allow_nan=False)
        except ValueError as error:  # an infinite or NaN number cannot be written as JSON
            raise InvalidParameterError(str(error), where="--json") from None
    return label_table(lab.summary(result)) + "\n\n" + textwrap.fill(lab.reading(result), width=100)
