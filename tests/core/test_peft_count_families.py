"""count_lora and the builders against PEFT and transformers for every family, variant flag and head, without torch:
tests/fixtures/peft_counts.json["families"], written by scripts/generate_peft_count_fixtures.py from the tiny
configs of tests/oracle/test_peft_oracle_families.py and the option cases of test_peft_oracle_options.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_peft_count import moe_rewritten

from loralens.core.architectures import architecture_from_config
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora
from loralens.errors import InvalidParameterError

FAMILIES = json.loads((Path(__file__).parents[1] / "fixtures" / "peft_counts.json").read_text()).get("families", {})
CASES = [(name, i) for name, entry in FAMILIES.items() for i in range(len(entry["cases"]))]


def test_fixture_has_the_families() -> None:
    types = {entry["config"]["model_type"] for entry in FAMILIES.values()}
    assert {"qwen3", "qwen3_moe", "mixtral", "gemma", "gemma2", "gemma3_text", "phi3", "gpt_neox", "falcon", "bloom",
            "roberta", "vit", "t5", "whisper"} <= types


@pytest.mark.parametrize("name", list(FAMILIES))
def test_model_equals_transformers(name: str) -> None:
    entry = FAMILIES[name]
    arch = architecture_from_config(entry["config"])
    assert arch.total_params == entry["total"]
    assert arch.total_bias_params == entry["bias_total"]
    lines = [f"{m.name} {m.in_features} {m.out_features} {m.bias}" for m in arch.linear_modules]
    assert hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest() == entry["linear_digest"]


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_count_equals_peft(name: str, index: int) -> None:
    entry = FAMILIES[name]
    case = entry["cases"][index]
    arch = architecture_from_config(entry["config"])
    kwargs = case["lora_config"]
    if "error" in case:
        with pytest.raises(InvalidParameterError):
            count_lora(arch, LoraConfigSpec(**kwargs))
        return
    result = count_lora(arch, LoraConfigSpec(**kwargs))
    assert (result.trainable, result.total) == (case["trainable"], case["total"])
    if not kwargs.get("target_parameters") and not moe_rewritten(arch.model_type, kwargs):  # PEFT nests
        # ParamWrappers under other names
        assert result.num_modules == case["num_modules"]
