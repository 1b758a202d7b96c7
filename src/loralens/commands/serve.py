"""``loralens serve``: start the app."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="start the app (the default command)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> str:
    from loralens.app.main import run_app  # imported here so that other commands never load the web stack

    run_app(host=args.host, port=args.port, show=not args.no_browser)
    return ""
