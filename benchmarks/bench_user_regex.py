"""What bounded-time matching of user regexes (core/user_regex.py, the regex package with a timeout) costs in a
count: count_lora on Llama-2-7B with a regex target and rank/alpha patterns, beside the same matches done with re.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_user_regex.py
"""

from __future__ import annotations

import re
import timeit

from loralens.core.architectures import get_architecture
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora

TARGET = r".*\.(q_proj|v_proj|down_proj)"


def main() -> None:
    arch = get_architecture("llama-2-7b")
    spec = LoraConfigSpec(r=16, target_modules=TARGET, rank_pattern={r"layers\.1\d\.": 8},
                          alpha_pattern={"v_proj": 32})
    names = [m.name for m in arch.linear_modules]

    def with_re() -> None:
        for name in names:
            re.fullmatch(TARGET, name)
            re.match(r"(.*\.)?(layers\.1\d\.)$", name)
            re.match(r"(.*\.)?(v_proj)$", name)

    count = min(timeit.repeat(lambda: count_lora(arch, spec), number=20, repeat=5)) / 20
    plain = min(timeit.repeat(with_re, number=20, repeat=5)) / 20
    print(f"count_lora, {len(names)} modules, regex target + patterns: {count * 1e3:.2f} ms; "
          f"the same matches with re alone: {plain * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
