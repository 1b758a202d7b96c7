"""The Explorer's view model: page state -> every number and string the Explorer shows.

Pure Python (no numpy, no NiceGUI). This is the oracle of the browser module (web/explorer.js), which computes
and draws the Explorer in the browser: ``scripts/generate_explorer_golden.py`` writes this module's answers for a
few hundred states into ``tests/fixtures/explorer_golden.json`` and the JS must reproduce each one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from fractions import Fraction
from urllib.parse import urlencode

from loralens.app.explorer import charts
from loralens.app.explorer.diagram import diagram_layout
from loralens.app.url_state import Param, format_value, page_url, read_query, to_query
from loralens.core.counting import MAX_DIM, LayerCount, count_layer, scaling
from loralens.core.units import binary_bytes, share_percent, short_count, significant

DEFAULTS = {"d": 4096, "k": 4096, "r": 8, "alpha": 16.0, "rslora": False, "square": True, "target": 99.0,
            "rmax": 0, "answers": True, "trained": False}

SCHEMA = (
    Param("d", int, DEFAULTS["d"], 1, MAX_DIM),
    Param("k", int, DEFAULTS["k"], 1, MAX_DIM),
    Param("r", int, DEFAULTS["r"], 1, MAX_DIM),
    Param("alpha", float, DEFAULTS["alpha"], 0.001, 100_000),
    Param("rslora", bool, DEFAULTS["rslora"]),
    Param("square", bool, DEFAULTS["square"]),
    Param("target", float, DEFAULTS["target"], 1.0, 99.999),
    Param("rmax", int, DEFAULTS["rmax"], 0, MAX_DIM),  # the rank slider's maximum; 0: min(d, k)
    Param("answers", bool, DEFAULTS["answers"]),  # false: the lesson hides the largest rank for the target
    Param("trained", bool, DEFAULTS["trained"]),  # the heatmaps at initialisation or after training
)

# Real layer shapes (out_features d, in_features k) for one-click presets.
PRESETS: tuple[tuple[str, int, int], ...] = (
    ("768²  (BERT-base, GPT-2)", 768, 768),
    ("1024²", 1024, 1024),
    ("4096²  (LLaMA-7B attn)", 4096, 4096),
    ("8192²  (LLaMA-70B attn)", 8192, 8192),
    ("12288²  (GPT-3 attn)", 12288, 12288),
    ("11008×4096  (LLaMA-7B up)", 11008, 4096),
    ("4096×11008  (LLaMA-7B down)", 4096, 11008),
    ("64²  (see the matrices)", 64, 64),
)

SMALL_MATRIX_LIMIT = 64  # heatmaps of the real matrices are drawn for d, k up to this
HIDDEN_ANSWER = "The largest rank for your target is hidden during the lesson: find it with the slider."


@dataclass(frozen=True)
class ExplorerState:
    """Everything a link must carry to reproduce the view."""

    d: int = DEFAULTS["d"]
    k: int = DEFAULTS["k"]
    r: int = DEFAULTS["r"]
    alpha: float = DEFAULTS["alpha"]
    rslora: bool = DEFAULTS["rslora"]
    square: bool = DEFAULTS["square"]
    target: float = DEFAULTS["target"]  # savings target in percent
    rmax: int = DEFAULTS["rmax"]
    answers: bool = DEFAULTS["answers"]
    trained: bool = DEFAULTS["trained"]

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def rank_max(self) -> int:
        """The largest rank the controls offer: min(d, k), or rmax when that is smaller."""
        return rank_limit(self.d, self.k, self.rmax)


def rank_limit(d: int, k: int, rmax: int) -> int:
    return min(d, k) if rmax <= 0 else min(rmax, d, k)


def rank_limit_text(d: int, k: int, rmax: int) -> str:
    """How the rank's limit reads in a message: 'min(d, k) = 4,096' or 'rmax = 16'."""
    limit = rank_limit(d, k, rmax)
    return f"rmax = {limit:,}" if 0 < rmax < min(d, k) else f"min(d, k) = {limit:,}"


def state_from_query(query: dict[str, str]) -> tuple[ExplorerState, list[str]]:
    """A valid state from URL parameters, with one message for each value that was clamped or replaced."""
    page = read_query(SCHEMA, query)
    values, messages = page.values, page.messages
    if values["square"] and "k" in query and "d" in query and values["k"] != values["d"]:
        values["square"] = False  # a link with d != k means a rectangular layer, not an error
    elif values["square"] and "k" not in query:
        values["k"] = values["d"]
    elif values["square"] and "d" not in query:
        values["d"] = values["k"]
    max_r = rank_limit(values["d"], values["k"], values["rmax"])
    if values["r"] > max_r:
        messages.append(f"URL parameter r: must be at most {rank_limit_text(values['d'], values['k'], values['rmax'])}"
                        f"; using {max_r:,}")
        values["r"] = max_r
    return ExplorerState(**values), messages


def clamp_rank(state: ExplorerState) -> ExplorerState:
    """The same state with r brought into 1..rank_max (after a change of d, k or rmax)."""
    r = max(1, min(state.r, state.rank_max))
    return state if r == state.r else replace(state, r=r)


def preset_index(d: int, k: int) -> int | None:
    """The preset with this shape, or None (the preset box then reads 'custom', never a stale label)."""
    return next((i for i, (_, pd, pk) in enumerate(PRESETS) if (pd, pk) == (d, k)), None)


def explorer_url(state: ExplorerState, embed: bool = False) -> str:
    """The Explorer's own link for ``state`` (what the address bar shows)."""
    return page_url("/", to_query(SCHEMA, state.as_dict()), embed)


def models_url(state: ExplorerState, embed: bool = False) -> str:
    """'See it on a real model': the Models page with this rank and alpha, still embedded when embedded."""
    query = urlencode({"model": "llama-2-7b", "r": state.r, "alpha": format_value(state.alpha)})
    return page_url("/models", query, embed)


@dataclass(frozen=True)
class ExplorerView:
    """Every number and string of the Explorer for one state (the browser module computes the same)."""

    state: ExplorerState
    count: LayerCount
    scaling: float
    full_text: str
    lora_text: str
    ratio_text: str
    savings_text: str
    break_even_text: str
    warning: str | None
    max_rank_text: str
    formula_full: str
    formula_lora: str
    formula_merge: str
    diagram: dict
    bars: dict
    growth_d: dict
    growth_r: dict
    example_rows: tuple[tuple[str, str, str], ...]
    worked_example: str
    benefits: tuple[tuple[str, str], ...]
    small: bool  # the real matrices can be shown
    matrices_hint: str


def build_view(state: ExplorerState) -> ExplorerView:
    """All of the Explorer for ``state`` (which must be valid: use state_from_query / clamp_rank)."""
    count = count_layer(state.d, state.k, state.r, state.target / 100)
    s = scaling(state.r, state.alpha, state.rslora)
    rule = f"{_num(state.alpha)}/√{state.r}" if state.rslora else f"{_num(state.alpha)}/{state.r}"
    be = count.break_even
    be_text = f"{float(be):,.1f}" if be.denominator != 1 else f"{int(be):,}"
    ratio_text = share_percent(count.share)
    return ExplorerView(
        state=state,
        count=count,
        scaling=s,
        full_text=f"{count.full:,}",
        lora_text=f"{count.lora:,}",
        ratio_text=ratio_text,
        savings_text=f"saves {share_percent(count.savings, 3)}" if count.saves else "saves nothing",
        break_even_text=be_text,
        warning=_warning(state, count, be_text),
        max_rank_text=_max_rank_text(state, count),
        formula_full=f"full: d·k = {count.d:,} × {count.k:,} = {count.full:,}",
        formula_lora=f"LoRA: r(d+k) = {count.r:,} × ({count.d:,} + {count.k:,}) = {count.lora:,}",
        formula_merge=f"W′ = W + ({rule})·B·A = W + {significant(s, 3)}·B·A",
        diagram=diagram_layout(count.d, count.k, count.r, s),
        bars=charts.bars(count),
        growth_d=charts.growth_with_d(count),
        growth_r=charts.growth_with_r(count),
        example_rows=example_rows(count),
        worked_example=(
            f"A {count.d:,} × {count.k:,} weight has {count.full:,} parameters. A rank-{count.r:,} LoRA trains "
            f"B ({count.d:,} × {count.r:,}) and A ({count.r:,} × {count.k:,}): {count.lora:,} parameters, "
            f"{ratio_text} of full fine-tuning. The seed lesson's case is d = k = 4096, r = 8: 16,777,216 against "
            "65,536 (0.39%)."
        ),
        benefits=benefits(count),
        small=count.d <= SMALL_MATRIX_LIMIT and count.k <= SMALL_MATRIX_LIMIT,
        matrices_hint=(
            f"Heatmaps of the actual values are drawn for d, k ≤ {SMALL_MATRIX_LIMIT} "
            f"(this layer has {count.full:,} entries)."
        ),
    )


def _warning(state: ExplorerState, count: LayerCount, be_text: str) -> str | None:
    """The break-even warning, or None while LoRA saves parameters."""
    if count.saves:
        return None
    extra = count.lora - count.full
    if extra > 0:
        return (f"r = {state.r:,} is at or past the break-even rank dk/(d+k) = {be_text}: LoRA trains "
                f"{extra:,} more parameters than full fine-tuning ({share_percent(count.share)} of it). "
                f"Use r < {be_text}.")
    return (f"r = {state.r:,} is exactly the break-even rank dk/(d+k) = {be_text}: LoRA trains as many "
            f"parameters as full fine-tuning and saves nothing.")


def _max_rank_text(state: ExplorerState, count: LayerCount) -> str:
    """The largest rank for the savings target, or the lesson's neutral line when answers are hidden."""
    if not state.answers:
        return HIDDEN_ANSWER
    max_r = count.max_rank_for_target
    target_text = f"{_num(state.target)}%"
    if max_r >= 1:
        return (f"Largest rank that saves at least {target_text}: r = {max_r:,} "
                f"({count.d + count.k:,} × {max_r:,} = {max_r * (count.d + count.k):,} parameters).")
    even_one = share_percent(Fraction(count.d + count.k, count.full))
    return f"No rank saves {target_text} on a {count.d:,}×{count.k:,} layer: even r = 1 trains {even_one}."


def _num(value: float) -> str:
    return f"{value:g}"


def example_rows(count: LayerCount) -> tuple[tuple[str, str, str], ...]:
    """The seed's parameter table, recomputed: (method, formula, value)."""
    return (
        ("Full fine-tuning", f"d × k = {count.d:,} × {count.k:,}", f"{count.full:,} ({short_count(count.full)})"),
        (
            f"LoRA (r = {count.r:,})",
            f"r(d + k) = {count.r:,} × ({count.d:,} + {count.k:,})",
            f"{count.lora:,} ({short_count(count.lora)})",
        ),
        ("LoRA / full", "r(d + k) / dk", share_percent(count.share)),
    )


def benefits(count: LayerCount) -> tuple[tuple[str, str], ...]:
    """The seed's four benefits, each with this layer's number."""
    # AdamW in mixed precision: fp32 gradient (4 B) + two fp32 moments (8 B) + fp32 master copy (4 B) per trained weight
    per_param = 16
    saved = (count.full - count.lora) * per_param
    return (
        (
            "Memory",
            f"Gradients and AdamW states exist only for trained weights: {binary_bytes(count.lora * per_param)} "
            f"instead of {binary_bytes(count.full * per_param)} for this layer "
            f"(16 bytes per trained weight), "
            + (f"{binary_bytes(saved)} less." if saved > 0 else "no saving at this rank."),
        ),
        (
            "No inference latency",
            f"Merge once, W′ = W + ΔW: the merged layer does exactly the {count.full:,} multiply-adds per token of the "
            f"original. Unmerged, B(Ax) adds {count.lora:,} ({share_percent(count.share)}).",
        ),
        (
            "Modular adapters",
            f"One task's adapter for this layer is {binary_bytes(count.lora * 2)} in bf16 against "
            f"{binary_bytes(count.full * 2)} for a full copy of W: keep one frozen model and swap small adapters.",
        ),
        (
            "Stability",
            "B starts at zero, so ΔW = 0 and W′ = W before the first step: training starts exactly from the "
            "pretrained model and moves only inside a rank-r subspace.",
        ),
    )
