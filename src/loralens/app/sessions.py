"""Every session's resources are freed when its client ends.

NiceGUI deletes a client (its elements and their handlers) a reconnect timeout after its tab closed; what a page
object holds then goes with it, unless something long-lived still references it. Two things did:

- FastAPI keeps an ``lru_cache`` (4,096 entries) of every endpoint function it classified; each ``ui.upload``
  registers a route whose function closes over the element, its handlers and so the whole page with its adapter.
  An Inspector session stayed in memory until 4,096 newer uploads pushed it out (measured: +17 MB RSS per
  session with a 16 MB adapter, never returned). ``release`` clears those caches when a client is deleted (they
  only save an ``inspect`` call per request and refill at once).
- glibc keeps freed memory in its arenas (one per worker thread); ``malloc_trim`` hands it back to the system so
  that the server's RSS, which is what a teacher's laptop sees, follows what Python holds.

``on_end(callback)`` is how a page frees its own state (uploads, parsed arrays, results) when its client ends.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable
from functools import lru_cache

from nicegui import Client, app, ui

from loralens.app import workers

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def clear_endpoint_caches() -> None:
    """Forget FastAPI's classification of endpoint functions (which holds every deleted upload route)."""
    try:
        from fastapi.dependencies import models
    except ImportError:  # pragma: no cover - FastAPI always comes with NiceGUI
        return
    for value in vars(models).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def trim() -> None:
    """Give memory that Python freed back to the system (glibc only; a no-op elsewhere)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


COLLECT_DELAY_SECONDS = 1.0  # one collection for a burst of deleted clients (a class closing its tabs)
_pending: list[asyncio.TimerHandle] = []


def collect() -> None:
    """Collect cycles (a page object and its elements reference each other) and trim the heap."""
    _pending.clear()
    gc.collect()
    trim()


def release(client: Client) -> None:
    """Called for every deleted client (before NiceGUI removes its elements): stop its queued or running work,
    forget the endpoint caches now and collect once the client is gone."""
    workers.current.cancel_session(client.id)
    clear_endpoint_caches()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        collect()
        return
    if not _pending:
        _pending.append(loop.call_later(COLLECT_DELAY_SECONDS, collect))


def install() -> None:
    """Register ``release`` for every client of this app (once per app; tests reset the app between tests)."""
    app.on_delete(release)


def on_end(callback: Callable[[], None]) -> None:
    """Run ``callback`` when the current page's client is deleted (its tab closed and did not come back)."""
    ui.context.client.on_delete(callback)
