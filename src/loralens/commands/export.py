"""``loralens export microsim DIR``: write the Explorer as a MicroSim folder for a static textbook site.

The folder holds main.html (self-contained: the browser module and its style inline, no server, no other host),
index.md (front matter, the 502-px iframe, a fullscreen link, the description and the lesson plan),
metadata.json (the MicroSim metadata schema's required structure) and, when a headless Chromium is at hand, a
screenshot for link previews. It is written under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from loralens.adapters.atomic import atomic_output_dir
from loralens.core.counting import MAX_DIM
from loralens.core.validation import check_float, check_int
from loralens.errors import InvalidParameterError

CHROMIUM = os.environ.get("LORALENS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT_SIZE = (1200, 630)  # the usual link-preview (og:image) size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export the Explorer for a static site (export microsim DIR)",
                                   description="Export the Explorer so that it runs without a server.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=type(parser))
    sim = kinds.add_parser("microsim", help="a MicroSim folder: main.html, index.md, metadata.json, screenshot",
                           description="Write a MicroSim folder (main.html, index.md, metadata.json and a "
                                       "screenshot) that a textbook embeds with an iframe 502 px high.")
    sim.add_argument("dir", metavar="DIR", help="the folder to write (its name becomes the MicroSim's name)")
    sim.add_argument("--title", default=None, help="the page title (default: 'LoRA: Low-Rank Adaptation Explorer')")
    sim.add_argument("--d", type=int, default=4096, help="initial d, the layer's output features (1..65536)")
    sim.add_argument("--k", type=int, default=None, help="initial k, the input features (default: d, square)")
    sim.add_argument("--r", type=int, default=8, help="initial rank r (1..min(d, k), or ..rmax)")
    sim.add_argument("--alpha", type=float, default=16.0, help="initial lora_alpha (0.001..100000)")
    sim.add_argument("--rslora", action="store_true", help="start with rsLoRA's scaling alpha/sqrt(r)")
    sim.add_argument("--target", type=float, default=99.0, help="savings target in percent (1..99.999)")
    sim.add_argument("--rmax", type=int, default=0, help="rank slider maximum (the original MicroSim: 16; default: min(d, k))")
    sim.add_argument("--no-answers", action="store_true", help="hide the largest rank for the target (student mode)")
    sim.add_argument("--no-screenshot", action="store_true", help="do not take the link-preview screenshot")
    from loralens.commands.formats import register_export_gguf  # export gguf: the formats helper's subcommand

    register_export_gguf(kinds)
    sim.add_argument("--force", action="store_true", help="replace DIR if it exists")
    sim.set_defaults(handler=_export_microsim)


def initial_state(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The MicroSim's starting state from the options, each checked with a one-line message naming the option."""
    from loralens.app.explorer.view import ExplorerState, rank_limit_text, rank_limit

    d = check_int("--d", args.d, 1, MAX_DIM)
    k = check_int("--k", d if args.k is None else args.k, 1, MAX_DIM)
    rmax = check_int("--rmax", args.rmax, 0, MAX_DIM)
    r = check_int("--r", args.r, 1, MAX_DIM)
    if r > rank_limit(d, k, rmax):
        raise InvalidParameterError(f"must be at most {rank_limit_text(d, k, rmax)}, got {r:,}", where="--r")
    alpha = check_float("--alpha", args.alpha, 0.001, 100_000)
    target = check_float("--target", args.target, 1.0, 99.999)
    return ExplorerState(d=d, k=k, r=r, alpha=alpha, rslora=args.rslora, square=d == k, target=target, rmax=rmax,
                         answers=not args.no_answers)


def _export_microsim(args: argparse.Namespace) -> str:
    from loralens.web import microsim

    state = initial_state(args)
    title = (args.title if args.title is not None else microsim.DEFAULT_TITLE).strip()
    if not title or "\n" in title:
        raise InvalidParameterError("must be one non-empty line", where="--title")
    out = Path(args.dir)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", out.resolve().name).strip("-") or "loralens-explorer"
    sim = microsim.build(name, state, title)
    with atomic_output_dir(out, force=args.force) as temp:
        umask = os.umask(0)
        os.umask(umask)
        temp.chmod(0o777 & ~umask)  # a folder for a web site: as readable as any new folder, not mkdtemp's 0700
        (temp / "main.html").write_text(sim.main_html, encoding="utf-8")
        (temp / "index.md").write_text(sim.index_md, encoding="utf-8")
        (temp / "metadata.json").write_text(json.dumps(sim.metadata, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
        note = "" if args.no_screenshot else screenshot(temp / "main.html", temp / sim.image_name)
    size = len(sim.main_html.encode())
    lines = [f"wrote {out}/: main.html ({size:,} bytes), index.md, metadata.json"
             + ("" if note else f", {sim.image_name}")]
    if note:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def screenshot(page: Path, image: Path) -> str:
    """Take the link-preview picture with a headless Chromium; "" on success, else why not (the rest is written)."""
    if not Path(CHROMIUM).exists():
        return f"no screenshot: Chromium not found at {CHROMIUM} (set LORALENS_CHROMIUM, or pass --no-screenshot)"
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        return "no screenshot: the playwright package is not installed (pip install playwright)"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                width, height = SCREENSHOT_SIZE
                tab = browser.new_page(viewport={"width": width, "height": height})
                tab.goto(page.resolve().as_uri())
                tab.get_by_test_id("lora-params").wait_for(timeout=15_000)
                tab.screenshot(path=str(image))
            finally:
                browser.close()
    except (Error, OSError, RuntimeError) as error:  # a browser that will not start is a note, not a traceback
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"no screenshot: Chromium failed ({first})"
    return ""
