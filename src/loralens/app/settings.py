"""Server-wide settings fixed at start-up (not per-user state): where the server listens and what follows."""

from __future__ import annotations

from dataclasses import dataclass

# Uploads larger than this are refused with a message (a LLaMA-7B r=64 adapter in bf16 is ~320 MB).
UPLOAD_LIMIT_BYTES = 512 * 1024 * 1024


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    upload_limit_bytes: int = UPLOAD_LIMIT_BYTES

    @property
    def local_files_allowed(self) -> bool:
        """The app reads files from the server's disk only while it listens on loopback."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    return host in {"localhost", "::1"} or host.startswith("127.")


current = ServerSettings()


def configure(host: str) -> None:
    """Set by ``run_app`` before serving."""
    current.host = host
