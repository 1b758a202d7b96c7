"""Create the NiceGUI app: every page registers its route here, then ``run_app`` serves it."""

from __future__ import annotations

import errno
import logging
import secrets
import socket
from typing import Any

from nicegui import app, core, ui

from loralens.app import sessions, settings, storage_shim, workers
from loralens.app.security import BODY_ALLOWANCE, TOKEN_PARAM, Guard, netloc
from loralens.app.site import PAGES
from loralens.errors import LoraLensError

log = logging.getLogger(__name__)

# imported once, with this module: NiceGUI's test fixture drops page modules from sys.modules between tests, and
# tests patch the module objects they imported
_PAGE_MODULES = tuple(page.module() for page in PAGES)


def register_pages() -> None:
    """Register every page route. Called once per app (and again by each test that resets NiceGUI)."""
    storage_shim.install()
    sessions.install()
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


def display_url(host: str, port: int, token: str | None = None) -> str:
    """The URL the command prints (with the launch token, like Jupyter's), and opens in a browser."""
    return f"http://{netloc(host, port)}/" + (f"?{TOKEN_PARAM}={token}" if token else "")


def secure(host: str, port: int, token: str) -> None:
    """Put the request guard in front of the app and close NiceGUI's doors that it leaves open."""
    app.add_middleware(Guard, host=host, port=port, token=token,
                       body_limit=settings.current.upload_limit_bytes + BODY_ALLOWANCE)
    # engine.io's own origin check: None means "the same origin as the Host" (NiceGUI sets '*', which reflects
    # any Origin with credentials); the guard refuses a foreign Origin before it gets here anyway
    core.sio.eio.cors_allowed_origins = None
    core.sio.on("log", _on_client_log)  # replaces NiceGUI's handler, which logs what any page sends
    workers.limit_blas_threads(1)  # each heavy run on one core; app.workers bounds how many run at once


def _on_client_log(_sid: str, msg: Any) -> None:
    """A browser's log message: one escaped, shortened line at debug level, never text a page chose verbatim."""
    text = msg.get("message") if isinstance(msg, dict) else msg
    log.debug("browser log: %.200r", text)


def run_app(host: str = "127.0.0.1", port: int | None = None, show: bool = True) -> None:
    """Serve the app until Ctrl-C. Prints the URL it listens on."""
    if not host.strip():
        raise LoraLensError("give an address to listen on (0.0.0.0 for every interface)", where="--host")
    port = check_address(host, port)
    token = secrets.token_urlsafe(24)
    settings.configure(host=host, port=port, token=token)
    register_pages()
    secure(host, port, token)
    url = display_url(host, port, token)
    print(f"loralens is running at {url}  (Ctrl-C stops it)", flush=True)
    if not settings.current.local_files_allowed:
        print(f"note: {host} is reachable from other machines; the Inspector will not open folders on this one",
              flush=True)
    ui.run(
        host=host,
        port=port,
        title="loralens",
        reload=False,
        show=f"/?{TOKEN_PARAM}={token}" if show else False,
        show_welcome_message=False,
        storage_secret=secrets.token_urlsafe(32),
        favicon="🔍",
        reconnect_timeout=10.0,
    )
