"""The ``loralens`` command. ``main(argv)`` returns an exit code; this is the only place that prints errors.

Each subcommand lives in a module of ``loralens.commands`` with ``register(subparsers)``; its handler takes the
parsed arguments and returns the text to print (or "" when it printed nothing, like ``serve``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from loralens import __version__
from loralens.commands import interruptible
from loralens.commands import adapters, export, formats, labs, models, serve
from loralens.errors import InvalidParameterError, LoraLensError

COMMAND_MODULES = (serve, models, labs, adapters, export, formats)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake raises instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InvalidParameterError(f"{message} (see '{self.prog} --help')", where=self.prog)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loralens",
        description="See and measure low-rank adaptation (LoRA). With no command, starts the app (same as 'serve').",
    )
    parser.add_argument("--version", action="version", version=f"loralens {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """``loralens`` and ``loralens --port 8080`` mean ``loralens serve ...``."""
    if not argv or (argv[0].startswith("-") and argv[0] not in {"-h", "--help", "--version"}):
        return ["serve", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(_with_default_command(args_list))
        # every command but serve (whose server handles Ctrl-C itself) in a thread that Ctrl-C need not wait for
        output = args.handler(args) if args.command == "serve" else interruptible.run(args.handler, args)
        if output:
            print(output, flush=True)
    except LoraLensError as error:
        print(f"loralens: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`loralens params ... | head`): not an error; silence the final flush too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
