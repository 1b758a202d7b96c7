"""The Inspector's pure view-model functions, on a fake report built to the adapters contract."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from loralens.app.inspector import resize_view as rv
from loralens.app.inspector import view as ci
from loralens.core.lowrank import effective_rank, energy_kept, singular_values


@dataclass(frozen=True)
class FakeModule:
    name: str
    layer: int | None
    module_type: str
    in_features: int
    out_features: int
    r: int
    alpha: float
    scaling: float
    delta_fro: float
    singular_values: np.ndarray
    numerical_rank: int
    effective_rank: float
    energy: np.ndarray
    a_norm: float
    b_norm: float
    nonfinite: bool


@dataclass(frozen=True)
class FakeSummary:
    modules: int = 0
    parameters: int = 0
    bytes: int = 0
    dtype: str = "float32"
    base_model: str | None = "tiny/model"
    peft_version: str | None = "0.13.2"
    r: int = 4
    alpha: float = 8
    use_rslora: bool = False
    use_dora: bool = False
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    nonfinite: int = 0


@dataclass(frozen=True)
class FakeReport:
    summary: FakeSummary
    modules: tuple[FakeModule, ...]


def module(name: str, layer: int | None, kind: str, s: list[float], *, d: int = 6, k: int = 5) -> FakeModule:
    s_arr = np.asarray(s, dtype=np.float64)
    return FakeModule(
        name=name, layer=layer, module_type=kind, in_features=k, out_features=d, r=len(s), alpha=2.0 * len(s),
        scaling=2.0, delta_fro=float(np.sqrt((s_arr**2).sum())), singular_values=s_arr,
        numerical_rank=int(np.count_nonzero(s_arr > 1e-6)), effective_rank=effective_rank(s_arr),
        energy=energy_kept(s_arr), a_norm=1.5, b_norm=0.5, nonfinite=False,
    )


def report() -> FakeReport:
    modules = (
        module("model.layers.0.self_attn.q_proj", 0, "q_proj", [4.0, 2.0, 1.0, 0.0]),
        module("model.layers.0.self_attn.v_proj", 0, "v_proj", [3.0, 3.0, 3.0, 3.0]),
        module("model.layers.1.self_attn.q_proj", 1, "q_proj", [5.0, 0.5, 0.1, 0.01]),
        module("lm_head", None, "lm_head", [1.0, 1.0]),
    )
    return FakeReport(FakeSummary(modules=len(modules), parameters=1234567, bytes=4_940_000), modules)


def test_table_rows_carry_the_report_numbers() -> None:
    rep = report()
    rows = ci.table_rows(rep)
    assert [r["name"] for r in rows] == [m.name for m in rep.modules]
    first = rows[0]
    assert first["shape"] == "6 × 5"
    assert first["delta_fro"] == pytest.approx(math.sqrt(16 + 4 + 1))
    assert first["energy_half"] == pytest.approx((16 + 4) / 21)  # r = 4 -> rank 2
    assert rows[3]["energy_half"] == pytest.approx(0.5)  # r = 2 -> rank 1 of a flat spectrum
    assert rows[1]["effective_rank"] == pytest.approx(4.0)
    json.dumps(rows)  # plain JSON for the browser


def test_table_columns_are_all_named_and_sortable_except_shape() -> None:
    columns = ci.table_columns()
    fields = {c["field"] for c in columns}
    assert fields == set(ci.table_rows(report())[0])
    assert all(c["sortable"] for c in columns if c["name"] != "shape")


def test_nonfinite_values_become_null_and_are_flagged() -> None:
    bad = module("x", 0, "q_proj", [1.0, 0.5])
    bad = FakeModule(**{**bad.__dict__, "delta_fro": math.nan, "nonfinite": True,
                        "singular_values": np.array([math.inf, math.nan]), "energy": np.array([math.nan, math.nan])})
    rep = FakeReport(FakeSummary(nonfinite=1), (bad,))
    row = ci.table_rows(rep)[0]
    assert row["delta_fro"] is None and row["energy_half"] is None and row["nonfinite"] == "NaN/Inf"
    text = json.dumps([ci.spectrum_option(rep.modules), ci.energy_option(rep.modules), ci.table_rows(rep),
                       ci.heatmap_option(rep, "delta_fro")], allow_nan=False)  # raises on NaN/Inf
    assert "null" in text
    preview = rv.resize_preview(rep, rank=1)
    assert preview.rows[0].new_r == 1 and math.isnan(preview.rows[0].error)
    assert dict(ci.summary_rows(rep.summary))["NaN/Inf"].startswith("1")


def test_summary_rows_format_the_summary() -> None:
    rows = dict(ci.summary_rows(report().summary))
    assert rows["Modules"] == "4"
    assert rows["Parameters"] == "1,234,567"
    assert rows["Size"] == "4.94 MB (4,940,000 bytes)"
    assert rows["Target modules"] == "q_proj, v_proj"
    assert rows["rsLoRA"] == "no"
    assert rows["NaN/Inf"] == "none"


def test_spectrum_is_on_a_log_axis_without_zeros() -> None:
    option = ci.spectrum_option(report().modules[:1])
    assert option["yAxis"]["type"] == "log"
    assert option["xAxis"]["data"] == ["1", "2", "3", "4"]
    assert option["series"][0]["data"] == [4.0, 2.0, 1.0, None]


def test_energy_curve_ends_at_one_and_draws_the_target() -> None:
    option = ci.energy_option(report().modules[:1], threshold=0.9)
    data = option["series"][0]["data"]
    assert data[-1] == pytest.approx(1.0) and data == sorted(data)
    assert option["series"][0]["markLine"]["data"] == [{"yAxis": 0.9}]
    assert "markLine" not in ci.energy_option(report().modules[:1])["series"][0]


def test_heatmap_places_each_module_in_its_layer_and_type() -> None:
    rep = report()
    grid = ci.heatmap_grid(rep, "delta_fro")
    assert grid.layers == ("0", "1", ci.NO_LAYER)
    assert grid.types == ("lm_head", "q_proj", "v_proj")
    assert grid.values[1][1] == pytest.approx(rep.modules[2].delta_fro)
    assert grid.values[0][2] == pytest.approx(rep.modules[3].delta_fro)
    assert grid.values[2][1] is None and grid.counts[2][1] == 0
    option = ci.heatmap_option(rep, "effective_rank")
    assert [2, 0, pytest.approx(2.0)] in option["series"][0]["data"]  # lm_head, no layer, flat spectrum of 2
    assert option["visualMap"]["max"] == pytest.approx(4.0)
    assert len(option["series"][0]["data"]) == 4


def test_heatmap_combines_modules_sharing_a_cell() -> None:
    a = module("vision.layers.0.q_proj", 0, "q_proj", [3.0])
    b = module("text.layers.0.q_proj", 0, "q_proj", [4.0])
    grid = ci.heatmap_grid(FakeReport(FakeSummary(), (a, b)), "delta_fro")
    assert grid.values == ((pytest.approx(5.0),),) and grid.counts == ((2,),)
    with pytest.raises(ValueError, match="metric"):
        ci.heatmap_grid(report(), "nope")


def test_resize_preview_by_rank_matches_eckart_young() -> None:
    rep = report()
    preview = rv.resize_preview(rep, rank=1)
    first = preview.rows[0]
    assert (first.r, first.new_r) == (4, 1)
    assert first.energy_kept == pytest.approx(16 / 21)
    assert first.error == pytest.approx(math.sqrt(5 / 21))
    assert preview.parameters_before == sum(m.r * 11 for m in rep.modules)
    assert preview.parameters_after == 4 * 11
    assert rv.resize_preview(rep, rank=100).parameters_after == preview.parameters_before  # never grows


def test_resize_preview_by_energy_keeps_at_least_the_target() -> None:
    preview = rv.resize_preview(report(), energy=0.9)
    assert [row.new_r for row in preview.rows] == [2, 4, 1, 2]
    assert preview.min_energy_kept >= 0.9
    assert all(row.energy_kept >= 0.9 - 1e-12 for row in preview.rows)
    with pytest.raises(ValueError):
        rv.resize_preview(report())


def test_fake_spectrum_matches_core() -> None:
    """The fake report is honest: its spectra are what core computes for a real B @ A."""
    rng = np.random.default_rng(0)
    b, a = rng.normal(size=(6, 3)), rng.normal(size=(3, 5))
    s = singular_values(b, a)
    np.testing.assert_allclose(s, np.linalg.svd(b @ a, compute_uv=False)[:3])


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters"
REAL_ADAPTERS = ["sample", *sorted(p.parent.name for p in FIXTURES.glob("*/adapter_config.json"))]


@pytest.mark.parametrize("which", REAL_ADAPTERS)
@pytest.mark.parametrize(("rank", "energy"), [(1, None), (3, None), (None, 0.9), (None, 0.5)])
def test_resize_preview_agrees_with_resize_adapter(which: str, rank: int | None, energy: float | None) -> None:
    """The page's instant preview (from the report) says what the download (resize_adapter) will do, on the
    shipped sample and on every PEFT-made fixture (rsLoRA, rank_pattern, DoRA, GPT-2 Conv1D, bf16...)."""
    from loralens.adapters import inspect_adapter, load_adapter, resize_adapter
    from loralens.app.inspector.page import sample_path

    adapter = load_adapter(sample_path() if which == "sample" else FIXTURES / which)
    preview = rv.resize_preview(inspect_adapter(adapter), rank=rank, energy=energy)
    resized = resize_adapter(adapter, rank=rank, energy=energy)
    assert [row.new_r for row in preview.rows] == [m.r_after for m in resized.modules]
    assert [row.energy_kept for row in preview.rows] == pytest.approx([m.energy_kept for m in resized.modules])
    assert [row.error for row in preview.rows] == pytest.approx([m.error for m in resized.modules], abs=1e-12)
    assert (preview.parameters_before, preview.parameters_after) == (resized.parameters_before,
                                                                     resized.parameters_after)
