"""Real-browser fixtures: the app started as a user starts it, and Debian's Chromium driven by Playwright.

Every test's page records requests to hosts other than 127.0.0.1; the ``page`` fixture fails the test if
there was any (the app must work offline: no CDN, fonts or telemetry).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = os.environ.get("LORALENS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


def _start_app(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``loralens --no-browser`` (the installed command) and wait for the URL it prints."""
    command = shutil.which("loralens", path=str(Path(sys.executable).parent)) or shutil.which("loralens")
    argv = [command, "--no-browser"] if command else [sys.executable, "-m", "loralens", "--no-browser"]
    # NiceGUI treats a process with PYTEST_* variables as a test run; the app must start as a user's does
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTEST", "NICEGUI"))}
    process = subprocess.Popen(
        argv, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**env, "PYTHONUNBUFFERED": "1"}
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "http://" in line:
            url = line[line.index("http://") :].split()[0]
            return process, url.rstrip("/")
    process.kill()
    process.wait()
    process.stdout.close()
    raise RuntimeError("the app did not print its URL:\n" + "".join(lines))


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = _start_app(tmp_path_factory.mktemp("app"))
    # drain output so that the server never blocks on a full pipe
    drain = threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True)  # type: ignore[union-attr]
    drain.start()

    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/", timeout=2).read()
            break
        except OSError:
            time.sleep(0.1)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    drain.join(timeout=5)
    process.stdout.close()  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh page at a laptop width; fails the test on any request to another host."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    foreign: list[str] = []

    def record(request) -> None:  # type: ignore[no-untyped-def]
        host = urlparse(request.url).hostname
        if request.url.startswith(("http://", "https://", "ws://", "wss://")) and host not in LOCAL_HOSTS:
            foreign.append(request.url)

    page.on("request", record)
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert not foreign, f"requests to other hosts: {foreign}"
