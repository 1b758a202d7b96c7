"""Property tests for the formats' rules: kohya names round-trip, convert keeps ΔW exactly, combine cat is the
exact weighted sum and svd keeps Eckart–Young's energy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from loralens.adapters.combine import combine_adapters
from loralens.adapters.convert import convert
from loralens.adapters.formats.common import ForeignModule
from loralens.adapters.formats.names import from_kohya, to_kohya
from loralens.adapters.peft_format import PREFIX, Adapter

LLM_PARTS = st.tuples(st.sampled_from(["model.layers", "model.decoder.layers", "transformer.h"]),
                      st.integers(0, 99),
                      st.sampled_from(["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                       "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "attn.c_attn", "mlp.c_fc",
                                       "self_attn.out_proj", "fc1", "fc2"]))
UNET_PARTS = st.tuples(st.sampled_from(["down_blocks", "up_blocks"]), st.integers(0, 3), st.integers(0, 2),
                       st.integers(0, 9), st.sampled_from(["attn1.to_q", "attn2.to_k", "attn1.to_out.0",
                                                           "ff.net.0.proj", "ff.net.2"]))


@given(LLM_PARTS)
def test_kohya_names_of_text_models_round_trip(parts: tuple[str, int, str]) -> None:
    path = f"{parts[0]}.{parts[1]}.{parts[2]}"
    assert from_kohya(to_kohya("lora_te_", path)[len("lora_te_"):], "x") == path


@given(UNET_PARTS)
def test_kohya_names_of_unet_attention_round_trip(parts: tuple[str, int, int, int, str]) -> None:
    path = f"{parts[0]}.{parts[1]}.attentions.{parts[2]}.transformer_blocks.{parts[3]}.{parts[4]}"
    assert from_kohya(to_kohya("lora_unet_", path)[len("lora_unet_"):], "x") == path


def adapter(rng: np.random.Generator, r: int, alpha: float, names: list[str], shape: tuple[int, int]) -> Adapter:
    modules = tuple(ForeignModule(name=n, a=rng.standard_normal((r, shape[1])).astype(np.float32),
                                  b=rng.standard_normal((shape[0], r)).astype(np.float32), r=r, alpha=alpha,
                                  scaling=alpha / r, in_features=shape[1], out_features=shape[0], key=PREFIX + n)
                    for n in names)
    return Adapter(config={"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": ["q_proj"]},
                   modules=modules, dtype="float32", path=None, file_bytes=0)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.sampled_from([1.0, 2.5, 16.0, 0.125, 7.0]), st.integers(0, 2**31))
def test_convert_round_trip_keeps_delta_exactly(r: int, alpha: float, seed: int) -> None:
    source = adapter(np.random.default_rng(seed), r, alpha, ["model.layers.0.self_attn.q_proj"], (6, 5))
    back = convert(convert(source, "kohya").adapter, "diffusers", component="text_encoder").adapter
    again = convert(convert(back, "kohya").adapter, "peft").adapter
    for m, n in zip(source.modules, again.modules, strict=True):
        assert n.name == m.name and n.scaling == m.scaling
        np.testing.assert_array_equal(n.delta_weight(), m.delta_weight())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-2, 2, allow_nan=False), min_size=2, max_size=3), st.integers(1, 4),
       st.integers(0, 2**31))
def test_cat_is_exact_and_svd_is_eckart_young(weights: list[float], r: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    adapters = [adapter(rng, r, 2.0 * (i + 1), ["model.layers.0.self_attn.q_proj"], (9, 7))
                for i in range(len(weights))]
    total = sum(w * a.modules[0].delta_weight() for w, a in zip(weights, adapters, strict=True))
    cat = combine_adapters(adapters, weights, method="cat").adapter.modules[0]
    np.testing.assert_allclose(cat.delta_weight(), total, atol=1e-5 * (1 + np.abs(total).max()))
    svd = combine_adapters(adapters, weights, method="svd", rank=2)
    s = np.linalg.svd(total, compute_uv=False)
    if s[0] > 1e-6:
        expected = float(np.sum(s[:2] ** 2) / np.sum(s**2))
        assert abs(svd.modules[0].energy_kept - expected) < 1e-6
