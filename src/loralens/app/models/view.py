"""The Models page's state, its one computation and its chart options: pure functions, no NiceGUI.

``compute(state)`` never raises for bad input: it returns the message for the control that caused it, so the
page shows it beside that control and keeps the last good numbers on screen.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from loralens.app.palette import COLORS, MEMORY_SERIES
from loralens.app.url_state import Param, read_query
from loralens.core import defaults as D
from loralens.core import memory
from loralens.core.architectures import PRESETS, Architecture, architecture_from_config, get_architecture
from loralens.core.heads import PEFT_TASK_TYPE
from loralens.core.memory import MemoryEstimate, compare_training
from loralens.core.methods import MethodCount, compare_methods
from loralens.core.peft_config import ALL_LINEAR, BIAS_MODES, LoraConfigSpec
from loralens.core.peft_count import LoraCount, ModuleGroup, count_lora, group_modules
from loralens.core.units import gib
from loralens.errors import LoraLensError

MODEL_NAMES = tuple(a.short_name for a in PRESETS.values())
GPU_LINES_GIB = (24, 40, 80)
GiB = 2**30
SERIES = ("weights", "gradients", "optimizer", "activations", "overhead")
SERIES_COLORS = MEMORY_SERIES
METHOD_LABELS = {"full": "Full", "lora": "LoRA", "qlora": "QLoRA"}

SCHEMA = (
    Param("model", str, "llama-2-7b", choices=MODEL_NAMES),
    Param("r", int, D.R, 1, 4096),
    Param("alpha", float, D.LORA_ALPHA, 0.001, 100_000),
    Param("targets", str, ""),  # "" = PEFT's default for the model type; names joined by "," or "all-linear"
    Param("rslora", bool, False),
    Param("dora", bool, False),
    Param("bias", str, D.BIAS, choices=BIAS_MODES),
    Param("method", str, "lora", choices=memory.METHODS),
    Param("dtype", str, D.DTYPE, choices=memory.DTYPES),
    Param("optimizer", str, D.OPTIMIZER, choices=memory.OPTIMIZERS),
    Param("batch", int, D.BATCH_SIZE, 1, 4096),
    Param("seq", int, D.SEQ_LEN, 1, 131_072),
    Param("ckpt", bool, D.GRADIENT_CHECKPOINTING),
    Param("gpus", int, D.GPUS, 1, 1024),
    Param("sharding", str, D.SHARDING, choices=memory.SHARDINGS),
)


@dataclass(frozen=True)
class ModelsState:
    model: str = "llama-2-7b"
    r: int = D.R
    alpha: float = D.LORA_ALPHA
    targets: str = ""
    rslora: bool = False
    dora: bool = False
    bias: str = D.BIAS
    method: str = "lora"
    dtype: str = D.DTYPE
    optimizer: str = D.OPTIMIZER
    batch: int = D.BATCH_SIZE
    seq: int = D.SEQ_LEN
    ckpt: bool = D.GRADIENT_CHECKPOINTING
    gpus: int = D.GPUS
    sharding: str = D.SHARDING

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def state_from_query(query: dict[str, str]) -> tuple[ModelsState, list[str]]:
    """The page state a URL asks for, and one message per value that could not be used as given."""
    page = read_query(SCHEMA, query)
    state, messages = ModelsState(**page.values), page.messages
    if state.targets:
        arch = get_architecture(state.model)
        _, problem = parse_target_text(arch, state.targets)
        if problem:
            messages.append(f"URL parameter targets: {problem}; using PEFT's default")
            state = replace(state, targets="")
    return state, messages


_LAYER_PREFIX = re.compile(r"^.*?\.\d+\.")


def module_choices(arch: Architecture) -> list[str]:
    """The target names the page offers for ``arch``: one per kind of module in the transformer blocks.

    A module's leaf name (q_proj) when it is unique among the block's modules, else its path within the block
    (attention.output.dense); each is a valid PEFT target_modules entry.
    """
    suffixes = list(dict.fromkeys(_LAYER_PREFIX.sub("", m.name) for m in arch.linear_modules
                                  if m.layer is not None and not m.is_output_head))
    leaves = [s.rsplit(".", 1)[-1] for s in suffixes]
    return [leaf if leaves.count(leaf) == 1 else suffix for suffix, leaf in zip(suffixes, leaves)]


def ticked_choices(choices: list[str], targets: set[str] | tuple[str, ...]) -> set[str]:
    """The offered names a target list selects, by PEFT's suffix rule (a name, or a dotted path ending in it).

    PEFT's default targets for T5 are q and v; the page offers layer.0.SelfAttention.q and layer.1.EncDecAttention.q
    (q alone is not unique in a T5 block), and both boxes are what q selects.
    """
    return {c for c in choices if any(c == t or c.endswith("." + t) for t in targets)}


def parse_target_text(arch: Architecture, text: str) -> tuple[tuple[str, ...] | str | None, str | None]:
    """'' -> None (PEFT's default), 'all-linear', or a tuple of offered names; a message for anything else."""
    text = text.strip()
    if not text:
        return None, None
    if text.lower() == ALL_LINEAR:
        return ALL_LINEAR, None
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    offered = module_choices(arch)
    unknown = [n for n in names if n not in offered]
    if unknown or not names:
        return None, (f"{', '.join(unknown) or text!r} is not a module of {arch.short_name} "
                      f"(choose from {', '.join(offered)} or all-linear)")
    return names, None


@dataclass
class ModelsResult:
    """Everything the page shows for one state; ``errors`` maps a control name to its message."""

    arch: Architecture | None = None
    spec: LoraConfigSpec | None = None
    count: LoraCount | None = None
    groups: tuple[ModuleGroup, ...] = ()
    memory: dict[str, MemoryEstimate] = field(default_factory=dict)
    methods: list[MethodCount] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


_FIELD_OF = {"r": "r", "lora_alpha": "alpha", "target_modules": "targets", "bias": "bias", "batch_size": "batch",
             "seq_len": "seq", "gpus": "gpus", "sharding": "sharding", "method": "method", "dtype": "dtype",
             "optimizer": "optimizer", "base": "method", "model": "model"}


def _field(error: LoraLensError) -> str:
    return _FIELD_OF.get(error.where or "", "model")


#: the largest config.json the page accepts (real ones are a few kilobytes)
CONFIG_LIMIT = 1_000_000


def parse_config_text(text: str | bytes, name: str = "config.json") -> tuple[Architecture | None, str | None]:
    """A pasted or uploaded config.json -> its Architecture (the CLI's ``--config`` parser), or the one-line
    reason it cannot be used (bad JSON, unknown model_type or head, a missing field)."""
    if len(text) > CONFIG_LIMIT:
        return None, f"{name}: larger than {CONFIG_LIMIT:,} bytes; a config.json is a few kilobytes"
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return None, f"{name}: not UTF-8 text"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"{name}: not valid JSON ({error.msg} at line {error.lineno})"
    except RecursionError:
        return None, f"{name}: nested too deeply"
    if not isinstance(data, dict):
        return None, f"{name}: must hold a JSON object"
    try:
        return architecture_from_config(data, short_name=name.removesuffix(".json"),
                                        hf_id=str(data.get("_name_or_path") or name)), None
    except LoraLensError as error:
        return None, f"{name}: {error.message}"


def compute(state: ModelsState, arch: Architecture | None = None) -> ModelsResult:
    """Counts, memory for full/LoRA/QLoRA and the method comparison for ``state`` (on ``arch``, a pasted
    config.json, instead of the preset when given); errors instead of raising."""
    result = ModelsResult()
    try:
        arch = result.arch = arch or get_architecture(state.model)
        targets, problem = parse_target_text(arch, state.targets)
        if problem:
            result.errors["targets"] = problem
            return result
        spec = result.spec = LoraConfigSpec(r=state.r, lora_alpha=state.alpha, target_modules=targets,
                                            use_rslora=state.rslora, use_dora=state.dora, bias=state.bias,
                                            task_type=PEFT_TASK_TYPE.get(arch.task))  # as the CLI: the head's
        result.count = count_lora(arch, spec)
        result.groups = group_modules(result.count.modules)
    except LoraLensError as error:
        result.errors[_field(error)] = error.message
        return result
    try:
        settings = dict(dtype=state.dtype, optimizer=state.optimizer, batch_size=state.batch, seq_len=state.seq,
                        gradient_checkpointing=state.ckpt, gpus=state.gpus, sharding=state.sharding)
        result.memory = compare_training(arch, spec, **settings)
    except LoraLensError as error:
        result.errors[_field(error)] = error.message
    try:
        result.methods = compare_methods(arch, spec)
    except LoraLensError as error:
        result.errors[_field(error)] = error.message
    return result



def cli_command(state: ModelsState, config: str | None = None) -> str:
    """The ``loralens memory`` command that reproduces the page's view (the counts: ``params`` with the same
    model options), with ``--config config`` for a pasted config.json; options at the shared defaults
    (core/defaults.py) are left out."""
    parts = ["loralens memory", f"--config {config}" if config else f"--model {state.model}"]
    if state.r != D.R:
        parts.append(f"--rank {state.r}")
    if state.alpha != D.LORA_ALPHA:
        parts.append(f"--alpha {state.alpha:g}")
    if state.targets:
        parts.append(f"--target {state.targets}")
    parts += [flag for on, flag in ((state.rslora, "--rslora"), (state.dora, "--dora")) if on]
    for value, default, flag in ((state.bias, D.BIAS, "--bias"), (state.method, "lora", "--method"),
                                 (state.dtype, D.DTYPE, "--dtype"), (state.optimizer, D.OPTIMIZER, "--optimizer"),
                                 (state.batch, D.BATCH_SIZE, "--batch-size"), (state.seq, D.SEQ_LEN, "--seq-len"),
                                 (state.gpus, D.GPUS, "--gpus"), (state.sharding, D.SHARDING, "--sharding")):
        if value != default:
            parts.append(f"{flag} {value}")
    if state.ckpt != D.GRADIENT_CHECKPOINTING:
        parts.append("--gradient-checkpointing" if state.ckpt else "--no-gradient-checkpointing")
    return " ".join(parts)


def memory_chart_option(estimates: dict[str, MemoryEstimate]) -> dict[str, Any]:
    """Stacked bars (GiB per device) for full, LoRA and QLoRA, with dashed lines at 24, 40 and 80 GB cards.

    When even the largest total fits the smallest card, the axis fits the bars and no line is drawn. When full
    fine-tuning dwarfs the others (more than 3x the scale they and the 80 GB line need), the axis stops at
    that scale and the full bar is cut, its total written at the top with "(off scale)".
    """
    methods = [m for m in memory.METHODS if m in estimates]
    totals = {m: gib(estimates[m].per_device.total) for m in methods}
    largest = max(totals.values(), default=1.0)
    if largest < GPU_LINES_GIB[0]:
        ceiling = _nice_ceiling(largest * 1.15)  # everything fits the smallest card: show the bars, not the lines
    else:
        small = max([80.0] + [t for m, t in totals.items() if m != "full"])
        ceiling = 20 * math.ceil(small * 1.25 / 20)
        if largest <= 3 * ceiling:
            ceiling = 20 * math.ceil(max(80.0, largest) * 1.1 / 20)
    lines = [g for g in GPU_LINES_GIB if g <= ceiling]
    series: list[dict[str, Any]] = []
    for name in SERIES:
        series.append({
            "name": name, "type": "bar", "stack": "memory",
            "itemStyle": {"color": SERIES_COLORS[name]},
            "data": [round(gib(getattr(estimates[m].per_device, name)), 3) for m in methods],
        })
    series[-1]["markLine"] = {
        "symbol": "none", "silent": True,
        "lineStyle": {"type": "dashed", "color": "#333"},
        "label": {"formatter": "{b}", "position": "insideEndTop", "fontSize": 10},
        "data": [{"name": f"{g} GB", "yAxis": g} for g in lines],
    }
    labels = []
    for m in methods:
        text = f"{totals[m]:,.1f} GiB"
        if totals[m] > ceiling:
            labels.append({"value": ceiling, "label": {"formatter": text + " (off scale)"}})
        else:
            labels.append({"value": round(totals[m], 3), "label": {"formatter": text}})
    series.append({  # invisible series carrying the totals as labels above each stack
        "name": "total", "type": "scatter", "symbolSize": 0, "data": labels,
        "label": {"show": True, "position": "top", "fontSize": 11},
        "tooltip": {"show": False},
    })
    return {
        "animation": False,
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        # a plain legend wraps onto a second row in a narrow chart (a "scroll" one pages: 1/2 with arrows)
        "legend": {"data": list(SERIES), "bottom": 0, "type": "plain", "itemWidth": 14, "itemGap": 8,
                   "textStyle": {"fontSize": 11}},
        "grid": {"left": 52, "right": 12, "top": 20, "bottom": 64},
        "xAxis": {"type": "category", "data": [METHOD_LABELS[m] for m in methods]},
        "yAxis": {"type": "value", "name": "GiB per GPU", "nameLocation": "middle", "nameGap": 36,
                  "max": ceiling},
        "series": series,
    }


def _nice_ceiling(value: float) -> float:
    """The next 1, 1.5, 2, 3, 5, 7.5 or 10 times a power of ten at or above ``value``."""
    power = 10 ** math.floor(math.log10(max(value, 1e-9)))
    return next(power * f for f in (1, 1.5, 2, 3, 5, 7.5, 10) if power * f >= value)


_AXIS_FORMATTER = "v => v >= 1e9 ? v / 1e9 + 'B' : v >= 1e6 ? v / 1e6 + 'M' : v >= 1e3 ? v / 1e3 + 'K' : v"


def methods_chart_option(rows: list[MethodCount]) -> dict[str, Any]:
    """Horizontal bars of trainable parameters per method on a log axis (a method with 0 shows no bar)."""
    ordered = list(reversed(rows))
    top = max((m.trainable for m in rows), default=10)
    return {
        "animation": False,
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "grid": {"left": 110, "right": 16, "top": 8, "bottom": 36},
        "xAxis": {"type": "log", "name": "trainable parameters (log scale)", "nameLocation": "middle",
                  "nameGap": 24, "min": 1, "max": 10 ** math.ceil(math.log10(max(top, 10))),
                  "logBase": 10, "splitNumber": 12,
                  "axisLabel": {"hideOverlap": True, ":formatter": _AXIS_FORMATTER}},
        "yAxis": {"type": "category", "data": [m.name for m in ordered], "axisLabel": {"fontSize": 11}},
        "series": [{
            "type": "bar", "name": "trainable",
            "data": [{"value": m.trainable if m.trainable > 0 else None,
                      "itemStyle": {"color": COLORS["full"] if m.key == "full" else COLORS["lora"]}} for m in ordered],
        }],
    }




__all__ = [
    "CONFIG_LIMIT", "SCHEMA", "ModelsResult", "ModelsState", "cli_command", "compute", "parse_config_text", "memory_chart_option", "methods_chart_option",
    "module_choices", "parse_target_text", "state_from_query",
]
