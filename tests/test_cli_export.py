"""``loralens export microsim DIR``: the MicroSim folder a textbook copies, written atomically, with one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from loralens.app.explorer.view import ExplorerState
from loralens.cli import main
from loralens.web import microsim

# The required structure of the MicroSim metadata schema (dmccreary/microsims, src/microsim-schema/
# microsim-schema.json, draft-07), encoded here: the schema file itself is CC BY-NC 4.0, not ours to ship.
STRING_LIST = {"type": "array", "items": {"type": "string"}}
REQUIRED_STRUCTURE = {
    "type": "object",
    "required": ["microsim"],
    "properties": {"microsim": {
        "type": "object",
        "required": ["dublinCore", "search", "educational", "technical", "userInterface"],
        "properties": {
            "dublinCore": {
                "type": "object",
                "required": ["title", "creator", "subject", "description", "date", "type", "format", "rights"],
                "properties": {
                    "title": {"type": "string"}, "creator": STRING_LIST, "subject": STRING_LIST,
                    "description": {"type": "string"}, "date": {"type": "string", "format": "date-time"},
                    "type": {"enum": ["Interactive Simulation", "Educational MicroSim", "Infographic"]},
                    "format": {"enum": ["text/javascript", "application/javascript", "text/html"]},
                    "rights": {"type": "string"}, "language": {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$"},
                },
            },
            "search": {
                "type": "object", "required": ["tags", "visualizationType"],
                "properties": {"tags": STRING_LIST, "visualizationType": {"type": "array", "items": {"enum": [
                    "animation", "chart", "infographic", "graph", "diagram", "simulation", "interactive-demo",
                    "data-visualization", "3d-model", "timeline", "network", "map", "dashboard"]}},
                    "complexity": {"type": "integer", "minimum": 1, "maximum": 10}},
            },
            "educational": {
                "type": "object", "required": ["gradeLevel", "subjectArea", "topic", "learningObjectives"],
                "properties": {
                    "gradeLevel": {"type": "array", "items": {"enum": [
                        "K", *[str(i) for i in range(1, 13)], "Undergraduate", "Graduate", "Adult"]}},
                    "subjectArea": {"type": "array", "items": {"enum": [
                        "Mathematics", "Science", "Physics", "Chemistry", "Biology", "Computer Science", "Engineering",
                        "Economics", "Finance", "Statistics", "Psychology", "Social Studies", "Language Arts", "Art",
                        "Music", "Health", "Physical Education", "Other"]}},
                    "topic": STRING_LIST, "learningObjectives": STRING_LIST,
                    "bloomsTaxonomy": {"type": "array", "items": {"enum": [
                        "Remember", "Understand", "Apply", "Analyze", "Evaluate", "Create"]}},
                },
            },
            "technical": {
                "type": "object", "required": ["framework", "canvasDimensions"],
                "properties": {
                    "framework": {"enum": ["p5.js", "vanilla-js", "d3.js", "three.js", "other"]},
                    "canvasDimensions": {"type": "object", "properties": {
                        "width": {"type": "integer"}, "height": {"type": "integer"}, "responsive": {"type": "boolean"}}},
                },
            },
            "userInterface": {
                "type": "object", "required": ["controls"],
                "properties": {"controls": {"type": "array", "items": {
                    "type": "object", "required": ["id", "type", "label"],
                    "properties": {"id": {"type": "string"}, "label": {"type": "string"}, "type": {"enum": [
                        "slider", "range-slider", "button", "toggle-button", "checkbox", "radio", "dropdown",
                        "multi-select", "text-input", "number-input", "color-picker", "file-upload", "date-picker"]}},
                }}},
            },
        },
    }},
}


def export(tmp_path: Path, *args: str, name: str = "lora-explorer") -> tuple[int, Path]:
    out = tmp_path / name
    return main(["export", "microsim", str(out), "--no-screenshot", *args]), out


def test_writes_the_four_parts_of_a_microsim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = export(tmp_path)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["index.md", "main.html", "metadata.json"]
    assert f"wrote {out}/: main.html (" in capsys.readouterr().out
    umask = __import__("os").umask(0)
    __import__("os").umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # a web server may read it (mkdtemp alone gives 0700)


def test_main_html_is_self_contained_and_small(tmp_path: Path) -> None:
    _, out = export(tmp_path)
    page = (out / "main.html").read_text(encoding="utf-8")
    assert len(page.encode()) <= 60_000
    assert "<script>" in page and "<style>" in page and 'type="module"' not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "a reference to another host"
    assert "<script src" not in page and "<link" not in page and "import(" not in page
    assert "</script>" not in page.split("<script>", 1)[1].rsplit("</script>", 1)[0]


def test_compacted_module_still_matches_the_golden_vectors(tmp_path: Path) -> None:
    """What main.html inlines (comments and indentation dropped) is the module: node runs the golden test on it."""
    node = __import__("shutil").which("node")
    if node is None:
        pytest.fail("node is not installed (the golden vectors need it)")
    _, out = export(tmp_path)
    page = (out / "main.html").read_text(encoding="utf-8")
    script = page.split("<script>\n", 1)[1].rsplit("</script>", 1)[0].replace("<\\/", "</")
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "explorer.js").write_text(script, encoding="utf-8")
    test = (root / "tests" / "js" / "golden.test.js").read_text(encoding="utf-8")
    test = test.replace("'../../src/loralens/web/explorer.js'", json.dumps(str(tmp_path / "web" / "explorer.js")))
    test = test.replace("path.join(__dirname, '..', 'fixtures', 'explorer_golden.json')",
                        json.dumps(str(root / "tests" / "fixtures" / "explorer_golden.json")))
    (tmp_path / "golden.test.js").write_text(test, encoding="utf-8")
    result = subprocess.run([node, "--test", str(tmp_path / "golden.test.js")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "# fail 0" in result.stdout, result.stdout[-4000:]


def test_metadata_has_the_schema_required_structure(tmp_path: Path) -> None:
    _, out = export(tmp_path, "--title", "LoRA in 502 pixels")
    data = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, REQUIRED_STRUCTURE, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    dc = data["microsim"]["dublinCore"]
    assert dc["title"] == "LoRA in 502 pixels" and datetime.fromisoformat(dc["date"].replace("Z", "+00:00"))
    ids = [c["id"] for c in data["microsim"]["userInterface"]["controls"]]
    assert {"rank", "rank-input", "d-slider", "presets", "alpha", "rslora", "target"} <= set(ids)


def test_the_required_structure_check_can_fail() -> None:
    data = microsim.metadata("x", "t", ExplorerState())
    del data["microsim"]["dublinCore"]["rights"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, REQUIRED_STRUCTURE)
    data = microsim.metadata("x", "t", ExplorerState(), now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    data["microsim"]["technical"]["framework"] = "vanilla"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, REQUIRED_STRUCTURE)


def test_index_md_follows_the_textbook_convention(tmp_path: Path) -> None:
    _, out = export(tmp_path, name="lora-sim")
    text = (out / "index.md").read_text(encoding="utf-8")
    front = text.split("---\n")[1]
    assert front.startswith("title: LoRA: Low-Rank Adaptation Explorer\ndescription: ")
    assert "image: /sims/lora-sim/lora-sim.png" in front
    assert '<iframe src="main.html" height="502px" width="100%" scrolling="no"></iframe>' in text
    assert "](./main.html){ .md-button .md-button--primary }" in text
    for heading in ("## Description", "## Lesson Plan", "**Learning Objectives:**", "**Activities:**", "**Assessment:**"):
        assert heading in text
    for idea in ("1024×1024", "full-rank update", "B = 0 and A random", "W′ = W + (α/r)·B·A", "swapping",
                 "other parameter-efficient", "during training, and during inference", "answers=false"):
        assert idea in text, idea


def test_options_pick_the_initial_state_and_rmax(tmp_path: Path) -> None:
    _, out = export(tmp_path, "--d", "1024", "--r", "4", "--rmax", "16", "--alpha", "8", "--rslora", "--no-answers")
    page = (out / "main.html").read_text(encoding="utf-8")
    options = json.loads(__import__("html").unescape(re.search(r'data-ll-explorer="([^"]*)"', page).group(1)))
    assert options["initial"] == {"d": "1024", "k": "1024", "r": "4", "alpha": "8", "rslora": "true",
                                  "rmax": "16", "answers": "false"}
    assert options["links"] is False and options["matrices"] is None
    meta = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    rank = meta["microsim"]["userInterface"]["controls"][0]
    assert rank["properties"] == {"min": 1, "max": 16, "default": 4, "step": 1, "logarithmic": False}


@pytest.mark.parametrize("args,message", [
    (["--d", "0"], "loralens: error: --d: must be from 1 to 65,536, got 0"),
    (["--d", "64", "--r", "65"], "loralens: error: --r: must be at most min(d, k) = 64, got 65"),
    (["--rmax", "16", "--r", "17"], "loralens: error: --r: must be at most rmax = 16, got 17"),
    (["--alpha", "0"], "loralens: error: --alpha: must be at least 0.001 and at most 100000, got 0"),
    (["--target", "100"], "loralens: error: --target: must be at least 1 and at most 99.999, got 100"),
    (["--title", " "], "loralens: error: --title: must be one non-empty line"),
])
def test_bad_options_are_one_line_and_nothing_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         args: list[str], message: str) -> None:
    code, out = export(tmp_path, *args)
    assert code == 2
    assert capsys.readouterr().err.strip() == message
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = export(tmp_path)
    (out / "index.md").write_text("my edits", encoding="utf-8")
    code, _ = export(tmp_path)
    assert code == 1
    assert capsys.readouterr().err.strip() == f"loralens: error: {out}: already exists; pass --force to replace it"
    assert (out / "index.md").read_text(encoding="utf-8") == "my edits"
    code, _ = export(tmp_path, "--force")
    assert code == 0 and (out / "index.md").read_text(encoding="utf-8").startswith("---\n")
    assert [p.name for p in tmp_path.iterdir()] == ["lora-explorer"]  # no temporary folder left


def test_screenshot_missing_browser_is_a_note_and_exit_0(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    env = {"LORALENS_CHROMIUM": str(tmp_path / "no-chromium"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "loralens", "export", "microsim", str(out)], capture_output=True,
                            text=True, env={**__import__("os").environ, **env})
    assert result.returncode == 0, result.stderr
    assert "note: no screenshot: Chromium not found at" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["index.md", "main.html", "metadata.json"]
