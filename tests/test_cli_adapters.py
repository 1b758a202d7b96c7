"""``loralens inspect / resize / merge``: output, --json, and every bad input of issue 5 item 8 as one line, exit 1,
no traceback, nothing written."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from loralens.adapters import load_adapter
from loralens.adapters.safetensors_io import load_arrays, save_arrays
from loralens.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "adapters"
PLAIN = FIXTURES / "plain"
A_KEY = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
B_KEY = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- good input ------------------------------------------------------------------------------------------------


def test_inspect_prints_a_summary_and_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inspect", FIXTURES / "patterns")
    assert code == 0 and err == ""
    assert "PEFT version  0.21.2" in out or "PEFT version" in out
    assert "modules       7" in out and "ranks 2, 4, 8" in out
    for module in load_adapter(FIXTURES / "patterns").modules:
        assert module.name in out
    assert "eff.rank" in out and "rank@99%" in out


def test_inspect_json_is_one_object_with_the_item_6_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", PLAIN / "adapter_model.safetensors", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"summary", "modules"}
    assert data["summary"]["modules"] == len(data["modules"]) == 14
    module = data["modules"][0]
    for field in ("name", "in_features", "out_features", "r", "alpha", "scaling", "delta_fro", "singular_values",
                  "effective_rank"):
        assert field in module
    assert len(module["singular_values"]) == module["r"] == 4
    assert not module["name"].startswith("base_model.model.")


def test_resize_writes_an_adapter_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "resize", FIXTURES / "rslora", "--energy", "0.95", "-o", tmp_path / "small")
    assert code == 0 and err == ""
    assert out.startswith(f"wrote {tmp_path / 'small'}") and "energy kept" in out
    assert load_adapter(tmp_path / "small").config["use_rslora"] is True
    code, out, err = run(capsys, "resize", FIXTURES / "rslora", "--rank", "2", "-o", tmp_path / "small", "--json")
    assert code == 1 and "already exists; pass --force" in err
    code, out, err = run(capsys, "resize", FIXTURES / "rslora", "--rank", "2", "-o", tmp_path / "small", "--json",
                         "--force")
    assert code == 0
    data = json.loads(out)
    assert data["r"] == 2 and {m["r_after"] for m in data["modules"]} == {2}
    assert data["parameters_after"] < data["parameters_before"]


@pytest.mark.parametrize("argv, where", [(["--rank", "0"], "rank"), (["--energy", "1.5"], "energy"),
                                         (["--energy", "nan"], "energy")])
def test_resize_bad_parameters_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                      where: str) -> None:
    code, _, err = run(capsys, "resize", PLAIN, *argv, "-o", tmp_path / "out")
    assert code == 2 and err.startswith(f"loralens: error: {where}: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_resize_needs_rank_or_energy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "resize", PLAIN, "-o", tmp_path / "out")
    assert code == 2 and "one of the arguments --rank --energy is required" in err


def test_merge_writes_the_merged_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "merge", PLAIN, "--base", FIXTURES / "base_llama_sharded", "-o", tmp_path / "m")
    assert code == 0 and err == ""
    assert "14 weights merged" in out and "3 shard(s)" in out
    assert (tmp_path / "m" / "model.safetensors.index.json").is_file()
    code, out, _ = run(capsys, "merge", PLAIN, "--base", FIXTURES / "base_llama", "-o", tmp_path / "m2", "--json")
    assert code == 0 and json.loads(out)["shards"] == ["model.safetensors"]


# --- bad input: item 8 -----------------------------------------------------------------------------------------


def make_adapter(folder: Path, *, weights: bytes | None = None, config: bytes | None = None,
                 tensors: Callable[[dict[str, np.ndarray]], None] | None = None) -> Path:
    folder.mkdir()
    (folder / "adapter_config.json").write_bytes(config if config is not None else
                                                 (PLAIN / "adapter_config.json").read_bytes())
    if tensors is not None:
        arrays = load_arrays(PLAIN / "adapter_model.safetensors")
        tensors(arrays)
        save_arrays(folder / "adapter_model.safetensors", arrays)
    else:
        (folder / "adapter_model.safetensors").write_bytes(
            weights if weights is not None else (PLAIN / "adapter_model.safetensors").read_bytes())
    return folder


def raw(header: object, data: bytes = b"", header_len: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if header_len is None else header_len) + text + data


def entry(dtype: str, shape: list[int], begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


REAL = (PLAIN / "adapter_model.safetensors").read_bytes()
CONFIG = json.loads((PLAIN / "adapter_config.json").read_text())


def _drop(key: str) -> Callable[[dict[str, np.ndarray]], None]:
    return lambda arrays: arrays.pop(key)


def _set(key: str, value: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[key] = value(arrays[key])
    return change


def _config(**changes: object) -> bytes:
    config = {**CONFIG, **changes}
    for key, value in changes.items():
        if value is None:
            del config[key]
    return json.dumps(config).encode()


WEIGHTS = "adapter_model.safetensors"
BAD = {
    # name: (make_adapter kwargs, file named in the line, tensor/field named in the line, message part)
    "truncated": (dict(weights=REAL[:5]), WEIGHTS, None, "truncated file: 5 bytes"),
    "header-longer-than-file": (dict(weights=REAL[:200]), WEIGHTS, None, "is larger than the file (200 bytes)"),
    "header-not-json": (dict(weights=raw(b"{'w': 1}   ")), WEIGHTS, None, "header is not JSON"),
    "offsets-overlap": (dict(weights=raw({A_KEY: entry("F32", [2, 2], 0, 16), B_KEY: entry("F32", [2], 8, 16)},
                                         bytes(16))), WEIGHTS, B_KEY, "data overlaps tensor"),
    "offsets-past-end": (dict(weights=raw({A_KEY: entry("F32", [4, 4], 0, 64)}, bytes(32))), WEIGHTS, A_KEY,
                         "run past the end of the data (32 bytes)"),
    "offsets-vs-shape": (dict(weights=raw({A_KEY: entry("F32", [4, 4], 0, 32)}, bytes(32))), WEIGHTS, A_KEY,
                         "hold 32 bytes but shape [4, 4] of F32 needs 64"),
    "unknown-dtype": (dict(weights=raw({A_KEY: entry("Q4", [2], 0, 2)}, bytes(2))), WEIGHTS, A_KEY,
                      "unknown dtype 'Q4'"),
    "lora-A-without-B": (dict(tensors=_drop(B_KEY)), WEIGHTS, A_KEY,
                         f"lora_A has no matching lora_B (expected '{B_KEY}')"),
    "lora-B-without-A": (dict(tensors=_drop(A_KEY)), WEIGHTS, B_KEY, "lora_B has no matching lora_A"),
    "shape-vs-r": (dict(config=_config(r=8)), WEIGHTS, "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight",
                   "has rank 4 but adapter_config.json gives r=8"),
    "shapes-disagree": (dict(tensors=_set(B_KEY, lambda b: b[:, :3])), WEIGHTS, A_KEY,
                        "has 4 rows but lora_B shape [32, 3] has 3 columns"),
    "config-not-json": (dict(config=b"{r: 4"), "adapter_config.json", None, "is not valid JSON"),
    "config-missing-r": (dict(config=_config(r=None)), "adapter_config.json", "r", "is missing"),
    "config-bad-r": (dict(config=_config(r="eight")), "adapter_config.json", "r", "must be a whole number, got 'eight'"),
    "config-bad-alpha": (dict(config=_config(lora_alpha=None)), "adapter_config.json", "lora_alpha", "is missing"),
    "config-bad-rank-pattern": (dict(config=_config(rank_pattern={"q_proj": 0})), "adapter_config.json",
                                "rank_pattern['q_proj']", "must be at least 1, got 0"),
    "config-not-lora": (dict(config=_config(peft_type="IA3")), "adapter_config.json", "peft_type",
                        "is not supported (only LORA)"),
    "config-bad-rslora": (dict(config=_config(use_rslora="yes")), "adapter_config.json", "use_rslora",
                          "must be true or false"),
}


def _commands(folder: Path, out: Path) -> list[list[object]]:
    return [["inspect", folder], ["inspect", folder, "--json"], ["resize", folder, "--rank", "2", "-o", out],
            ["merge", folder, "--base", FIXTURES / "base_llama", "-o", out]]


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_1_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      case: str) -> None:
    kwargs, file_name, field, message = BAD[case]
    folder = make_adapter(tmp_path / "bad", **kwargs)
    out = tmp_path / "out"
    for argv in _commands(folder, out):
        code, stdout, err = run(capsys, *argv)
        assert code == 1, (argv, err)
        assert stdout == ""
        assert err.count("\n") == 1 and err.startswith("loralens: error: ") and "Traceback" not in err
        named = f"{folder / file_name}: {field}: " if field is not None else f"{folder / file_name}: "
        assert err.startswith(f"loralens: error: {named}"), err
        assert message in err, err
        assert not out.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


def test_missing_config_and_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    # safetensors that are no known LoRA layout (here a base model's weights): PEFT's config is missing
    shutil.copy(FIXTURES / "base_llama" / "model.safetensors", folder / "adapter_model.safetensors")
    code, _, err = run(capsys, "inspect", folder)
    assert code == 1 and err.startswith(f"loralens: error: {folder / 'adapter_config.json'}: missing")
    # PEFT weights alone are read (issue 11: r from the shapes, PEFT's default lora_alpha, said so)
    shutil.copy(PLAIN / "adapter_model.safetensors", folder)
    code, out, _ = run(capsys, "inspect", folder)
    assert code == 0 and "peft-weights" in out and "lora_alpha 8 assumed" in out
    code, _, err = run(capsys, "inspect", tmp_path / "nowhere")
    assert code == 1 and err == f"loralens: error: {tmp_path / 'nowhere'}: not found\n"


def test_pickle_is_refused_with_how_to_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    shutil.copy(PLAIN / "adapter_config.json", folder)
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04")
    code, _, err = run(capsys, "inspect", folder)
    assert code == 1 and err.count("\n") == 1
    assert f"{folder / 'adapter_model.bin'}: is a pickle file" in err and "safe_serialization=True" in err


def test_nan_is_reported_by_inspect_and_refused_by_resize_and_merge(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def poison(arrays: dict[str, np.ndarray]) -> None:
        arrays[A_KEY][1, 2] = np.nan

    folder = make_adapter(tmp_path / "nan", tensors=poison)
    code, out, err = run(capsys, "inspect", folder)
    assert code == 0 and err == "" and f"NaN/Inf       {A_KEY}" in out
    code, out, _ = run(capsys, "inspect", folder, "--json")
    assert code == 0 and json.loads(out)["summary"]["nonfinite"] == [A_KEY]
    for argv in _commands(folder, tmp_path / "out")[2:]:
        code, _, err = run(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and A_KEY in err and "NaN or Inf" in err
        assert not (tmp_path / "out").exists()


def test_a_module_of_an_unknown_layout_is_reported_by_name_and_the_rest_inspected(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_adapter(tmp_path / "odd", tensors=_set(A_KEY, lambda a: a.reshape(-1)))
    code, out, err = run(capsys, "inspect", folder)
    module = A_KEY.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
    assert code == 0 and err == "" and f"not read: module {module}: lora_A shape [128]" in out
    code, out, _ = run(capsys, "inspect", folder, "--json")
    report = json.loads(out)
    assert [u["name"] for u in report["unsupported"]] == [module] and len(report["modules"]) > 1
    for argv in _commands(folder, tmp_path / "out")[2:]:
        code, _, err = run(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and f"module {module!r}" in err and A_KEY in err
        assert not (tmp_path / "out").exists()
    from loralens.adapters import load_adapter, write_adapter
    from loralens.adapters.safetensors_io import load_arrays

    copy = write_adapter(load_adapter(folder), tmp_path / "copy")  # the module not read is written back as it was
    ours, theirs = load_arrays(copy / WEIGHTS), load_arrays(folder / WEIGHTS)
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])


def test_informational_config_fields_of_any_type_are_shown_as_written(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """peft_version NaN or base_model_name_or_path 5: the JSON report stays JSON (it crashed on NaN)."""
    folder = make_adapter(tmp_path / "odd", config=_config(peft_version=float("nan"), base_model_name_or_path=5))
    code, out, err = run(capsys, "inspect", str(folder), "--json")
    assert (code, err) == (0, "")
    summary = json.loads(out)["summary"]
    assert (summary["peft_version"], summary["base_model"]) == ("NaN", "5")


def test_a_rank_pattern_that_backtracks_without_end_is_one_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A 482-byte-style attack: a key like (a|a)+ over a module name with a long run of a's. PEFT's re would take
    days (and freeze the app); loralens refuses in one line naming rank_pattern, and writes nothing."""
    long_name = "base_model.model." + "a" * 40 + "c"

    def rename(arrays: dict[str, np.ndarray]) -> None:
        for key in [k for k in arrays if ".layers.0.self_attn.q_proj." in k]:
            arrays[key.replace("model.layers.0.self_attn.q_proj", "a" * 40 + "c")] = arrays.pop(key)

    folder = make_adapter(tmp_path / "slow", config=_config(rank_pattern={"(a|a)+": 4}), tensors=rename)
    assert any(long_name in key for key in load_arrays(folder / WEIGHTS))
    for argv in (["inspect", str(folder)], ["resize", str(folder), "--rank", "2", "-o", str(tmp_path / "out")]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and "rank_pattern" in err and "takes over" in err, err
        assert not (tmp_path / "out").exists()
