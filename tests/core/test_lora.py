"""One LoRA layer: init, ΔW, merge and the spec's checks (against PEFT itself: tests/oracle/test_lora_oracle.py)."""

import math

import numpy as np
import pytest

from loralens.core.lora import LoraSpec, delta_weight, init_lora
from loralens.errors import InvalidParameterError


def test_default_init_is_peft_kaiming_uniform_bound_and_zero_b() -> None:
    a, b = init_lora(64, 256, 8, np.random.default_rng(0))
    assert a.shape == (8, 256) and b.shape == (64, 8)
    assert not b.any()
    assert np.abs(a).max() <= 1 / math.sqrt(256)
    assert np.abs(a).max() > 0.9 / math.sqrt(256)  # uniform fills the range
    assert not delta_weight(b, a, 2.0).any()


@pytest.mark.parametrize("kwargs,message", [({"r": 0}, "r: must be at least 1, got 0"),
                                            ({"r": 4, "alpha": -1}, "alpha: must be greater than 0, got -1")])
def test_spec_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidParameterError) as error:
        LoraSpec(**kwargs)
    assert str(error.value) == message
