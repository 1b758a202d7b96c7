"""Ctrl-C stops a command at once, even inside one long C call.

Python handles a signal between bytecodes, so a command in the middle of one long numpy/LAPACK call or regex match
would finish that call (minutes, or never) before Ctrl-C took effect. ``run`` runs the command's handler in a daemon
thread and waits in the main thread, which handles Ctrl-C at once: the temporary output folders the handler was
writing are removed (``atomic.remove_active``) and KeyboardInterrupt reaches ``cli.main`` (exit 130); the process
exits without waiting for the abandoned thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from loralens.adapters import atomic

T = TypeVar("T")
POLL_SECONDS = 0.1


def run(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a daemon thread; its result, or its exception re-raised here."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name="loralens-command", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(POLL_SECONDS)
    except KeyboardInterrupt:
        atomic.remove_active()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
