"""The app's pages, once: the navigation, the routes and the tests all read this list. Pure (no NiceGUI)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Page:
    """One page: its title in the navigation, its route, and the package under ``loralens.app`` that draws it."""

    title: str
    path: str
    package: str

    def module(self) -> ModuleType:
        """The page's NiceGUI module (``loralens.app.<package>.page``), which has ``register()``."""
        return importlib.import_module(f"loralens.app.{self.package}.page")


PAGES = (
    Page("Explorer", "/", "explorer"),
    Page("Models", "/models", "models"),
    Page("Labs", "/labs", "labs"),
    Page("Lessons", "/lessons", "lessons"),
    Page("Inspector", "/inspector", "inspector"),
)

__all__ = ["PAGES", "Page"]
