"""Write tests/fixtures/peft_counts.json: what transformers and PEFT report for every preset, at full size.

For each preset in loralens.core.architectures.PRESET_CONFIGS the model is built by transformers on the meta device
(no weights, no download; GPT-3 175B as an OPT model with GPT-3's dimensions), then for each LoRA setting of
tests/oracle/_peft_oracle.lora_grid it is wrapped by peft.get_peft_model and PEFT's own numbers are recorded:
get_nb_trainable_parameters() (trainable, all) and, per LoRA layer, r, scaling and trainable parameters (as a digest).
tests/core/test_peft_count.py compares loralens against this file without torch.

    .venv/bin/python scripts/generate_peft_count_fixtures.py [--only HF_ID ...] [--out PATH]

Needs torch (CPU wheel), transformers and peft (the test extras). Takes a few minutes (PEFT's wrapping of the
70B and 175B models dominates).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))

from _peft_oracle import (  # noqa: E402
    GPT3_AS_OPT_NAMES,
    build_meta_model,
    digest,
    hf_config_dict,
    lora_grid,
    model_facts,
    module_lines,
    peft_count,
    rename_targets,
)

from loralens.core.architectures import PRESETS  # noqa: E402


def _case(config: dict, kwargs: dict, rename: dict | None = None) -> dict:
    """PEFT's numbers for one LoRA config, or the error PEFT raises (ValueError, TypeError)."""
    try:
        result = peft_count(build_meta_model(config), rename_targets(kwargs, rename or {}))
    except (ValueError, TypeError) as error:
        return {"lora_config": kwargs, "error": f"{type(error).__name__}: {str(error)[:300]}"}
    return {
        "lora_config": kwargs,
        "trainable": result["trainable"],
        "total": result["total"],
        "num_modules": len(result["modules"]),
        "modules_digest": digest(module_lines(result["modules"], rename)),
    }


def _families() -> dict:
    """The tiny configs of tests/oracle/test_peft_oracle_families.py (every family, flag and head) with the LoRA grid,
    and the option cases of test_peft_oracle_options.py: config.json as transformers writes it, PEFT's numbers."""
    from test_peft_oracle_families import ALL, config_json  # noqa: PLC0415
    from test_peft_oracle_options import CASES  # noqa: PLC0415

    from loralens.core.architectures import architecture_from_config  # noqa: PLC0415

    out = {}
    for name in ALL:
        config = config_json(name)
        facts = model_facts(build_meta_model(config))
        grid = lora_grid(architecture_from_config(config))
        out[name] = {"config": config, **facts, "cases": [_case(config, kwargs) for kwargs in grid]}
    for name, kwargs in CASES:
        if name not in out:  # a config only the option cases use (plain BERT)
            config = config_json(name)
            out[name] = {"config": config, **model_facts(build_meta_model(config)), "cases": []}
        out[name]["cases"].append(_case(config_json(name), kwargs))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="only these preset ids (default: all)")
    parser.add_argument("--families-only", action="store_true",
                        help="rewrite only the families section (the tiny configs), keeping the presets")
    parser.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "peft_counts.json"))
    args = parser.parse_args(argv)
    if args.families_only:
        path = Path(args.out)
        data = json.loads(path.read_text())
        data["families"] = _families()
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote the families section of {path}")
        return 0
    out = {
        "generated_by": "scripts/generate_peft_count_fixtures.py",
        "versions": {name: version(name) for name in ("torch", "transformers", "peft")},
        "presets": {},
    }
    for hf_id, arch in PRESETS.items():
        if args.only and hf_id not in args.only:
            continue
        rename = GPT3_AS_OPT_NAMES if arch.model_type == "gpt3" else None
        config = hf_config_dict(hf_id)
        start = time.perf_counter()
        facts = model_facts(build_meta_model(config))
        cases = []
        cases = [_case(config, kwargs, rename) for kwargs in lora_grid(arch)]
        out["presets"][hf_id] = {"oracle_config": config, **facts, "cases": cases}
        print(f"{hf_id}: {facts['total']:,} params, {len(cases)} LoRA cases, {time.perf_counter() - start:.1f} s",
              flush=True)
    if not args.only:
        out["families"] = _families()
    path = Path(args.out)
    if args.only and path.exists():  # update only the presets asked for
        previous = json.loads(path.read_text())
        previous["presets"].update(out["presets"])
        out.pop("families", None)
        previous["versions"] = out["versions"]
        out = previous
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
