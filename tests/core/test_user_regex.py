"""User regexes: the same answers as ``re`` (PEFT's matcher), in bounded time, with one line naming the field."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loralens.core.peft_config import pattern_key
from loralens.core.user_regex import user_pattern
from loralens.errors import InvalidParameterError

# module-name pieces and regex operators, to build the kind of patterns people write in target_modules and patterns
ATOMS = st.sampled_from(["q_proj", "v_proj", "proj", "layers", "self_attn", "mlp", r"\.", ".", r"\d", r"\d+",
                         "[qkv]", "[0-9]", "(q|k)", "(up|down)_proj", ".*", ".+", "model", "31", "0"])


@st.composite
def patterns(draw: st.DrawFn) -> str:
    parts = draw(st.lists(ATOMS, min_size=1, max_size=5))
    text = ""
    for part in parts:
        text += part + draw(st.sampled_from(["", "", "?", "*", "+"])) if not part.endswith(("*", "+")) else part
    return f"({text}|{draw(ATOMS)})" if draw(st.booleans()) else text


NAMES = st.builds(
    lambda layer, block, proj: f"model.layers.{layer}.{block}.{proj}",
    st.integers(0, 40), st.sampled_from(["self_attn", "mlp"]),
    st.sampled_from(["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]))


@settings(max_examples=400, deadline=None)
@given(patterns(), NAMES)
def test_same_answers_as_re(pattern: str, name: str) -> None:
    compiled = user_pattern(pattern, "target_modules")
    assert (compiled.fullmatch(name) is None) == (re.fullmatch(pattern, name) is None), (pattern, name)
    assert (compiled.match(name) is None) == (re.match(pattern, name) is None), (pattern, name)


@settings(max_examples=200, deadline=None)
@given(st.lists(patterns(), min_size=1, max_size=4), NAMES)
def test_pattern_key_is_pefts_get_pattern_key(keys: list[str], name: str) -> None:
    """PEFT's rule, written out with re: the first key with re.match(rf"(.*\\.)?({key})$", name)."""
    expected = next((k for k in keys if re.match(rf"(.*\.)?({k})$", name)), None)
    assert pattern_key(keys, name) == expected


def test_a_pattern_that_backtracks_without_end_is_refused_naming_the_field() -> None:
    # under re this match takes about 2^40 steps (days); here it gives up and says which field and why
    with pytest.raises(InvalidParameterError) as caught:
        pattern_key({"(a|a)+": 4}, "model." + "a" * 40 + "c")
    message = str(caught.value)
    assert "rank_pattern" in message and "'(a|a)+'" in message and "takes over" in message


def test_an_invalid_pattern_is_one_line() -> None:
    with pytest.raises(InvalidParameterError, match="exclude_modules.*is not a valid regex"):
        user_pattern("(q_proj", "exclude_modules")
