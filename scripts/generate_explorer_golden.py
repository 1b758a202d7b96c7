"""Write the golden vectors that the browser Explorer (src/loralens/web/explorer.js) must reproduce exactly.

Python is the oracle: every record is what ``loralens.app.explorer.view`` (and ``loralens.core``) computes for a
state, a URL query or a formatter call. ``tests/js/golden.test.js`` checks the JS against the file under Node's
test runner, the browser tests check it again in Chromium, and ``tests/app/explorer/test_golden.py`` checks that
running this script again gives the same file (so the fixture cannot go stale).

    python scripts/generate_explorer_golden.py            # writes tests/fixtures/explorer_golden.json
"""

from __future__ import annotations

import json
import random
import sys
from fractions import Fraction
from pathlib import Path

from loralens.app.explorer.view import (
    PRESETS,
    ExplorerState,
    ExplorerView,
    build_view,
    explorer_url,
    models_url,
    preset_index,
    state_from_query,
)
from loralens.core.counting import MAX_DIM
from loralens.core.units import binary_bytes, percent, share_percent, short_count, significant

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "explorer_golden.json"


def view_record(view: ExplorerView) -> dict:
    """Everything the Explorer shows for one state, as plain JSON (the browser module's ``computeView``)."""
    s = view.state
    return {
        "rank_max": s.rank_max,
        "scaling": view.scaling,
        "full_text": view.full_text,
        "lora_text": view.lora_text,
        "ratio_text": view.ratio_text,
        "savings_text": view.savings_text,
        "break_even_text": view.break_even_text,
        "warning": view.warning,
        "max_rank_text": view.max_rank_text,
        "formula_full": view.formula_full,
        "formula_lora": view.formula_lora,
        "formula_merge": view.formula_merge,
        "diagram": diagram_record(view.diagram),
        "bars": view.bars,
        "growth_d": view.growth_d,
        "growth_r": view.growth_r,
        "example_rows": [list(row) for row in view.example_rows],
        "worked_example": view.worked_example,
        "benefits": [list(item) for item in view.benefits],
        "small": view.small,
        "matrices_hint": view.matrices_hint,
        "preset": preset_index(s.d, s.k),
        "url": explorer_url(s),
        "url_embed": explorer_url(s, embed=True),
        "models_url": models_url(s),
        "models_url_embed": models_url(s, embed=True),
    }


def diagram_record(layout: dict) -> dict:
    """The diagram's geometry and texts, compactly: [x, y, w, h] per rectangle, [text, x, y] per label."""
    return {
        "size": [layout["width"], layout["height"]],
        "rects": [[r["x"], r["y"], r["w"], r["h"]] for r in layout["rects"]],
        "labels": [[label["text"], label["x"], label["y"]] for label in layout["labels"]],
        "clamped": layout["clamped"],
        "note": layout["note"],
    }


def _state(d: int, k: int, r: int, **rest: object) -> ExplorerState:
    return ExplorerState(d=d, k=k, r=min(r, d, k), square=d == k, **rest)  # type: ignore[arg-type]


def golden_states() -> list[ExplorerState]:
    """Corners, d != k, r at and past break-even, huge d, rounding ties, alpha and target variety, seeded random."""
    states = [ExplorerState()]
    dims = (1, 2, 3, 7, 16, 64, 65, 768, 4096, 65_536)
    for d in dims:
        for k in (1, 16, 4096, 65_536, d):
            m = min(d, k)
            be = Fraction(d * k, d + k)
            for r in {1, 2, m, max(1, int(be)), min(m, int(be) + 1), max(1, m // 2)}:
                states.append(_state(d, k, r))
    for d, k in ((11008, 4096), (4096, 11008), (768, 3072), (3, 7), (12288, 12288), (8192, 8192)):
        for r in (1, 8, 16, 64, 1000):
            states.append(_state(d, k, r))
    # r exactly at break-even and one past it, on square and rectangular layers
    for d, k, r in ((16, 16, 8), (16, 16, 9), (65_536, 65_536, 32_768), (65_536, 65_536, 32_769), (6, 3, 2),
                    (12, 4, 3), (12, 4, 4), (2, 2, 1), (2, 2, 2)):
        states.append(_state(d, k, r))
    # shares that are exact rounding ties in decimal: 0.125% (r(d+k)/dk = 1/800), 2.675%, 12.5%, 62.5%, 0.5%
    for d, r in ((1600, 1), (3200, 2), (8000, 107), (16, 1), (16, 5), (400, 1), (800, 1), (32, 1), (64, 1),
                 (4096, 1), (65_536, 1), (65_536, 2), (2048, 1), (1024, 5), (1000, 1), (10_000, 1), (20_000, 1)):
        states.append(_state(d, d, r))
    # alpha values whose scaling rounds on a tie or just off one (2.675, 1.005, 0.125, 12.5 ...)
    for alpha in (2.675, 1.005, 0.125, 0.0125, 12.5, 1.25, 100_000.0, 0.001, 99_999.5, 33.333, 100_000 / 3,
                  0.015, 9.995, 99.95, 0.0009995 * 1000, 7.0):
        for r, rslora in ((1, False), (8, False), (16, True), (3, True), (100, False)):
            states.append(ExplorerState(d=4096, k=4096, r=r, alpha=alpha, rslora=rslora))
    for target in (1.0, 12.5, 50.0, 87.5, 99.5, 99.9, 99.95, 99.99, 99.999, 33.3):
        for d, k in ((1024, 1024), (16, 16), (65_536, 65_536), (11008, 4096)):
            states.append(_state(d, k, 8, target=target))
    states += [ExplorerState(d=4096, k=4096, r=r, rmax=16) for r in (1, 8, 16)]
    states += [ExplorerState(d=1024, k=1024, r=r, answers=False) for r in (1, 10, 11)]
    states += [ExplorerState(d=64, k=64, r=8, trained=True), _state(4, 4, 4, answers=False, rslora=True)]
    rng = random.Random(20261201)
    for _ in range(80):
        d, k = rng.randint(1, MAX_DIM), rng.choice((None, rng.randint(1, MAX_DIM)))
        k = d if k is None else k
        r = rng.randint(1, min(d, k)) if rng.random() < 0.3 else rng.randint(1, min(64, d, k))
        states.append(_state(d, k, r, alpha=round(rng.uniform(0.001, 512), rng.randint(0, 4)) or 1.0,
                             rslora=rng.random() < 0.3, target=round(rng.uniform(1, 99.999), rng.randint(0, 3))))
    unique = list(dict.fromkeys(states))
    return unique


GOLDEN_QUERIES: list[dict[str, str]] = [
    {}, {"r": "0"}, {"d": "-5", "r": "1"}, {"d": "abc"}, {"r": "1e9"}, {"r": "2.5"}, {"r": "3.5"}, {"d": "1_024"},
    {"d": " 64 "}, {"alpha": "inf"}, {"alpha": "nan"}, {"alpha": "-1"}, {"alpha": "1e-5"}, {"rslora": "maybe"},
    {"rslora": "YES"}, {"square": "0", "d": "100"}, {"d": "100", "k": "200"}, {"k": "300"}, {"d": "300"},
    {"answers": "false"}, {"answers": "0"}, {"answers": "no"}, {"rmax": "16", "r": "20"}, {"rmax": "16"},
    {"rmax": "-1"}, {"rmax": "100000"}, {"foo": "1"}, {"foo": "1", "bar": "x", "r": "4"}, {"embed": "1"},
    {"embed": "x"}, {"target": "100"}, {"target": "0.5"}, {"target": "99.9"}, {"d": "+12"}, {"d": "1e3"},
    {"d": ".5e1"}, {"d": "5."}, {"d": "0x10"}, {"d": "'quote\"s"}, {"d": "it's"}, {"d": "back\\slash"}, {"d": ""},
    {"d": "64", "k": "64", "r": "65"}, {"d": "16", "r": "16"}, {"d": "1e400"}, {"r": "-0"}, {"r": "1.0"},
    {"trained": "true", "d": "64"}, {"d": "65537"}, {"alpha": "100001"}, {"alpha": "0.0005"}, {"d": "1.5"},
    {"d": "\tnew\nline"}, {"r": "Infinity"}, {"r": "-inf"}, {"d": "__1"}, {"d": "1__0"}, {"d": "1_"},
]


def query_record(query: dict[str, str]) -> dict:
    state, messages = state_from_query(query)
    return {"query": query, "state": state.as_dict(), "messages": messages}


def _fraction(value: Fraction) -> list[int]:
    return [value.numerator, value.denominator]


def format_cases() -> list[dict]:
    """Formatter calls with tie values (0.125, 2.675, 12.5, ...) and awkward magnitudes."""
    values = [0.125, 2.675, 1.005, 12.5, 0.5, 9.995, 99.95, 99.995, 0.0625, 1e-9, 123456.5, 0.3, 2.5, 3.5, 0.05,
              99.999, 1 / 3, 2 / 3, 0.1 + 0.2, 1e15, 5e-324, 1.7976931348623157e308, 0.000123456, 65536.0, 9.5,
              0.95, 0.995, 0.9995, 100.0, 1.0, 10.0, 0.01, 0.015, 0.025, 0.035, 0.045, 1.45, 1.55, 8.345, 2.345]
    cases: list[dict] = []
    for value in values:
        for digits in (1, 2, 3, 4):
            cases.append({"fn": "significant", "args": [value, digits], "out": significant(value, digits)})
        for sign in (1, -1):
            cases.append({"fn": "format_g", "args": [sign * value], "out": f"{sign * value:g}"})
        cases.append({"fn": "fixed1", "args": [value], "out": f"{value:,.1f}"})
    for num, den in ((1, 800), (107, 4000), (1, 8), (5, 8), (1, 200), (1, 2048), (2047, 2048), (1, 1), (0, 1),
                     (32769, 32768), (2**32 - 1, 2**32), (1, 2**32), (3, 1), (1, 3), (199, 200), (1999, 2000)):
        for digits in (2, 3):
            cases.append({"fn": "share_percent", "args": [num, den, digits],
                          "out": share_percent(Fraction(num, den), digits)})
            cases.append({"fn": "percent", "args": [num, den, digits], "out": percent(Fraction(num, den), digits)})
    for n in (0, 1, 512, 999, 1000, 999_499, 999_500, 999_999_999, 16_777_216, 65_536, 1_048_576, 2**32, 2**36,
              123_456_789, 999_950, 10**12, 2**48):
        cases.append({"fn": "short_count", "args": [n], "out": short_count(n)})
        cases.append({"fn": "binary_bytes", "args": [n], "out": binary_bytes(n)})
    for text in ("abc", "it's", 'say "hi"', "both ' and \"", "back\\slash", "", "tab\there", "new\nline", "é ü",
                 "\x00\x7f", "\u200b"):
        cases.append({"fn": "py_repr", "args": [text], "out": repr(text)})
    return cases


def build_golden() -> dict:
    """The whole fixture, as the JSON object written to OUT."""
    return {
        "about": "Written by scripts/generate_explorer_golden.py from loralens' Python view; do not edit.",
        "presets": [list(p) for p in PRESETS],
        "states": [{"state": s.as_dict(), "view": view_record(build_view(s))} for s in golden_states()],
        "queries": [query_record(q) for q in GOLDEN_QUERIES],
        "formats": format_cases(),
    }


def render(golden: dict) -> str:
    return json.dumps(golden, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    out.write_text(render(build_golden()), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
