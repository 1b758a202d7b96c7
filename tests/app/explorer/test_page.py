"""The served Explorer page in-process: the browser module is mounted from the app's own files, and the real-matrix
endpoint answers good queries with data and bad ones with one line (never a traceback)."""

import json

from nicegui.testing import User

from loralens.app.explorer import page
from loralens.web import WEB_DIR


async def test_page_mounts_the_browser_module(user: User) -> None:
    await user.open("/")
    mount = next(iter(user.find(marker="explorer").elements))
    options = json.loads(mount.props["data-ll-explorer"])
    assert options == {"links": True, "history": True, "matrices": page.MATRICES_PATH, "messages": False}
    await user.should_see("Why low rank works")


async def test_bad_links_are_named_by_the_server(user: User) -> None:
    await user.open("/?d=abc&r=0")
    await user.should_see("URL parameter d: expected a number, got 'abc'; using 4096; "
                          "URL parameter r: must be at least 1; using 1")


def test_head_loads_script_and_style_as_files_of_the_app() -> None:
    """No inline script or handler: the page keeps working under script-src 'self'."""
    head = page.head_html()
    assert f'<script src="{page.WEB_PATH}/explorer.js?v=' in head and "defer" in head
    assert f'<link rel="stylesheet" href="{page.WEB_PATH}/explorer.css?v=' in head
    assert "onload" not in head and "<script>" not in head
    assert (WEB_DIR / "explorer.js").is_file() and (WEB_DIR / "explorer.css").is_file()


async def test_matrices_for_a_small_layer() -> None:
    response = await page.matrices_response({"d": "8", "k": "6", "r": "2", "trained": "true"})
    data = json.loads(response.body)
    assert response.status_code == 200
    assert [(m["rows"], m["cols"]) for m in data["matrices"]] == [(8, 6), (8, 2), (2, 6), (8, 6), (8, 6)]
    assert data["sv_caption"].startswith("Singular values of ΔW from a float64 SVD: 2 of 6 are non-zero")
    at_init = json.loads((await page.matrices_response({"d": "8", "k": "6", "r": "2"})).body)
    assert at_init["sv_caption"].startswith("Singular values of ΔW from a float64 SVD: 0 of 6")
    assert all(v == 0 for v in at_init["matrices"][1]["values"])  # B starts at zero


async def test_matrices_refuse_bad_queries_with_one_line() -> None:
    for query, message in (
        ({"d": "4096"}, "d: heatmaps are drawn for d, k ≤ 64, got 4096×4096"),
        ({"d": "abc"}, "URL parameter d: expected a number, got 'abc'; using 4096"),
        ({"d": "8", "r": "9"}, "URL parameter r: must be at most min(d, k) = 8; using 8"),
        ({"d": "8", "alpha": "nan"}, "URL parameter alpha: expected a number, got 'nan'; using 16"),
    ):
        response = await page.matrices_response(query)
        assert response.status_code == 400
        assert json.loads(response.body) == {"error": message}
