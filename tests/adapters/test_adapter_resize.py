"""resize_adapter: PEFT loads the result and its ΔW is the float64 truncated SVD of the original ΔW."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import truncated, FIXTURES, copy_adapter, tree_digest
from hypothesis import given, settings
from hypothesis import strategies as st

from loralens.adapters import Adapter, AdapterModule, load_adapter, resize_adapter, write_adapter
from loralens.core.counting import scaling
from loralens.errors import AdapterError, InvalidParameterError


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99, 0.999, 1.0])
def test_energy_picks_the_smallest_rank_that_keeps_the_fraction(fraction: float) -> None:
    original = load_adapter(FIXTURES / "rslora")
    resized = resize_adapter(original, energy=fraction)
    for module, report in zip(original.modules, resized.modules, strict=True):
        s = np.linalg.svd(module.delta_weight(), compute_uv=False)[: module.r]
        kept = np.cumsum(s**2) / np.sum(s**2)
        k = report.r_after
        assert kept[k - 1] >= fraction - 1e-9
        assert k == 1 or kept[k - 2] < fraction
    config = resized.config
    for module in resized.adapter.modules:  # the config alone gives PEFT each module's rank and alpha
        r = config["rank_pattern"].get(module.name, config["r"])
        alpha = config["alpha_pattern"].get(module.name, config["lora_alpha"])
        assert (r, alpha) == (module.r, pytest.approx(module.alpha))


def test_rank_above_r_keeps_every_module_whole_and_params_shrink() -> None:
    original = load_adapter(FIXTURES / "patterns")
    same = resize_adapter(original, rank=64)
    assert [m.r_after for m in same.modules] == [m.r for m in original.modules]
    assert all(m.error < 1e-6 for m in same.modules)
    smaller = resize_adapter(original, rank=1)
    assert smaller.parameters_after < smaller.parameters_before
    assert smaller.bytes_after < original.file_bytes
    assert smaller.config["r"] == 1 and smaller.config["rank_pattern"] == {}


@pytest.mark.parametrize("kwargs, where", [({}, "rank/energy"), ({"rank": 2, "energy": 0.5}, "rank/energy"),
                                           ({"rank": 0}, "rank"), ({"energy": 0.0}, "energy"),
                                           ({"energy": 1.5}, "energy"), ({"rank": 2.5}, "rank")])
def test_bad_parameters(kwargs: dict, where: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        resize_adapter(load_adapter(FIXTURES / "plain"), **kwargs)
    assert info.value.where == where


def test_resize_never_touches_the_input(tmp_path: Path) -> None:
    folder = copy_adapter("bf16", tmp_path / "in")
    before = tree_digest(folder)
    write_adapter(resize_adapter(load_adapter(folder), rank=1), tmp_path / "out")
    assert tree_digest(folder) == before
    assert load_adapter(tmp_path / "out").dtype == "bfloat16"


def test_nan_module_cannot_be_resized() -> None:
    module = load_adapter(FIXTURES / "plain").modules[0]
    bad = np.array(module.a)
    bad[0, 0] = np.nan
    adapter = Adapter(config={"r": 4, "lora_alpha": 8}, dtype="float32", path=None, file_bytes=0,
                      modules=(AdapterModule(**{**module.__dict__, "a": bad}),))
    with pytest.raises(AdapterError, match="NaN or Inf"):
        resize_adapter(adapter, rank=1)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(2, 9), st.integers(2, 9), st.booleans(),
       st.floats(-64, 64).filter(lambda a: abs(a) > 1e-3), st.integers(0, 2**31))
def test_property_resized_delta_is_the_best_rank_k_approximation(r: int, k: int, out: int, inp: int, rslora: bool,
                                                                  alpha: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((r, inp)).astype(np.float32)
    b = rng.standard_normal((out, r)).astype(np.float32)
    s = scaling(r, alpha, rslora)
    module = AdapterModule(name="m.0.q", a=a, b=b, r=r, alpha=alpha, scaling=s, in_features=inp, out_features=out,
                           key="base_model.model.m.0.q")
    adapter = Adapter(config={"r": r, "lora_alpha": alpha, "use_rslora": rslora}, modules=(module,),
                      dtype="float32", path=None, file_bytes=0)
    resized = resize_adapter(adapter, rank=k)
    new = resized.adapter.modules[0]
    kk = min(k, r)
    assert new.r == kk and new.a.shape == (kk, inp) and new.b.shape == (out, kk)
    # PEFT's rule applied to the written config reproduces the truncated ΔW
    scale = scaling(resized.config["r"], resized.config["lora_alpha"], rslora)
    expected = truncated(module.delta_weight(), kk)
    got = scale * (new.b.astype(np.float64) @ new.a.astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * max(1.0, np.abs(expected).max()))
