"""The real app, started as ``loralens serve`` starts it, for raw requests against its socket."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.app_process import stop_process  # tests/ is on sys.path (rootdir of these test packages)

APP = """
import sys
from loralens.app import settings
from loralens.app.main import run_app
settings.current.upload_limit_bytes = int(sys.argv[1])
run_app(host=sys.argv[2], show=False)
"""
LIMIT = 1000  # a tiny upload limit: the body cap is this plus security.BODY_ALLOWANCE


@dataclass
class Server:
    host: str
    port: int
    token: str
    process: subprocess.Popen

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None,
                host: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """One raw request with exactly the Host (and other headers) given; (status, headers, body)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", host if host is not None else self.netloc)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            headers: dict[str, str] = {}
            for key, value in response.getheaders():  # repeated headers (set-cookie) joined by newlines
                headers[key.lower()] = headers[key.lower()] + "\n" + value if key.lower() in headers else value
            return response.status, headers, response.read()
        finally:
            connection.close()


def start(host: str, cwd: Path) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NICEGUI"))}
    process = subprocess.Popen([sys.executable, "-c", APP, str(LIMIT), host], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**env, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    lines: list[str] = []
    match = None
    deadline = time.monotonic() + 60
    while match is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"http://(\S+):(\d+)/\?token=(\S+)", line)
    drain = threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True)  # type: ignore[union-attr]
    drain.start()
    try:
        if match is None:
            raise RuntimeError("the app did not print its URL with a token:\n" + "".join(lines))
        server = Server(host, int(match.group(2)), match.group(3), process)
        for _ in range(100):
            try:
                server.request("GET", "/")
                break
            except OSError:
                time.sleep(0.1)
        yield server
    finally:
        stop_process(process, drain)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start("127.0.0.1", tmp_path_factory.mktemp("serve"))
