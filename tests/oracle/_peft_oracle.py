"""PEFT as the oracle: build a preset's model with transformers on the meta device, wrap it with
``peft.get_peft_model`` and read what PEFT reports. Shared by tests/oracle/ and scripts/generate_peft_count_fixtures.py.

torch, transformers and peft are imported here only (test-only dependencies); loralens never imports them.
"""

from __future__ import annotations

import copy
import hashlib
import re
import warnings
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer
import transformers
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM
from transformers.pytorch_utils import Conv1D

from loralens.core.architectures import PRESET_CONFIGS, Architecture

# GPT-3 is not in transformers: the oracle is OPT with GPT-3's dimensions (OPT-175B was built to match GPT-3), whose
# modules have the same shapes under other names and whose learned positions have 2 extra rows.
GPT3_AS_OPT_NAMES = {"o_proj": "out_proj", "up_proj": "fc1", "down_proj": "fc2"}

LAYER_KEYS = ("num_hidden_layers", "n_layer")


def hf_config_dict(hf_id: str, num_layers: int | None = None) -> dict[str, Any]:
    """The preset's hyper-parameters as a transformers config dict (GPT-3 as an OPT config)."""
    cfg = dict(PRESET_CONFIGS[hf_id][2])
    if cfg["model_type"] == "gpt3":
        cfg = {"model_type": "opt", "hidden_size": cfg["hidden_size"], "ffn_dim": cfg["intermediate_size"],
               "num_hidden_layers": cfg["num_hidden_layers"], "num_attention_heads": cfg["num_attention_heads"],
               "vocab_size": cfg["vocab_size"], "max_position_embeddings": cfg["max_position_embeddings"],
               "word_embed_proj_dim": cfg["hidden_size"]}
    if num_layers is not None:
        for key in LAYER_KEYS:
            if key in cfg:
                cfg[key] = num_layers
    return cfg


def build_model(config: dict[str, Any], *, meta: bool = True) -> torch.nn.Module:
    """transformers' own model for ``config`` (a config.json dict): on the meta device (no memory, no download), or
    with real seeded weights on the CPU (``meta=False``, for a save_pretrained that writes the real file)."""
    cfg = dict(config)
    model_type = cfg.pop("model_type")
    classes = cfg.get("architectures")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_config = AutoConfig.for_model(model_type, **cfg)
        if not meta:
            torch.manual_seed(0)  # the same weights in every run
        with torch.device("meta" if meta else "cpu"):
            if classes:  # the class config.json names, as from_pretrained would build it
                return getattr(transformers, classes[0])(hf_config)
            auto = {"bert": AutoModelForMaskedLM, "roberta": AutoModelForMaskedLM, "vit": AutoModel,
                    "t5": transformers.AutoModelForSeq2SeqLM,
                    "whisper": transformers.AutoModelForSpeechSeq2Seq}.get(
                model_type, AutoModelForCausalLM)
            return auto.from_config(hf_config)


def build_meta_model(config: dict[str, Any]) -> torch.nn.Module:
    """transformers' own model for ``config`` on the meta device: no memory, no download."""
    return build_model(config, meta=True)


def linear_digest_lines(model: torch.nn.Module) -> list[str]:
    """'name in out bias' for every nn.Linear / Conv1D, as transformers builds them."""
    lines = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            lines.append(f"{name} {module.in_features} {module.out_features} {module.bias is not None}")
        elif isinstance(module, Conv1D):
            n_in, n_out = module.weight.shape
            lines.append(f"{name} {n_in} {n_out} {module.bias is not None}")
        elif isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d)):
            n_out, *kernel = module.weight.shape
            size = 1
            for k in kernel:
                size *= k
            lines.append(f"{name} {size} {n_out} {module.bias is not None}")
    return lines


def arch_digest_lines(arch: Architecture, rename: dict[str, str] | None = None) -> list[str]:
    lines = []
    for m in arch.linear_modules:
        name = m.name
        for old, new in (rename or {}).items():
            name = re.sub(rf"\.{old}$", f".{new}", name)
        lines.append(f"{name} {m.in_features} {m.out_features} {m.bias}")
    return lines


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def model_facts(model: torch.nn.Module) -> dict[str, Any]:
    """Total parameters (tied once, as model.parameters() yields them), biases, and the linear-module digest."""
    params = dict(model.named_parameters())
    lines = linear_digest_lines(model)
    return {
        "total": sum(p.numel() for p in params.values()),
        "bias_total": sum(p.numel() for n, p in params.items() if n == "bias" or n.endswith(".bias")),
        "num_linear": len(lines),
        "linear_digest": digest(lines),
    }


def peft_count(model: torch.nn.Module, lora_kwargs: dict[str, Any]) -> dict[str, Any]:
    """PEFT's (trainable, all) and each LoRA layer's r, scaling and trainable parameters. Mutates ``model``, not
    ``lora_kwargs`` (PEFT's MoE rewrite adds keys to the rank_pattern / alpha_pattern dicts it is given)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(model, LoraConfig(**copy.deepcopy(lora_kwargs)))
    trainable, total = peft_model.get_nb_trainable_parameters()
    modules = {}
    prefix = "base_model.model."
    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer):
            own = sum(p.numel() for p in module.parameters() if p.requires_grad)
            modules[name.removeprefix(prefix)] = {
                "r": module.r["default"], "scaling": module.scaling["default"], "params": own}
    return {"trainable": trainable, "total": total, "modules": modules}


def module_key(name: str, rename: dict[str, str] | None = None) -> str:
    """A module's name for comparisons; with ``rename`` (GPT-3 as OPT) only its layer index and renamed leaf."""
    if not rename:
        return name
    found = re.search(r"\.(\d+)\.", name)
    leaf = name.rsplit(".", 1)[-1]
    return f"{found.group(1) if found else '-'} {rename.get(leaf, leaf)}"


def module_lines(modules: dict[str, dict[str, Any]], rename: dict[str, str] | None = None) -> list[str]:
    """'key r scaling params' per adapted module, for a digest."""
    return [f"{module_key(n, rename)} {m['r']} {m['scaling']!r} {m['params']}" for n, m in modules.items()]


def rename_targets(kwargs: dict[str, Any], rename: dict[str, str]) -> dict[str, Any]:
    """Translate a LoRA config's module names (GPT-3's o_proj/up_proj/down_proj -> OPT's names)."""
    if not rename:
        return kwargs

    def one(name: str) -> str:
        for old, new in rename.items():
            name = name.replace(old, new)
        return name

    out = dict(kwargs)
    targets = out.get("target_modules")
    if isinstance(targets, list):
        out["target_modules"] = [one(t) for t in targets]
    elif isinstance(targets, str):
        out["target_modules"] = one(targets)
    for key in ("rank_pattern", "alpha_pattern"):
        if key in out:
            out[key] = {one(k): v for k, v in out[key].items()}
    return out


def lora_grid(arch: Architecture) -> list[dict[str, Any]]:
    """LoraConfig settings for one architecture: defaults, all-linear, regex, DoRA, bias modes, layers, patterns."""
    names = list(dict.fromkeys(m.name.rsplit(".", 1)[-1] for m in arch.linear_modules if m.layer is not None))
    head = arch.output_head.rsplit(".", 1)[-1] if arch.output_head else names[-1]
    last = arch.num_layers - 1
    regex = rf".*\.\d+\..*({names[0]}|{names[-1]})"
    return [
        {},
        {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
        {"r": 4, "target_modules": regex},
        {"r": 8, "target_modules": names, "use_dora": True},
        {"r": 2, "target_modules": [names[0], names[-1]], "bias": "lora_only"},
        {"r": 2, "target_modules": [names[1]], "bias": "all"},
        {"r": 8, "target_modules": [names[0], names[2]], "layers_to_transform": [0, last]},
        {"r": 8, "lora_alpha": 16, "target_modules": names,
         "rank_pattern": {names[0]: 2, rf"{min(1, last)}\..*{names[-1]}": 32}, "alpha_pattern": {names[-1]: 4}},
        {"r": 4, "lora_alpha": 16, "use_rslora": True, "use_dora": True, "bias": "all",
         "target_modules": "all-linear"},
        {"r": 4, "target_modules": [head]},
    ]
