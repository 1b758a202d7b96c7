"""count_lora against PEFT (the committed fixture), the LoRA paper's GPT-3 numbers, and properties of the formula."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loralens.core.architectures import PRESETS, get_architecture
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora, group_modules
from loralens.errors import InvalidParameterError

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "peft_counts.json").read_text())
GPT3_AS_OPT = {"o_proj": "out_proj", "up_proj": "fc1", "down_proj": "fc2"}
CASES = [(hf_id, case) for hf_id, preset in FIXTURE["presets"].items() for case in preset["cases"]]


def moe_rewritten(model_type: str, kwargs: dict) -> bool:
    """On mixtral and qwen3_moe PEFT rewrites these targets into target_parameters (ParamWrappers, which PEFT
    names by their module): compared by totals only."""
    targets = kwargs.get("target_modules")
    renamed = {"mixtral": {"gate", "w1", "w2", "w3"}, "qwen3_moe": {"gate", "gate_proj", "up_proj", "down_proj"}}
    if model_type not in renamed or not targets:
        return False
    return isinstance(targets, str) or bool(renamed[model_type] & {t.rsplit(".", 1)[-1] for t in targets})


def _key(name: str, rename: dict[str, str] | None) -> str:
    if not rename:
        return name
    found = re.search(r"\.(\d+)\.", name)
    leaf = name.rsplit(".", 1)[-1]
    return f"{found.group(1) if found else '-'} {rename.get(leaf, leaf)}"


@pytest.mark.parametrize("hf_id,case", CASES, ids=[f"{h}-{i % 10}" for i, (h, _) in enumerate(CASES)])
def test_count_equals_peft_recorded_in_fixture(hf_id: str, case: dict) -> None:
    arch = PRESETS[hf_id]
    if "error" in case:  # PEFT raises: loralens refuses
        with pytest.raises(InvalidParameterError):
            count_lora(arch, LoraConfigSpec(**case["lora_config"]))
        return
    result = count_lora(arch, LoraConfigSpec(**case["lora_config"]))
    offset = 2 * arch.hidden_size if arch.model_type == "gpt3" else 0  # the oracle (OPT) has 2 more position rows
    assert result.trainable == case["trainable"]
    assert result.total == case["total"] - offset
    if moe_rewritten(arch.model_type, case["lora_config"]):
        return
    assert len(result.modules) == case["num_modules"]
    rename = GPT3_AS_OPT if arch.model_type == "gpt3" else None
    lines = [f"{_key(m.name, rename)} {m.r} {m.scaling!r} {m.params}" for m in result.modules]
    assert hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest() == case["modules_digest"]


def test_fixture_covers_every_preset_and_the_whole_grid() -> None:
    assert set(FIXTURE["presets"]) == set(PRESETS)
    for preset in FIXTURE["presets"].values():
        configs = [c["lora_config"] for c in preset["cases"]]
        assert any(c.get("target_modules") == "all-linear" for c in configs)
        assert any(c.get("use_dora") for c in configs)
        assert {c.get("bias", "none") for c in configs} == {"none", "lora_only", "all"}
        assert any("layers_to_transform" in c for c in configs) and any("rank_pattern" in c for c in configs)


# The LoRA paper (Hu et al. 2021), GPT-3 175B: section 4.2/7.1 and Table 6 (the 18M budget), section 4.2 checkpoint.
GPT3 = get_architecture("gpt3")


@pytest.mark.parametrize(
    "targets,r,expected",
    [
        (["q_proj", "v_proj"], 1, 4_718_592),
        (["q_proj", "v_proj"], 8, 37_748_736),
        (["q_proj"], 8, 18_874_368),
        (["k_proj"], 8, 18_874_368),
        (["v_proj"], 8, 18_874_368),
        (["o_proj"], 8, 18_874_368),
        (["q_proj", "k_proj"], 4, 18_874_368),
        (["q_proj", "v_proj"], 4, 18_874_368),
        (["q_proj", "k_proj", "v_proj", "o_proj"], 2, 18_874_368),
    ],
)
def test_lora_paper_gpt3_numbers(targets: list[str], r: int, expected: int) -> None:
    assert count_lora(GPT3, LoraConfigSpec(r=r, target_modules=targets)).trainable == expected


def test_lora_paper_gpt3_checkpoint_is_36_mib_in_fp16() -> None:
    result = count_lora(GPT3, LoraConfigSpec(r=4, target_modules=["q_proj", "v_proj"]))
    # the paper's 35 MB checkpoint stores the factors in fp16: 2 bytes each; PEFT keeps them in float32 even on an
    # fp16 model (autocast_adapter_dtype), so its file holds 72 MiB of tensors whatever the model's dtype
    assert 2 * result.trainable == 36 * 2**20
    assert result.tensor_bytes == {"fp32": 72 * 2**20, "bf16": 72 * 2**20, "fp16": 72 * 2**20}
    assert 0 < result.adapter_bytes["fp16"] - result.tensor_bytes["fp16"] < 60_000  # + the header of 384 tensors


def test_default_targets_are_peft_defaults() -> None:
    assert count_lora(get_architecture("gpt2"), LoraConfigSpec()).target_modules == ("c_attn",)
    assert count_lora(get_architecture("bert-base-uncased"), LoraConfigSpec()).target_modules == ("query", "value")
    # PEFT prints "trainable params: 4,194,304 || all params: 6,742,609,920 || trainable%: 0.0622" for this one
    result = count_lora(get_architecture("llama-2-7b"), LoraConfigSpec(r=8))
    assert (result.trainable, result.total) == (4_194_304, 6_742_609_920)
    assert round(result.percent, 4) == 0.0622


def test_group_modules_aggregates_by_kind() -> None:
    result = count_lora(get_architecture("llama-2-7b"), LoraConfigSpec(r=8, target_modules="all-linear"))
    groups = group_modules(result.modules)
    assert [g.name for g in groups][:2] == ["model.layers.*.self_attn.q_proj", "model.layers.*.self_attn.k_proj"]
    assert all(g.count == 32 and g.layers == tuple(range(32)) for g in groups)
    assert sum(g.params for g in groups) == result.trainable


@pytest.mark.parametrize(
    "kwargs,where,message",
    [
        ({"r": 0}, "r", "must be at least 1"),
        ({"r": "8"}, "r", "must be a whole number"),
        ({"lora_alpha": float("nan")}, "lora_alpha", "finite number"),
        ({"bias": "some"}, "bias", "must be one of none, lora_only, all"),
        ({"target_modules": []}, "target_modules", "at least one module"),
        ({"target_modules": "q_proj("}, "target_modules", "not a valid regex"),
        ({"target_modules": "all-linear", "layers_to_transform": [0]}, "layers_to_transform", "cannot be used"),
        ({"layers_to_transform": [-1]}, "layers_to_transform", "at least 0"),
        ({"rank_pattern": {"q_proj": 0}}, "rank_pattern['q_proj']", "at least 1"),
    ],
)
def test_spec_validation(kwargs: dict, where: str, message: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        LoraConfigSpec(**kwargs)
    assert info.value.where == where
    assert message in info.value.message


def test_targets_matching_nothing_raise_peft_style_error() -> None:
    with pytest.raises(InvalidParameterError) as info:
        count_lora(get_architecture("llama-2-7b"), LoraConfigSpec(target_modules=["c_attn"]))
    assert info.value.where == "target_modules"
    assert "Target modules ['c_attn'] not found in the base model" in info.value.message
    assert "q_proj" in info.value.message  # says what the names are
    with pytest.raises(InvalidParameterError, match="You specified 'layers_to_transform': \\[99\\]"):
        count_lora(get_architecture("gpt2"), LoraConfigSpec(target_modules=["c_attn"], layers_to_transform=[99]))


# ---- properties of the formula --------------------------------------------------------------------------------
SMALL = ["gpt2", "bert-base-uncased", "opt-125m", "qwen2.5-0.5b", "llama-2-7b"]


def _leaves(arch_name: str) -> list[str]:
    arch = get_architecture(arch_name)
    return sorted({m.name.rsplit(".", 1)[-1] for m in arch.linear_modules if not m.is_output_head})


@st.composite
def model_and_targets(draw: st.DrawFn) -> tuple[str, list[str]]:
    name = draw(st.sampled_from(SMALL))
    leaves = _leaves(name)
    return name, draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=len(leaves), unique=True))


@settings(max_examples=60, deadline=None)
@given(model_and_targets(), st.integers(1, 64), st.integers(2, 5))
def test_count_is_linear_in_r(mt: tuple[str, list[str]], r: int, factor: int) -> None:
    arch, targets = get_architecture(mt[0]), mt[1]
    one = count_lora(arch, LoraConfigSpec(r=r, target_modules=targets))
    many = count_lora(arch, LoraConfigSpec(r=factor * r, target_modules=targets))
    assert many.lora_params == factor * one.lora_params
    assert one.lora_params == r * sum(m.in_features + m.out_features for m in one.modules)


@settings(max_examples=60, deadline=None)
@given(model_and_targets(), st.integers(1, 32), st.booleans(), st.sampled_from(["none", "lora_only", "all"]))
def test_all_linear_is_at_least_any_subset(mt: tuple[str, list[str]], r: int, dora: bool, bias: str) -> None:
    arch, targets = get_architecture(mt[0]), mt[1]
    subset = count_lora(arch, LoraConfigSpec(r=r, target_modules=targets, use_dora=dora, bias=bias))
    everything = count_lora(arch, LoraConfigSpec(r=r, target_modules="all-linear", use_dora=dora, bias=bias))
    assert everything.trainable >= subset.trainable
    assert subset.trainable == subset.lora_params + subset.dora_params + subset.bias_params
    assert subset.total == arch.total_params + subset.lora_params + subset.dora_params
    # PEFT saves BERT's tied decoder bias under both its names with bias="all"
    twice = arch.vocab_size if bias == "all" and arch.model_type == "bert" else 0
    assert subset.tensor_bytes["fp32"] == 4 * (subset.trainable + twice)


@settings(max_examples=40, deadline=None)
@given(model_and_targets(), st.integers(1, 32), st.floats(0.5, 128))
def test_dora_adds_one_magnitude_per_output_feature_and_rslora_only_changes_scaling(
    mt: tuple[str, list[str]], r: int, alpha: float
) -> None:
    arch, targets = get_architecture(mt[0]), mt[1]
    plain = count_lora(arch, LoraConfigSpec(r=r, lora_alpha=alpha, target_modules=targets))
    dora = count_lora(arch, LoraConfigSpec(r=r, lora_alpha=alpha, target_modules=targets, use_dora=True))
    rs = count_lora(arch, LoraConfigSpec(r=r, lora_alpha=alpha, target_modules=targets, use_rslora=True))
    assert dora.trainable - plain.trainable == sum(m.out_features for m in plain.modules)
    assert rs.trainable == plain.trainable
    assert all(math.isclose(m.scaling, alpha / math.sqrt(r)) for m in rs.modules)
    assert all(math.isclose(m.scaling, alpha / r) for m in plain.modules)


@settings(max_examples=40, deadline=None)
@given(model_and_targets(), st.data())
def test_layers_to_transform_partitions_the_count(mt: tuple[str, list[str]], data: st.DataObject) -> None:
    arch, targets = get_architecture(mt[0]), mt[1]
    in_layers = [t for t in targets if any(m.layer is not None and m.name.endswith("." + t) for m in arch.linear_modules)]
    if not in_layers:
        in_layers = [next(m.name.rsplit(".", 1)[-1] for m in arch.linear_modules if m.layer is not None)]
    layers = data.draw(st.sets(st.integers(0, arch.num_layers - 1), min_size=1))
    rest = set(range(arch.num_layers)) - layers
    part = count_lora(arch, LoraConfigSpec(target_modules=in_layers, layers_to_transform=sorted(layers)))
    assert {m.layer for m in part.modules} == layers
    if rest:
        other = count_lora(arch, LoraConfigSpec(target_modules=in_layers, layers_to_transform=sorted(rest)))
        whole = count_lora(arch, LoraConfigSpec(target_modules=in_layers))
        # modules outside the blocks (e.g. BERT's cls.predictions.transform.dense) are never in a layer
        assert part.lora_params + other.lora_params == whole.lora_params - sum(
            m.params for m in whole.modules if m.layer is None)


@settings(max_examples=30, deadline=None)
@given(model_and_targets(), st.integers(1, 32), st.booleans(), st.sampled_from(["none", "lora_only", "all"]))
def test_without_modules_gives_the_same_totals(mt: tuple[str, list[str]], r: int, dora: bool, bias: str) -> None:
    arch, spec = get_architecture(mt[0]), LoraConfigSpec(r=r, target_modules=mt[1], use_dora=dora, bias=bias)
    full, quick = count_lora(arch, spec), count_lora(arch, spec, with_modules=False)
    assert quick.modules == () and quick.num_modules == full.num_modules == len(full.modules)
    assert (quick.trainable, quick.total, quick.adapter_bytes) == (full.trainable, full.total, full.adapter_bytes)


def test_embeddings_are_adapted_like_peft() -> None:
    # LoRA on an embedding: A is (r x num_embeddings), B is (embedding_dim x r); DoRA: one magnitude per column
    result = count_lora(get_architecture("gpt2"), LoraConfigSpec(target_modules=["wte"], use_dora=True))
    (module,) = result.modules
    assert (module.name, module.in_features, module.out_features) == ("transformer.wte", 50257, 768)
    assert result.trainable == 8 * (50257 + 768) + 768


@pytest.mark.parametrize(
    "targets,message",
    [
        (["input_layernorm"], "'model.layers.0.input_layernorm' is not supported: it is an RMSNorm"),
        (["self_attn"], "'model.layers.0.self_attn' is not supported: it is a module that holds other modules"),
        (r"model\.layers\.0\..*", "is not supported: it is"),
    ],
)
def test_targets_matching_unsupported_modules_fail_like_peft(targets: list[str] | str, message: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        count_lora(get_architecture("llama-2-7b"), LoraConfigSpec(target_modules=targets))
    assert message in info.value.message and info.value.where == "target_modules"


def test_equal_specs_are_equal_and_hash_alike() -> None:
    a = LoraConfigSpec(r=4, target_modules=["q_proj"], rank_pattern={"q_proj": 2})
    b = LoraConfigSpec(r=4, target_modules=("q_proj",), rank_pattern={"q_proj": 2})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


@settings(max_examples=40, deadline=None)
@given(model_and_targets(), st.integers(1, 16), st.integers(1, 16), st.floats(1, 64), st.data())
def test_rank_pattern_changes_only_the_modules_it_names(
    mt: tuple[str, list[str]], r: int, r2: int, alpha2: float, data: st.DataObject
) -> None:
    arch, targets = get_architecture(mt[0]), mt[1]
    special = data.draw(st.sampled_from(targets))
    base = count_lora(arch, LoraConfigSpec(r=r, target_modules=targets))
    patterned = count_lora(arch, LoraConfigSpec(r=r, target_modules=targets, rank_pattern={special: r2},
                                                alpha_pattern={special: alpha2}))
    for before, after in zip(base.modules, patterned.modules, strict=True):
        if before.name.endswith("." + special):
            assert (after.r, after.params) == (r2, r2 * (before.in_features + before.out_features))
            assert math.isclose(after.scaling, alpha2 / r2)
        else:
            assert after == before
