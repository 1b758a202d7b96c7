"""Hostile inputs to the command line: whatever the config fields, the safetensors header or the values, a command
prints ONE line (``loralens: error: ...``) and exits non-zero, or succeeds; never a traceback. And outputs: --force
replaces only an earlier loralens output, outputs follow the umask, nothing is left behind on any failure."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loralens.adapters import atomic
from loralens.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "loralens" / "data" / "sample_adapter"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, err: str) -> None:
    assert "Traceback" not in err
    if code != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("loralens: error: "), err


# ---------------------------------------------------------------- outputs


def test_force_refuses_a_folder_loralens_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    code, _, err = run(["resize", str(SAMPLE), "--rank", "2", "-o", str(out), "--force"], capsys)
    assert code == 1
    assert_one_line(code, err)
    assert "holds files loralens did not write (thesis.tex)" in err
    assert (out / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_force_replaces_an_earlier_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    assert run(["resize", str(SAMPLE), "--rank", "2", "-o", str(out)], capsys)[0] == 0
    assert run(["resize", str(SAMPLE), "--rank", "1", "-o", str(out), "--force"], capsys)[0] == 0
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_dot_force_leaves_nothing_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep").write_text("x")
    monkeypatch.chdir(work)
    code, _, err = run(["resize", str(SAMPLE), "--rank", "2", "-o", ".", "--force"], capsys)
    assert code == 1 and "holds files loralens did not write (keep)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert sorted(p.name for p in work.iterdir()) == ["keep"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path: Path, capsys: pytest.CaptureFixture[str], mask: int) -> None:
    old = os.umask(mask)
    try:
        assert run(["resize", str(SAMPLE), "--rank", "2", "-o", str(tmp_path / "r")], capsys)[0] == 0
    finally:
        os.umask(old)
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o777 & ~mask
    for file in (tmp_path / "r").iterdir():
        assert file.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError(28, "No space left on device"), RuntimeError])
def test_a_failure_while_writing_leaves_nothing(tmp_path: Path, failure: BaseException) -> None:
    out = tmp_path / "out"
    with pytest.raises((KeyboardInterrupt, RuntimeError, atomic.OutputError)):
        with atomic.atomic_output_dir(out) as temp:
            (temp / "adapter_model.safetensors").write_bytes(b"half")
            raise failure
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_replacing_keeps_the_old_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_output_dir(out, force=True) as temp:
            (temp / "adapter_model.safetensors").write_bytes(b"new")
            raise KeyboardInterrupt
    assert (out / "adapter_model.safetensors").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---------------------------------------------------------------- fuzz: config fields, header, values

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                      st.floats(allow_nan=False), st.text(max_size=12),
                      st.sampled_from([10**400, -1, 0, 1e308, 1e-320, "q_proj", ".*", "all-linear"]))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                          max_leaves=8)
CONFIG_FIELDS = ["r", "lora_alpha", "target_modules", "rank_pattern", "alpha_pattern", "use_rslora", "use_dora",
                 "bias", "fan_in_fan_out", "peft_type", "modules_to_save", "layers_to_transform", "init_lora_weights"]


@st.composite
def configs(draw: st.DrawFn) -> str:
    config = json.loads((SAMPLE / "adapter_config.json").read_text())
    for name in draw(st.lists(st.sampled_from(CONFIG_FIELDS), max_size=3, unique=True)):
        if draw(st.booleans()):
            config.pop(name, None)
        else:
            config[name] = draw(JSON_VALUE)
    text = json.dumps(config)
    if draw(st.integers(0, 9)) == 0:  # deep nesting, truncation
        text = draw(st.sampled_from(['{"r": ' + "[" * 100_000 + "]" * 100_000 + "}", text[: len(text) // 2],
                                     "", "[]", "null", '{"r": 1e999}']))
    return text


def header_of(data: bytes) -> dict:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length])


def with_header(data: bytes, header: dict) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    (length,) = struct.unpack("<Q", data[:8])
    return struct.pack("<Q", len(raw)) + raw + data[8 + length:]


@st.composite
def weights(draw: st.DrawFn) -> bytes:
    data = (SAMPLE / "adapter_model.safetensors").read_bytes()
    header = header_of(data)
    names = sorted(k for k in header if k != "__metadata__")
    name = draw(st.sampled_from(names))
    choice = draw(st.integers(0, 6))
    entry = dict(header[name])
    if choice == 0:
        entry["dtype"] = draw(st.sampled_from(["F64", "F16", "BF16", "I8", "U8", "BOOL", "F8_E4M3", "X", 7]))
    elif choice == 1:
        entry["shape"] = draw(st.one_of(st.lists(st.integers(-2, 2**62), max_size=4), JSON_VALUE))
    elif choice == 2:
        entry["data_offsets"] = draw(st.one_of(st.lists(st.integers(-1, 2**64), max_size=3), JSON_VALUE))
    elif choice == 3:
        header.pop(name)
    if choice <= 3:
        if choice != 3:
            header[name] = entry
        return with_header(data, header)
    if choice == 4:  # values: huge, inf, nan in one tensor (F32 as shipped)
        start, end = header[name]["data_offsets"]
        (length,) = struct.unpack("<Q", data[:8])
        body = bytearray(data)
        value = draw(st.sampled_from([np.inf, -np.inf, np.nan, 3e38, 1e-45]))
        offset = 8 + length + start
        body[offset:offset + 4] = np.float32(value).tobytes()
        return bytes(body)
    if choice == 5:
        return data[: draw(st.integers(0, len(data) - 1))]
    return struct.pack("<Q", draw(st.integers(0, 2**64 - 1))) + data[8:]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(config=configs(), tensors=weights(), command=st.sampled_from(["inspect", "resize"]))
def test_hostile_adapters_give_one_line(tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
                                        config: str, tensors: bytes, command: str) -> None:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "adapter_config.json").write_text(config)
    (folder / "adapter_model.safetensors").write_bytes(tensors)
    argv = [command, str(folder)] + (["--rank", "1", "-o", str(folder / "out")] if command == "resize" else [])
    try:
        code = main(argv)
    except BaseException as error:  # noqa: BLE001 - exactly what this test is for
        pytest.fail(f"{command} raised {type(error).__name__}: {str(error)[:300]} with config {config[:300]}")
    _, err = capsys.readouterr()
    assert_one_line(code, err)
    if code != 0:
        assert not (folder / "out").exists()
    leftovers = [p.name for p in folder.iterdir() if atomic.TEMP_MARK in p.name]
    assert not leftovers
    shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- Ctrl-C

STUCK_COMMAND = """
import sys
import numpy as np
from loralens import cli
from loralens.adapters import atomic

def stuck(args):
    with atomic.atomic_output_dir(sys.argv[1]) as temp:
        (temp / "adapter_model.safetensors").write_bytes(b"half")
        print("started", flush=True)
        a = np.full((6, 6), 1.7e308)
        a[0, 0] = np.inf
        np.linalg.svd(a)  # LAPACK never returns on inf; Python cannot handle a signal inside the call
    return "finished"

parser = cli.build_parser
def build_parser():
    p = parser()
    sub = next(a for a in p._actions if a.dest == "command")
    sub.add_parser("stuck").set_defaults(handler=stuck)
    return p
cli.build_parser = build_parser
sys.exit(cli.main(["stuck"]))
"""


def test_ctrl_c_stops_a_command_inside_one_long_c_call(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    with subprocess.Popen([sys.executable, "-c", STUCK_COMMAND, str(out)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=tmp_path) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=60)  # without the thread the SVD never returns
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 130
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # the half-written output is gone
