"""Shared test configuration. NiceGUI's ``user`` fixture drives pages in-process (main file: tests/app_main.py)."""

import pytest

pytest_plugins = ["nicegui.testing.user_plugin"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the real-browser tests last: Playwright's sync API keeps an event loop running in this thread while the
    browser is open, which the asyncio tests (NiceGUI's user fixture) cannot share."""
    items.sort(key=lambda item: "/e2e/" in str(item.path))
