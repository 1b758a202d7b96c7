"""Counting LoRA on every preset: loralens.count_lora against PEFT's own way of getting the same number.

PEFT needs the model: build it with transformers on the meta device (no weights), wrap it with get_peft_model,
then get_nb_trainable_parameters(). loralens reads its architecture table. Both give identical numbers (asserted
here, and in tests/oracle). GPT-3 175B is not in transformers: PEFT runs on OPT with GPT-3's dimensions.

    .venv/bin/python benchmarks/bench_count.py [--repeat N] [--peft-repeat M] [--only SHORT_NAME ...]

Prints a Markdown table: median milliseconds per count for loralens (per-module result, and totals only with
with_modules=False) and for PEFT (build + wrap + count), and the ratio PEFT / loralens.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))

from _peft_oracle import GPT3_AS_OPT_NAMES, build_meta_model, hf_config_dict, rename_targets  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402

from loralens.core.architectures import PRESETS  # noqa: E402
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora  # noqa: E402

SETTINGS = {
    "default (q,v) r=8": {"r": 8},
    "all-linear r=16": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
}


def median_ms(fn, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def peft_once(config: dict, kwargs: dict) -> tuple[int, int]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(build_meta_model(config), LoraConfig(**kwargs))
    return model.get_nb_trainable_parameters()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200, help="loralens timings per setting (median)")
    parser.add_argument("--peft-repeat", type=int, default=3, help="PEFT timings per setting (median)")
    parser.add_argument("--only", nargs="*", help="short names of presets")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, torch {version('torch')}, transformers {version('transformers')}, "
          f"peft {version('peft')}, {platform.machine()}\n")
    print("| model | setting | modules | loralens ms | loralens totals-only ms | PEFT meta build + wrap + count ms "
          "| PEFT / loralens |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for arch in PRESETS.values():
        if args.only and arch.short_name not in args.only:
            continue
        rename = GPT3_AS_OPT_NAMES if arch.model_type == "gpt3" else {}
        config = hf_config_dict(arch.hf_id)
        for label, kwargs in SETTINGS.items():
            spec = LoraConfigSpec(**kwargs)
            mine = count_lora(arch, spec)
            theirs = peft_once(config, rename_targets(kwargs, rename))
            offset = 2 * arch.hidden_size if arch.model_type == "gpt3" else 0
            assert (mine.trainable, mine.total) == (theirs[0], theirs[1] - offset), (arch.hf_id, label)
            ours = median_ms(lambda: count_lora(arch, spec), args.repeat)
            quick = median_ms(lambda: count_lora(arch, spec, with_modules=False), args.repeat)
            peft_ms = median_ms(lambda: peft_once(config, rename_targets(kwargs, rename)), args.peft_repeat)
            print(f"| {arch.short_name} | {label} | {mine.num_modules} | {ours:.3f} | {quick:.3f} | {peft_ms:,.0f} "
                  f"| {peft_ms / ours:,.0f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
