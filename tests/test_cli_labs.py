"""``loralens lab NAME``: summaries, JSON, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from loralens.cli import main
from loralens.core.labs import run_fit


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(["lab", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_json_equals_the_library(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "fit", "--d", "24", "--k", "16", "--rank", "2", "--target-rank", "4",
                         "--steps", "30", "--seed", "3", "--noise", "0.1", "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    expected = run_fit(d=24, k=16, rank=2, target_rank=4, steps=30, seed=3, noise=0.1).to_json()
    assert data == json.loads(json.dumps(expected))
    assert out.count("\n") == 1


def test_fit_summary_is_readable(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "fit", "--d", "16", "--k", "16", "--rank", "2", "--target-rank", "4", "--steps", "20")
    assert code == 0
    assert "Eckart–Young bound" in out and "final relative error" in out and "{" not in out


@pytest.mark.parametrize("lab,extra,keys", [
    ("init", ["--steps", "10"], ["schemes", "default", "a_zero", "both_random", "both_zero", "pissa"]),
    ("merge", ["--batch", "8", "--repeats", "1"], ["merged_vs_unmerged_max_abs_diff", "swap_back_max_abs_diff",
                                                    "flops_per_token_merged", "flops_per_token_unmerged"]),
    ("subspace", ["--steps", "10", "--rank", "2", "--rank-large", "8"], ["phi", "amplification"]),
])
def test_every_lab_runs_with_json(capsys, lab: str, extra: list[str], keys: list[str]) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, lab, "--d", "16", "--k", "24", *extra, "--json")
    assert code == 0
    data = json.loads(out)
    for key in keys:
        assert key in data
    code, text, _ = run(capsys, lab, "--d", "16", "--k", "24", *extra)
    assert code == 0 and len(text.splitlines()) > 4


def test_same_seed_same_output(capsys) -> None:  # type: ignore[no-untyped-def]
    args = ("init", "--d", "12", "--k", "12", "--rank", "2", "--steps", "15", "--seed", "9", "--json")
    assert run(capsys, *args)[1] == run(capsys, *args)[1]


@pytest.mark.parametrize("argv,message", [
    (["fit", "--d", "8", "--k", "16", "--rank", "9"], "rank: must be at most min(d, k) = 8, got 9"),
    (["fit", "--d", "0"], "d: must be from 1 to 1,024, got 0"),
    (["fit", "--steps", "5001"], "steps: must be from 1 to 5,000, got 5,001"),
    (["init", "--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    (["nosuchlab"], "invalid choice: 'nosuchlab' (choose from 'fit', 'init', 'merge', 'subspace')"),
    (["subspace", "--d", "16", "--k", "16", "--rank-large", "32"], "rank_large: must be at most min(d, k) = 16"),
    (["merge", "--steps", "3"], "unrecognized arguments: --steps 3"),
])
def test_bad_parameters_are_one_line_and_exit_2(capsys, argv: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("loralens: error: ") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err


def test_installed_command() -> None:
    done = subprocess.run([sys.executable, "-m", "loralens", "lab", "merge", "--d", "8", "--k", "8", "--rank", "2",
                           "--batch", "4", "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["flops_per_token_merged"] == 128


def test_another_process_gets_the_same_numbers() -> None:
    """Seeds fix everything: a fresh interpreter (its own BLAS state) prints exactly the library's numbers."""
    argv = ["fit", "--d", "20", "--k", "12", "--rank", "3", "--target-rank", "5", "--steps", "40", "--seed", "11"]
    done = subprocess.run([sys.executable, "-m", "loralens", "lab", *argv, "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = run_fit(d=20, k=12, rank=3, target_rank=5, steps=40, seed=11).to_json()
    assert json.loads(done.stdout) == json.loads(json.dumps(expected))
