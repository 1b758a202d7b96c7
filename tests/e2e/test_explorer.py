"""The served Explorer in real Chromium: the browser module repaints from keys and the mouse with no server round
trip, the address bar follows, links reproduce views, bad input is told beside the control, and the core view fits
the textbook's 502-px iframe. The JS is checked against the golden vectors again, inside Chromium."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .app_process import loralens_command, stop_process

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "explorer_golden.json"
CORE = ("rank", "rank-input", "d-slider", "presets", "lora-params", "full-params", "lora-ratio", "savings",
        "max-rank", "diagram", "bars")


def _numbers(page) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    return tuple(page.get_by_test_id(t).inner_text() for t in ("full-params", "lora-params", "lora-ratio"))  # type: ignore[return-value]


def _wait_lora(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("lora-params").filter(has_text=re.compile(f"^{re.escape(text)}$")).wait_for()


@pytest.fixture(scope="module")
def logged_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The app as a user starts it, with everything it prints kept in a file (to look for tracebacks)."""
    import os

    log = tmp_path_factory.mktemp("explorer-app") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NICEGUI"))}
    with log.open("w") as out:
        process = subprocess.Popen(loralens_command(), stdout=out, stderr=subprocess.STDOUT, text=True,
                                   env={**env, "PYTHONUNBUFFERED": "1"}, cwd=log.parent)
        try:
            url = None
            for _ in range(600):
                match = re.search(r"http://[\d.]+:\d+", log.read_text())
                if match:
                    url = match.group(0)
                    try:
                        urllib.request.urlopen(url + "/", timeout=2).read()
                        break
                    except OSError:
                        pass
                time.sleep(0.1)
            assert url, "the app did not start:\n" + log.read_text()
            yield url, log
        finally:
            stop_process(process)


def test_default_view_shows_exact_numbers(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/")
    _wait_lora(page, "65,536")
    assert _numbers(page) == ("16,777,216", "65,536", "0.39%")
    diagram = page.get_by_test_id("diagram").text_content()
    assert "r=8" in diagram and "d=4,096" in diagram
    assert page.get_by_test_id("savings").inner_text() == "saves 99.6%"


def test_js_reproduces_the_golden_vectors_in_chromium(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/")
    _wait_lora(page, "65,536")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    failures = page.evaluate(
        """golden => {
          const X = window.LoraExplorer, bad = [];
          const compact = (l) => ({size: [l.width, l.height], rects: l.rects.map(r => [r.x, r.y, r.w, r.h]),
                                   labels: l.labels.map(t => [t.text, t.x, t.y]), clamped: l.clamped, note: l.note});
          for (const {state, view} of golden.states) {
            const got = X.computeView(state); got.diagram = compact(got.diagram);
            for (const key of Object.keys(view))
              if (JSON.stringify(got[key]) !== JSON.stringify(view[key])) bad.push(`${JSON.stringify(state)} ${key}`);
          }
          for (const {query, state, messages} of golden.queries) {
            const got = X.stateFromQuery(query);
            if (JSON.stringify([got.state, got.messages]) !== JSON.stringify([state, messages])) bad.push(JSON.stringify(query));
          }
          return bad;
        }""",
        golden,
    )
    assert failures == []


def test_keyboard_arrows_step_the_rank_by_one_and_the_url_follows(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=4096&k=4096&r=8")
    _wait_lora(page, "65,536")
    slider = page.get_by_test_id("rank")
    slider.press("ArrowRight")
    _wait_lora(page, "73,728")
    assert "r=9" in page.get_by_test_id("diagram").text_content()
    page.wait_for_function("location.search.includes('r=9&')")
    slider.press("ArrowLeft")
    slider.press("ArrowLeft")
    _wait_lora(page, "57,344")  # r = 7
    assert page.get_by_test_id("rank-input").input_value() == "7"
    slider.press("Home")
    _wait_lora(page, "8,192")
    slider.press("ArrowRight")
    _wait_lora(page, "16,384")  # r = 2: small ranks one key apart at d = 4096


def test_small_ranks_are_reachable_by_dragging_at_large_d(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    """At d = 4096 the rank slider is log-scaled: dragging across its first fifth visits every rank from 1 to 5."""
    page.goto(app_url + "/?d=4096&r=1")
    _wait_lora(page, "8,192")
    page.evaluate("""() => { window.__ranks = new Set(); const el = document.querySelector('[data-testid="rank-input"]');
        document.querySelector('[data-testid="rank"]').addEventListener('input',
          () => requestAnimationFrame(() => window.__ranks.add(el.value))); }""")
    box = page.get_by_test_id("rank").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 1, y)
    page.mouse.down()
    for i in range(0, 60):
        page.mouse.move(box["x"] + 1 + box["width"] * 0.2 * i / 60, y)
        page.wait_for_timeout(15)
    page.mouse.up()
    page.wait_for_timeout(100)
    ranks = {int(v) for v in page.evaluate("[...window.__ranks]")}
    assert {1, 2, 3, 4, 5} <= ranks, sorted(ranks)


def test_mouse_drag_repaints_once_per_frame_while_dragging(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=64&k=64&r=1")
    _wait_lora(page, "128")
    page.evaluate(
        """() => { window.__seen = []; window.__frames = 0; window.__inputs = 0;
        const el = document.querySelector('[data-testid="lora-params"]');
        let mutated = 0; new MutationObserver(() => { mutated++; }).observe(el, {subtree: true, childList: true, characterData: true});
        document.querySelector('[data-testid="rank"]').addEventListener('input', () => window.__inputs++);
        const tick = () => { window.__frames++; window.__seen.push(mutated); mutated = 0; requestAnimationFrame(tick); };
        requestAnimationFrame(tick); }"""
    )
    box = page.get_by_test_id("rank").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    for i in range(1, 41):
        page.mouse.move(box["x"] + box["width"] * i / 44, y)
        if i % 3:
            continue  # several pointer moves inside one frame: they must coalesce into one repaint
        page.wait_for_timeout(30)
    page.mouse.up()
    page.wait_for_timeout(200)
    seen = page.evaluate("window.__seen")
    repaints = sum(1 for n in seen if n)
    assert max(seen) <= 1, "more than one repaint of the count in one frame"
    assert repaints >= 5, f"only {repaints} repaints while dragging"
    r = int(page.get_by_test_id("rank-input").input_value())
    assert r > 30 and page.get_by_test_id("lora-params").inner_text() == f"{r * 128:,}"


@pytest.mark.parametrize(
    "query,expected",
    [
        ("?d=1024&k=1024&r=5", ("1,048,576", "10,240", "0.98%")),
        ("?d=11008&k=4096&r=16", ("45,088,768", "241,664", "0.54%")),
        ("?d=16&k=16&r=4&rslora=true&alpha=8", ("256", "128", "50%")),
        ("?d=4096&r=1", ("16,777,216", "8,192", "0.049%")),
    ],
)
def test_shared_links_reproduce_the_view(page, app_url: str, query: str, expected: tuple) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/" + query)
    _wait_lora(page, expected[1])
    assert _numbers(page) == expected
    assert page.evaluate("location.search") == query  # the link stays as given until something changes
    page.get_by_test_id("rank").press("ArrowRight")
    page.get_by_test_id("rank").press("ArrowLeft")
    page.wait_for_function("location.search.includes('trained=false')")  # then it carries every toggle
    page.reload()
    _wait_lora(page, expected[1])
    assert _numbers(page) == expected


@pytest.mark.parametrize(
    "query,message,lora",
    [
        ("?r=0", "URL parameter r: must be at least 1; using 1", "8,192"),
        ("?d=-5&r=1", "URL parameter d: must be at least 1; using 1", "2"),
        ("?d=abc", "URL parameter d: expected a number, got 'abc'; using 4096", "65,536"),
        ("?r=1e9", "URL parameter r: must be at most 65536; using 65536", "33,554,432"),
    ],
)
def test_bad_links_are_clamped_with_a_visible_message(page, app_url: str, query: str, message: str, lora: str) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(app_url + "/" + query)
    assert response.status == 200
    page.get_by_test_id("url-message").filter(has_text=message).wait_for()
    _wait_lora(page, lora)
    assert "Traceback" not in page.content()


def test_past_break_even_shows_a_warning(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=16&k=16&r=16")
    warning = page.get_by_test_id("rank-warning")
    warning.wait_for()
    assert "break-even" in warning.inner_text()
    assert page.get_by_test_id("savings").inner_text() == "saves nothing"


def test_refused_values_stay_told_and_the_box_shows_the_value_in_use(logged_app, page) -> None:  # type: ignore[no-untyped-def]
    url, log = logged_app
    page.goto(url + "/?d=64&r=4")
    _wait_lora(page, "512")
    box = page.get_by_test_id("rank-input")
    box.fill("65")
    message = page.get_by_test_id("control-message")
    message.filter(has_text="r: must be a whole number from 1 to 64; kept 4").wait_for()
    assert box.get_attribute("aria-invalid") == "true"
    box.press("Tab")  # focus out: the box shows the rank in use again, the message stays
    assert box.input_value() == "4" and message.is_visible()
    assert page.get_by_test_id("lora-params").inner_text() == "512"
    for testid, text in (("d-input", "0"), ("alpha", "abc"), ("target", "100"), ("d-input", "65537")):
        page.get_by_test_id(testid).fill(text)
        page.get_by_test_id(testid).press("Enter")
        page.get_by_test_id(testid).blur()
    assert page.get_by_test_id("d-input").input_value() == "64"
    page.get_by_test_id("d-input").fill("65536")  # five digits fit their box, unclipped
    page.get_by_test_id("d-input").blur()
    _wait_lora(page, f"{4 * 2 * 65536:,}")
    clipped = page.evaluate("""() => [...document.querySelectorAll('.llx-box')].filter(b => b.scrollWidth > b.clientWidth)
                                     .map(b => b.dataset.testid)""")
    assert clipped == []
    page.wait_for_timeout(300)
    assert "Traceback" not in log.read_text() and "Error" not in log.read_text(), log.read_text()


def test_preset_box_follows_d_and_k(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=4096")
    _wait_lora(page, "65,536")
    presets = page.get_by_test_id("presets")
    assert presets.input_value() == "2"
    assert not page.get_by_test_id("k-input").is_visible()  # a square layer has one dimension control
    page.get_by_test_id("d-input").fill("1000")
    _wait_lora(page, "16,000")
    assert presets.input_value() == ""  # "custom d × k", not the old label
    presets.select_option("5")  # 11008 x 4096
    _wait_lora(page, "120,832")
    assert page.get_by_test_id("k-input").is_visible() and not page.get_by_test_id("square").is_checked()


def test_rmax_gives_the_seed_sliders_one_to_sixteen(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=4096&r=4&rmax=16")
    _wait_lora(page, "32,768")
    slider = page.get_by_test_id("rank")
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("1", "16")
    slider.press("End")
    _wait_lora(page, "131,072")


def test_answers_false_hides_the_largest_rank(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=1024&answers=false")
    _wait_lora(page, "16,384")
    text = page.get_by_test_id("max-rank").inner_text()
    assert "hidden during the lesson" in text and "r = 5" not in text


def test_heatmaps_fetched_for_a_small_layer_and_the_toggle_is_in_the_url(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/")
    _wait_lora(page, "65,536")
    page.get_by_test_id("go-small").click()
    page.get_by_test_id("sv-caption").filter(has_text="0 of 64 are non-zero").wait_for()
    assert page.locator(".llx-heat").count() == 5
    page.get_by_test_id("trained-after").click()
    page.get_by_test_id("sv-caption").filter(has_text="8 of 64 are non-zero").wait_for()
    page.wait_for_function("location.search.includes('trained=true')")
    page.reload()
    page.get_by_test_id("sv-caption").filter(has_text="8 of 64 are non-zero").wait_for()


def test_real_model_link_carries_rank_alpha_and_embed(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=1024&r=16&alpha=32&embed=1")
    link = page.get_by_test_id("to-models")
    # The section below the core fills in when the browser is idle, so the href arrives after the link exists.
    expect(link).to_have_attribute("href", "/models?model=llama-2-7b&r=16&alpha=32&embed=1", timeout=10_000)
    link.click()
    page.wait_for_url(re.compile(r"/models\?model=llama-2-7b&r=16&alpha=32&embed=1"))
    assert page.get_by_test_id("nav-explorer").count() == 0


@pytest.mark.parametrize("width", [400, 360])
def test_narrow_screens_do_not_scroll_sideways_and_labels_stay_readable(browser, app_url: str, width: int) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(app_url + "/")
    _wait_lora(page, "65,536")
    page.wait_for_timeout(300)
    overflow = page.evaluate("document.documentElement.scrollWidth")
    smallest = smallest_label(page)
    context.close()
    assert overflow <= width
    if width >= 400:
        assert smallest >= 11, f"diagram labels rendered at {smallest:.1f} px"


def smallest_label(frame) -> float:  # type: ignore[no-untyped-def]
    """The smallest rendered font size (px) of the diagram's labels (rotated ones included)."""
    return frame.evaluate("""() => Math.min(...[...document.querySelectorAll('[data-testid="diagram"] text')]
        .map(t => { const m = t.getScreenCTM(); return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b); }))""")


class _CoursePage(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.html if self.path == "/" else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def course_site() -> Iterator[callable]:  # type: ignore[valid-type]
    """A course site on another origin that embeds a page as the textbook embeds MicroSims."""
    handler = type("Handler", (_CoursePage,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def embed(src: str, width: int) -> str:
        handler.html = (f'<!doctype html><title>Course</title><body style="margin:0"><iframe src="{src}" '
                        f'width="{width}" height="502" scrolling="no" style="border:0"></iframe>').encode()
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield embed
    server.shutdown()
    server.server_close()


def core_view_fits(frame) -> list[str]:  # type: ignore[no-untyped-def]
    """Test ids of the core view that end below 502 px or stick out sideways, and 'page' for sideways scroll."""
    return frame.evaluate(
        """ids => { const bad = []; const width = document.documentElement.clientWidth;
          if (document.documentElement.scrollWidth > width) bad.push('page');
          for (const id of ids) { const box = document.querySelector(`[data-testid="${id}"]`).getBoundingClientRect();
            if (box.bottom > 502 || box.right > width || box.height === 0) bad.push(id); }
          return bad; }""",
        list(CORE),
    )


@pytest.mark.parametrize("width", [700, 400])
def test_core_view_fits_the_textbook_iframe(browser, app_url: str, course_site, width: int) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width + 40, "height": 600})
    page = context.new_page()
    page.goto(course_site(f"{app_url}/?embed=1", width))
    frame = page.frames[1]
    frame.get_by_test_id("lora-params").filter(has_text="65,536").wait_for()
    assert frame.get_by_test_id("nav-explorer").count() == 0
    assert core_view_fits(frame) == []
    assert smallest_label(frame) >= 11
    frame.get_by_test_id("rank").press("ArrowRight")
    frame.get_by_test_id("lora-params").filter(has_text="73,728").wait_for()
    context.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
