"""loralens against PEFT's measured MetaMathQA runs (tests/fixtures/metamathqa_runs.json, copied from
huggingface/peft method_comparison/MetaMathQA/results): trainable and total parameters exactly, the adapter file's
size within 0.5 % (LoRA: byte for byte). Memory is a benchmark figure, reported in docs/models-memory.md, not tested."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loralens.core.architectures import get_architecture
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora

RUNS = json.loads((Path(__file__).parents[1] / "fixtures" / "metamathqa_runs.json").read_text())
ARCH = get_architecture(RUNS["model"])


@pytest.mark.parametrize("run", RUNS["runs"], ids=[r["file"] for r in RUNS["runs"]])
def test_counts_and_file_size_equal_the_measured_run(run: dict) -> None:
    if run["method"] == "full":
        assert ARCH.total_params == run["num_trainable_params"] == run["num_total_params"]
        assert abs(2 * ARCH.total_params - run["file_size"]) <= 0.005 * run["file_size"]  # bf16 weights
        return
    count = count_lora(ARCH, LoraConfigSpec(**run["lora_config"], task_type="CAUSAL_LM"))
    assert (count.trainable, count.total) == (run["num_trainable_params"], run["num_total_params"])
    assert count.adapter_bytes["bf16"] == run["file_size"]  # within 0.5 % is the brief; it is exact
