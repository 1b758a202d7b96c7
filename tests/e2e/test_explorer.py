"""The Explorer in real Chromium: keys and mouse drive the sliders live, links reproduce views, bad links are told."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator

import pytest


def _rank_slider(page):  # type: ignore[no-untyped-def]
    """The focusable part of the rank slider (Quasar puts tabindex on the track container)."""
    return page.get_by_test_id("rank").locator('[tabindex="0"]')


def _numbers(page) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    return tuple(page.get_by_test_id(t).inner_text() for t in ("full-params", "lora-params", "lora-ratio"))  # type: ignore[return-value]


def test_default_view_shows_exact_numbers(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/")
    page.get_by_test_id("lora-params").filter(has_text="65,536").wait_for()
    assert _numbers(page) == ("16,777,216", "65,536", "0.39%")
    diagram = page.get_by_test_id("diagram")
    assert "r=8" in diagram.text_content() and "d=4,096" in diagram.text_content()


def test_keyboard_arrows_move_the_rank(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=4096&k=4096&r=8")
    slider = _rank_slider(page)
    slider.press("ArrowRight")
    page.get_by_test_id("lora-params").filter(has_text="73,728").wait_for()
    assert "r=9" in page.get_by_test_id("diagram").text_content()
    page.wait_for_function("location.search.includes('r=9')")
    slider.press("ArrowLeft")
    slider.press("ArrowLeft")
    page.get_by_test_id("lora-params").filter(has_text="57,344").wait_for()  # r = 7


def test_mouse_drag_redraws_while_dragging(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=64&k=64&r=1")
    page.get_by_test_id("lora-params").filter(has_text="128").wait_for()
    page.evaluate(
        """() => { window.__seen = new Set();
        const block = document.querySelector('[data-testid="numbers"]');
        new MutationObserver(() => window.__seen.add(block.querySelector('[data-testid="lora-params"]').innerText))
          .observe(block, {subtree: true, childList: true, characterData: true}); }"""
    )
    box = page.get_by_test_id("rank").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(box["x"] + box["width"] * i / 24, y)
        page.wait_for_timeout(60)
    seen_before_release = page.evaluate("window.__seen.size")
    page.mouse.up()
    page.wait_for_timeout(700)  # the last update after release
    assert seen_before_release >= 5, f"only {seen_before_release} redraws while dragging"
    r = int(re.search(r"r=(\d+)", page.get_by_test_id("diagram").text_content()).group(1))
    assert r > 30
    assert page.get_by_test_id("lora-params").inner_text() == f"{r * 128:,}"


@pytest.mark.parametrize(
    "query,expected",
    [
        ("?d=1024&k=1024&r=5", ("1,048,576", "10,240", "0.98%")),
        ("?d=11008&k=4096&r=16", ("45,088,768", "241,664", "0.54%")),
        ("?d=16&k=16&r=4&rslora=true&alpha=8", ("256", "128", "50%")),
    ],
)
def test_shared_links_reproduce_the_view(page, app_url: str, query: str, expected: tuple) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/" + query)
    page.get_by_test_id("lora-params").filter(has_text=expected[1]).wait_for()
    assert _numbers(page) == expected
    page.reload()
    page.get_by_test_id("lora-params").filter(has_text=expected[1]).wait_for()


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
    page.get_by_test_id("lora-params").filter(has_text=lora).wait_for()
    assert "Traceback" not in page.content()


def test_past_break_even_shows_a_warning(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url + "/?d=16&k=16&r=16")
    warning = page.get_by_test_id("rank-warning")
    warning.wait_for()
    assert "break-even" in warning.inner_text()
    assert page.get_by_test_id("savings").inner_text() == "saves nothing"


@pytest.mark.parametrize("width", [400, 360])
def test_narrow_screens_do_not_scroll_sideways(browser, app_url: str, width: int) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(app_url + "/")
    page.get_by_test_id("lora-params").filter(has_text="65,536").wait_for()
    page.wait_for_timeout(300)
    overflow = page.evaluate("document.documentElement.scrollWidth")
    context.close()
    assert overflow <= width + 1


@pytest.fixture
def course_page(app_url: str) -> Iterator[str]:
    """A course site on another origin that embeds the Explorer as the textbook embeds MicroSims."""
    html = f'<!doctype html><title>Course</title><h1>LoRA</h1><iframe src="{app_url}/?embed=1" width="800" height="502" style="border:0"></iframe>'

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = html.encode() if self.path == "/" else b""
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_embeds_in_a_502px_iframe(page, course_page: str) -> None:  # type: ignore[no-untyped-def]
    """The textbook embeds MicroSims in an iframe about 500 px high: the slider and numbers must be in view."""
    page.goto(course_page)
    frame = page.frame_locator("iframe")
    frame.get_by_test_id("lora-params").filter(has_text="65,536").wait_for()
    assert frame.get_by_test_id("nav-explorer").count() == 0
    for testid in ("rank", "lora-params", "lora-ratio", "diagram"):
        box = frame.get_by_test_id(testid).bounding_box()
        assert box is not None and box["y"] + min(box["height"], 40) <= 502, testid
    _rank_slider(frame).press("ArrowRight")
    frame.get_by_test_id("lora-params").filter(has_text="73,728").wait_for()
