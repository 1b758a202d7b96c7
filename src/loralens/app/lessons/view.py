"""The Lessons page's pure parts: activity titles and how a verdict is marked (the checks are in core/lessons.py)."""

from __future__ import annotations

from loralens.app.palette import COLORS
from loralens.core import lessons

ACTIVITY_TITLES = {
    "savings": "Find the rank for 99% savings",
    "models": "Compare model sizes",
    "limits": "When LoRA may not work",
}
#: verdict status -> (symbol, colour): a symbol as well as a colour, so the mark does not rest on colour alone
STATUS_STYLE = {
    lessons.CORRECT: ("✓ ", COLORS["merged"]),
    lessons.NOT_ENOUGH: ("✗ ", COLORS["b"]),
    lessons.NOT_LARGEST: ("↑ ", COLORS["full"]),
    lessons.WRONG: ("✗ ", COLORS["b"]),
}

__all__ = ["ACTIVITY_TITLES", "STATUS_STYLE"]
