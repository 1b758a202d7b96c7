"""What an uploaded file is and why it is refused (issue 13 item 7): the real reason, never a blanket one."""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest

from loralens.adapters import adapter_to_bytes, load_adapter, resize_adapter, sample_adapter_path
from loralens.app.inspector.uploads import UploadRefused, classify, rejection_message

LIMIT = 1 << 20
CONFIG = (sample_adapter_path() / "adapter_config.json").read_bytes()
WEIGHTS = (sample_adapter_path() / "adapter_model.safetensors").read_bytes()


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def refused(name: str, data: bytes, limit: int = LIMIT) -> str:
    with pytest.raises(UploadRefused) as info:
        classify(name, data, limit)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_the_two_files_and_a_zip_of_both() -> None:
    assert classify("adapter_config.json", CONFIG, LIMIT).config == CONFIG
    assert classify("adapter_model.safetensors", WEIGHTS, LIMIT).weights == WEIGHTS
    both = classify("a.zip", zipped({"adapter_config.json": CONFIG, "adapter_model.safetensors": WEIGHTS}), LIMIT)
    assert (both.config, both.weights) == (CONFIG, WEIGHTS)
    inner = classify("b.zip", zipped({"x/adapter_config.json": CONFIG, "x/adapter_model.safetensors": WEIGHTS}),
                     LIMIT)
    assert inner.weights == WEIGHTS


def test_the_inspector_s_own_download_opens_again() -> None:
    files = adapter_to_bytes(resize_adapter(load_adapter(sample_adapter_path()), rank=2))
    from loralens.app.inspector.page import resized_zip

    data = resized_zip(load_adapter(sample_adapter_path()), 2, None)
    upload = classify("sample_adapter-r2.zip", data, LIMIT)
    assert upload.config == files["adapter_config.json"] and upload.weights == files["adapter_model.safetensors"]


def test_a_small_text_file_named_bin_is_not_called_a_pickle() -> None:
    text = refused("bad.bin", b"this is text\n\n")
    assert "bad.bin is a 14-byte text file, neither a pickle nor a safetensors file" in text
    assert "pickle file, which loralens never loads" not in text


def test_real_pickles_and_torch_zips_are_refused_as_pickles_without_loading() -> None:
    assert "is a pickle file" in refused("adapter_model.bin", pickle.dumps({"a": 1}, protocol=4))
    torch_zip = zipped({"archive/data.pkl": b"\x80\x02}q\x00.", "archive/version": b"3\n"})
    assert "is a pickle file" in refused("adapter_model.bin", torch_zip)
    assert "is a pickle file" in refused("weights.zip", torch_zip)


def test_a_safetensors_file_under_a_pickle_name_is_read_as_the_weights() -> None:
    assert classify("adapter_model.bin", WEIGHTS, LIMIT).weights == WEIGHTS


def test_zips_that_do_not_hold_an_adapter_say_what_is_missing() -> None:
    assert "holds no adapter_model.safetensors" in refused("a.zip", zipped({"adapter_config.json": CONFIG}))
    assert "is not a readable zip archive" in refused("a.zip", b"PK\x03\x04 broken")
    two = zipped({"a/adapter_config.json": CONFIG, "a/adapter_model.safetensors": WEIGHTS,
                  "b/adapter_config.json": CONFIG, "b/adapter_model.safetensors": WEIGHTS})
    assert "holds 2 adapters (a, b)" in refused("two.zip", two)


def test_a_zip_member_larger_than_the_limit_is_refused_before_it_is_read() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("adapter_config.json", CONFIG)
        archive.writestr("adapter_model.safetensors", bytes(4 * LIMIT))  # compresses to a few kB
    assert "adapter_model.safetensors is larger than the 1 MB limit" in refused("bomb.zip", bomb.getvalue())


def test_other_files_and_oversized_ones() -> None:
    assert "expected adapter_config.json, a .safetensors file, or a .zip of both" in refused("notes.txt", b"x")
    assert "is larger than the 100-byte limit" in refused("adapter_model.safetensors", bytes(101), 100)


def test_browser_rejections_give_quasar_s_reason() -> None:
    entries = [{"name": "huge.safetensors", "size": 10**10, "reason": "max-file-size"},
               {"name": "photo.png", "size": 10, "reason": "accept"}]
    text = rejection_message(entries, 512 << 20)
    assert text == ("huge.safetensors is larger than the 512 MB limit; photo.png is not adapter_config.json, a "
                    ".safetensors file or a .zip of both")
    assert rejection_message([{"name": "x", "reason": "odd"}], 10) == "x was refused by the browser (odd)"
    assert rejection_message(None, 10) == "a file was refused by the browser (no reason)"
