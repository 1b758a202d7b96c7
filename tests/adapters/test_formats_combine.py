"""combine: PEFT's add_weighted_adapter rules, checked against float64 dense arithmetic (the oracle test in
tests/oracle/test_formats_oracle.py checks them against PEFT itself)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from adapter_helpers import FIXTURES, truncated

from loralens.adapters import load_adapter
from loralens.adapters.combine import combine_adapters
from loralens.errors import AdapterError

W = [0.7, -0.4]


def deltas(name: str) -> dict[str, np.ndarray]:
    return {m.name: m.delta_weight() for m in load_adapter(FIXTURES / name).modules}


def test_cat_is_the_exact_weighted_sum() -> None:
    adapters = [load_adapter(FIXTURES / "plain"), load_adapter(FIXTURES / "patterns")]
    result = combine_adapters(adapters, W, method="cat")
    assert result.rank == 4 + 8 and result.adapter.config["r"] == result.adapter.config["lora_alpha"] == 12
    assert result.adapter.config["rank_pattern"] == {} and result.adapter.config["alpha_pattern"] == {}
    assert set(result.adapter.config["target_modules"]) == {"gate_proj", "v_proj", "o_proj", "k_proj", "up_proj",
                                                            "down_proj", "q_proj", "embed_tokens"}
    one, two = deltas("plain"), deltas("patterns")
    for m in result.adapter.modules:
        expected = W[0] * one.get(m.name, 0) + W[1] * two.get(m.name, 0)
        np.testing.assert_allclose(m.delta_weight(), expected, atol=1e-6)
        assert m.a.shape == (12, m.in_features) and m.scaling == 1.0


def test_svd_is_eckart_young_of_the_sum_with_its_energy() -> None:
    adapters = [load_adapter(FIXTURES / "plain"), load_adapter(FIXTURES / "bf16")]
    result = combine_adapters(adapters, W, method="svd", rank=3)
    one, two = deltas("plain"), deltas("bf16")
    for m, report in zip(result.adapter.modules, result.modules, strict=True):
        total = W[0] * one.get(m.name, 0) + W[1] * two.get(m.name, 0)
        np.testing.assert_allclose(m.delta_weight(), truncated(total, 3), atol=1e-5)
        s = np.linalg.svd(total, compute_uv=False)
        assert report.energy_kept == pytest.approx(float(np.sum(s[:3] ** 2) / np.sum(s**2)), rel=1e-9)
        assert report.adapters == (2 if m.name in two else 1)


def test_linear_is_peft_s_square_root_rule() -> None:
    adapters = [load_adapter(FIXTURES / "plain"), load_adapter(FIXTURES / "bf16")]
    result = combine_adapters(adapters, W, method="linear")
    by = [{m.name: m for m in a.modules} for a in adapters]
    for m in result.adapter.modules:
        a = sum(math.copysign(math.sqrt(abs(w * d[m.name].scaling)), w * d[m.name].scaling) * d[m.name].a
                for w, d in zip(W, by, strict=True) if m.name in d)
        b = sum(math.sqrt(abs(w * d[m.name].scaling)) * d[m.name].b for w, d in zip(W, by, strict=True)
                if m.name in d)
        np.testing.assert_allclose(m.a, a, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(m.b, b, rtol=1e-6, atol=1e-7)


def test_refusals_follow_peft() -> None:
    plain, patterns = load_adapter(FIXTURES / "plain"), load_adapter(FIXTURES / "patterns")
    with pytest.raises(AdapterError, match="All adapters must have the same r value"):
        combine_adapters([plain, patterns], W, method="linear")
    with pytest.raises(AdapterError, match="use_rslora"):
        combine_adapters([plain, load_adapter(FIXTURES / "rslora")], W, method="cat")
    with pytest.raises(AdapterError, match="DoRA"):
        combine_adapters([plain, load_adapter(FIXTURES / "dora")], W, method="cat")
