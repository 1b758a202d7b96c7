"""The Inspector in real Chromium: the sample opens, a broken upload is explained, a resize downloads, narrow
screens scroll the table instead of the page. The ``page`` fixture fails on any request to another host."""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from loralens.adapters import inspect_adapter, load_adapter, load_adapter_from_bytes
from loralens.app.inspector.page import sample_path

from .app_process import served_app
from .nicegui_page import open_connected


def sample_bytes() -> tuple[bytes, bytes]:
    folder = sample_path()
    return (folder / "adapter_config.json").read_bytes(), (folder / "adapter_model.safetensors").read_bytes()


def test_opens_on_the_sample_with_its_module_count(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    report = inspect_adapter(load_adapter(sample_path()))
    open_connected(page, app_url + "/inspector")
    page.get_by_text(f"Modules ({report.summary.modules})", exact=True).wait_for()
    page.get_by_text("Showing the sample adapter shipped with loralens").wait_for()
    first = report.modules[0]
    table = page.get_by_test_id("inspector-table")
    table.get_by_text(first.name, exact=True).wait_for()
    assert table.locator("tbody tr").count() == min(20, len(report.modules))  # first page of the table
    assert page.get_by_test_id("spectrum-chart").locator("canvas").count() >= 1


def test_broken_upload_shows_the_message_beside_the_upload(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    config, weights = sample_bytes()
    broken = weights[: len(weights) // 3]
    try:
        load_adapter_from_bytes(config, broken, name="upload")
        raise AssertionError("the truncated file was accepted")
    except Exception as error:  # noqa: BLE001 - the library's message is what the page must show
        expected = str(error)
    open_connected(page, app_url + "/inspector")
    page.get_by_text("Showing the sample adapter").wait_for()
    page.get_by_test_id("inspector-upload").locator("input[type=file]").set_input_files([
        {"name": "adapter_config.json", "mimeType": "application/json", "buffer": config},
        {"name": "adapter_model.safetensors", "mimeType": "application/octet-stream", "buffer": broken},
    ])
    error = page.get_by_test_id("upload-error")
    error.wait_for()
    assert error.inner_text() == expected
    assert "adapter_model.safetensors" in expected
    assert "Traceback" not in page.content()
    page.get_by_text("Showing the sample adapter").wait_for()


def test_upload_of_a_good_adapter_replaces_the_sample(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    config, weights = sample_bytes()
    open_connected(page, app_url + "/inspector")
    page.get_by_text("Showing the sample adapter").wait_for()
    page.get_by_test_id("inspector-upload").locator("input[type=file]").set_input_files([
        {"name": "adapter_config.json", "mimeType": "application/json", "buffer": config},
        {"name": "mine.safetensors", "mimeType": "application/octet-stream", "buffer": weights},
    ])
    page.get_by_text("Showing upload mine.safetensors").wait_for()


def test_resize_downloads_a_zip_of_a_valid_adapter(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/inspector?mode=rank&rank=2")
    page.get_by_test_id("resize-table").wait_for()
    with page.expect_download() as info:
        page.get_by_test_id("resize-download").click()
    download = info.value
    assert download.suggested_filename == "sample_adapter-r2.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
        config, weights = archive.read("adapter_config.json"), archive.read("adapter_model.safetensors")
    resized = inspect_adapter(load_adapter_from_bytes(config, weights))
    assert {m.r for m in resized.modules} == {2}


def test_narrow_screen_scrolls_the_table_not_the_page(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 400, "height": 800})
    open_connected(page, app_url + "/inspector")
    page.get_by_test_id("inspector-table").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    scroller = page.get_by_test_id("inspector-table").locator(".q-table__middle")
    assert scroller.evaluate("e => e.scrollWidth > e.clientWidth")  # the table scrolls sideways


def test_picking_a_module_goes_into_the_url(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    report = inspect_adapter(load_adapter(sample_path()))
    target = report.modules[2]
    open_connected(page, app_url + "/inspector")
    page.get_by_test_id("inspector-table").get_by_text(target.name, exact=True).click()
    page.get_by_text(f"{target.name}: {target.out_features} × {target.in_features}").wait_for()
    page.wait_for_url(f"**/inspector?module={target.name}")


SMALL_LIMIT = 1000
SMALL_LIMIT_APP = f"""
from loralens.app import settings
from loralens.app.main import run_app
settings.current.upload_limit_bytes = {SMALL_LIMIT}
run_app(show=False)
"""


@pytest.fixture(scope="module")
def small_limit_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app with a 1,000-byte upload limit, so that the browser's own rejection can be tested."""
    argv = [sys.executable, "-c", SMALL_LIMIT_APP]
    with served_app(argv, tmp_path_factory.mktemp("limit"), ready_path="/inspector") as url:
        yield url


def test_browser_refuses_a_file_over_the_limit(page, small_limit_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, small_limit_url + "/inspector")
    page.get_by_text("Showing the sample adapter").wait_for()
    page.get_by_test_id("inspector-upload").locator("input[type=file]").set_input_files([
        {"name": "big.safetensors", "mimeType": "application/octet-stream", "buffer": b"x" * (SMALL_LIMIT + 1)},
    ])
    error = page.get_by_test_id("upload-error")
    error.wait_for()
    assert error.inner_text() == "big.safetensors is larger than the 1,000-byte limit"


def test_the_resize_download_uploads_again(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/inspector?mode=rank&rank=2")
    page.get_by_test_id("resize-table").wait_for()
    with page.expect_download() as info:
        page.get_by_test_id("resize-download").click()
    data = Path(info.value.path()).read_bytes()
    page.get_by_test_id("inspector-upload").locator("input[type=file]").set_input_files([
        {"name": "sample_adapter-r2.zip", "mimeType": "application/zip", "buffer": data},
    ])
    page.get_by_text("Showing upload sample_adapter-r2.safetensors").wait_for()


def test_a_text_file_named_bin_gets_the_real_reason(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    open_connected(page, app_url + "/inspector")
    page.get_by_text("Showing the sample adapter").wait_for()
    page.get_by_test_id("inspector-upload").locator("input[type=file]").set_input_files([
        {"name": "bad.bin", "mimeType": "application/octet-stream", "buffer": b"this is text\n\n"},
    ])
    error = page.get_by_test_id("upload-error")
    error.wait_for()
    assert error.inner_text().startswith("bad.bin is a 14-byte text file, neither a pickle nor a safetensors file")


def test_the_upload_header_shows_real_progress(page, app_url: str) -> None:  # type: ignore[no-untyped-def]
    """On a slow link (Chromium's own throttling), the header's percentage moves between 0 and 100 while the
    bytes go out, then the page answers about the file (here: why 2 MB of zeros is not an adapter)."""
    import re

    open_connected(page, app_url + "/inspector")
    page.get_by_text("Showing the sample adapter").wait_for()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 5, "downloadThroughput": 10_000_000,
                                                  "uploadThroughput": 500_000})
    page.get_by_test_id("inspector-upload").locator("input[type=file]").set_input_files([
        {"name": "zeros.safetensors", "mimeType": "application/octet-stream", "buffer": bytes(2_000_000)}])
    header = page.get_by_test_id("inspector-upload").locator(".q-uploader__header")
    seen: set[float] = set()
    error = page.get_by_test_id("upload-error")
    for _ in range(600):  # at most about a minute
        if error.is_visible():
            break
        match = re.search(r"([\d.]+)%", header.inner_text())
        if match:
            seen.add(float(match.group(1)))
        page.wait_for_timeout(100)
    error.wait_for(timeout=1000)
    assert "zeros.safetensors" in error.inner_text()
    assert any(0 < value < 100 for value in seen), seen
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
