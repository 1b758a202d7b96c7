"""The browser Explorer's golden vectors: the committed fixture is what the script writes now, and the JS module
reproduces it under Node's own test runner (tests/js/). A missing Node is a failure, never a skip."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "explorer_golden.json"


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("generate_explorer_golden", ROOT / "scripts" / "generate_explorer_golden.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixture_is_what_the_script_writes_now() -> None:
    """Regenerating gives the committed file byte for byte: change the view, then rerun the script."""
    script = _script()
    assert FIXTURE.read_text(encoding="utf-8") == script.render(script.build_golden()), (
        "tests/fixtures/explorer_golden.json is stale: run python scripts/generate_explorer_golden.py")


def test_fixture_covers_ties_break_even_and_huge_layers() -> None:
    script = _script()
    states = script.golden_states()
    assert len(states) >= 300
    shapes = {(s.d, s.k, s.r) for s in states}
    assert {(16, 16, 8), (16, 16, 9), (65_536, 65_536, 32_768), (1600, 1600, 1), (8000, 8000, 107)} <= shapes
    assert any(s.d != s.k for s in states) and any(not s.answers for s in states) and any(s.rmax for s in states)


def node_binary() -> str:
    """Node on PATH, or a failure (never a skip: without it the browser module is unchecked)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the browser Explorer's golden vectors need Node >= 18 (node --test)")
    return node


def test_js_module_reproduces_the_golden_vectors_under_node() -> None:
    node = node_binary()
    result = subprocess.run([node, "--test", str(ROOT / "tests" / "js")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass " in result.stdout
