"""``loralens serve``: start the app."""

from __future__ import annotations

import argparse

# a fixed default, so that bookmarks and the links a teacher hands out keep working from one start to the next;
# 8765 is unassigned by IANA and not a common development port (8000, 8080, 8888 are)
DEFAULT_PORT = 8765


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="start the app (the default command)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=port, default=DEFAULT_PORT,
                        help=f"port (default: {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.set_defaults(handler=_serve)


def port(text: str) -> int:
    """A TCP port number, 1-65535, or 0 for a free one (argparse turns the ValueError into a one-line usage error)."""
    number = int(text)
    if not 0 <= number <= 65535:
        raise ValueError(text)
    return number


def _serve(args: argparse.Namespace) -> str:
    from loralens.app.main import run_app  # imported here so that other commands never load the web stack

    run_app(host=args.host, port=args.port, show=not args.no_browser)
    return ""
