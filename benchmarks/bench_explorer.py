"""Explorer responsiveness in headless Chromium, beside a bare NiceGUI page (one slider, one label) in the same run.

(The Explorer now runs in the browser; bench_explorer_web.py compares it with the original p5.js MicroSim.)

Measures, in the page's own clock:
  * key press on the rank slider -> lora-params number and diagram changed and painted (p50/p95 over N presses);
  * redraws of lora-params per second during a 3 s mouse drag of the rank slider;
  * cold start: command started -> first paint of the numbers.

    .venv/bin/python benchmarks/bench_explorer.py [--presses 40]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

INSTALL = """() => {
  window.__lat = []; window.__redraws = 0; window.__last = null;
  // the Explorer replaces the inner HTML of its numbers and diagram blocks: watch the blocks (the bare page: the label)
  const watched = [['numbers', 'lora-params'], ['diagram-box', 'rank']]
    .map(([block, fallback]) => document.querySelector(`[data-testid="${block}"]`) || document.querySelector(`[data-testid="${fallback}"]`));
  let pressed = null, pending = new Set();
  document.addEventListener('keydown', () => { pressed = performance.now(); pending = new Set(watched); }, true);
  for (const el of watched) {
    new MutationObserver(() => {
      if (el === watched[0]) {  // count changes of the number itself (the bare page's slider also mutates the block)
        const text = document.querySelector('[data-testid="lora-params"]').innerText;
        if (text !== window.__last) { window.__last = text; window.__redraws++; }
      }
      if (pressed === null) return;
      pending.delete(el);
      if (pending.size === 0) {
        const start = pressed; pressed = null;
        // the frame that paints the change, then the first task after it (the paint is done by then)
        requestAnimationFrame(() => setTimeout(() => window.__lat.push(performance.now() - start), 0));
      }
    }).observe(el, {subtree: true, childList: true, characterData: true, attributes: true});
  }
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NICEGUI"))}


def start(argv: list[str]) -> tuple[subprocess.Popen, float]:
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(), cwd=ROOT)
    return process, started


def first_paint(page, url: str, port: int, started: float) -> float:  # type: ignore[no-untyped-def]
    """Seconds from the command's start until the numbers are painted (polling the port while the server boots:
    a browser retrying a refused page backs off and would measure its own back-off)."""
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.005)
    page.goto(url)
    page.get_by_test_id("lora-params").wait_for()
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")
    return time.perf_counter() - started


def measure(page, url: str, presses: int) -> dict:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.get_by_test_id("lora-params").wait_for()
    page.wait_for_timeout(500)
    page.evaluate(INSTALL)
    track = page.get_by_test_id("rank")
    if track.evaluate("e => e.tagName") != "INPUT":  # a Quasar slider: its focusable track (the bare page)
        track = track.locator('[tabindex="0"]')
    for _ in range(presses):
        count = page.evaluate("window.__lat.length")
        track.press("ArrowRight")
        page.wait_for_function(f"window.__lat.length > {count}", timeout=5000)
        page.wait_for_timeout(30)
    latencies = page.evaluate("window.__lat")
    # drag: 3 s of mouse movement across the slider
    box = page.get_by_test_id("rank").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    page.evaluate("window.__redraws = 0")
    t0 = time.perf_counter()
    steps = 150
    for i in range(steps):
        page.mouse.move(box["x"] + 2 + (box["width"] - 4) * ((i % 75) / 75), y)
        page.wait_for_timeout(20)
    elapsed = time.perf_counter() - t0
    redraws = page.evaluate("window.__redraws")
    page.mouse.up()
    q = statistics.quantiles(latencies, n=20)
    return {
        "presses": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(q[18], 1),
        "redraws_per_s": round(redraws / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=40)
    args = parser.parse_args()
    results = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for name, argv_for in (
            ("bare NiceGUI page", lambda port: [sys.executable, str(ROOT / "benchmarks" / "bare_app.py"), str(port)]),
            ("bare page + 60 static labels",
             lambda port: [sys.executable, str(ROOT / "benchmarks" / "bare_app.py"), str(port), "60"]),
            ("loralens Explorer", lambda port: [sys.executable, "-m", "loralens", "--no-browser", "--port", str(port)]),
        ):
            port = free_port()
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            process, started = start(argv_for(port))
            try:
                cold = first_paint(page, f"http://127.0.0.1:{port}/", port, started)
                result = measure(page, f"http://127.0.0.1:{port}/", args.presses)
                result["cold_start_s"] = round(cold, 2)
                results[name] = result
            finally:
                process.terminate()
                process.wait()
                page.close()
        browser.close()
    bare, padded, real = results["bare NiceGUI page"], results["bare page + 60 static labels"], results["loralens Explorer"]
    print(json.dumps(results, indent=2))
    print()
    print("| measure | bare NiceGUI page | bare page + 60 static labels | loralens Explorer | ratio to bare |")
    print("|---|---:|---:|---:|---:|")
    for key, label in (("p50_ms", "key -> repaint p50 (ms)"), ("p95_ms", "key -> repaint p95 (ms)"),
                       ("redraws_per_s", "redraws per second while dragging"), ("cold_start_s", "cold start (s)")):
        print(f"| {label} | {bare[key]} | {padded[key]} | {real[key]} | {real[key] / bare[key]:.2f} |")


if __name__ == "__main__":
    main()
