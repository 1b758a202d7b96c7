"""inspect_adapter against a float64 full SVD of each ΔW (nobody here wrote numpy's SVD)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from adapter_helpers import ADAPTERS, FIXTURES, reference
from safetensors.numpy import load_file

from loralens.adapters import inspect_adapter, load_adapter, sample_adapter_path
from loralens.adapters.inspect import parse_layer
from loralens.adapters.safetensors_io import load_arrays, save_arrays

ITEM_6_FIELDS = {"name", "in_features", "out_features", "r", "alpha", "scaling", "delta_fro", "singular_values",
                 "effective_rank"}


@pytest.mark.parametrize("name", ADAPTERS)
def test_spectra_match_a_full_float64_svd_of_peft_s_delta(name: str) -> None:
    report = inspect_adapter(load_adapter(FIXTURES / name))
    ref = reference(name)
    for module in report.modules:
        delta = ref[f"delta/{module.name}"].astype(np.float64)  # PEFT's ΔW
        s = np.linalg.svd(delta, compute_uv=False)[: module.r]
        np.testing.assert_allclose(module.singular_values, s, rtol=1e-5, atol=1e-6 * s[0])
        assert module.delta_fro == pytest.approx(np.linalg.norm(delta), rel=1e-5)
        p = s**2 / np.sum(s**2)
        assert module.effective_rank == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-4)
        np.testing.assert_allclose(module.energy, np.cumsum(s**2) / np.sum(s**2), rtol=1e-5)
        assert module.energy[-1] == pytest.approx(1.0)
        assert np.all(np.diff(module.singular_values) <= 0)
        assert module.numerical_rank == np.linalg.matrix_rank(
            delta, tol=s[0] * max(delta.shape) * np.finfo(np.float32).eps)
        assert (module.out_features, module.in_features) in (delta.shape, delta.shape[::-1])
        assert not module.nonfinite


def test_norms_and_summary_against_the_safetensors_package() -> None:
    path = FIXTURES / "patterns"
    tensors = load_file(path / "adapter_model.safetensors")
    report = inspect_adapter(load_adapter(path))
    assert report.summary.parameters == sum(t.size for t in tensors.values())
    assert report.summary.bytes == (path / "adapter_model.safetensors").stat().st_size
    assert report.summary.modules == 7 and report.summary.ranks == [2, 4, 8]
    assert report.summary.peft_version == json.loads((path / "adapter_config.json").read_text())["peft_version"]
    q0 = next(m for m in report.modules if m.name == "model.layers.0.self_attn.q_proj")
    a = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
    b = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]
    assert q0.a_norm == pytest.approx(np.linalg.norm(a), rel=1e-6)
    assert q0.b_norm == pytest.approx(np.linalg.norm(b), rel=1e-6)
    assert (q0.layer, q0.module_type, q0.r, q0.scaling) == (0, "q_proj", 8, 1.0)
    embed = next(m for m in report.modules if m.name == "model.embed_tokens")
    assert embed.layer is None and embed.kind == "embedding"


def test_sample_adapter_has_the_spectra_it_was_made_with() -> None:
    report = inspect_adapter(load_adapter(sample_adapter_path()))
    o0 = next(m for m in report.modules if m.name == "model.layers.0.self_attn.o_proj")
    assert o0.numerical_rank == 5  # made with three zero singular values
    assert len({round(m.effective_rank, 3) for m in report.modules}) > 20  # modules differ
    assert [m.layer for m in report.modules] == sorted(m.layer for m in report.modules)


@pytest.mark.parametrize("name, layer", [("model.layers.3.self_attn.q_proj", 3), ("transformer.h.11.attn.c_attn", 11),
                                         ("model.embed_tokens", None), ("layers.0", 0), ("lm_head", None)])
def test_layer_is_parsed_from_the_path(name: str, layer: int | None) -> None:
    assert parse_layer(name) == layer


def test_nan_and_inf_are_reported_not_fatal(tmp_path: Path) -> None:
    folder = tmp_path / "nan"
    folder.mkdir()
    (folder / "adapter_config.json").write_bytes((FIXTURES / "plain" / "adapter_config.json").read_bytes())
    tensors = load_arrays(FIXTURES / "plain" / "adapter_model.safetensors")
    bad_a = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"
    bad_b = "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"
    tensors[bad_a][0, 0] = np.nan
    tensors[bad_b][2, 1] = np.inf
    save_arrays(folder / "adapter_model.safetensors", tensors)
    report = inspect_adapter(load_adapter(folder))
    assert sorted(report.summary.nonfinite) == sorted([bad_a, bad_b])
    flagged = {m.name for m in report.modules if m.nonfinite}
    assert flagged == {"model.layers.1.self_attn.v_proj", "model.layers.0.mlp.up_proj"}
    text = json.dumps(report.to_json(), allow_nan=False)  # valid JSON: NaN becomes null
    module = next(m for m in json.loads(text)["modules"] if m["name"] == "model.layers.1.self_attn.v_proj")
    assert module["delta_fro"] is None and module["singular_values"] == [None] * 4 and module["nonfinite"]
    fine = next(m for m in report.modules if m.name == "model.layers.0.self_attn.q_proj")
    assert np.isfinite(fine.singular_values).all()


def test_json_has_the_fields_of_issue_item_6() -> None:
    data = inspect_adapter(load_adapter(FIXTURES / "rslora")).to_json()
    assert {"summary", "modules"} <= data.keys()
    for module in data["modules"]:
        assert ITEM_6_FIELDS <= module.keys()
        assert len(module["singular_values"]) == module["r"]
        assert module["singular_values"] == sorted(module["singular_values"], reverse=True)
    assert data["modules"][0]["scaling"] == pytest.approx(16 / np.sqrt(8))


@pytest.mark.parametrize("cond", [1e2, 1e5, 1e9])
@pytest.mark.parametrize("shape", [(300, 6, 200), (40, 6, 500)])
def test_ill_conditioned_factors_still_match_a_full_svd(cond: float, shape: tuple[int, int, int]) -> None:
    """Badly scaled factors (the Gram/Cholesky shortcut must hand over to QR) and rank-deficient ones."""
    from loralens.adapters import AdapterModule
    from loralens.adapters.inspect import inspect_module
    from loralens.core.lowrank import lowrank_svd

    out, r, inp = shape
    rng = np.random.default_rng(int(cond))
    q, _ = np.linalg.qr(rng.standard_normal((out, r)))
    b = q * np.logspace(0, -np.log10(cond), r)  # (out, r) with condition number cond
    a = rng.standard_normal((r, inp))
    a[-1] = a[0]  # rank-deficient A
    module = AdapterModule(name="m", a=a, b=b, r=r, alpha=2.0 * r, scaling=2.0, in_features=inp, out_features=out)
    full = np.linalg.svd(2.0 * b @ a, compute_uv=False)[:r]
    report = inspect_module(module)
    np.testing.assert_allclose(report.singular_values, full, rtol=0, atol=1e-12 * full[0])
    assert report.numerical_rank == np.linalg.matrix_rank(2.0 * b @ a, tol=full[0] * max(out, inp) * 1.1920929e-07)
    u, s, vt = lowrank_svd(b, a, 2.0)
    np.testing.assert_allclose((u * s) @ vt, 2.0 * b @ a, rtol=0, atol=1e-12 * full[0])
