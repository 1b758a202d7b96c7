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
