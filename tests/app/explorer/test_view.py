"""The Explorer's view model (the oracle of the browser module): numbers a person reads, the warning, the lesson
hook, the to-scale diagram and the bars."""

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from loralens.app.explorer.charts import bars, tick_label
from loralens.app.explorer.diagram import MIN_RANK_SIDE, diagram_layout
from loralens.app.explorer.view import (
    HIDDEN_ANSWER,
    PRESETS,
    ExplorerState,
    build_view,
    explorer_url,
    models_url,
    preset_index,
    state_from_query,
)
from loralens.core.counting import count_layer
from loralens.core.units import share_percent

dims = st.integers(1, 65_536)


def test_default_view_numbers() -> None:
    view = build_view(ExplorerState())
    assert (view.full_text, view.lora_text, view.ratio_text) == ("16,777,216", "65,536", "0.39%")
    assert view.warning is None and view.savings_text == "saves 99.6%"
    assert view.formula_merge == "W′ = W + (16/8)·B·A = W + 2.00·B·A"
    assert view.max_rank_text.startswith("Largest rank that saves at least 99%: r = 20 ")


def test_rank_one_on_4096_saves_99_95_percent_not_100() -> None:
    view = build_view(ExplorerState(r=1))
    assert view.savings_text == "saves 99.95%"
    assert view.ratio_text == "0.049%"


@given(dims, dims, st.integers(1, 65_536))
def test_a_share_reads_0_or_100_percent_only_when_exact(d: int, k: int, r: int) -> None:
    r = min(r, d, k)
    view = build_view(ExplorerState(d=d, k=k, r=r, square=d == k))
    count = view.count
    assert (view.ratio_text == "100%") == (count.lora == count.full)
    assert view.ratio_text != "0%"
    assert not view.savings_text.startswith(("saves 100%", "saves 0%"))
    for text in (view.ratio_text, view.savings_text.removeprefix("saves ")):
        if text.endswith("%") and Fraction(text[:-1]) in (0, 100):
            assert Fraction(text[:-1]) / 100 in (count.share, count.savings)


@given(st.fractions(min_value=0, max_value=3), st.integers(1, 4))
def test_share_percent_never_rounds_onto_an_end(share: Fraction, digits: int) -> None:
    text = share_percent(share, digits)
    shown = Fraction(text[:-1])
    if shown in (0, 100):
        assert shown == share * 100


def test_past_break_even_is_a_warning_never_a_negative_saving() -> None:
    view = build_view(ExplorerState(d=16, k=16, r=16))
    assert view.savings_text == "saves nothing"
    assert view.warning is not None and "break-even rank dk/(d+k) = 8" in view.warning
    assert "-" not in view.ratio_text
    exact = build_view(ExplorerState(d=16, k=16, r=8))
    assert exact.warning is not None and "saves nothing" in exact.warning


def test_rslora_formula() -> None:
    view = build_view(ExplorerState(d=64, k=64, r=16, alpha=16, rslora=True))
    assert view.formula_merge == "W′ = W + (16/√16)·B·A = W + 4.00·B·A"


def test_answers_false_hides_the_largest_rank_for_the_target() -> None:
    for flag in ("false", "0", "no"):
        state, messages = state_from_query({"d": "1024", "answers": flag})
        assert not state.answers and messages == []
        view = build_view(state)
        assert view.max_rank_text == HIDDEN_ANSWER and "r = 5 " not in view.max_rank_text
    assert "r = 5 " in build_view(state_from_query({"d": "1024"})[0]).max_rank_text


def test_rmax_limits_the_rank_and_says_so() -> None:
    state, messages = state_from_query({"rmax": "16", "r": "20"})
    assert (state.r, state.rank_max) == (16, 16)
    assert messages == ["URL parameter r: must be at most rmax = 16; using 16"]
    state, messages = state_from_query({"d": "8", "rmax": "16", "r": "20"})
    assert state.r == 8 and messages == ["URL parameter r: must be at most min(d, k) = 8; using 8"]


def test_old_links_keep_working_and_new_ones_carry_every_toggle() -> None:
    state, messages = state_from_query({"d": "1024", "k": "1024", "r": "5", "alpha": "16", "rslora": "false"})
    assert messages == [] and (state.d, state.r, state.trained, state.answers) == (1024, 5, False, True)
    url = explorer_url(state)
    assert url.startswith("/?d=1024&k=1024&r=5&alpha=16&rslora=false&square=true&target=99")
    assert "trained=false" in url and "answers=true" in url and "rmax=0" in url
    assert explorer_url(state, embed=True).endswith("&embed=1")


def test_real_model_link_carries_rank_alpha_and_embed() -> None:
    state = ExplorerState(d=1024, k=1024, r=16, alpha=32)
    assert models_url(state) == "/models?model=llama-2-7b&r=16&alpha=32"
    assert models_url(state, embed=True) == "/models?model=llama-2-7b&r=16&alpha=32&embed=1"


def test_preset_box_follows_d_and_k() -> None:
    assert preset_index(4096, 4096) == 2 and PRESETS[2][1:] == (4096, 4096)
    assert preset_index(4097, 4096) is None


@given(dims, dims, st.integers(1, 65_536))
def test_diagram_draws_b_and_a_to_scale_with_a_visible_minimum(d: int, k: int, r: int) -> None:
    r = min(r, d, k)
    layout = diagram_layout(d, k, r, 2.0)
    w, b, a, merged = (rect for rect in layout["rects"])
    assert b["h"] == w["h"] and a["w"] == w["w"] and merged["w"] == w["w"]
    assert abs(b["w"] - max(MIN_RANK_SIDE, w["w"] * r / k)) < 1e-9
    assert abs(a["h"] - max(MIN_RANK_SIDE, w["h"] * r / d)) < 1e-9
    assert layout["clamped"] == (w["w"] * r / k < MIN_RANK_SIDE or w["h"] * r / d < MIN_RANK_SIDE)
    assert ("drawn 3 thick" in layout["note"]) == layout["clamped"]
    texts = [label["text"] for label in layout["labels"]]
    assert f"d={d:,}" in texts and f"k={k:,}" in texts and f"r={r:,}" in texts
    assert layout["width"] <= 26 + 30 + 30 + 6 + 10 + 330 + MIN_RANK_SIDE + 1e-9  # the labels stay legible in a 400-px frame


def test_bars_are_linear_with_a_magnified_inset_for_a_tiny_share() -> None:
    default = bars(count_layer(4096, 4096, 8))
    assert default["lora"] == 65_536 / 16_777_216  # to scale: 0.39% of the full bar
    assert default["inset"] == {"zoom": 100, "lora": 0.390625,
                                "caption": "magnified ×100: the first 1% of the full bar"}
    assert bars(count_layer(16, 16, 4))["inset"] is None  # 50%: readable as it is
    past = bars(count_layer(16, 16, 12))
    assert past["lora"] == 1 and past["full"] == 256 / 384


@given(dims, dims, st.integers(1, 65_536))
def test_inset_lora_bar_fills_ten_to_hundred_percent(d: int, k: int, r: int) -> None:
    layout = bars(count_layer(d, k, min(r, d, k)))
    if layout["inset"] is not None:
        assert 0.1 <= layout["inset"]["lora"] <= 1


def test_tick_labels() -> None:
    assert [tick_label(e) for e in (0, 2, 3, 5, 6, 9, 12, 13)] == ["1", "100", "1K", "100K", "1M", "1B", "1T", "10T"]
