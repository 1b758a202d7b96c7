"""Shared test configuration. NiceGUI's ``user`` fixture drives pages in-process (main file: tests/app_main.py)."""

pytest_plugins = ["nicegui.testing.user_plugin"]
