"""Issue 14 item 5 (adapters): every array checked finite, and in range after scaling, before any LAPACK call and
before any write. A huge but finite lora_alpha must not hang resize (numpy's SVD never returns on a core holding
inf); F64 factors of 1e200 must make merge refuse instead of writing non-finite weights with exit 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import FIXTURES, tree_digest

from loralens.adapters import inspect_adapter, load_adapter, merge_adapter, resize_adapter
from loralens.adapters.safetensors_io import load_arrays, save_arrays
from loralens.cli import main
from loralens.errors import AdapterError

PREFIX = "base_model.model.model.layers.0.self_attn.q_proj"


def make(folder: Path, *, alpha: float, r: int = 5, a_scale: float = 1.0, dtype: str = "F32",
         shape: tuple[int, int] = (32, 32)) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    out, inp = shape
    arrays = {f"{PREFIX}.lora_A.weight": rng.standard_normal((r, inp)) * a_scale,
              f"{PREFIX}.lora_B.weight": rng.standard_normal((out, r)) * a_scale}
    save_arrays(folder / "adapter_model.safetensors", arrays, {k: dtype for k in arrays})
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": ["q_proj"]}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def test_a_huge_finite_alpha_is_refused_by_resize_and_reported_by_inspect(tmp_path: Path) -> None:
    adapter = load_adapter(make(tmp_path / "a", alpha=1.7e308, shape=(6, 6)))
    with pytest.raises(AdapterError, match="overflows; cannot resize"):
        resize_adapter(adapter, rank=2)
    report = inspect_adapter(adapter)
    assert report.modules[0].nonfinite and report.summary.nonfinite


def test_the_cli_refuses_with_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make(tmp_path / "a", alpha=1e308, shape=(6, 6))
    before = tree_digest(folder)
    assert main(["resize", str(folder), "--rank", "2", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "overflows" in err
    assert not (tmp_path / "out").exists() and tree_digest(folder) == before
    assert main(["inspect", str(folder)]) == 0
    assert "overflows" in capsys.readouterr().out


def _base_in(folder: Path, dtype: str) -> Path:
    """The fixture Llama base stored in ``dtype``."""
    folder.mkdir()
    arrays = load_arrays(FIXTURES / "base_llama" / "model.safetensors")
    save_arrays(folder / "model.safetensors", arrays, {k: dtype for k in arrays})
    return folder


@pytest.mark.parametrize("base_dtype", ["F32", "F64", "F16", "BF16"])
def test_merge_refuses_f64_factors_of_1e200(tmp_path: Path, base_dtype: str) -> None:
    folder = make(tmp_path / "a", alpha=8, r=4, a_scale=1e200, dtype="F64")
    base = _base_in(tmp_path / "base", base_dtype)
    with pytest.raises(AdapterError, match="overflows; refusing to merge"):
        merge_adapter(folder, base, tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("base_dtype", ["F16", "BF16", "F32"])
def test_merge_refuses_a_delta_that_overflows_the_base_dtype(tmp_path: Path, base_dtype: str) -> None:
    """Finite in float32 and float64, but past float16's 65504 (or float32's range): refused, nothing written."""
    scale = 1e3 if base_dtype in ("F16",) else 1e21
    folder = make(tmp_path / "a", alpha=8, r=4, a_scale=scale, dtype="F64")
    base = _base_in(tmp_path / "base", base_dtype)
    with pytest.raises(AdapterError, match="not finite"):
        merge_adapter(folder, base, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "base"]
