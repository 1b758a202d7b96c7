"""Shared test configuration. NiceGUI's ``user`` fixture drives pages in-process (main file: tests/app_main.py)."""

import os

import pytest

pytest_plugins = ["nicegui.testing.user_plugin"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the real-browser tests last: Playwright's sync API keeps an event loop running in this thread while the
    browser is open, which the asyncio tests (NiceGUI's user fixture) cannot share."""
    items.sort(key=lambda item: "/e2e/" in str(item.path))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (CI=true) a skipped test is a failed one: a missing browser, Node or oracle, or an empty parametrisation
    (a fixture that lost its cases), must never pass as green."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI", "").lower() in ("1", "true") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped in CI, which counts as a failure: {reason}"
