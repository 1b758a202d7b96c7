"""The browser Explorer: one dependency-free JavaScript module (explorer.js) and its style sheet (explorer.css).

The served app publishes this folder as static files, ``loralens export microsim`` inlines both files into a
self-contained main.html, and the notebook widget (``loralens.widgets``) hands them to anywidget.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """The text of ``explorer.js`` or ``explorer.css``."""
    if name not in ("explorer.js", "explorer.css"):
        raise ValueError(f"no web asset named {name!r}")
    return (WEB_DIR / name).read_text(encoding="utf-8")


def version() -> str:
    """A short hash of both assets, for cache-busting URLs (a new release never runs an old cached script)."""
    digest = hashlib.sha256((asset("explorer.js") + asset("explorer.css")).encode()).hexdigest()
    return digest[:10]


__all__ = ["WEB_DIR", "asset", "version"]
