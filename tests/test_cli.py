"""The command's shell: help, version, and usage errors as one line with exit code 2."""

import subprocess
import sys

import loralens
from loralens.cli import main


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"loralens {loralens.__version__}"


def test_help_lists_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "loralens", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "serve" in out.stdout


def test_unknown_option_is_one_line_and_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["serve", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --no-such-option" in err
    assert "Traceback" not in err


def test_bad_port_is_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--port", "abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loralens: error: loralens serve: argument --port: invalid port value: 'abc'")


def test_closed_pipe_is_not_an_error() -> None:
    """`loralens params ... | head -1`: no traceback when the reader stops early."""
    proc = subprocess.run(
        f"{sys.executable} -m loralens params --model llama-2-7b --all-modules | head -1",
        shell=True, capture_output=True, text=True,
    )
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_port_out_of_range_is_a_usage_error(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--port", "70000"]) == 2
    assert "argument --port: invalid port value: '70000'" in capsys.readouterr().err


def test_port_in_use_is_one_line_not_a_traceback(capsys) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--no-browser", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == (f"loralens: error: serve: cannot listen on 127.0.0.1:{port}: Address already in use (is loralens "
                   "already running there? --port N picks another port, --port 0 a free one)\n")


def test_serves_on_a_fixed_default_port_so_links_survive_a_restart(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two starts without --port listen on the same documented port; --port 0 asks for a free one."""
    import importlib

    app_main = importlib.import_module("loralens.app.main")  # as serve imports it (NiceGUI's fixture may drop it)

    seen: list[int | None] = []
    monkeypatch.setattr(app_main, "run_app", lambda host, port, show: seen.append(port))
    assert main(["--no-browser"]) == 0 and main(["serve", "--no-browser"]) == 0
    assert main(["--no-browser", "--port", "0"]) == 0
    assert seen == [8765, 8765, 0]
    assert app_main.check_address("127.0.0.1", 0) > 0


def test_unknown_host_is_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--host", "203.0.113.7", "--no-browser"]) == 1  # TEST-NET-3: never an address of this machine
    assert "cannot listen on 203.0.113.7:8765" in capsys.readouterr().err
