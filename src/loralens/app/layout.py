"""The frame every page shares: a header with the navigation, and an embed mode without it.

``?embed=1`` hides the header so that a page fits a course site's iframe (the textbook embeds MicroSims
about 500 px high).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from nicegui import ui

from loralens.app.palette import COLORS
from loralens.app.site import PAGES

NAV = tuple((page.title, page.path) for page in PAGES)


_CSS = """
.ll-page { width: 100%; max-width: 1280px; margin: 0 auto; padding: 8px 12px; gap: 12px; }
.ll-num { font-variant-numeric: tabular-nums; font-weight: 600; }
.ll-muted { color: #555; }
.ll-warn { color: WARN; font-weight: 600; }
.ll-card { width: 100%; }
.ll-cap { font-size: 12px; color: #555; }
.ll-big { font-size: 20px; line-height: 1.5rem; }
.ll-numbers { display: flex; flex-wrap: wrap; column-gap: 24px; row-gap: 4px; align-items: baseline; }
.ll-strong { font-weight: 600; }
.ll-small { font-size: 14px; }
.ll-mono { font-family: ui-monospace, monospace; font-size: 14px; }
.ll-cols { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.ll-col { flex: 1 1 380px; min-width: 0; }
.ll-cols h3 { font-size: 16px; font-weight: 600; margin: 0 0 6px; }
.ll-table { width: 100%; border-collapse: collapse; font-size: 14px; }
.ll-table th, .ll-table td { border-bottom: 1px solid #e0e0e0; padding: 4px 6px; text-align: left; }
.ll-table .ll-r { text-align: right; font-variant-numeric: tabular-nums; }
.ll-list { margin: 0; padding-left: 18px; font-size: 14px; }
.ll-list li { margin-bottom: 4px; }
@media (max-width: 600px) { .ll-page { padding: 4px 6px; } .ll-hide-narrow { display: none; } }
""".replace("WARN", COLORS["warn"])


@contextmanager
def page_frame(title: str, embed: bool = False) -> Iterator[ui.column]:
    """Header with navigation (unless ``embed``), the page title, and a responsive column to fill."""
    ui.page_title(f"{title} · loralens")
    ui.add_css(_CSS)
    if not embed:
        with ui.header().classes("items-center gap-0 sm:gap-1 py-1 px-2 sm:px-3 bg-white text-black shadow-sm"):
            ui.link("loralens", "/").classes("text-lg font-bold no-underline text-black mr-1 sm:mr-3")
            for label, path in NAV:
                ui.link(label, path).classes("no-underline px-1 sm:px-2 py-1 rounded hover:bg-gray-100").props(
                    f'data-testid="nav-{label.lower()}"'
                )
    with ui.column().classes("ll-page") as column:
        yield column


E = TypeVar("E", bound=ui.element)


def tag(element: E, name: str) -> E:
    """Name an element for tests: data-testid in the browser, a marker for NiceGUI's ``user`` fixture."""
    element.props(f'data-testid="{name}"').mark(name)
    return element


def set_chart(chart: ui.echart, option: dict) -> None:
    """Replace a chart's whole option (ECharts merges by default, which would keep series that are gone)."""
    chart.options.clear()
    chart.options.update(option)
    chart.update()


class NumberField(ui.number):
    """``ui.number`` that leaves a typed value as typed when the field loses focus.

    NiceGUI's number clamps to min/max and rounds to its precision on blur: a typed -2 became 1 without a word,
    and whether the page's message for -2 was seen depended on which of the two events reached the server first.
    Every page checks its values itself and says what is wrong beside the field; min and max still bound the
    browser's arrows.
    """

    def sanitize(self) -> None:
        return


def error_label() -> ui.label:
    """An initially hidden line for a message beside the control that caused it."""
    label = ui.label("").classes("ll-warn").props('role="alert"')
    label.set_visibility(False)
    return label


def show_message(label: ui.label, message: str | None) -> None:
    """Show ``message`` in ``label``, or hide the label when there is none."""
    label.set_text(message or "")
    label.set_visibility(bool(message))
