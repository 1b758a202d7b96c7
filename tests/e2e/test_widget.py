"""The notebook widget in a real notebook front end: JupyterLab (installed by the test extra), headless Chromium.
Run the cell that shows ``Explorer(d=4096, r=8)``, step the slider with the keyboard and read ``w.r`` back in
Python (the kernel writes it to a file on every change); set ``w.r = 5`` in Python and see the slider follow.
Generous waits on the front end starting; no timing assertions."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from .app_process import stop_process

NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": [
            "from loralens.widgets import Explorer\n",
            "w = Explorer(d=4096, r=8)\n",
            "w.observe(lambda change: open('r.txt', 'w').write(str(change['new'])), names='r')\n",
            "w",
        ]},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["w.r = 5"]},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": [
            "try:\n", "    w.r = 0\n", "except Exception as error:\n", "    print(type(error).__name__, error)"]},
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """JupyterLab on a free port of 127.0.0.1 with a notebook in a fresh folder; its own config and runtime dirs."""
    root = tmp_path_factory.mktemp("notebook")
    (root / "explorer.ipynb").write_text(json.dumps(NOTEBOOK), encoding="utf-8")
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    if jupyter is None:
        pytest.fail("jupyterlab is a test dependency: pip install -e '.[test]'")
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NICEGUI"))}
    env.update(JUPYTER_CONFIG_DIR=str(root / ".config"), JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
               IPYTHONDIR=str(root / ".ipython"), PYTHONUNBUFFERED="1")
    log = root / "jupyter.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [jupyter, "lab", "--no-browser", "--allow-root", f"--port={port}", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
             "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(1200):  # up to 2 minutes for a cold start on a busy machine
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                    break
                except OSError:
                    if process.poll() is not None:
                        pytest.fail("JupyterLab exited:\n" + log.read_text())
                    time.sleep(0.1)
            else:
                pytest.fail("JupyterLab did not answer:\n" + log.read_text())
            yield f"{base}/lab/tree/explorer.ipynb?token={token}", root
        finally:
            stop_process(process, timeout=20)


def _run_cell(page, index: int) -> None:  # type: ignore[no-untyped-def]
    page.evaluate("i => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i;"
                  " return window.jupyterapp.commands.execute('notebook:run-cell'); }", index)


def _trait_file(root: Path, expected: str) -> str:
    """What the kernel wrote for w.r, once it is ``expected`` (or the last value after a generous wait)."""
    path, text = root / "r.txt", ""
    for _ in range(600):
        text = path.read_text() if path.exists() else ""
        if text == expected:
            break
        time.sleep(0.1)
    return text


def test_widget_syncs_the_rank_both_ways_in_jupyterlab(browser, jupyterlab) -> None:  # type: ignore[no-untyped-def]
    url, root = jupyterlab
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if urlparse(r.url).hostname not in ("127.0.0.1", None) else None)
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_function("() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                           " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
                           " return k && k.connectionStatus === 'connected' && k.status === 'idle'; }")
    _run_cell(page, 0)
    lora = page.get_by_test_id("lora-params")
    lora.filter(has_text="65,536").wait_for()
    slider = page.get_by_test_id("rank")
    for _ in range(3):
        slider.press("ArrowRight")
    lora.filter(has_text="90,112").wait_for()  # r = 11 in the page
    assert _trait_file(root, "11") == "11"  # ... and in Python

    _run_cell(page, 1)  # w.r = 5 in Python
    lora.filter(has_text="40,960").wait_for()
    assert page.get_by_test_id("rank-input").input_value() == "5"

    _run_cell(page, 2)  # a refused value: a clear error in Python, the page unchanged
    page.locator(".jp-OutputArea-output").filter(has_text="TraitError r: must be from 1 to min(d, k) = 4,096, got 0").wait_for()
    assert lora.inner_text() == "40,960"
    context.close()
    assert foreign == []
