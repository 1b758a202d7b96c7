"""Reading PEFT adapters: every module's rank, alpha, scaling and ΔW as PEFT itself has them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import ADAPTERS, FIXTURES, copy_adapter, reference

from loralens.adapters import (
    load_adapter,
    load_adapter_from_bytes,
    sample_adapter_path,
    write_adapter,
)
from loralens.errors import AdapterError, OutputError


@pytest.mark.parametrize("name", ADAPTERS)
def test_delta_weights_equal_peft_reference(name: str) -> None:
    """ΔW in the base orientation equals PEFT's get_delta_weight (committed by the fixture script)."""
    adapter = load_adapter(FIXTURES / name)
    ref = reference(name)
    assert {f"delta/{m.name}" for m in adapter.modules} == {k for k in ref if k.startswith("delta/")}
    for module in adapter.modules:
        expected = ref[f"delta/{module.name}"]
        np.testing.assert_allclose(module.delta_for_base(), expected, rtol=1e-5, atol=1e-7 * np.abs(expected).max())


def test_kinds_dtypes_and_shapes() -> None:
    patterns = {m.name: m for m in load_adapter(FIXTURES / "patterns").modules}
    embed = patterns["model.embed_tokens"]
    assert embed.kind == "embedding" and (embed.in_features, embed.out_features) == (64, 32)
    assert patterns["model.layers.0.self_attn.q_proj"].r == 8
    assert patterns["model.layers.1.self_attn.v_proj"].r == 2
    assert patterns["model.layers.1.self_attn.o_proj"].alpha == 2
    gpt2 = load_adapter(FIXTURES / "gpt2")
    assert all(m.fan_in_fan_out for m in gpt2.modules)
    attn = next(m for m in gpt2.modules if m.name.endswith("c_attn"))
    assert (attn.in_features, attn.out_features) == (32, 96)
    assert load_adapter(FIXTURES / "bf16").dtype == "bfloat16"
    assert load_adapter(FIXTURES / "plain").dtype == "float32"
    assert all(m.magnitude is not None for m in load_adapter(FIXTURES / "dora").modules)


def test_every_way_to_name_the_adapter_reads_the_same(tmp_path: Path) -> None:
    folder = FIXTURES / "plain"
    first = load_adapter(folder)
    for path in (folder / "adapter_model.safetensors", folder / "adapter_config.json", str(folder)):
        other = load_adapter(path)
        assert [m.name for m in other.modules] == [m.name for m in first.modules]
    uploaded = load_adapter_from_bytes((folder / "adapter_config.json").read_bytes(),
                                       (folder / "adapter_model.safetensors").read_bytes(), name="up")
    assert uploaded.path is None and uploaded.file_bytes == first.file_bytes
    for a, b in zip(first.modules, uploaded.modules, strict=True):
        np.testing.assert_array_equal(a.a, b.a)
        np.testing.assert_array_equal(a.b, b.b)


def test_write_adapter_refuses_existing_output_and_its_own_input(tmp_path: Path) -> None:
    adapter = load_adapter(copy_adapter("plain", tmp_path / "in"))
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError, match="already exists; pass --force"):
        write_adapter(adapter, tmp_path / "out")
    write_adapter(adapter, tmp_path / "out", force=True)
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    with pytest.raises(OutputError, match="is \\(or contains\\) the input"):
        write_adapter(adapter, tmp_path / "in", force=True)
    with pytest.raises(OutputError, match="is \\(or contains\\) the input"):
        write_adapter(adapter, tmp_path, force=True)
    assert (tmp_path / "in" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("pickle_name", ["adapter_model.bin", "model.pt", "weights.pth", "x.ckpt"])
def test_pickles_are_refused_with_a_way_to_convert(tmp_path: Path, pickle_name: str) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    shutil.copy(FIXTURES / "plain" / "adapter_config.json", folder)
    (folder / pickle_name).write_bytes(b"\x80\x04not really")
    for path in (folder, folder / pickle_name):
        with pytest.raises(AdapterError) as info:
            load_adapter(path)
        assert info.value.where == str(folder / pickle_name)
        assert "pickle" in info.value.message and "safe_serialization=True" in info.value.message
        assert "save_file" in info.value.message


def test_shipped_sample_adapter_is_a_real_peft_adapter() -> None:
    path = sample_adapter_path()
    assert sum(p.stat().st_size for p in path.iterdir()) < 1_000_000
    adapter = load_adapter(path)
    assert len(adapter.modules) == 32 and {m.r for m in adapter.modules} == {8}
    assert {m.name.rsplit(".", 1)[1] for m in adapter.modules} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert adapter.config["peft_type"] == "LORA" and adapter.config["peft_version"]


def test_mixed_dtypes_are_kept_tensor_by_tensor(tmp_path: Path) -> None:
    from loralens.adapters.safetensors_io import SafetensorsFile, load_arrays, save_arrays

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(FIXTURES / "plain" / "adapter_config.json", folder)
    arrays = load_arrays(FIXTURES / "plain" / "adapter_model.safetensors")
    dtypes = {k: ("F16" if "lora_A" in k else "BF16") for k in arrays}
    save_arrays(folder / "adapter_model.safetensors", arrays, dtypes)
    adapter = load_adapter(folder)
    assert adapter.dtype == "mixed"
    out = write_adapter(adapter, tmp_path / "copy")
    written = SafetensorsFile.open(out / "adapter_model.safetensors")
    original = SafetensorsFile.open(folder / "adapter_model.safetensors")
    assert {k: t.dtype for k, t in written.tensors.items()} == dtypes
    for key in dtypes:  # the same stored bits
        np.testing.assert_array_equal(written.raw(key), original.raw(key))
