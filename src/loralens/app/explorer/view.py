"""The Explorer's view model: page state -> every number, text, diagram and chart option the page shows.

Pure Python (no numpy, no NiceGUI), so that it can be tested without a browser and can later run inside the
browser under Pyodide for a server-less embeddable page. Compute once, render many: ``build_view`` is the one
call; the page only copies its fields into elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from fractions import Fraction

from loralens.app.explorer.diagram import diagram_svg
from loralens.app.palette import COLORS
from loralens.app.url_state import Param, read_query
from loralens.core.counting import MAX_DIM, LayerCount, count_layer, scaling
from loralens.core.units import binary_bytes, percent, short_count, significant

DEFAULTS = {"d": 4096, "k": 4096, "r": 8, "alpha": 16.0, "rslora": False, "square": True, "target": 99.0}

SCHEMA = (
    Param("d", int, DEFAULTS["d"], 1, MAX_DIM),
    Param("k", int, DEFAULTS["k"], 1, MAX_DIM),
    Param("r", int, DEFAULTS["r"], 1, MAX_DIM),
    Param("alpha", float, DEFAULTS["alpha"], 0.001, 100_000),
    Param("rslora", bool, DEFAULTS["rslora"]),
    Param("square", bool, DEFAULTS["square"]),
    Param("target", float, DEFAULTS["target"], 1.0, 99.999),
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

SMALL_MATRIX_LIMIT = 64

DIAGRAM_SCALE_NOTE = (
    "d and k to scale (aspect kept); the rank side of B and A on a log scale, log(1+r)/log(1+min(d,k)), "
    "so thin factors stay visible and r = min(d, k) is full width."
)  # heatmaps of the real matrices are drawn for d, k up to this


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

    def as_dict(self) -> dict[str, object]:
        return {p.name: getattr(self, p.name) for p in SCHEMA}


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
    max_r = min(values["d"], values["k"])
    if values["r"] > max_r:
        messages.append(f"URL parameter r: must be at most min(d, k) = {max_r:,}; using {max_r:,}")
        values["r"] = max_r
    return ExplorerState(**values), messages


def clamp_rank(state: ExplorerState) -> ExplorerState:
    """The same state with r brought into 1..min(d, k) (after a change of d or k)."""
    r = max(1, min(state.r, state.d, state.k))
    return state if r == state.r else _replace(state, r=r)


def _replace(state: ExplorerState, **changes: object) -> ExplorerState:
    return ExplorerState(**{**state.as_dict(), **changes})  # type: ignore[arg-type]


@dataclass(frozen=True)
class ExplorerView:
    """Every number, text, SVG and chart option of the Explorer for one state."""

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
    diagram_svg: str
    bars_option: dict
    growth_option: dict
    rank_option: dict
    example_rows: tuple[tuple[str, str, str], ...]
    benefits: tuple[tuple[str, str], ...]
    small: bool  # the real matrices can be shown

    @property
    def numbers_html(self) -> str:
        return numbers_html(self)

    @property
    def text_html(self) -> str:
        return text_html(self)


def build_view(state: ExplorerState) -> ExplorerView:
    """All of the Explorer for ``state`` (which must be valid: use state_from_query / clamp_rank)."""
    count = count_layer(state.d, state.k, state.r, state.target / 100)
    s = scaling(state.r, state.alpha, state.rslora)
    rule = f"{_num(state.alpha)}/√{state.r}" if state.rslora else f"{_num(state.alpha)}/{state.r}"
    be = count.break_even
    be_text = f"{float(be):,.1f}" if be.denominator != 1 else f"{int(be):,}"
    warning = None
    if not count.saves:
        extra = count.lora - count.full
        warning = (
            f"r = {state.r:,} is at or past the break-even rank dk/(d+k) = {be_text}: LoRA trains "
            f"{extra:,} more parameters than full fine-tuning ({percent(count.share)} of it). Use r < {be_text}."
            if extra > 0
            else f"r = {state.r:,} is exactly the break-even rank dk/(d+k) = {be_text}: LoRA trains as many "
            f"parameters as full fine-tuning and saves nothing."
        )
    max_r = count.max_rank_for_target
    target_text = f"{_num(state.target)}%"
    if max_r >= 1:
        max_rank_text = (
            f"Largest rank that saves at least {target_text}: r = {max_r:,} "
            f"({count.d + count.k:,} × {max_r:,} = {max_r * (count.d + count.k):,} parameters)."
        )
    else:
        max_rank_text = f"No rank saves {target_text} on a {count.d:,}×{count.k:,} layer: even r = 1 trains {percent(Fraction(count.d + count.k, count.full))}."
    return ExplorerView(
        state=state,
        count=count,
        scaling=s,
        full_text=f"{count.full:,}",
        lora_text=f"{count.lora:,}",
        ratio_text=percent(count.share),
        savings_text=f"saves {percent(count.savings, 3)}" if count.saves else "saves nothing",
        break_even_text=be_text,
        warning=warning,
        max_rank_text=max_rank_text,
        formula_full=f"full: d·k = {count.d:,} × {count.k:,} = {count.full:,}",
        formula_lora=f"LoRA: r(d+k) = {count.r:,} × ({count.d:,} + {count.k:,}) = {count.lora:,}",
        formula_merge=f"W′ = W + ({rule})·B·A = W + {significant(s, 3)}·B·A",
        diagram_svg=diagram_svg(count.d, count.k, count.r, s),
        bars_option=bars_option(count),
        growth_option=growth_option(count),
        rank_option=rank_option(count),
        example_rows=example_rows(count),
        benefits=benefits(count),
        small=count.d <= SMALL_MATRIX_LIMIT and count.k <= SMALL_MATRIX_LIMIT,
    )


def _num(value: float) -> str:
    return f"{value:g}"



# ---------------------------------------------------------------------------------------------- charts

_FULL_COLOR, _LORA_COLOR = COLORS["full"], COLORS["lora"]


def bars_option(count: LayerCount) -> dict:
    """Full d·k against LoRA r(d+k) on a log axis, so a 0.4% bar is still a readable bar."""
    return {
        "animation": False,
        "grid": {"left": 8, "right": 96, "top": 8, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "log", "min": 1, "axisLabel": {"show": False}, "splitLine": {"show": True}},
        "yAxis": {"type": "category", "data": ["LoRA r(d+k)", "full d·k"], "inverse": False},
        "series": [
            {
                "type": "bar",
                "data": [
                    {"value": count.lora, "itemStyle": {"color": _LORA_COLOR}},
                    {"value": count.full, "itemStyle": {"color": _FULL_COLOR}},
                ],
                "label": {"show": True, "position": "right", ":formatter": "p => p.value.toLocaleString('en-US')"},
                "barWidth": "55%",
            }
        ],
        "tooltip": {"trigger": "axis"},
    }


def _dims_along(count: LayerCount) -> list[int]:
    """d values from 16 to 65,536 (powers of two) plus the current d."""
    values = {2**e for e in range(4, 17)} | {count.d}
    return sorted(values)


def growth_option(count: LayerCount) -> dict:
    """Parameters against d (k/d fixed): full grows as d², LoRA as d; the current layer marked."""
    ratio = count.k / count.d
    xs = _dims_along(count)
    full = [[x, x * max(1, round(x * ratio))] for x in xs]
    lora = [[x, count.r * (x + max(1, round(x * ratio)))] for x in xs]
    return {
        "animation": False,
        "grid": {"left": 8, "right": 16, "top": 30, "bottom": 30, "containLabel": True},
        "legend": {"top": 0, "data": ["full d·k (quadratic)", f"LoRA r={count.r} (linear)"]},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "log", "name": "d", "nameLocation": "middle", "nameGap": 22, "min": 16, "max": 65536},
        "yAxis": {"type": "log", "axisLabel": {":formatter": "v => v >= 1e9 ? v / 1e9 + 'B' : v >= 1e6 ? v / 1e6 + 'M' : v >= 1e3 ? v / 1e3 + 'K' : v"}},
        "series": [
            {
                "name": "full d·k (quadratic)",
                "type": "line",
                "data": full,
                "color": _FULL_COLOR,
                "showSymbol": False,
                "markPoint": {
                    "symbolSize": 34,
                    "data": [{"coord": [count.d, count.full], "value": "you"}],
                },
            },
            {
                "name": f"LoRA r={count.r} (linear)",
                "type": "line",
                "data": lora,
                "color": _LORA_COLOR,
                "lineStyle": {"type": "dashed"},
                "showSymbol": False,
                "markPoint": {"symbolSize": 34, "data": [{"coord": [count.d, count.lora], "value": "you"}]},
            },
        ],
    }


def rank_option(count: LayerCount) -> dict:
    """Parameters against r: LoRA's line crosses full fine-tuning at the break-even rank dk/(d+k)."""
    m = min(count.d, count.k)
    ranks = sorted({1, count.r, m, *[max(1, round(m * i / 40)) for i in range(41)]})
    return {
        "animation": False,
        "grid": {"left": 8, "right": 16, "top": 30, "bottom": 30, "containLabel": True},
        "legend": {"top": 0, "data": ["LoRA r(d+k)", "full d·k"]},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "value", "name": "r", "nameLocation": "middle", "nameGap": 22, "min": 1, "max": m},
        "yAxis": {"type": "value", "axisLabel": {":formatter": "v => v >= 1e9 ? v / 1e9 + 'B' : v >= 1e6 ? v / 1e6 + 'M' : v >= 1e3 ? v / 1e3 + 'K' : v"}},
        "series": [
            {
                "name": "LoRA r(d+k)",
                "type": "line",
                "data": [[r, r * (count.d + count.k)] for r in ranks],
                "color": _LORA_COLOR,
                "showSymbol": False,
                "markPoint": {"symbolSize": 34, "data": [{"coord": [count.r, count.lora], "value": "r"}]},
                "markLine": {
                    "symbol": "none",
                    "label": {"formatter": f"break-even {float(count.break_even):,.1f}"},
                    "lineStyle": {"color": COLORS["warn"]},
                    "data": [{"xAxis": float(count.break_even)}],
                },
            },
            {
                "name": "full d·k",
                "type": "line",
                "data": [[1, count.full], [m, count.full]],
                "color": _FULL_COLOR,
                "showSymbol": False,
            },
        ],
    }


# ---------------------------------------------------------------------------------------------- text


def example_rows(count: LayerCount) -> tuple[tuple[str, str, str], ...]:
    """The seed's parameter table, recomputed: (method, formula, value)."""
    return (
        ("Full fine-tuning", f"d × k = {count.d:,} × {count.k:,}", f"{count.full:,} ({short_count(count.full)})"),
        (
            f"LoRA (r = {count.r:,})",
            f"r(d + k) = {count.r:,} × ({count.d:,} + {count.k:,})",
            f"{count.lora:,} ({short_count(count.lora)})",
        ),
        ("LoRA / full", "r(d + k) / dk", percent(count.share)),
    )


def benefits(count: LayerCount) -> tuple[tuple[str, str], ...]:
    """The seed's four benefits, each with this layer's number."""
    # AdamW in mixed precision: fp32 gradient (4 B) + two fp32 moments (8 B) + fp32 master copy (4 B) per trained weight
    per_param = 16
    saved = (count.full - count.lora) * per_param
    unmerged_share = Fraction(count.lora, count.full)
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
            f"original. Unmerged, B(Ax) adds {count.lora:,} ({percent(unmerged_share)}).",
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


# ---------------------------------------------------------------------------------------------- HTML blocks
# The numbers and the text are each one HTML block rather than dozens of elements: NiceGUI re-renders its whole
# element tree on every update, so fewer elements keep the page live while a slider moves.


def numbers_html(view: ExplorerView) -> str:
    """The counts, the saving or the warning, the rank for the target and the formulas."""
    cells = "".join(
        f'<div><div class="ll-cap">{escape(label)}</div><div class="ll-num ll-big" data-testid="{testid}">{value}</div></div>'
        for label, testid, value in (
            ("full fine-tuning d·k", "full-params", view.full_text),
            ("LoRA r(d+k)", "lora-params", view.lora_text),
            ("LoRA share", "lora-ratio", view.ratio_text),
            ("break-even rank dk/(d+k)", "break-even", view.break_even_text),
        )
    )
    warning = f'<div class="ll-warn" role="alert" data-testid="rank-warning">{escape(view.warning)}</div>' if view.warning else ""
    formulas = "".join(f"<div>{escape(f)}</div>" for f in (view.formula_full, view.formula_lora))
    return (
        f'<div class="ll-numbers">{cells}</div>'
        f'<div class="ll-strong" data-testid="savings">{escape(view.savings_text)}</div>{warning}'
        f'<div class="ll-small" data-testid="max-rank">{escape(view.max_rank_text)}</div>'
        f'<div class="ll-mono">{formulas}<div data-testid="formula-merge">{escape(view.formula_merge)}</div></div>'
    )


def text_html(view: ExplorerView) -> str:
    """The seed page's parameter table and worked example, recomputed, and the four benefits with numbers."""
    c = view.count
    rows = "".join(
        f"<tr><td>{escape(m)}</td><td>{escape(f)}</td><td class='ll-r'>{escape(v)}</td></tr>" for m, f, v in view.example_rows
    )
    benefits = "".join(f"<li><b>{escape(t)}.</b> {escape(x)}</li>" for t, x in view.benefits)
    return (
        "<div class='ll-cols'><div class='ll-col'><h3>Parameter table, for this layer</h3>"
        f"<table class='ll-table' data-testid='param-table'><thead><tr><th>Method</th><th>Formula</th>"
        f"<th class='ll-r'>Parameters</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<p><b>Worked example.</b> A {c.d:,} × {c.k:,} weight has {c.full:,} parameters. A rank-{c.r:,} LoRA trains "
        f"B ({c.d:,} × {c.r:,}) and A ({c.r:,} × {c.k:,}): {c.lora:,} parameters, {view.ratio_text} of full "
        "fine-tuning. The seed lesson's case is d = k = 4096, r = 8: 16,777,216 against 65,536 (0.39%).</p></div>"
        f"<div class='ll-col'><h3>Benefits, with this layer's numbers</h3><ul class='ll-list'>{benefits}</ul></div></div>"
    )
