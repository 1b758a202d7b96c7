"""The Labs page's pure parts: each lab's URL schema (made from the lab registry), the page state, the charts.

No NiceGUI here: the controls' names, ranges and labels come from ``core.labs.LABS``, the same declarations the
command line and the runs check against, so a range can never differ between them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loralens.app.labs import charts as charts_labs
from loralens.app.palette import BLACK, COLORS
from loralens.app.url_state import Param, format_value, page_url, parse_query, read_query, to_query
from loralens.core.labs import LABS
from loralens.core.labs.params import LabParam
from loralens.errors import LoraLensError

DEFAULT_LAB = "fit"


def url_param(param: LabParam, default: Any) -> Param:
    """A lab parameter as a URL parameter with the same range."""
    return Param(param.name, param.kind, param.kind(default), param.low, param.high, low_open=param.low_open)


def schema(lab: str) -> tuple[Param, ...]:
    """The URL schema of one lab: ``lab`` first, then the lab's page parameters with their defaults."""
    record = LABS[lab]
    defaults = record.defaults()
    return (Param("lab", str, DEFAULT_LAB, choices=tuple(LABS)),
            *(url_param(p, defaults[p.name]) for p in record.page_params()))


def parse_state(query: Mapping[str, str]) -> tuple[str, dict[str, Any], list[str]]:
    """(lab, values, messages) from a query: the lab first, then that lab's parameters."""
    lab_values, messages = parse_query(schema(DEFAULT_LAB)[:1], query)
    lab = lab_values["lab"]
    page = read_query(schema(lab), query)
    return lab, page.values, messages + [m for m in page.messages if not m.startswith("URL parameter lab:")]


def lab_url(lab: str, values: Mapping[str, Any], embed: bool = False) -> str:
    """/labs?lab=...&... with the lab's parameters in schema order (and embed=1 when embedded)."""
    return page_url("/labs", to_query(schema(lab), {**values, "lab": lab}), embed)


#: the controls' widths (Tailwind classes, outer px): a box must hold its largest value without cutting it off
CONTROL_WIDTHS = (("w-28", 112), ("w-32", 128), ("w-36", 144), ("w-44", 176))
DIGIT_PX, FIELD_PADDING_PX = 9.5, 24  # a 16 px digit, and a dense outlined field's padding


def control_width(param: LabParam, default: Any = None) -> str:
    """The width class of a lab control that shows its longest value (the range's ends, the default) whole."""
    longest = max(len(format_value(v)) for v in (param.low, param.high, default) if v is not None)
    needed = longest * DIGIT_PX + FIELD_PADDING_PX
    return next((name for name, px in CONTROL_WIDTHS if px >= needed), CONTROL_WIDTHS[-1][0])


def number_value(kind: type, value: float | None) -> Any:
    """A control's value as the lab expects it; anything not whole stays a float so that the lab names it."""
    if value is None:
        return None
    if kind is int and float(value).is_integer():
        return int(value)
    return float(value)


def _fit_charts(result: Any) -> list[dict[str, Any]]:
    curves = [(f"r={r}", curve) for r, curve in zip(result.sweep_ranks, result.sweep_loss)]
    return [
        charts_labs.error_vs_rank(result.sweep_ranks, result.sweep_final_relative_error,
                                  result.sweep_optimal_relative_error, result.rank),
        charts_labs.loss_curves(curves, highlight=f"r={result.rank}", ordered=True),
        charts_labs.singular_values_chart(result.target_singular_values, result.learned_singular_values,
                                          result.rank),
    ]


def _init_charts(result: Any) -> list[dict[str, Any]]:
    res = [result.results[name] for name in result.schemes]
    names = [charts_labs.scheme_label(name, two_lines=False) for name in result.schemes]
    return [
        charts_labs.init_gradients(result.schemes, [r.grad_a_norm_at_init for r in res],
                                   [r.grad_b_norm_at_init for r in res]),
        charts_labs.init_start(result.schemes, [r.delta_w_fro_at_init for r in res],
                               [r.output_change_at_init for r in res]),
        charts_labs.loss_curves(list(zip(names, [r.loss for r in res])),
                                highlight=charts_labs.scheme_label("default", two_lines=False)),
    ]


def _merge_charts(result: Any) -> list[dict[str, Any]]:
    r = result
    lora, full, merged, unmerged = COLORS["lora"], COLORS["full"], COLORS["merged"], COLORS["lora"]
    return [
        charts_labs.grouped_bars("Inference cost per token", ["FLOPs (= 2 × multiply-adds)"],
                                 [("merged W′", [r.flops_per_token_merged], merged),
                                  ("unmerged W + s·B·A", [r.flops_per_token_unmerged], unmerged)], "FLOPs"),
        charts_labs.grouped_bars(f"Measured time for {r.batch:,} tokens (median of {r.repeats})", ["milliseconds"],
                                 [("merged W′", [r.seconds_merged * 1e3], merged),
                                  ("unmerged W + s·B·A", [r.seconds_unmerged * 1e3], unmerged)], "ms"),
        charts_labs.grouped_bars("Training-time cost (log scale)",
                                 ["trainable\nparams", "gradient\nbytes", "Adam state\nbytes"],
                                 [("LoRA", [r.trainable_params_lora, r.gradient_bytes_lora,
                                            r.adam_state_bytes_lora], lora),
                                  ("full fine-tuning", [r.trainable_params_full, r.gradient_bytes_full,
                                                        r.adam_state_bytes_full], full)],
                                 "count or bytes", log=True),
        charts_labs.grouped_bars(f"Round-off ({r.dtype}, log scale)",
                                 ["merged vs\nunmerged outputs", "swap back\nto W"],
                                 [("max |difference|", [r.merged_vs_unmerged_max_abs_diff,
                                                        r.swap_back_max_abs_diff], COLORS["lora"]),
                                  ("largest |value| × ε", [r.output_max_abs * r.float_eps,
                                                           r.weight_max_abs * r.float_eps], COLORS["frozen"])],
                                 "|difference|", log=True),
    ]


def _subspace_charts(result: Any) -> list[dict[str, Any]]:
    small, large = result.details
    return [
        charts_labs.phi_heatmap(result.phi, result.rank, result.rank_large),
        charts_labs.grouped_bars("Amplification: ‖ΔW‖ vs W on ΔW's directions",
                                 [f"r = {small.rank}", f"r = {large.rank}"],
                                 [("‖ΔW‖_F", [small.delta_w_fro, large.delta_w_fro], COLORS["delta"]),
                                  ("‖UᵀWV‖_F", [small.projection_fro, large.projection_fro], COLORS["a"]),
                                  ("W on random directions", [small.random_projection_fro,
                                                              large.random_projection_fro], BLACK),
                                  ("W on its top directions", [small.w_top_projection_fro,
                                                               large.w_top_projection_fro], COLORS["full"])]),
        charts_labs.loss_curves([(f"r={result.rank}", result.loss), (f"r={result.rank_large}", result.loss_large)]),
    ]


CHARTS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
    "fit": _fit_charts,
    "init": _init_charts,
    "merge": _merge_charts,
    "subspace": _subspace_charts,
}

# ---------------------------------------------------------------------------------------------------------
# Keeping the last result on screen when a value is refused (the page wires these; they decide nothing async)


@dataclass(frozen=True)
class Shown:
    """What the page shows for one finished run: the lab, the values it ran with, its reading and its charts."""

    lab: str
    values: Mapping[str, Any]
    reading: str
    charts: tuple[dict[str, Any], ...]


def shown(lab: str, values: Mapping[str, Any], result: Any) -> Shown:
    """The reading and the charts of ``result``, with the values that produced it."""
    return Shown(lab, dict(values), LABS[lab].reading(result), tuple(CHARTS[lab](result)))


def precheck(lab: str, values: Mapping[str, Any]) -> tuple[str, str] | None:
    """(message, parameter) for the first value the lab would refuse on its own range (an empty box included),
    found without running it; None when every value is within its range. Ranges that depend on other values
    (rank <= min(d, k)) are the run's to check: it refuses them before any work."""
    for param in LABS[lab].page_params():
        value = values.get(param.name)
        if value is None:
            return f"{param.name}: enter a number", param.name
        try:
            param.check(value)
        except LoraLensError as error:
            return str(error), error.where or param.name
    return None


@dataclass(frozen=True)
class Refused:
    """A refused value: the message beside its control, and what stays on screen meanwhile."""

    message: str
    where: str | None
    keep: Shown | None  # the last result, still shown (None: there is none for this lab)
    note: str  # says which values the charts still show


def refused(last: Shown | None, lab: str, values: Mapping[str, Any], message: str, where: str | None) -> Refused:
    """Keep ``last`` (if it is this lab's) and say which of its values differ from the ones typed now."""
    keep = last if last is not None and last.lab == lab else None
    if keep is None:
        return Refused(message, where, None, "")
    changed = [name for name in keep.values if name != "lab" and values.get(name) != keep.values[name]]
    run_with = ", ".join(f"{name} = {format_value(keep.values[name])}" for name in changed)
    note = ("The charts and the reading below are from the last run that worked"
            + (f" ({run_with})." if run_with else "."))
    return Refused(message, where, keep, note)


def progress_text(done: int, total: int, elapsed: float) -> str:
    """What the busy line says: steps done and, once the pace is known (a quarter second in), the time left."""
    if done <= 0:
        return "running…"
    text = f"running… {done:,} of {total:,} steps"
    if elapsed < 0.25 or done >= total:
        return text
    left = elapsed / done * (total - done)
    return text + (f" · about {left:.0f} s left" if left >= 1.5 else " · under 2 s left")


__all__ = ["CHARTS", "CONTROL_WIDTHS", "DEFAULT_LAB", "Refused", "control_width", "Shown", "lab_url", "number_value", "parse_state", "precheck",
           "progress_text", "refused", "schema", "shown"]
