"""merge_adapter against PEFT's merge_and_unload, shard layout preserved, and safe writing under failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import ADAPTERS, BASE_OF, FIXTURES, copy_adapter, reference, tree_digest

from loralens.adapters import merge_adapter
from loralens.adapters import merge as merge_module
from loralens.adapters.safetensors_io import SafetensorsFile, load_arrays, save_arrays
from loralens.errors import AdapterError, OutputError


def read_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob("*.safetensors")):
        arrays.update(load_arrays(path))
    return arrays


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("sharded", [False, True])
def test_merge_equals_peft_merge_and_unload_reference(tmp_path: Path, name: str, sharded: bool) -> None:
    base = BASE_OF[name] + ("_sharded" if sharded and BASE_OF[name] == "base_llama" else "")
    report = merge_adapter(FIXTURES / name, FIXTURES / base, tmp_path / "merged")
    merged, original = read_folder(tmp_path / "merged"), read_folder(FIXTURES / base)
    ref = reference(name)
    expected_keys = {k.removeprefix("merged/") for k in ref if k.startswith("merged/")}
    assert set(report.merged) == expected_keys
    for key in expected_keys:  # PEFT's merged weights (float32 bases: the same float32 arithmetic)
        np.testing.assert_allclose(merged[key], ref[f"merged/{key}"], rtol=1e-6, atol=1e-7, err_msg=key)
    for key, value in original.items():
        if key not in expected_keys:
            np.testing.assert_array_equal(merged[key], value, err_msg=key)
    assert merged.keys() == original.keys()


def test_shard_layout_index_and_side_files_are_kept(tmp_path: Path) -> None:
    base = FIXTURES / "base_llama_sharded"
    report = merge_adapter(FIXTURES / "plain", base, tmp_path / "m")
    out = tmp_path / "m"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in base.iterdir())
    assert (out / "model.safetensors.index.json").read_bytes() == (base / "model.safetensors.index.json").read_bytes()
    for shard in report.shards:
        ours, theirs = SafetensorsFile.open(out / shard), SafetensorsFile.open(base / shard)
        assert ours.keys() == theirs.keys() and ours.metadata == theirs.metadata
        assert {k: (v.dtype, v.shape, v.start) for k, v in ours.tensors.items()} == \
            {k: (v.dtype, v.shape, v.start) for k, v in theirs.tensors.items()}
        assert (out / shard).stat().st_size == (base / shard).stat().st_size
    assert report.bytes_written == sum((base / s).stat().st_size for s in report.shards)


def test_a_failure_mid_merge_leaves_nothing_that_looks_finished(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = merge_module._write_shard

    def failing(file, targets, out):  # type: ignore[no-untyped-def]
        calls.append(out.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(file, targets, out)

    monkeypatch.setattr(merge_module, "_write_shard", failing)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(OutputError, match="No space left on device"):
        merge_adapter(FIXTURES / "plain", FIXTURES / "base_llama_sharded", tmp_path / "m")
    assert len(calls) == 2
    assert sorted(os.listdir(tmp_path)) == before  # no output, no temporary folder

    def interrupted(file, targets, out):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(merge_module, "_write_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        merge_adapter(FIXTURES / "plain", FIXTURES / "base_llama", tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == before


def test_existing_output_needs_force_and_inputs_are_never_touched(tmp_path: Path) -> None:
    adapter = copy_adapter("gpt2", tmp_path / "adapter")
    base = copy_adapter("base_gpt2", tmp_path / "base")
    digests = tree_digest(adapter), tree_digest(base)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.safetensors").write_text("old")  # an earlier output: --force may replace it
    with pytest.raises(OutputError, match="already exists; pass --force"):
        merge_adapter(adapter, base, tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_text() == "old"
    merge_adapter(adapter, base, tmp_path / "out", force=True)
    assert (tmp_path / "out" / "model.safetensors").read_bytes() != b"old"
    for target in (base, tmp_path):
        with pytest.raises(OutputError, match="is \\(or contains\\) the input"):
            merge_adapter(adapter, base, target, force=True)
    assert (tree_digest(adapter), tree_digest(base)) == digests
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "base", "out"]


def test_base_that_does_not_fit_the_adapter(tmp_path: Path) -> None:
    with pytest.raises(AdapterError) as info:
        merge_adapter(FIXTURES / "gpt2", FIXTURES / "base_llama", tmp_path / "m")
    assert "has no tensor 'transformer.h.0.attn.c_attn.weight'" in info.value.message
    base = tmp_path / "base"
    base.mkdir()
    arrays = load_arrays(FIXTURES / "base_llama" / "model.safetensors")
    arrays["model.layers.0.self_attn.q_proj.weight"] = arrays["model.layers.0.self_attn.q_proj.weight"][:, :16]
    save_arrays(base / "model.safetensors", arrays)
    with pytest.raises(AdapterError) as info:
        merge_adapter(FIXTURES / "plain", base, tmp_path / "m")
    assert info.value.where.endswith("plain: base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
    assert ("base shape [32, 16] of 'model.layers.0.self_attn.q_proj.weight' does not match the adapter's [32, 32]"
            in info.value.message)
    index = tmp_path / "idx"
    index.mkdir()
    (index / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../escape.safetensors"}}))
    with pytest.raises(AdapterError, match="is not a file beside the index"):
        merge_adapter(FIXTURES / "plain", index, tmp_path / "m")
    (base / "pytorch_model.bin").write_bytes(b"x")
    (base / "model.safetensors").unlink()
    with pytest.raises(AdapterError, match="pickle"):
        merge_adapter(FIXTURES / "plain", base, tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("name", ["plain", "gpt2", "dora", "patterns"])
def test_merging_in_small_row_blocks_gives_the_same_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             name: str) -> None:
    monkeypatch.setattr(merge_module, "CHUNK_BYTES", 300)  # a couple of rows per block, odd on purpose
    base = FIXTURES / BASE_OF[name]
    merge_adapter(FIXTURES / name, base, tmp_path / "m")
    merged, ref = read_folder(tmp_path / "m"), reference(name)
    for key in (k for k in ref if k.startswith("merged/")):
        np.testing.assert_allclose(merged[key.removeprefix("merged/")], ref[key], rtol=1e-6, atol=1e-7, err_msg=key)


def test_base_given_as_a_file_or_as_its_index(tmp_path: Path) -> None:
    report = merge_adapter(FIXTURES / "rslora", FIXTURES / "base_llama" / "model.safetensors", tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model.safetensors"]  # a lone file: no side files
    assert len(report.merged) == 4
    index = FIXTURES / "base_llama_sharded" / "model.safetensors.index.json"
    merge_adapter(FIXTURES / "rslora", index, tmp_path / "b")
    one, many = read_folder(tmp_path / "a"), read_folder(tmp_path / "b")
    assert one.keys() == many.keys()
    for key in one:
        np.testing.assert_array_equal(one[key], many[key])
