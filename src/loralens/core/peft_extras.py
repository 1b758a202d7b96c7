"""What PEFT trains besides the LoRA factors of target_modules: modules_to_save copies (and the task heads that
task_type adds), trainable token deltas, and LoRA on bare parameters (target_parameters, lora.ParamWrapper).

The rules, from huggingface/peft 0.21:
- ``exclude_modules`` (tuners_utils.check_target_module_exists): a str is ``re.fullmatch``-ed; a list excludes a
  module whose name equals an entry or ends with "." + entry. ``modules_to_save`` names are excluded from the
  targets too (``re.match(rf"(^|.*\\.){m}($|\\..*)", name)``).
- ``modules_to_save`` (utils/other.py ``_set_trainable``): every module whose name ends with an entry (no dot
  needed) is wrapped in a ModulesToSaveWrapper holding a trainable deep copy: trainable and "all params" both grow by
  the copy, and the original's biases stop training under bias="all".
- task_type (peft_model.py): SEQ_CLS adds ["classifier", "score"] before the LoRA layers are placed (so they are
  excluded from the targets), TOKEN_CLS adds them and QUESTION_ANS adds ["qa_outputs"] after (a head that LoRA
  adapted cannot be wrapped: PEFT raises TypeError, loralens refuses).
- ``trainable_token_indices`` (TrainableTokensWrapper): a list trains len(ids) rows of the input embedding (once,
  also when the output head is tied to it); a dict trains len(ids) rows of each named module (its embedding width).
- ``target_parameters`` (ParamWrapper): a parameter ``module.name`` matching an entry exactly or by "." + entry;
  a 2-D (out, in) one trains r*(in + out), a 3-D (experts, a, b) one r*experts*(a + b); 1-D ones, DoRA and
  lora_bias raise in PEFT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loralens.core.architectures import Architecture, LinearModule
from loralens.core.heads import TASK_MODULES_TO_SAVE
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.user_regex import user_pattern
from loralens.errors import InvalidParameterError

#: task types whose head names PEFT adds before placing the LoRA layers (the others: after)
_ADDED_BEFORE = ("SEQ_CLS",)


def task_modules(spec: LoraConfigSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(modules_to_save known when the targets are matched, modules_to_save added afterwards)."""
    own = tuple(spec.modules_to_save or ())
    added = TASK_MODULES_TO_SAVE.get(spec.task_type or "", ())
    if spec.task_type in _ADDED_BEFORE:
        return own + added, ()
    return own, added


def exclusion(spec: LoraConfigSpec, saved_before: Sequence[str]):  # noqa: ANN201
    """PEFT's exclusion test of one module name (exclude_modules, then modules_to_save), or None."""
    excluded = spec.exclude_modules
    saved = [user_pattern(rf"(^|.*\.){m}($|\..*)", "modules_to_save", m) for m in saved_before]
    if excluded is None and not saved:
        return None
    if isinstance(excluded, str):
        regex = user_pattern(excluded, "exclude_modules")
        by_exclude = lambda name: regex.fullmatch(name) is not None  # noqa: E731
    elif excluded:
        exact, suffixes = set(excluded), tuple("." + e for e in excluded)
        by_exclude = lambda name: name in exact or name.endswith(suffixes)  # noqa: E731
    else:
        by_exclude = lambda name: False  # noqa: E731
    return lambda name: by_exclude(name) or any(p.match(name) for p in saved)


def _subtree_params(arch: Architecture, name: str) -> tuple[int, int]:
    """(parameters, of which biases) of module ``name`` and everything under it, a deep copy's worth (a tied
    weight is copied too; a tied decoder's bias is the head's lone bias, counted once)."""
    inside = lambda n: n == name or n.startswith(name + ".")  # noqa: E731
    params = biases = 0
    for m in arch.linear_modules:
        if inside(m.name):
            bias = m.out_features if m.bias and not m.shared else 0
            params += m.weight_params + bias
            biases += bias
    for h in arch.other_modules:
        if inside(h.name):
            params += h.weight + h.bias
            biases += h.bias
    return params, biases


@dataclass(frozen=True)
class SavedModule:
    name: str
    params: int
    biases: int  # of the original, which no longer train under bias="all"
    nested: bool = False  # inside another wrapper: its original is part of the outer copy, now frozen


def modules_to_save(arch: Architecture, names: Sequence[str], adapted: set[str]) -> list[SavedModule]:
    """The modules PEFT wraps for ``names`` (suffix match, no dot needed), each with its copy's parameters.

    PEFT's _set_trainable walks the original module names parents first. A match inside an already wrapped module
    is reached through the wrapper (its original module): two levels below the wrapper (the wrapper is its
    grandparent) it only updates the outer wrapper (nothing new); any other depth gets a wrapper of its own around
    that part of the outer's active copy (``__getattr__`` resolves there): a new copy that trains, while the part of
    the outer copy it wraps is frozen. So each nested copy adds to the total but not to the trainable count, and
    the original's biases are frozen once (the outer subtree holds the inner one).
    """
    if not names:
        return []
    found = [n for n in arch.module_names if any(n.endswith(key) for key in names)]
    wrapped: list[str] = []
    saved: list[SavedModule] = []
    for n in found:
        hit = next((a for a in adapted if a == n or a.startswith(n + ".")), None)
        if hit is not None:
            raise InvalidParameterError(f"{n!r} holds the LoRA layer {hit!r}: PEFT cannot wrap it (TypeError: "
                                        "modules_to_save cannot be applied to LoRA layers)", where="modules_to_save")
        if n.rsplit(".", 2)[0] in wrapped and n.count(".") >= 2:
            continue  # the grandparent is a wrapper: PEFT only calls its update()
        params, biases = _subtree_params(arch, n)
        inside = any(n.startswith(o + ".") for o in wrapped)
        wrapped.append(n)
        saved.append(SavedModule(n, params, 0 if inside else biases, inside))
    return saved


def token_deltas(arch: Architecture, spec: LoraConfigSpec, busy: set[str]) -> list[tuple[str, int, int]]:
    """(module, rows, width) of each trainable-token delta."""
    indices = spec.trainable_token_indices
    if indices is None:
        return []
    embeddings = {h.name: h for h in arch.other_modules if h.kind == "embedding"}
    linear = {m.name: m for m in arch.linear_modules}
    if not isinstance(indices, dict):
        name = next((n for n, h in embeddings.items() if h.shape[0] == arch.vocab_size), None)
        if name is None:
            raise InvalidParameterError(f"{arch.short_name} has no token embedding", where="trainable_token_indices")
        wanted = {name: indices}
    else:
        wanted = {}
        for key, ids in indices.items():
            hits = [n for n in (*embeddings, *linear) if n.endswith(key)]
            if not hits:
                raise InvalidParameterError(f"no module named {key!r}", where="trainable_token_indices")
            for n in hits:
                if n in linear and linear[n].shared:
                    raise InvalidParameterError(f"{n!r} is tied to the embeddings: PEFT's shared token delta is "
                                                "not counted by loralens", where="trainable_token_indices")
                wanted[n] = ids
    out = []
    for name, ids in wanted.items():
        if name in busy:
            raise InvalidParameterError(f"{name!r} is also adapted or saved whole", where="trainable_token_indices")
        width = embeddings[name].shape[1] if name in embeddings else linear[name].in_features
        out.append((name, len(ids), width))
    return out


@dataclass(frozen=True)
class ParamTarget:
    name: str  # module + "." + parameter, the key PEFT matches and looks rank_pattern up with
    module: str
    experts: int
    a: int  # (out, in) of a 2-D parameter; (a, b) of a 3-D (experts, a, b) one
    b: int


def parameter_targets(arch: Architecture, spec: LoraConfigSpec) -> list[ParamTarget]:
    """The parameters ``target_parameters`` wraps (2-D weights and 3-D fused experts)."""
    wanted = spec.target_parameters
    if not wanted:
        return []
    if spec.use_dora:
        raise InvalidParameterError("lora.ParamWrapper does not work with use_dora=True", where="target_parameters")
    if spec.lora_bias:
        raise InvalidParameterError("lora.ParamWrapper does not work with lora_bias=True", where="target_parameters")
    exact, suffixes = set(wanted), tuple("." + t for t in wanted)
    match = lambda key: key in exact or key.endswith(suffixes)  # noqa: E731
    found: list[ParamTarget] = []

    def one_d(key: str) -> None:
        if match(key):
            raise InvalidParameterError(f"{key!r} is 1-D: lora.ParamWrapper takes only 2-D and 3-D parameters",
                                        where="target_parameters")

    for m in arch.linear_modules:
        if match(m.name + ".weight"):
            if m.conv or m.shared:
                raise InvalidParameterError(f"{m.name + '.weight'!r}: LoRA on this parameter is not counted by "
                                            "loralens", where="target_parameters")
            found.append(ParamTarget(m.name + ".weight", m.name, 1, m.out_features, m.in_features))
        if m.bias and not m.shared:
            one_d(m.name + ".bias")
    for h in arch.other_modules:
        if h.kind == "param" and match(h.name):
            if len(h.shape) == 2:
                found.append(ParamTarget(h.name, h.module, 1, *h.shape))
            elif len(h.shape) == 3:
                found.append(ParamTarget(h.name, h.module, *h.shape))
            else:
                raise InvalidParameterError(f"{h.name!r} has {len(h.shape)} dimensions: lora.ParamWrapper takes "
                                            "only 2-D and 3-D parameters", where="target_parameters")
        elif h.kind == "embedding" and match(h.name + ".weight"):
            raise InvalidParameterError(f"{h.name + '.weight'!r}: LoRA on an embedding's parameter is not counted by "
                                        "loralens", where="target_parameters")
        elif h.kind in ("layernorm", "rmsnorm"):
            one_d(h.name + ".weight")
            if h.bias:
                one_d(h.name + ".bias")
        elif h.kind == "bias":
            one_d(h.name + ".bias")
    if not found:
        raise InvalidParameterError(f"target_parameters={list(wanted)} were set but no parameter was matched.",
                                    where="target_parameters")
    return found


def clashes(adapted: Sequence[LinearModule], params: Sequence[ParamTarget]) -> None:
    """A module both in target_modules and holding a target parameter: PEFT refuses it."""
    names = {m.name for m in adapted}
    for p in params:
        if p.module in names:
            raise InvalidParameterError(f"Trying to wrap an `nn.Parameter` of layer {p.module!r}, which is not a valid "
                                        "target. Make sure that this layer is not also targeted with "
                                        "`target_modules`", where="target_parameters")


__all__ = ["ParamTarget", "SavedModule", "clashes", "exclusion", "modules_to_save", "parameter_targets",
           "task_modules", "token_deltas"]
