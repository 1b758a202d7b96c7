"""Open a NiceGUI page and wait for its websocket handshake, so that what the test does next reaches the server.

NiceGUI queues a page's events until the handshake, but reloads the page when the handshake fails or its
connection times out (seen on a busy CI machine): a value filled in before that reload is gone.
"""

from __future__ import annotations

from typing import Any

HANDSHAKE_MS = 60_000


def open_connected(page: Any, url: str) -> Any:
    """``page.goto(url)``, then wait until NiceGUI's client has shaken hands; returns the navigation's response."""
    response = page.goto(url)
    page.wait_for_function("window.did_handshake === true && window.socket && window.socket.connected",
                           timeout=HANDSHAKE_MS)
    return response
