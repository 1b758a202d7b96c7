"""The exported MicroSim in real Chromium: opened from disk (file://) it loads nothing from anywhere, reproduces the
golden vectors, answers keys, and its core view fits the textbook's 700 x 502 and 400 x 502 iframes."""

from __future__ import annotations

import functools
import http.server
import json
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loralens.cli import main

from .test_explorer import GOLDEN, core_view_fits, smallest_label


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A textbook's docs/sims/ folder with two exports: the default one (with its screenshot) and rmax 16."""
    root = tmp_path_factory.mktemp("docs") / "sims"
    root.mkdir()
    # as a user runs it (in its own process: this one already drives a browser through Playwright)
    command = [sys.executable, "-m", "loralens", "export", "microsim"]
    result = subprocess.run([*command, str(root / "lora-explorer")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "note:" not in result.stdout, result.stdout + result.stderr
    assert main(["export", "microsim", str(root / "lora-16"), "--rmax", "16", "--r", "4", "--no-screenshot"]) == 0
    return root


@pytest.fixture(scope="module")
def static_site(sims: Path) -> Iterator[str]:
    """The folder served as a static host serves a textbook (GitHub Pages)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(sims.parent))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_screenshot_for_link_previews(sims: Path) -> None:
    image = sims / "lora-explorer" / "lora-explorer.png"
    head = image.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1200, 630)


def test_opened_from_disk_it_runs_and_requests_nothing(browser, sims: Path) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    url = (sims / "lora-explorer" / "main.html").as_uri()
    page.goto(url)
    page.get_by_test_id("lora-params").filter(has_text="65,536").wait_for()
    page.get_by_test_id("rank").press("ArrowRight")
    page.get_by_test_id("lora-params").filter(has_text="73,728").wait_for()
    page.get_by_test_id("d-input").fill("1024")
    page.get_by_test_id("lora-params").filter(has_text="18,432").wait_for()
    assert page.get_by_test_id("to-models").count() == 0  # no server, no other pages
    assert page.get_by_test_id("go-small").count() == 0
    context.close()
    assert errors == []
    assert requests == [url], requests


def test_exported_page_reproduces_the_golden_vectors(browser, sims: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto((sims / "lora-explorer" / "main.html").as_uri())
    page.get_by_test_id("lora-params").filter(has_text="65,536").wait_for()
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    bad = page.evaluate(
        """golden => golden.states.filter(({state, view}) => {
            const got = window.LoraExplorer.computeView(state);
            return ['full_text', 'lora_text', 'ratio_text', 'savings_text', 'warning', 'max_rank_text', 'formula_merge',
                    'bars', 'growth_r', 'benefits', 'url'].some(k => JSON.stringify(got[k]) !== JSON.stringify(view[k]));
          }).map(({state}) => state)""",
        golden,
    )
    page.close()
    assert bad == []


def test_rmax_16_gives_the_seed_slider(browser, sims: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto((sims / "lora-16" / "main.html").as_uri())
    page.get_by_test_id("lora-params").filter(has_text="32,768").wait_for()
    slider = page.get_by_test_id("rank")
    assert (slider.get_attribute("min"), slider.get_attribute("max"), slider.input_value()) == ("1", "16", "4")
    slider.press("End")
    page.get_by_test_id("lora-params").filter(has_text="131,072").wait_for()
    page.close()


@pytest.mark.parametrize("width", [700, 400])
def test_core_view_fits_the_textbook_iframe(browser, static_site: str, width: int) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width + 40, "height": 600})
    page = context.new_page()
    page.set_content(f'<iframe src="{static_site}/sims/lora-explorer/main.html" height="502px" width="{width}" '
                     'scrolling="no" style="border:0"></iframe>')
    frame = page.frames[1]
    frame.get_by_test_id("lora-params").filter(has_text="65,536").wait_for()
    assert core_view_fits(frame) == []
    assert smallest_label(frame) >= 11
    context.close()
