"""URL parameters: round trips, and every bad value clamped or replaced with a message naming it."""

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loralens.app.explorer.view import SCHEMA, ExplorerState, state_from_query
from loralens.app.url_state import page_url, parse_query, read_query, to_query


@given(
    st.integers(1, 65_536),
    st.integers(1, 65_536),
    st.integers(1, 65_536),
    st.floats(0.001, 100_000).map(lambda x: round(x, 3)),
    st.booleans(),
)
def test_state_round_trips_through_the_url(d: int, k: int, r: int, alpha: float, rslora: bool) -> None:
    state = ExplorerState(d=d, k=k, r=min(r, d, k), alpha=alpha, rslora=rslora, square=d == k)
    back, messages = state_from_query(dict(parse_qsl(to_query(SCHEMA, state.as_dict()))))
    assert messages == [] and back == state


def test_default_link() -> None:
    state, messages = state_from_query({"d": "4096", "k": "4096", "r": "8"})
    assert messages == [] and (state.d, state.k, state.r, state.alpha) == (4096, 4096, 8, 16.0)


def test_bad_values_are_named() -> None:
    cases = {
        "r=0": ({"r": "0"}, "URL parameter r: must be at least 1; using 1", 1),
        "r too big": ({"d": "64", "r": "1e9"}, "URL parameter r: must be at most min(d, k) = 64; using 64", 64),
        "d negative": ({"d": "-5"}, "URL parameter d: must be at least 1; using 1", None),
        "d text": ({"d": "abc"}, "URL parameter d: expected a number, got 'abc'; using 4096", None),
        "r fraction": ({"r": "2.5"}, "URL parameter r: must be a whole number; using 2", 2),
        "rslora": ({"rslora": "maybe"}, "URL parameter rslora: expected true or false, got 'maybe'; using false", None),
    }
    for name, (query, message, r) in cases.items():
        state, messages = state_from_query(query)
        assert message in messages, (name, messages)
        if r is not None:
            assert state.r == r, name


def test_rectangular_link_turns_square_lock_off() -> None:
    state, messages = state_from_query({"d": "11008", "k": "4096", "r": "16"})
    assert not messages and not state.square and (state.d, state.k) == (11008, 4096)


def test_parse_query_ignores_unknown_parameters() -> None:
    values, messages = parse_query(SCHEMA, {"zzz": "1", "embed": "1"})
    assert messages == [] and values["d"] == 4096


def test_read_query_names_unknown_parameters_and_takes_embed() -> None:
    page = read_query(SCHEMA, {"zzz": "1", "embed": "1", "d": "64"})
    assert page.embed and page.values["d"] == 64 and "embed" not in page.values
    assert page.messages == ["URL parameter zzz: not used by this page (it reads d, k, r, alpha, rslora, square, "
                             "target, rmax, answers, trained, embed); ignored"]


@pytest.mark.parametrize("text", ["-1", "NaN", "8.5", "", "<script>"])
def test_a_bad_embed_value_is_a_message_not_an_error(text: str) -> None:
    page = read_query((), {"embed": text})
    assert not page.embed and page.messages == [f"URL parameter embed: expected true or false, got {text!r}; "
                                                "using false"]


def test_page_url_keeps_embed() -> None:
    assert page_url("/labs", "lab=fit", embed=True) == "/labs?lab=fit&embed=1"
    assert page_url("/lessons", "", embed=True) == "/lessons?embed=1"
    assert page_url("/models", "r=8") == "/models?r=8"
    assert page_url("/") == "/"
