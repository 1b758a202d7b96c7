"""Create the NiceGUI app: every page registers its route here, then ``run_app`` serves it."""

from __future__ import annotations

import errno
import secrets
import socket

from nicegui import ui

from loralens.app import settings, storage_shim
from loralens.app.site import PAGES
from loralens.errors import LoraLensError

# imported once, with this module: NiceGUI's test fixture drops page modules from sys.modules between tests, and
# tests patch the module objects they imported
_PAGE_MODULES = tuple(page.module() for page in PAGES)


def register_pages() -> None:
    """Register every page route. Called once per app (and again by each test that resets NiceGUI)."""
    storage_shim.install()
    for module in _PAGE_MODULES:
        module.register()


def check_address(host: str, port: int | None) -> int:
    """The port to serve on (a free one when ``port`` is 0 or None), or LoraLensError naming what cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
            sock.bind((host, port or 0))
            return int(sock.getsockname()[1])
    except (OSError, OverflowError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE and port:
            reason += " (is loralens already running there? --port N picks another port, --port 0 a free one)"
        raise LoraLensError(f"cannot listen on {host}:{port or 'a free port'}: {reason}", where="serve") from None


def run_app(host: str = "127.0.0.1", port: int | None = None, show: bool = True) -> None:
    """Serve the app until Ctrl-C. Prints the URL it listens on."""
    port = check_address(host, port)
    settings.configure(host=host)
    register_pages()
    print(f"loralens is running at http://{'[' + host + ']' if ':' in host else host}:{port}/  (Ctrl-C stops it)",
          flush=True)
    if not settings.current.local_files_allowed:
        print(f"note: {host} is reachable from other machines; the Inspector will not open folders on this one",
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
