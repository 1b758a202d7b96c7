"""The Models page in-process (NiceGUI's user fixture): counts, memory and methods after each control change."""

from __future__ import annotations

import pytest
from nicegui.testing import User

from loralens.app.models import view as cm
from loralens.core.architectures import PRESETS, get_architecture
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora
from loralens.errors import InvalidParameterError


def _rows(user: User, marker: str) -> list[dict]:
    return next(iter(user.find(marker=marker).elements)).rows


def _cells(user: User, marker: str, column: str) -> list[object]:
    return [row[column] for row in _rows(user, marker)]


def _set(user: User, marker: str, value: object) -> None:
    element = next(iter(user.find(marker=marker).elements))
    element.value = value


async def test_default_view_shows_llama_counts(user: User) -> None:
    await user.open("/models")
    await user.should_see("4,194,304")  # Llama-2-7B, r = 8 on q_proj, v_proj: 32 * 2 * 8 * 8192
    methods = {row["name"]: row["trainable"] for row in _rows(user, "method-table")}
    assert methods["Full fine-tuning"] == "6,738,415,616"  # the published Llama-2-7B size
    assert methods["Prefix tuning"] == f"{20 * 32 * 2 * 4096:,}"
    assert _cells(user, "module-table", "name") == ["model.layers.*.self_attn.q_proj",
                                                    "model.layers.*.self_attn.v_proj"]


async def test_changing_rank_and_targets_updates_counts(user: User) -> None:
    await user.open("/models")
    _set(user, "r", 16)
    await user.should_see("8,388,608")
    _set(user, "all-linear", True)
    expected = count_lora(get_architecture("llama-2-7b"), LoraConfigSpec(r=16, target_modules="all-linear"))
    await user.should_see(f"{expected.trainable:,}")  # 39,976,960
    assert "model.layers.*.mlp.down_proj" in _cells(user, "module-table", "name")


async def test_model_picker_switches_module_names(user: User) -> None:
    await user.open("/models")
    _set(user, "model", "gpt2")
    await user.should_see("c_fc")
    assert _cells(user, "module-table", "name") == ["transformer.h.*.attn.c_attn"]  # PEFT's default for gpt2
    methods = {row["name"]: row["trainable"] for row in _rows(user, "method-table")}
    assert methods["Full fine-tuning"] == "124,439,808"  # GPT-2's published parameter count


async def test_url_state_round_trips(user: User) -> None:
    await user.open("/models?model=mistral-7b&r=4&alpha=8&targets=q_proj,k_proj&dora=true&method=qlora")
    expected = count_lora(get_architecture("mistral-7b"),
                          LoraConfigSpec(r=4, lora_alpha=8, target_modules=("q_proj", "k_proj"), use_dora=True))
    await user.should_see(f"{expected.trainable:,}")
    await user.should_see("(QLoRA)")


async def test_bad_url_values_are_reported(user: User) -> None:
    await user.open("/models?r=-3&targets=nope&batch=x")
    await user.should_see("URL parameter r: must be at least 1; using 1")
    await user.should_see("URL parameter targets: 'nope' is not a module of llama-2-7b")
    await user.should_see("URL parameter batch: expected a number, got 'x'; using 4")
    await user.should_see("524,288")  # r = 1


async def test_bad_control_values_show_beside_the_control(user: User) -> None:
    await user.open("/models")
    _set(user, "batch", -2)
    await user.should_see("must be from 1 to 4096, got -2")
    _set(user, "sharding", "zero3")
    await user.should_see("zero3 shards over several GPUs")
    _set(user, "gpus", 4)
    await user.should_not_see("zero3 shards over several GPUs")
    _set(user, "r", 2.5)
    await user.should_see("must be a whole number, got 2.5")
    await user.should_see("4,194,304")  # the last good numbers stay


def test_compute_reports_errors_instead_of_raising() -> None:
    result = cm.compute(cm.ModelsState(model="gpt2", targets="q_proj"))
    assert "targets" in result.errors and result.count is None
    result = cm.compute(cm.ModelsState(method="full", sharding="zero2", gpus=1))
    assert result.errors == {"sharding": "zero2 shards over several GPUs; use --gpus 2 or more, or sharding none"}


def test_memory_chart_has_the_three_methods_and_gpu_lines() -> None:
    result = cm.compute(cm.ModelsState())
    option = cm.memory_chart_option(result.memory)
    assert option["xAxis"]["data"] == ["Full", "LoRA", "QLoRA"]
    stacks = [s for s in option["series"] if s.get("stack") == "memory"]
    assert [s["name"] for s in stacks] == list(cm.SERIES)
    lines = [d["yAxis"] for d in stacks[-1]["markLine"]["data"]]
    assert lines == [24, 40, 80]
    for i, method in enumerate(("full", "lora", "qlora")):
        total = sum(s["data"][i] for s in stacks)
        assert abs(total - result.memory[method].per_device.total / 2**30) < 0.01


def test_methods_chart_is_log_scale_and_skips_zero() -> None:
    rows = cm.compute(cm.ModelsState()).methods
    option = cm.methods_chart_option(rows)
    assert option["xAxis"]["type"] == "log"
    values = {name: d["value"] for name, d in zip(option["yAxis"]["data"], option["series"][0]["data"])}
    assert values["BitFit"] is None  # Llama has no biases: no bar on a log axis
    assert values["Full fine-tuning"] == 6_738_415_616


def test_module_choices_are_valid_peft_targets() -> None:
    assert cm.module_choices(get_architecture("bert-base-uncased")) == [
        "query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
    assert cm.module_choices(get_architecture("gpt2")) == ["c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"]
    for name in ("llama-2-7b", "opt-125m", "qwen2.5-0.5b", "gpt3", "bert-base-uncased", "gpt2"):
        arch = get_architecture(name)
        for target in cm.module_choices(arch):  # each one matches at least one module per block
            count = count_lora(arch, LoraConfigSpec(target_modules=(target,)))
            assert len(count.modules) >= arch.num_layers


def _default_counts(arch: object) -> bool:
    try:
        count_lora(arch, LoraConfigSpec())  # type: ignore[arg-type]
    except InvalidParameterError:  # no default targets (whisper), or PEFT drops them (mixtral on transformers 5)
        return False
    return True


@pytest.mark.parametrize("hf_id", [h for h, a in PRESETS.items() if _default_counts(a)])
def test_the_ticked_boxes_adapt_what_peft_s_default_adapts(hf_id: str) -> None:
    """Ticking the boxes PEFT's default selects and counting those names adapts the same modules (T5: q and v)."""
    arch = PRESETS[hf_id]
    choices = cm.module_choices(arch)
    ticked = cm.ticked_choices(choices, set(arch.family.lora_targets))
    default = count_lora(arch, LoraConfigSpec())
    boxes = count_lora(arch, LoraConfigSpec(target_modules=tuple(c for c in choices if c in ticked)))
    assert ticked and [m.name for m in boxes.modules] == [m.name for m in default.modules]


async def test_t5_opens_with_the_default_targets_ticked(user: User) -> None:
    await user.open("/models?model=t5-base")
    ticked = {name for name in ("layer.0.SelfAttention.q", "layer.0.SelfAttention.v", "layer.1.EncDecAttention.q",
                                "layer.1.EncDecAttention.v", "layer.0.SelfAttention.k")
              if next(iter(user.find(marker=f"target-{name}").elements)).value}
    assert ticked == {"layer.0.SelfAttention.q", "layer.0.SelfAttention.v", "layer.1.EncDecAttention.q",
                      "layer.1.EncDecAttention.v"}


def test_target_text_parsing() -> None:
    arch = get_architecture("llama-2-7b")
    assert cm.parse_target_text(arch, "") == (None, None)
    assert cm.parse_target_text(arch, "ALL-LINEAR") == ("all-linear", None)
    assert cm.parse_target_text(arch, "q_proj, v_proj,q_proj") == (("q_proj", "v_proj"), None)
    targets, problem = cm.parse_target_text(arch, "q_proj,c_attn")
    assert targets is None and problem is not None and "c_attn" in problem and "gate_proj" in problem


def test_memory_chart_scales_to_small_models_and_cuts_huge_full_bars() -> None:
    small = cm.memory_chart_option(cm.compute(cm.ModelsState(model="gpt2")).memory)
    assert small["yAxis"]["max"] < 24
    assert small["series"][4]["markLine"]["data"] == []  # all fit 24 GB: no line to draw
    big = cm.compute(cm.ModelsState(model="llama-2-70b", targets="all-linear"))
    option = cm.memory_chart_option(big.memory)
    assert [d["yAxis"] for d in option["series"][4]["markLine"]["data"]] == [24, 40, 80]
    full_label = option["series"][-1]["data"][0]["label"]["formatter"]
    assert full_label.endswith("(off scale)") and option["yAxis"]["max"] < big.memory["full"].per_device.total / 2**30


async def test_an_out_of_range_value_keeps_its_message_when_the_field_loses_focus(user: User) -> None:
    """NiceGUI's number clamps to min on blur: -2 silently became 1 (and the count followed) before NumberField."""
    await user.open("/models?model=gpt2&r=4")
    _set(user, "batch", -2)
    await user.should_see("must be from 1 to 4096, got -2")
    user.find(marker="batch").trigger("blur")
    await user.should_see("must be from 1 to 4096, got -2")
    assert next(iter(user.find(marker="batch").elements)).value == -2
    _set(user, "r", 2.5)
    user.find(marker="r").trigger("blur")
    await user.should_see("must be a whole number, got 2.5")
