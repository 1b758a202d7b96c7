"""Start the real app in a subprocess as a user does, wait until it serves, and stop it cleanly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def loralens_command() -> list[str]:
    """``loralens --no-browser --port 0``: the installed command beside this Python, else ``python -m loralens``.

    ``--port 0`` (a free port): test apps never meet each other or a loralens running on the default port."""
    command = shutil.which("loralens", path=str(Path(sys.executable).parent)) or shutil.which("loralens")
    return [*([command] if command else [sys.executable, "-m", "loralens"]), "--no-browser", "--port", "0"]


@contextmanager
def served_app(argv: list[str], cwd: Path, ready_path: str = "/", with_token: bool = False) -> Iterator[str]:
    """Run ``argv``, read the URL it prints, wait until ``ready_path`` answers, yield the URL (without its launch
    token unless ``with_token``: then ``base?token=...``), then stop it."""
    # NiceGUI treats a process with PYTEST_* variables as a test run; the app must start as a user's does
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTEST", "NICEGUI"))}
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**env, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    url, lines, deadline = None, [], time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "http://" in line:
            printed = line[line.index("http://"):].split()[0]
            url = printed.split("?")[0].rstrip("/")  # without the launch token
    # drain output so that the server never blocks on a full pipe
    drain = threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True)  # type: ignore[union-attr]
    drain.start()
    try:
        if url is None:
            raise RuntimeError("the app did not print its URL:\n" + "".join(lines))
        for _ in range(100):  # the URL is printed just before the server starts listening
            try:
                urllib.request.urlopen(url + ready_path, timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        yield url + printed[len(url) + 1:] if with_token else url
    finally:
        stop_process(process, drain)


def stop_process(process: subprocess.Popen, drain: threading.Thread | None = None, timeout: float = 10) -> None:
    """Stop a server the tests started: terminate, kill if it does not exit in ``timeout`` s, then let the thread
    that drained its output finish and close the pipe."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if drain is not None:
        drain.join(timeout=5)
    if process.stdout is not None:
        process.stdout.close()
