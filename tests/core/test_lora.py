"""One LoRA layer against PEFT itself: scaling, init, forward and merge."""

import math

import numpy as np
import peft
import pytest
import torch

from loralens.core.lora import LoraSpec, delta_weight, forward, init_lora, merge, unmerge
from loralens.errors import InvalidParameterError


@pytest.mark.parametrize("r,alpha,rslora", [(8, 16, False), (4, 8, True), (1, 32, False), (16, 16, True)])
def test_scaling_and_forward_match_peft(r: int, alpha: int, rslora: bool) -> None:
    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(12, 10, bias=False))
    model = peft.get_peft_model(
        base, peft.LoraConfig(r=r, lora_alpha=alpha, use_rslora=rslora, target_modules=["0"], init_lora_weights=False)
    )
    layer = model.base_model.model[0]
    assert LoraSpec(r, alpha, rslora).scaling == pytest.approx(layer.scaling["default"])
    w = layer.base_layer.weight.detach().double().numpy()  # (d, k)
    a = layer.lora_A["default"].weight.detach().double().numpy()  # (r, k)
    b = layer.lora_B["default"].weight.detach().double().numpy()  # (d, r)
    x = torch.randn(5, 12)
    expected = model(x).detach().double().numpy()
    s = LoraSpec(r, alpha, rslora).scaling
    assert np.allclose(forward(w, b, a, s, x.double().numpy()), expected, atol=1e-5)
    merged = model.merge_and_unload()[0].weight.detach().double().numpy()
    assert np.allclose(merge(w, b, a, s), merged, atol=1e-6)
    assert np.allclose(unmerge(merge(w, b, a, s), b, a, s), w, atol=1e-12)


def test_default_init_is_peft_kaiming_uniform_bound_and_zero_b() -> None:
    a, b = init_lora(64, 256, 8, np.random.default_rng(0))
    assert a.shape == (8, 256) and b.shape == (64, 8)
    assert not b.any()
    assert np.abs(a).max() <= 1 / math.sqrt(256)
    assert np.abs(a).max() > 0.9 / math.sqrt(256)  # uniform fills the range
    assert not delta_weight(b, a, 2.0).any()
    # PEFT's own default init for the same shape has the same bound
    layer = peft.get_peft_model(torch.nn.Sequential(torch.nn.Linear(256, 64)), peft.LoraConfig(r=8, target_modules=["0"]))
    peft_a = layer.base_model.model[0].lora_A["default"].weight.detach()
    assert float(peft_a.abs().max()) <= 1 / math.sqrt(256) + 1e-7


@pytest.mark.parametrize("kwargs,message", [({"r": 0}, "r: must be at least 1, got 0"),
                                            ({"r": 4, "alpha": -1}, "alpha: must be greater than 0, got -1")])
def test_spec_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidParameterError) as error:
        LoraSpec(**kwargs)
    assert str(error.value) == message
