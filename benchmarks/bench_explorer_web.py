"""The browser Explorer against the original p5.js MicroSim (and, optionally, the NiceGUI Explorer it replaced), in
the same headless Chromium run.

Measured, in each page's own clock:
  * key step: keydown of ArrowRight on the rank slider -> the new count and diagram painted (the first task after
    the frame that shows them), p50/p95 over --steps presses;
  * pointer step: a drag across the slider, input event -> the new count painted, p50/p95; and how many repaints of
    the count each frame held (coalesced: at most one);
  * the export: main.html's size, and first paint of the numbers from file:// (median of --loads loads);
  * the server: CPU seconds and RSS of `loralens serve` while --tabs Explorer tabs load, then while every tab steps
    its rank --tab-steps times (the new page does no server work per step).

p5.js is installed from npm into a temporary folder (never committed). The original sketch is
docs/sims/lora-visualizer/lora-visualizer.js of the public dmccreary/linear-algebra repository; pass it with
--seed-sketch (it is not ours to ship). Without it, a faithful minimal p5 sketch of the same drawing is written into
the temporary folder, and the output says so.

    .venv/bin/python benchmarks/bench_explorer_web.py --seed-sketch PATH/lora-visualizer.js \
        [--baseline-src /path/to/older/loralens/src] [--steps 40] [--tabs 100]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
P5_VERSION = "1.11.10"  # what the original MicroSim loads

# a stand-in for the original when its source is not given: the same layout, controls and per-frame drawing
MINIMAL_SKETCH = """
let canvasWidth = 400, drawHeight = 420, controlHeight = 80, d = 32, k = 32, r = 4, rankSlider, dimSlider;
function setup() {
  const c = createCanvas(canvasWidth, drawHeight + controlHeight); c.parent(document.querySelector('main'));
  rankSlider = createSlider(1, 16, 4, 1); rankSlider.position(140, drawHeight + 8); rankSlider.size(235);
  dimSlider = createSlider(16, 64, 32, 8); dimSlider.position(140, drawHeight + 38); dimSlider.size(235);
}
function draw() {
  r = rankSlider.value(); d = dimSlider.value(); k = d;
  fill('aliceblue'); stroke('silver'); rect(0, 0, canvasWidth, drawHeight); fill('white'); rect(0, drawHeight, canvasWidth, controlHeight);
  fill(0); noStroke(); textAlign(CENTER, TOP); textSize(18); text('LoRA: Low-Rank Adaptation', canvasWidth / 2, 8);
  const s = Math.min(3, 100 / d), w = Math.min(d * s, 100), x0 = (canvasWidth - 3 * w - 60) / 2;
  fill('#95a5a6'); stroke(0); rect(x0, 70, w, w, 3); rect(x0 + 2 * w + 60, 70, w, w, 3);
  fill('#e74c3c'); rect(x0 + w + 35, 75, Math.max(15, r * 2), w - 10, 2);
  fill('#2ecc71'); rect(x0 + w + 30 + w - Math.max(15, r * 2), 75, w - Math.max(15, r * 2) - 15, Math.max(15, r * 2), 2);
  const full = d * k, lora = r * (d + k); fill('#95a5a6'); rect(50, 330, canvasWidth - 100, 20, 3);
  fill('#2ecc71'); rect(50, 358, (lora / full) * (canvasWidth - 100), 20, 3);
  fill(0); noStroke(); textSize(10); textAlign(LEFT, CENTER);
  text('LoRA: ' + lora + ' params (' + ((1 - lora / full) * 100).toFixed(1) + '% savings)', 60, 368);
  textSize(14); text('Rank r: ' + r, 10, drawHeight + 18); text('Dim d: ' + d, 10, drawHeight + 48);
}
"""

# the floor of this measure: a bare range input whose input event sets one number's text, nothing else
FLOOR_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8"><title>floor</title></head><body>
<input type="range" min="1" max="4096" value="8" data-testid="rank"><div data-testid="lora-params">65,536</div>
<script>const s = document.querySelector('input'), out = document.querySelector('div');
s.addEventListener('input', () => { out.textContent = (s.value * 8192).toLocaleString('en-US'); });</script></body></html>"""
FLOOR = {"probe": "document.querySelector('[data-testid=\"lora-params\"]').textContent", "slider": "input[type=range]"}

P5_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8"><title>LoRA MicroSim (p5.js)</title>
<script src="p5.js"></script><style>body{margin:0;padding:0;font-family:Arial,Helvetica,sans-serif}</style>
<script src="sketch.js"></script></head><body><main></main></body></html>"""

# keydown or input -> the first task after the frame in which `probe` reads a new value (see BENCHMARKS.md)
HARNESS = """probe => {
  const read = new Function('return ' + probe);
  window.__key = []; window.__pointer = []; window.__perFrame = []; window.__inputs = 0;
  let pending = 0; // a newer input cancels an older one still waiting: an input that did not change the rank
                   // (several slider positions per rank) is not timed until some later input changes it
  const watch = (into, cancel) => {
    const t0 = performance.now(), before = read(), id = cancel ? ++pending : 0;
    const check = () => { if (id && id !== pending) return;
                          if (read() !== before) into.push(performance.now() - t0);
                          else requestAnimationFrame(() => setTimeout(check, 0)); };
    requestAnimationFrame(() => setTimeout(check, 0));
  };
  document.addEventListener('keydown', () => watch(window.__key, false), true);
  document.addEventListener('input', () => { window.__inputs++; if (window.__dragging) watch(window.__pointer, true); }, true);
  let last = read(), changes = 0;
  const frame = () => { const now = read(); if (now !== last) { changes++; last = now; }
                        if (window.__dragging) window.__perFrame.push(changes); changes = 0; requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
}"""

OURS = {
    "probe": "document.querySelector('[data-testid=\"lora-params\"]').textContent + "
             "[...document.querySelectorAll('[data-testid=\"diagram\"] text')].map(t => t.textContent).join()",
    "slider": '[data-testid="rank"]',
}
P5 = {"probe": "r", "slider": "input[type=range]"}
NICEGUI = {"probe": OURS["probe"], "slider": '[data-testid="rank"] [tabindex="0"]'}


class _Skip(Exception):
    """A phase not asked for."""


def report(name: str, result: dict) -> dict:
    """Print one phase's result as soon as it is known (a long run that fails later keeps what it measured)."""
    print(json.dumps({name: result}, ensure_ascii=False), file=sys.stderr, flush=True)
    return result


def median_of(runs: list[dict]) -> dict:
    """Each figure's median over the repeated runs (None where a page has no such figure)."""
    out = {}
    for key in runs[0]:
        values = [run[key] for run in runs if run[key] is not None]
        out[key] = round(statistics.median(values), 1) if values else None
    out["runs"] = len(runs)
    return out


def quantiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=20)
    return round(statistics.median(values), 1), round(q[18], 1)


def measure_page(page, url: str, target: dict, steps: int, settle: str) -> dict:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.wait_for_selector(settle, timeout=60_000)
    page.wait_for_timeout(800)
    page.evaluate(HARNESS, target["probe"])
    slider = page.locator(target["slider"]).first
    slider.focus()
    for _ in range(steps):
        count = page.evaluate("window.__key.length")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"window.__key.length > {count}", timeout=10_000)
        page.wait_for_timeout(40)
        if count % 12 == 11:  # stay away from the end of a short slider
            for _ in range(12):
                page.keyboard.press("ArrowLeft")
            page.wait_for_timeout(300)
            page.evaluate("window.__key.length = %d" % (count + 1))
    key = page.evaluate("window.__key")[:steps]
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    page.evaluate("window.__dragging = true; window.__inputs = 0")
    moves = 120
    for i in range(moves):
        page.mouse.move(box["x"] + 2 + (box["width"] - 4) * ((i % 60) / 60), y)
        page.wait_for_timeout(16)
    page.evaluate("window.__dragging = false")
    page.mouse.up()
    page.wait_for_timeout(300)
    pointer = page.evaluate("window.__pointer")
    per_frame = page.evaluate("window.__perFrame")
    inputs = page.evaluate("window.__inputs")
    key_p50, key_p95 = quantiles(key)
    ptr_p50, ptr_p95 = quantiles(pointer) if len(pointer) >= 5 else (None, None)
    return {"key_steps": len(key), "key_p50_ms": key_p50, "key_p95_ms": key_p95,
            "pointer_steps": len(pointer), "pointer_p50_ms": ptr_p50, "pointer_p95_ms": ptr_p95,
            "input_events": inputs, "max_repaints_per_frame": max(per_frame, default=0)}


def p5_folder(tmp: Path, seed_sketch: Path | None) -> tuple[Path, str]:
    """p5.js from npm and the sketch in a temporary folder; returns the folder and which sketch it runs."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to install p5.js for the comparison")
    subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(tmp), f"p5@{P5_VERSION}"],
                   check=True, capture_output=True)
    site = tmp / "p5site"
    site.mkdir()
    shutil.copy(tmp / "node_modules" / "p5" / "lib" / "p5.js", site / "p5.js")
    if seed_sketch:
        shutil.copy(seed_sketch, site / "sketch.js")
        which = f"the original sketch ({seed_sketch.name})"
    else:
        (site / "sketch.js").write_text(MINIMAL_SKETCH)
        which = "a faithful minimal sketch written by this script (the original's source was not given)"
    (site / "main.html").write_text(P5_PAGE)
    return site / "main.html", which


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(src: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NICEGUI"))}
    env["PYTHONPATH"] = str(src)
    process = subprocess.Popen([sys.executable, "-m", "loralens", "--no-browser", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return round(int(match.group(1)) / 1024, 1) if match else float("nan")


def server_load(browser, src: Path, target: dict, tabs: int, tab_steps: int) -> dict:  # type: ignore[no-untyped-def]
    """CPU and RSS of one server while `tabs` Explorer tabs load, then while each steps its rank `tab_steps` times."""
    port = free_port()
    process = start_server(src, port)
    try:
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        idle = cpu_seconds(process.pid)
        pages = []
        for _ in range(tabs):
            page = context.new_page()
            page.set_default_timeout(180_000)  # a busy machine: 100 tabs take their time
            page.goto(f"http://127.0.0.1:{port}/?d=4096&r=8")
            page.get_by_test_id("lora-params").wait_for()
            pages.append(page)
        time.sleep(2)
        loaded, rss_loaded = cpu_seconds(process.pid), rss_mb(process.pid)
        started, failed = time.monotonic(), 0
        for _ in range(tab_steps):
            for page in pages:
                try:  # an overloaded server can leave a tab unresponsive: count it and go on
                    page.locator(target["slider"]).first.press("ArrowRight", timeout=30_000)
                except PlaywrightTimeout:
                    failed += 1
        time.sleep(2)  # let the last steps (and any server work they caused) finish
        stepping = time.monotonic() - started
        dragged, rss_dragged = cpu_seconds(process.pid), rss_mb(process.pid)
        time.sleep(stepping)  # as long again with every tab open and nobody touching anything
        idle_after = cpu_seconds(process.pid)
        context.close()
        return {"tabs": tabs, "steps": tabs * tab_steps, "steps_timed_out": failed, "cpu_s_page_loads": round(loaded - idle, 2),
                "cpu_s_while_stepping": round(dragged - loaded, 2), "seconds_stepping": round(stepping, 1),
                "cpu_s_idle_same_time": round(idle_after - dragged, 2),
                "rss_mb_loaded": rss_loaded, "rss_mb_after_steps": rss_dragged}
    finally:
        process.terminate()
        process.wait()


READY = {  # when the numbers are on the page (ours) or the sketch has drawn its first frame (p5)
    "ours": "(() => { const el = document.querySelector('[data-testid=\"lora-params\"]'); return el && el.textContent; })()",
    "p5": "typeof frameCount === 'number' && frameCount >= 1 && document.querySelector('canvas')",
}


def first_paint_file(browser, url: str, loads: int, ready: str) -> dict:  # type: ignore[no-untyped-def]
    """Navigation start -> the first task after the frame that shows the numbers (median and max of `loads`)."""
    times, fcps = [], []
    for _ in range(loads):
        context = browser.new_context(viewport={"width": 700, "height": 502})
        page = context.new_page()
        page.add_init_script("""(() => { const ready = new Function('return ' + %s);
            const poll = () => { let ok = false; try { ok = ready(); } catch (e) { ok = false; }
              if (ok) setTimeout(() => { window.__painted = performance.now(); }, 0); else requestAnimationFrame(poll); };
            requestAnimationFrame(poll); })();""" % json.dumps(ready))
        page.goto(url)
        page.wait_for_function("window.__painted !== undefined")
        times.append(page.evaluate("window.__painted"))
        fcps.append(page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null"))
        context.close()
    return {"loads": loads, "numbers_painted_median_ms": round(statistics.median(times), 1),
            "numbers_painted_max_ms": round(max(times), 1),
            "first_contentful_paint_median_ms": round(statistics.median([f for f in fcps if f]), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-sketch", type=Path, help="the original lora-visualizer.js (dmccreary/linear-algebra)")
    parser.add_argument("--baseline-src", type=Path, help="src/ of an older loralens whose Explorer ran on the server")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3, help="latency runs per page, interleaved (medians reported)")
    parser.add_argument("--tabs", type=int, default=100)
    parser.add_argument("--tab-steps", type=int, default=10)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--server-runs", default="now,before", help="comma-separated: now, before (needs --baseline-src)")
    parser.add_argument("--phases", default="latency,paint,server",
                        help="comma-separated: latency (keys, pointer), paint (first paint from file://), server")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-explorer-web-") as temp, sync_playwright() as pw:
        tmp = Path(temp)
        p5_page, which = p5_folder(tmp, args.seed_sketch)
        results["p5 sketch"] = which
        sims = tmp / "sims"
        sims.mkdir()
        subprocess.run([sys.executable, "-m", "loralens", "export", "microsim", str(sims / "lora-explorer"),
                        "--no-screenshot"], check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        exported = sims / "lora-explorer" / "main.html"
        results["export main.html bytes"] = exported.stat().st_size
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        port = free_port()
        server = start_server(ROOT / "src", port)
        try:
            if "latency" not in phases:
                raise _Skip
            floor = tmp / "floor.html"
            floor.write_text(FLOOR_PAGE)
            runs = [("floor: bare range input + one text (file://)", floor.as_uri(), FLOOR, "input"),
                    ("original p5.js MicroSim (file://)", p5_page.as_uri(), P5, "canvas"),
                    ("exported main.html (file://)", exported.as_uri(), OURS, '[data-testid="lora-params"]'),
                    ("served Explorer (loralens serve)", f"http://127.0.0.1:{port}/?d=4096&r=8", OURS,
                     '[data-testid="lora-params"]')]
            runs_by_name: dict[str, list[dict]] = {name: [] for name, *_ in runs}
            for _ in range(args.repeat):  # interleaved, so that a busy spell of the machine hits every page alike
                for name, url, target, settle in runs:
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    runs_by_name[name].append(report(name, measure_page(page, url, target, args.steps, settle)))
                    page.close()
            for name, measured in runs_by_name.items():
                results[name] = median_of(measured)
        except _Skip:
            pass
        finally:
            server.terminate()
            server.wait()
        if args.baseline_src and "latency" in phases:
            port = free_port()
            server = start_server(args.baseline_src, port)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                name = "served Explorer before (NiceGUI round trip)"
                results[name] = report(name, measure_page(page, f"http://127.0.0.1:{port}/?d=4096&r=8", NICEGUI,
                                                          args.steps, '[data-testid="lora-params"]'))
                page.close()
            finally:
                server.terminate()
                server.wait()
        if "paint" in phases:
            for name, url, ready in (("first paint from file://, exported main.html", exported.as_uri(), READY["ours"]),
                                     ("first paint from file://, p5.js MicroSim", p5_page.as_uri(), READY["p5"])):
                results[name] = report(name, first_paint_file(browser, url, args.loads, ready))
        if "server" in phases:
            name = "server, browser Explorer"
            if "now" in args.server_runs:
                results[name] = report(name, server_load(browser, ROOT / "src", OURS, args.tabs, args.tab_steps))
            if args.baseline_src and "before" in args.server_runs:
                name = "server, Explorer before"
                results[name] = report(name, server_load(browser, args.baseline_src, NICEGUI, args.tabs, args.tab_steps))
        browser.close()
    results["load average"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
