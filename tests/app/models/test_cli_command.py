"""The Models page shows the CLI command that reproduces its view: the same defaults, the same numbers."""

from __future__ import annotations

import shlex

import pytest

from loralens.app.models import view as cm
from loralens.cli import build_parser
from loralens.commands.models_memory import memory_from_args


@pytest.mark.parametrize("state", [
    cm.ModelsState(),
    cm.ModelsState(model="mistral-7b", r=16, alpha=32, targets="all-linear", dora=True, method="qlora", batch=2,
                   seq=1024, ckpt=False, dtype="fp16", optimizer="adamw8bit"),
    cm.ModelsState(model="qwen2.5-0.5b", targets="q_proj,k_proj", bias="all", gpus=4, sharding="zero3"),
])
def test_the_command_computes_what_the_page_shows(state: cm.ModelsState) -> None:
    command = cm.cli_command(state)
    args = build_parser().parse_args(shlex.split(command)[1:])
    arch, estimate = memory_from_args(args)
    shown = cm.compute(state).memory[state.method]
    assert estimate.per_device.total == shown.per_device.total
    assert estimate.trainable_params == shown.trainable_params


def test_defaults_are_one_set() -> None:
    assert cm.cli_command(cm.ModelsState()) == "loralens memory --model llama-2-7b"
