"""Every page, as a phone (400 px), a laptop (1280 px) and a course site's 700 × 502 iframe (embed=1) show it:
nothing wider than the window, no value cut off in its box, no text over other text, no chart label cut off,
overlapping another or hidden in a paged legend. Each failure names the element and its measurements
(layout_checks.py). The walk covers every page of app/site.py: a new page must be added here."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from loralens.app.site import PAGES

from .layout_checks import page_problems

# every page, and the views of it a student or teacher opens; the labs small enough to run in a second
WALK = {
    "/": ["/"],
    "/models": ["/models"],
    "/labs": ["/labs?lab=fit&d=32&k=32&steps=60", "/labs?lab=init&d=32&k=32&steps=60",
              "/labs?lab=merge&d=64&k=64&batch=16", "/labs?lab=subspace&d=32&k=64&rank_large=16&steps=60"],
    "/lessons": ["/lessons", "/lessons?view=teacher", "/lessons?activity=savings", "/lessons?activity=models"],
    "/inspector": ["/inspector"],
}
URLS = [url for urls in WALK.values() for url in urls]
WIDTHS = (400, 1280)
IFRAME = (700, 502)

# ready when the page has drawn what it computes: the labs their reading and charts, every chart its scene
READY_JS = """() => {
  if (!document.querySelector('.nicegui-content')) return false;
  const reading = document.querySelector('[data-testid="lab-reading"]');
  if (location.pathname === '/labs' && !(reading && reading.innerText.trim())) return false;
  return [...document.querySelectorAll('.nicegui-echart')].every((el) => {
    const vue = getElement(el);
    return vue && vue.chart && vue.chart.getZr().storage.getDisplayList().length > 0;
  });
}"""


def test_the_walk_covers_every_page() -> None:
    assert set(WALK) == {page.path for page in PAGES}


def _settle(target) -> None:  # type: ignore[no-untyped-def]  # a Page or a Frame
    target.wait_for_function(READY_JS, timeout=60_000)
    target.wait_for_timeout(400)  # let ResizeObserver-driven chart resizes and media queries apply


def host_page(page, app_url: str, body: str) -> None:  # type: ignore[no-untyped-def]
    """Open a course page holding ``body`` at the app's own origin (answered by Playwright, not the app).

    Same origin on purpose: in a cross-site iframe, a browser that blocks third-party storage (Playwright's
    contexts do) stops NiceGUI's own script, which reads sessionStorage unguarded, so no page would run."""
    url = f"{app_url}/__course_page__.html"
    page.route(url, lambda route: route.fulfill(status=200, content_type="text/html",
                                                body=f"<!doctype html><title>course</title>{body}"))
    page.goto(url)


def _report(url: str, where: str, problems: list[str]) -> str:
    return f"{url} {where}: {len(problems)} layout problem(s):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("url", URLS)
def test_page_fits_the_window(browser, app_url: str, url: str, width: int) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if r.url.startswith(("http", "ws"))
            and urlparse(r.url).hostname != "127.0.0.1" else None)
    try:
        page.goto(app_url + url)
        _settle(page)
        problems = page_problems(page)
    finally:
        context.close()
    assert not foreign
    assert not problems, _report(url, f"at {width} px", problems)


@pytest.mark.parametrize("url", URLS)
def test_page_fits_an_iframe(browser, app_url: str, url: str) -> None:  # type: ignore[no-untyped-def]
    width, height = IFRAME
    context = browser.new_context(viewport={"width": width + 40, "height": height + 40})
    page = context.new_page()
    src = app_url + url + ("&" if "?" in url else "?") + "embed=1"
    try:
        host_page(page, app_url, f'<iframe src="{src}" width="{width}" height="{height}" style="border:0"></iframe>')
        element = page.wait_for_selector("iframe")
        frame = element.content_frame() if element else None
        assert frame is not None
        frame.wait_for_load_state()
        _settle(frame)
        problems = page_problems(frame)
        header = frame.evaluate("() => document.querySelectorAll('header, .q-header').length")
    finally:
        context.close()
    assert header == 0, f"{src}: the navigation header is shown in embed mode"
    assert not problems, _report(url, f"in a {width} × {height} iframe", problems)
