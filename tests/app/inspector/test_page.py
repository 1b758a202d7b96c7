"""The Inspector page driven in-process by NiceGUI's ``user`` fixture: what a person sees and can do."""

from __future__ import annotations

import asyncio
import io
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
from nicegui import ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User

from loralens.adapters import inspect_adapter, load_adapter, load_adapter_from_bytes
from loralens.app.inspector import resize_view as rv
from loralens.app import settings
from loralens.app.inspector import page as inspector
from loralens.app.inspector.page import sample_path


def sample_files() -> tuple[bytes, bytes]:
    folder = sample_path()
    return (folder / "adapter_config.json").read_bytes(), (folder / "adapter_model.safetensors").read_bytes()


def sample_report():  # type: ignore[no-untyped-def]
    return inspect_adapter(load_adapter(sample_path()))


async def see(user: User, target: str | None = None, *, marker: str | None = None) -> None:
    """should_see that waits long enough for an adapter read in a worker thread on a busy machine (up to 30 s)."""
    await user.should_see(target, marker=marker, retries=300)


def element(user: User, marker: str) -> ui.element:
    found = user.find(marker=marker).elements
    assert len(found) == 1, f"{len(found)} elements marked {marker}"
    return next(iter(found))


async def upload(user: User, *files: tuple[str, bytes]) -> None:
    target = element(user, "inspector-upload")
    assert isinstance(target, ui.upload)
    await target.handle_uploads([SmallFileUpload(name, "application/octet-stream", data) for name, data in files])


@pytest.fixture
def loopback():  # type: ignore[no-untyped-def]
    old = settings.current.host
    settings.current.host = "127.0.0.1"
    yield
    settings.current.host = old


async def test_opens_on_the_sample_with_its_numbers(user: User) -> None:
    report = sample_report()
    await user.open("/inspector")
    await see(user, "Showing the sample adapter")
    await see(user, f"Modules ({report.summary.modules})")
    await see(user, f"{report.summary.parameters:,}")
    table = element(user, "inspector-table")
    assert isinstance(table, ui.table)
    rows = table.rows
    assert [r["name"] for r in rows] == [m.name for m in report.modules]
    for row, module in zip(rows, report.modules, strict=True):
        assert row["r"] == module.r
        assert row["delta_fro"] == pytest.approx(module.delta_fro)
        assert row["effective_rank"] == pytest.approx(module.effective_rank)
        assert row["numerical_rank"] == module.numerical_rank
        assert row["shape"] == f"{module.out_features} × {module.in_features}"
    first = report.modules[0]
    spectrum = element(user, "spectrum-chart")
    assert isinstance(spectrum, ui.echart)
    assert spectrum.options["series"][0]["data"] == pytest.approx(list(first.singular_values))
    heat = element(user, "heatmap-delta_fro")
    assert isinstance(heat, ui.echart)
    assert len(heat.options["series"][0]["data"]) == len(report.modules)


async def test_upload_of_both_files_shows_that_adapter(user: User) -> None:
    config, weights = sample_files()
    await user.open("/inspector")
    await see(user, "Showing the sample adapter")
    await upload(user, ("adapter_config.json", config), ("mine.safetensors", weights))
    await see(user, "Showing upload mine.safetensors")
    await user.should_not_see(marker="upload-error")  # hidden: nothing went wrong


async def test_upload_one_file_at_a_time(user: User) -> None:
    config, weights = sample_files()
    await user.open("/inspector")
    await see(user, "Showing the sample adapter")
    await upload(user, ("adapter_model.safetensors", weights))
    await see(user, "Received adapter_model.safetensors; now add adapter_config.json.")
    await upload(user, ("adapter_config.json", config))
    await see(user, "Showing upload adapter_model.safetensors")


async def test_broken_upload_shows_the_library_message_and_keeps_the_sample(user: User) -> None:
    config, weights = sample_files()
    await user.open("/inspector")
    await see(user, "Showing the sample adapter")
    await upload(user, ("adapter_config.json", config), ("adapter_model.safetensors", weights[: len(weights) // 2]))
    expected = None
    try:
        load_adapter_from_bytes(config, weights[: len(weights) // 2], name="upload")
    except Exception as error:  # noqa: BLE001 - the library's message is what the page must show
        expected = str(error)
    assert expected and "adapter_model.safetensors" in expected
    await see(user, expected)
    await see(user, "Showing the sample adapter")
    await user.should_not_see("Traceback")


async def test_bad_config_names_the_file(user: User) -> None:
    _, weights = sample_files()
    await user.open("/inspector")
    await see(user, "Showing the sample adapter")
    await upload(user, ("adapter_config.json", b"{not json"), ("adapter_model.safetensors", weights))
    await see(user, "adapter_config.json")
    await see(user, "is not valid JSON")


async def test_pickle_upload_is_refused_with_how_to_convert(user: User) -> None:
    await user.open("/inspector")
    await see(user, "Showing the sample adapter")
    await upload(user, ("adapter_model.bin", b"\x80\x04not really a pickle"))
    await see(user, "adapter_model.bin")
    await see(user, "safetensors")
    label = element(user, "upload-error")
    assert "pickle" in label.text  # type: ignore[attr-defined]


async def test_file_over_the_limit_is_refused_in_the_browser_and_on_the_server(user: User) -> None:
    await user.open("/inspector")
    limit_mb = settings.current.upload_limit_bytes / 2**20
    user.find(marker="inspector-upload").trigger("rejected", [{"name": "huge.safetensors", "size": 10**10,
                                                               "reason": "max-file-size"}])
    await see(user, f"huge.safetensors is larger than the {limit_mb:g} MB limit")
    old = settings.current.upload_limit_bytes
    settings.current.upload_limit_bytes = 100
    try:
        await user.open("/inspector")
        await upload(user, ("adapter_model.safetensors", b"x" * 101))
        await see(user, "adapter_model.safetensors is larger than the ")
    finally:
        settings.current.upload_limit_bytes = old


async def test_open_a_folder_on_this_machine(user: User, tmp_path: Path, loopback: None) -> None:
    folder = tmp_path / "my_adapter"
    shutil.copytree(sample_path(), folder)
    await user.open("/inspector")
    await see(user, "Showing the sample adapter")
    user.find(marker="path-input").type(str(folder))
    user.find(marker="path-open").click()
    await see(user, f"Showing {folder}")
    user.find(marker="path-input").clear().type(str(tmp_path / "nowhere"))
    user.find(marker="path-open").click()
    await see(user, "not found")
    await see(user, f"Showing {folder}")


async def test_folder_path_in_the_url_opens_it(user: User, tmp_path: Path, loopback: None) -> None:
    folder = tmp_path / "linked"
    shutil.copytree(sample_path(), folder)
    (folder / "adapter_model.safetensors").rename(folder / "weights.safetensors")
    await user.open(f"/inspector?path={folder}")
    await see(user, f"Showing {folder}")


async def test_folders_are_refused_when_not_on_loopback(user: User, tmp_path: Path) -> None:
    old = settings.current.host
    settings.current.host = "0.0.0.0"
    try:
        await user.open(f"/inspector?path={sample_path()}")
        await see(user, "opening a folder on the server's disk is turned off")
        await see(user, "Showing the sample adapter")
        await user.should_not_see(marker="path-input")
    finally:
        settings.current.host = old


async def test_module_in_the_url_is_selected_and_picking_updates_the_charts(user: User) -> None:
    report = sample_report()
    second = report.modules[1]
    await user.open(f"/inspector?module={second.name}")
    await see(user, f"{second.name}: {second.out_features} × {second.in_features}")
    spectrum = element(user, "spectrum-chart")
    assert spectrum.options["series"][0]["name"] == second.name  # type: ignore[attr-defined]
    picker = element(user, "module-picker")
    picker.set_value(report.modules[0].name)  # type: ignore[attr-defined]
    await see(user, f"{report.modules[0].name}: ")
    assert spectrum.options["series"][0]["data"] == pytest.approx(  # type: ignore[attr-defined]
        list(report.modules[0].singular_values))


async def test_bad_url_values_are_named(user: User) -> None:
    await user.open("/inspector?rank=lots&module=no.such.module")
    await see(user, "URL parameter rank")
    await see(user, "no module named 'no.such.module'")


async def test_resize_preview_follows_the_controls(user: User) -> None:
    report = sample_report()
    await user.open("/inspector?mode=rank&rank=1")
    await see(user, marker="resize-table")  # the adapter is read after the page is delivered
    table = element(user, "resize-table")
    assert isinstance(table, ui.table)
    assert [row["new_r"] for row in table.rows] == [1] * len(report.modules)
    expected = rv.resize_preview(report, rank=1)
    assert [row["energy_kept"] for row in table.rows] == pytest.approx([r.energy_kept for r in expected.rows])
    await see(user, f"LoRA parameters {expected.parameters_before:,} → {expected.parameters_after:,}")
    element(user, "resize-mode").set_value("energy")  # type: ignore[attr-defined]
    element(user, "resize-energy").set_value(0.5)  # type: ignore[attr-defined]
    half = rv.resize_preview(report, energy=0.5)
    assert [row["new_r"] for row in table.rows] == [r.new_r for r in half.rows]
    element(user, "resize-energy").set_value(1.5)  # type: ignore[attr-defined]
    await see(user, "energy to keep: must be")


async def test_download_is_a_zip_of_a_valid_resized_adapter(user: User) -> None:
    await user.open("/inspector?mode=rank&rank=2")
    await see(user, marker="resize-table")  # the adapter is read after the page is delivered
    user.find(marker="resize-download").click()
    response = await user.download.next(timeout=20)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == ["adapter_config.json", "adapter_model.safetensors"]
        config, weights = archive.read("adapter_config.json"), archive.read("adapter_model.safetensors")
    resized = inspect_adapter(load_adapter_from_bytes(config, weights, name="resized"))
    original = sample_report()
    assert [m.r for m in resized.modules] == [min(2, m.r) for m in original.modules]
    for new, old in zip(resized.modules, original.modules, strict=True):
        assert new.singular_values == pytest.approx(old.singular_values[: new.r], rel=1e-3)


async def test_an_open_started_later_wins(user: User, tmp_path: Path, loopback: None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a folder while the sample is still being read shows the folder, even when the sample's read ends
    last (the sample's read is held until the folder is shown)."""
    folder = tmp_path / "later"
    shutil.copytree(sample_path(), folder)
    release, finished = threading.Event(), threading.Event()
    real = inspector.open_folder

    def held_sample(path: Path):  # type: ignore[no-untyped-def]
        if Path(path) != sample_path():
            return real(path)
        release.wait(30)
        try:
            return real(path)
        finally:
            finished.set()

    monkeypatch.setattr(inspector, "open_folder", held_sample)
    await user.open("/inspector")
    await see(user, "Reading the sample adapter")
    user.find(marker="path-input").type(str(folder))
    user.find(marker="path-open").click()
    await see(user, f"Showing {folder}")
    release.set()
    assert await asyncio.to_thread(finished.wait, 30)
    await asyncio.sleep(0.3)  # let the sample's read return to the page
    await see(user, f"Showing {folder}")
    await user.should_not_see("Reading the sample adapter")


async def test_nan_values_are_reported_not_crashing(user: User, tmp_path: Path) -> None:
    from loralens.adapters.safetensors_io import encode, load_arrays, to_bytes

    config, _ = sample_files()
    arrays = load_arrays(sample_path() / "adapter_model.safetensors")
    bad_name = sorted(name for name in arrays if name.endswith("lora_B.weight"))[0]
    arrays[bad_name] = arrays[bad_name].copy()
    arrays[bad_name][0, 0] = float("nan")
    weights = to_bytes({name: encode(array) for name, array in arrays.items()})
    await user.open("/inspector")
    await see(user, "Showing the sample adapter")
    await upload(user, ("adapter_config.json", config), ("adapter_model.safetensors", weights))
    await see(user, "Showing upload adapter_model.safetensors")
    await see(user, f"{bad_name} — see the table")
    table = element(user, "inspector-table")
    flagged = [row["name"] for row in table.rows if row["nonfinite"] == "NaN/Inf"]  # type: ignore[attr-defined]
    assert {row["nonfinite"] for row in table.rows} == {"NaN/Inf", "none"}  # type: ignore[attr-defined]
    assert flagged == [bad_name.removeprefix("base_model.model.").removesuffix(".lora_B.weight")]
    element(user, "resize-mode").set_value("rank")  # type: ignore[attr-defined]
    user.find(marker="resize-download").click()
    await see(user, "holds NaN or Inf values; cannot resize")


async def test_the_resize_download_uploaded_again_opens(user: User) -> None:
    await user.open("/inspector?mode=rank&rank=2")
    await see(user, marker="resize-table")
    user.find(marker="resize-download").click()
    response = await user.download.next(timeout=20)
    await upload(user, ("sample_adapter-r2.zip", response.content))
    await see(user, "Showing upload sample_adapter-r2.safetensors")
    assert [row["r"] for row in element(user, "inspector-table").rows] == [2] * len(sample_report().modules)  # type: ignore[attr-defined]


async def test_a_text_file_named_bin_is_not_called_a_pickle(user: User) -> None:
    await user.open("/inspector")
    await see(user, "Showing the sample adapter")
    await upload(user, ("bad.bin", b"this is text\n\n"))
    await see(user, "bad.bin is a 14-byte text file, neither a pickle nor a safetensors file")


async def test_non_lora_tensors_are_listed(user: User, tmp_path: Path, loopback: None) -> None:
    from loralens.adapters.safetensors_io import load_arrays, save_arrays

    folder = tmp_path / "extra"
    shutil.copytree(sample_path(), folder)
    arrays = load_arrays(folder / "adapter_model.safetensors")
    arrays["base_model.model.score.weight"] = arrays[next(iter(arrays))] * 0 + 1
    save_arrays(folder / "adapter_model.safetensors", arrays)
    await user.open(f"/inspector?path={folder}")
    await see(user, marker="other-table")
    rows = element(user, "other-table").rows  # type: ignore[attr-defined]
    assert [row["name"] for row in rows] == ["base_model.model.score.weight"]
    assert rows[0]["what"] == "modules_to_save copy (e.g. a task head)"
    await see(user, "Not LoRA factors: 1 tensors")
