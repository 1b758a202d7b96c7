"""Server-wide settings fixed at start-up (not per-user state): where the server listens and what follows."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# Uploads larger than this are refused with a message (a LLaMA-7B r=64 adapter in bf16 is ~320 MB).
UPLOAD_LIMIT_BYTES = 512 * 1024 * 1024


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 0
    upload_limit_bytes: int = UPLOAD_LIMIT_BYTES
    # the per-launch secret that ``run_app`` prints in its URL; None in-process (tests), where no server listens
    token: str | None = None

    @property
    def local_files_allowed(self) -> bool:
        """The app reads files from the server's disk only while it listens on loopback."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address, or ``localhost``) only accepts connections from this machine."""
    host = host.strip().strip("[]")
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


current = ServerSettings()


def configure(host: str, port: int = 0, token: str | None = None) -> None:
    """Set by ``run_app`` before serving."""
    current.host = host
    current.port = port
    current.token = token
