"""Issue 13 item 6: any adapter_config.json gets one line, never a traceback.

A structured fuzz of the config's fields (wrong types, extreme values, nested junk; NaN and huge ints included, as
Python's json reads them) through everything a user can run on it: read, inspect (text and --json), resize (text
and --json), and the CLI itself. Bounded: a few hundred examples, a few seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loralens.adapters import inspect_adapter, load_adapter_from_bytes, resize_adapter
from loralens.adapters.safetensors_io import encode, to_bytes
from loralens.cli import main
from loralens.commands.adapters import _dumps, format_report, format_resize
from loralens.errors import LoraLensError

STEM = "base_model.model.model.layers.0.self_attn.q_proj"
_rng = np.random.default_rng(0)
WEIGHTS = to_bytes({f"{STEM}.lora_A.weight": encode(_rng.standard_normal((4, 8)).astype(np.float32)),
                    f"{STEM}.lora_B.weight": encode(_rng.standard_normal((8, 4)).astype(np.float32))}, {"format": "pt"})
FIELDS = ["r", "lora_alpha", "target_modules", "peft_version", "base_model_name_or_path", "use_rslora", "use_dora",
          "rank_pattern", "alpha_pattern", "fan_in_fan_out", "bias", "modules_to_save", "lora_bias",
          "trainable_token_indices", "layers_to_transform", "layers_pattern", "peft_type", "task_type",
          "target_parameters", "exclude_modules", "init_lora_weights"]
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
           | st.sampled_from([2**70, 1.7e308, -0.0, 1e-320, float("nan"), float("inf"), 4, 8, "q_proj", ".*", "(a+)+$"])
           | st.floats() | st.text(max_size=6))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                          max_size=3), max_leaves=6)
CONFIGS = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5).map(
    lambda extra: {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], **extra})


def _raw(config: dict) -> bytes:
    return json.dumps(config).encode()  # NaN/Infinity literals too: Python's json.loads reads them


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(CONFIGS)
def test_every_config_reads_inspects_and_resizes_or_fails_with_one_message(config: dict) -> None:
    try:
        adapter = load_adapter_from_bytes(_raw(config), WEIGHTS)
        report = inspect_adapter(adapter)
        format_report(report, "adapter")
        _dumps(report.to_json())
        resized = resize_adapter(adapter, rank=2)
        format_resize(resized, "out")
        _dumps(resized.to_json())
    except LoraLensError as error:
        assert "\n" not in str(error)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(CONFIGS, st.sampled_from(["inspect", "inspect --json", "resize --rank 2", "resize --energy 0.9 --json"]))
def test_the_cli_prints_one_line_and_no_traceback(config: dict, command: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "adapter"
        folder.mkdir()
        (folder / "adapter_config.json").write_bytes(_raw(config))
        (folder / "adapter_model.safetensors").write_bytes(WEIGHTS)
        words = command.split()
        argv = [words[0], str(folder), *words[1:]] + (["-o", str(Path(tmp) / "out")] if words[0] == "resize" else [])
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        text = stderr.getvalue()
        assert "Traceback" not in text
        assert code == 0 or (code != 0 and text.strip().count("\n") == 0), text
