"""A browser that refuses the page its storage (third-party storage blocked in an LMS iframe) still gets a
working page: NiceGUI connects, a checked answer gets its verdict, the Lessons page says progress is not kept,
and nothing is thrown to the console."""

from __future__ import annotations
from .nicegui_page import open_connected

# what a browser with third-party storage blocked does on every read of either storage inside a foreign iframe
REFUSE_STORAGE = """
for (const name of ['sessionStorage', 'localStorage']) {
  Object.defineProperty(window, name, { configurable: true,
    get() { throw new DOMException(`Failed to read the '${name}' property from 'Window': Access is denied`,
                                   'SecurityError'); } });
}
"""


def test_pages_work_when_the_browser_refuses_storage(browser, app_url: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    context.add_init_script(REFUSE_STORAGE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        open_connected(page, app_url + "/lessons")
        page.get_by_test_id("savings-rank-answer").fill("6")
        page.get_by_test_id("savings-rank-check").click()  # answered over the websocket: NiceGUI connected
        page.get_by_test_id("savings-rank-verdict").get_by_text("r = 6 saves 98.8%, not enough").wait_for(timeout=15_000)
        # the lesson's progress cannot be kept, and the page says so instead of pretending
        page.get_by_text("This browser does not keep progress (storage is blocked)").wait_for()
        assert errors == []
    finally:
        context.close()


def test_the_refusal_is_real_without_the_shim(browser) -> None:  # type: ignore[no-untyped-def]
    """The init script above does make storage reads throw (on a blank page, which has no shim)."""
    context = browser.new_context()
    context.add_init_script(REFUSE_STORAGE)
    page = context.new_page()
    try:
        page.set_content("<p>blank</p>")
        assert page.evaluate("() => { try { window.sessionStorage; return 'read'; } catch (e) { return e.name; } }") \
            == "SecurityError"
    finally:
        context.close()
