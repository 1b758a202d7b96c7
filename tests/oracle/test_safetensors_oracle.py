"""The safetensors reader and writer against torch's tensors and bfloat16 (through safetensors.torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
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
