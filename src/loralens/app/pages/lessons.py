"""The Lessons page (filled in by its issue)."""

from __future__ import annotations

from nicegui import ui

from loralens.app.layout import page_frame


def register() -> None:
    """Add the page's route."""

    @ui.page("/lessons")
    def page(embed: bool = False) -> None:
        with page_frame("Lessons", embed):
            ui.label("Lessons — coming soon")
