"""extract: Eckart–Young per module (against a float64 full SVD), the written error exact, merge brings the
extracted adapter back to tuned within that error; what cannot be extracted is listed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import FIXTURES, truncated
from formats_helpers import BASE, tuned_model

from loralens.adapters import load_adapter, merge_adapter, write_adapter
from loralens.adapters.extract import EXACT_BELOW, _randomized, extract_lora
from loralens.adapters.safetensors_io import load_arrays
from loralens.errors import AdapterError

def test_extract_is_eckart_young_and_merge_returns_to_tuned(tmp_path: Path) -> None:
    tuned = tuned_model(tmp_path, norm=True)
    result = extract_lora(BASE, tuned, rank=3)
    assert result.skipped == (("model.norm.weight", "changed, but not a 2-D weight: a LoRA cannot hold it"),)
    base, new = load_arrays(BASE), load_arrays(tuned / "model.safetensors")
    assert len(result.modules) == 4  # q_proj and down_proj in 2 layers
    for module, report in zip(result.adapter.modules, result.modules, strict=True):
        d = new[module.name + ".weight"].astype(np.float64) - base[module.name + ".weight"]
        best = truncated(d, 3)
        np.testing.assert_allclose(module.delta_weight(), best, atol=1e-6)
        s = np.linalg.svd(d, compute_uv=False)
        optimal = np.sqrt(np.sum(s[3:] ** 2) / np.sum(s**2))
        assert report.error == pytest.approx(optimal, rel=1e-6) and report.optimal_error == pytest.approx(optimal)
    out = write_adapter(result.adapter, tmp_path / "lora")
    merged = merge_adapter(load_adapter(out), FIXTURES / "base_llama", tmp_path / "merged")
    back = load_arrays(merged.out_dir / "model.safetensors")
    for report in result.modules:
        key = report.name + ".weight"
        d = new[key].astype(np.float64) - base[key]
        err = np.linalg.norm(back[key].astype(np.float64) - new[key]) / np.linalg.norm(d)
        assert err == pytest.approx(report.error, rel=1e-2, abs=1e-5)


def test_energy_target_and_unchanged_models(tmp_path: Path) -> None:
    tuned = tuned_model(tmp_path)
    result = extract_lora(BASE, tuned, energy=0.9)
    assert all(m.energy_kept >= 0.9 and m.r <= 4 for m in result.modules)
    with pytest.raises(AdapterError, match="nothing to extract"):
        extract_lora(BASE, BASE, rank=2)


def test_randomized_svd_matches_the_exact_one_on_a_decaying_spectrum() -> None:
    rng = np.random.default_rng(3)
    m, n = EXACT_BELOW + 88, EXACT_BELOW + 40
    u, _ = np.linalg.qr(rng.standard_normal((m, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = 0.7 ** np.arange(n)
    d = (u * s) @ v.T
    found = _randomized(d, 10, rng)
    assert found is not None
    uk, sk, vtk = found
    np.testing.assert_allclose(sk, s[:10], rtol=1e-9)
    np.testing.assert_allclose((uk * sk) @ vtk, truncated(d, 10), atol=1e-9)
