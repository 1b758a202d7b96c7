"""The notebook widget in Python: traits mirror the Explorer's URL parameters, bad values are refused with a
clear TraitError, and the front end is the same browser module (the e2e test drives it in JupyterLab)."""

import pytest
import traitlets

from loralens.web import asset
from loralens.widgets import TRAITS, Explorer


def test_traits_are_the_explorer_state() -> None:
    w = Explorer(d=4096, r=8)
    assert (w.d, w.k, w.r, w.alpha, w.rslora, w.square, w.target, w.rmax, w.answers) == (
        4096, 4096, 8, 16.0, False, True, 99.0, 0, True)
    rect = Explorer(d=11008, k=4096, r=16)
    assert (rect.square, rect.k) == (False, 4096)
    assert set(TRAITS) <= set(w.keys)


@pytest.mark.parametrize("name,value,message", [
    ("r", 0, "r: must be from 1 to min(d, k) = 4,096, got 0"),
    ("r", 4097, "r: must be from 1 to min(d, k) = 4,096, got 4,097"),
    ("d", 0, "d: must be from 1 to 65,536, got 0"),
    ("k", 70000, "k: must be from 1 to 65,536, got 70,000"),
    ("alpha", 0.0, "alpha: must be from 0.001 to 100,000, got 0"),
    ("target", 100.0, "target: must be from 1 to 99.999, got 100"),
    ("rmax", -1, "rmax: must be from 0 to 65,536, got -1"),
])
def test_bad_values_are_refused_with_a_clear_error(name: str, value: object, message: str) -> None:
    w = Explorer()
    with pytest.raises(traitlets.TraitError) as error:
        setattr(w, name, value)
    assert str(error.value) == message
    assert getattr(w, name) == getattr(Explorer(), name)  # the refused value was not taken


def test_wrong_types_are_refused() -> None:
    with pytest.raises(traitlets.TraitError, match="'r' trait of an Explorer instance expected an int"):
        Explorer().r = "five"  # type: ignore[assignment]


def test_square_and_rank_follow_as_on_the_page() -> None:
    w = Explorer(d=64, r=40)
    w.d = 16
    assert (w.k, w.r) == (16, 16)
    w.square = False
    w.k = 8
    assert (w.d, w.r) == (16, 8)
    w.rmax = 4
    assert w.r == 4
    with pytest.raises(traitlets.TraitError, match="rmax = 4"):
        w.r = 5


def test_front_end_is_the_browser_module_with_an_anywidget_adapter() -> None:
    assert Explorer._esm.startswith(asset("explorer.js"))
    assert "export default" in Explorer._esm and "render({ model, el })" in Explorer._esm
    assert Explorer._css == asset("explorer.css")
