"""Create the NiceGUI app: every page registers its route here, then ``run_app`` serves it."""

from __future__ import annotations

import secrets
import socket

from nicegui import ui

from loralens.app import settings
from loralens.app.pages import explorer, inspector, labs, lessons, models

PAGES = (explorer, models, labs, lessons, inspector)


def register_pages() -> None:
    """Register every page route. Called once per app (and again by each test that resets NiceGUI)."""
    for page in PAGES:
        page.register()


def free_port(host: str) -> int:
    """A port that is free on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def run_app(host: str = "127.0.0.1", port: int | None = None, show: bool = True) -> None:
    """Serve the app until Ctrl-C. Prints the URL it listens on."""
    port = port or free_port(host)
    settings.configure(host=host)
    register_pages()
    print(f"loralens is running at http://{'[' + host + ']' if ':' in host else host}:{port}/  (Ctrl-C stops it)",
          flush=True)
    ui.run(
        host=host,
        port=port,
        title="loralens",
        reload=False,
        show=show,
        show_welcome_message=False,
        storage_secret=secrets.token_urlsafe(32),
        favicon="🔍",
        reconnect_timeout=10.0,
    )
