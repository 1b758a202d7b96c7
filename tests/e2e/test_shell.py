"""Every page of the real app loads in Chromium, with its navigation, and asks no other host for anything."""

import pytest

PAGES = ["/", "/models", "/labs", "/lessons", "/inspector"]


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_offline(page, app_url: str, path: str) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(app_url + path)
    assert response is not None and response.status == 200
    page.get_by_test_id("nav-explorer").wait_for()
    assert "loralens" in page.title()
