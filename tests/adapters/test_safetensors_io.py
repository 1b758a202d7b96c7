"""The safetensors reader and writer, checked against the safetensors package and torch's bfloat16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from adapter_helpers import bad_safetensors
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from safetensors import safe_open
from safetensors.torch import load_file as torch_load_file
from safetensors.torch import save_file as torch_save_file

from loralens.adapters.safetensors_io import (
    SafetensorsFile,
    bf16_bits_to_float32,
    encode,
    float32_to_bf16_bits,
    load_arrays,
    save_arrays,
    to_bytes,
)
from loralens.errors import AdapterError

TORCH_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def test_reads_what_the_safetensors_package_writes(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(3, 5, generator=gen),
        "f16": torch.randn(7, generator=gen).half(),
        "bf16": torch.randn(4, 2, generator=gen).bfloat16(),
        "i64": torch.arange(6).reshape(2, 3),
        "empty": torch.zeros(0, 4),
    }
    torch_save_file(tensors, tmp_path / "t.safetensors", metadata={"format": "pt", "note": "x"})
    file = SafetensorsFile.open(tmp_path / "t.safetensors")
    assert file.metadata == {"format": "pt", "note": "x"}
    for name, tensor in tensors.items():
        ours = file.array(name)
        assert ours.shape == tuple(tensor.shape)
        expected = tensor.float().numpy() if tensor.is_floating_point() else tensor.numpy()
        np.testing.assert_array_equal(ours.astype(expected.dtype), expected)
    assert file.array("f16").dtype == np.float16
    assert file.array("bf16").dtype == np.float32


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
def test_the_safetensors_package_reads_what_we_write(tmp_path: Path, dtype: str) -> None:
    values = np.random.default_rng(1).standard_normal((6, 9)).astype(np.float32)
    save_arrays(tmp_path / "w.safetensors", {"w": values, "v": values[0]}, {"w": dtype, "v": dtype},
                metadata={"format": "pt"})
    loaded = torch_load_file(tmp_path / "w.safetensors")
    expected = torch.from_numpy(values).to(TORCH_DTYPES[dtype])
    assert loaded["w"].dtype == TORCH_DTYPES[dtype]
    assert torch.equal(loaded["w"], expected)  # bf16: our rounding equals torch's, bit for bit
    assert torch.equal(loaded["v"], expected[0])
    with safe_open(tmp_path / "w.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}
    # and the bytes-in-memory writer gives the same file
    data = to_bytes({"w": encode(values, dtype), "v": encode(values[0], dtype)}, {"format": "pt"})
    assert data == (tmp_path / "w.safetensors").read_bytes()


def test_every_bfloat16_pattern_widens_exactly_like_torch() -> None:
    bits = np.arange(1 << 16, dtype=np.uint16)
    ours = bf16_bits_to_float32(bits)
    theirs = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(ours.view(np.uint32)[~np.isnan(ours)], theirs.view(np.uint32)[~np.isnan(theirs)])
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.integers(1, 64), elements=st.floats(width=32, allow_nan=False)))
def test_bfloat16_rounding_matches_torch(values: np.ndarray) -> None:
    ours = float32_to_bf16_bits(values)
    theirs = torch.from_numpy(values.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(ours, theirs)


def test_bfloat16_nan_stays_nan_and_ties_go_to_even() -> None:
    values = np.array([np.nan, -np.nan, 1 + 2**-8, 1 + 3 * 2**-8, np.inf, -np.inf], dtype=np.float32)
    back = bf16_bits_to_float32(float32_to_bf16_bits(values))
    assert np.isnan(back[:2]).all()
    assert back[2] == 1.0  # tie between 1 and 1 + 2^-7 -> even (1.0)
    assert back[3] == 1 + 2**-6  # tie between 1 + 2^-7 and 1 + 2^-6 -> even (1 + 2^-6)
    assert back[4] == np.inf and back[5] == -np.inf


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), arrays(np.float32, st.tuples(st.integers(0, 4),
                                                                                        st.integers(1, 4))),
                       min_size=1, max_size=4))
def test_round_trip_through_our_writer_and_the_package_reader(tmp_path_factory: pytest.TempPathFactory,
                                                              tensors: dict[str, np.ndarray]) -> None:
    path = tmp_path_factory.mktemp("rt") / "x.safetensors"
    save_arrays(path, tensors)
    back = load_arrays(path)
    theirs = {k: v.numpy() for k, v in torch_load_file(path).items()}
    for name, value in tensors.items():
        np.testing.assert_array_equal(back[name], value)
        np.testing.assert_array_equal(theirs[name], value)


# --- malformed files: each gets one exact message naming the file (and the tensor) ---------------------------

GOOD_ENTRY = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}


@pytest.mark.parametrize(
    "content, where, message",
    [
        (b"\x01\x02\x03", "", "truncated file: 3 bytes, too short for the 8-byte header length"),
        (bad_safetensors({"w": GOOD_ENTRY}, bytes(16), header_len=10_000), "",
         "header length 10,000 is larger than the file"),
        (bad_safetensors(b"{not json", bytes(16)), "", "header is not JSON"),
        (bad_safetensors(b"[1, 2]"), "", "header is not a JSON object"),
        (bad_safetensors({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}}, bytes(2)), ": w",
         "unknown dtype 'Q4'"),
        (bad_safetensors({"w": GOOD_ENTRY}, bytes(8)), ": w",
         "data_offsets [0, 16] run past the end of the data (8 bytes): truncated file or bad offsets"),
        (bad_safetensors({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, bytes(16)), ": w",
         "data_offsets [0, 16] hold 16 bytes but shape [3] of F32 needs 12"),
        (bad_safetensors({"a": GOOD_ENTRY, "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
                         bytes(16)), ": b", "data overlaps tensor 'a'"),
        (bad_safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(16)), ": w",
         "data_offsets [8, 0] end before they begin"),
        (bad_safetensors({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, bytes(8)), ": w",
         "shape must be a list of non-negative integers"),
        (bad_safetensors({"w": {"dtype": "F32"}}), ": w", "header entry needs dtype, shape and data_offsets"),
    ],
    ids=["truncated", "header-too-long", "not-json", "not-object", "unknown-dtype", "out-of-bounds",
         "size-mismatch", "overlap", "reversed-offsets", "bad-shape", "missing-fields"],
)
def test_malformed_file_gets_an_exact_message(tmp_path: Path, content: bytes, where: str, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(AdapterError) as info:
        SafetensorsFile.open(path)
    assert info.value.where == f"{path}{where}"
    assert info.value.message.startswith(message)
    with pytest.raises(AdapterError) as from_bytes:
        SafetensorsFile.from_bytes(content, "upload.safetensors")
    assert from_bytes.value.where == f"upload.safetensors{where}"


def test_a_real_file_cut_short_is_reported(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    save_arrays(good, {"a": np.ones((4, 4), np.float32), "b": np.ones(3, np.float32)})
    data = good.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:-4])
    with pytest.raises(AdapterError, match="run past the end of the data"):
        SafetensorsFile.open(cut)
    cut.write_bytes(data[:20])
    with pytest.raises(AdapterError, match="header length .* is larger than the file"):
        SafetensorsFile.open(cut)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="file not found"):
        SafetensorsFile.open(tmp_path / "nope.safetensors")
    with pytest.raises(AdapterError, match="is a folder"):
        SafetensorsFile.open(tmp_path)


REAL_ADAPTER = (Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "rslora"
                / "adapter_model.safetensors").read_bytes()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(REAL_ADAPTER) - 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, len(REAL_ADAPTER)))
def test_corrupted_files_raise_adapter_error_or_read_cleanly(flips: list[tuple[int, int]], cut: int) -> None:
    """Random byte changes (mostly in the header, where they matter) and truncations: never another exception."""
    from loralens.adapters import load_adapter_from_bytes

    data = bytearray(REAL_ADAPTER[:cut] if cut % 3 == 0 else REAL_ADAPTER)
    header_end = 8 + int.from_bytes(REAL_ADAPTER[:8], "little")
    for position, value in flips:
        if data:
            data[position % min(len(data), header_end)] = value
    config = b'{"r": 8, "lora_alpha": 16, "use_rslora": true}'
    try:
        load_adapter_from_bytes(config, bytes(data), name="fuzz")
    except AdapterError as error:
        assert error.where and error.where.startswith("fuzz/")
