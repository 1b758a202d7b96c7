"""In Chromium: the pages load under the Content-Security-Policy (no violation), and the launch token opens the
Inspector's folder feature only for the browser that followed the printed link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .app_process import loralens_command, served_app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def token_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_app(loralens_command(), tmp_path_factory.mktemp("token"), with_token=True) as url:
        yield url


@pytest.mark.parametrize(("path", "text"), [("/", "rank r"), ("/models", "LoRA on a real model"),
                                            ("/labs", "FIT"), ("/lessons", "Lesson"),
                                            ("/inspector", "Showing the sample adapter")])
def test_pages_work_under_the_csp(page, token_url: str, path: str, text: str) -> None:  # type: ignore[no-untyped-def]
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(token_url.split("?")[0] + path)
    page.get_by_text(text).first.wait_for()
    assert not [m for m in messages if "Content Security Policy" in m]


def test_the_printed_link_opens_folders_and_a_plain_one_does_not(page, token_url: str) -> None:  # type: ignore[no-untyped-def]
    base = token_url.split("?")[0]
    page.goto(base + "/inspector")
    page.get_by_text("needs the link with the token").first.wait_for()
    assert page.get_by_test_id("path-input").count() == 0
    page.goto(token_url)
    assert page.url == base + "/"  # the token left the address bar
    page.goto(base + "/inspector")
    page.get_by_test_id("path-input").wait_for()


@pytest.mark.parametrize("course", ["file", "other-site"])
def test_a_course_page_on_disk_can_embed_a_page_and_a_public_site_is_stopped_by_the_browser(  # type: ignore[no-untyped-def]
        browser, token_url: str, tmp_path, course: str) -> None:
    """The frame policy allows the documented embedding: a teacher's course page opened from disk (file://) frames
    /?embed=1 and the Explorer inside it runs (no CSP refusal). A public site cannot frame a server on loopback
    whatever it sends: Chromium's Local Network Access checks block the request (that is what the static MicroSim
    export is for), which this test pins so that the docs' advice stays true."""
    src = token_url.split("?")[0] + "/?embed=1&r=4"
    html = f'<!doctype html><title>course</title><iframe src="{src}" width="700" height="502"></iframe>'
    context = browser.new_context()
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    try:
        if course == "file":
            path = tmp_path / "course.html"
            path.write_text(html)
            page.goto(path.as_uri())
        else:
            page.route("http://course.example/**", lambda route: route.fulfill(status=200, content_type="text/html",
                                                                               body=html))
            failures: list[str] = []
            page.on("requestfailed", lambda request: failures.append(str(request.failure)))
            page.goto("http://course.example/lesson.html")
            for _ in range(100):  # the frame's request fails soon after the course page loads
                if failures:
                    break
                page.wait_for_timeout(100)
            assert any("LOCAL_NETWORK_ACCESS" in f for f in failures), failures
            return
        frame = page.wait_for_selector("iframe").content_frame()
        assert frame is not None
        frame.get_by_test_id("lora-params").get_by_text("32,768").wait_for()
        assert not [m for m in messages if "Content Security Policy" in m]
    finally:
        context.close()
