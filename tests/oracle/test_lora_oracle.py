"""One LoRA layer and the labs' building blocks against PEFT and torch themselves: scaling, init, forward,
merge, Adam, PiSSA."""

from __future__ import annotations

import math

import numpy as np
import peft
import pytest
import torch
from peft import LoraConfig, get_peft_model

from loralens.core.labs import common
from loralens.core.labs.init import initial_adapter
from loralens.core.lora import LoraSpec, forward, merge, unmerge


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


def test_adam_matches_torch() -> None:
    rng = np.random.default_rng(1)
    p = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(6)]
    rates = [0.1, 0.05, 0.05, 0.02, 0.01, 0.01]
    ours = p.copy()
    adam = common.Adam([ours], lr=0.1)
    theirs = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([theirs], lr=0.1)
    for g, lr in zip(grads, rates):
        adam.step([g], lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        theirs.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_pissa_matches_peft() -> None:
    """PEFT's own PiSSA initialisation (init_lora_weights='pissa') on the same W gives the same A, B and residual."""

    d, k, r, alpha = 12, 10, 3, 6.0
    w = common.make_task(d, k, 2, 0.0, seed=5).w
    model = torch.nn.Sequential(torch.nn.Linear(k, d, bias=False))
    model[0].weight.data = torch.tensor(w, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=["0"],
                                                  init_lora_weights="pissa"))
    layer = peft_model.base_model.model[0]
    a_peft = layer.lora_A["default"].weight.detach().numpy()
    b_peft = layer.lora_B["default"].weight.detach().numpy()
    w_res = layer.base_layer.weight.detach().numpy()
    a, b, w_base = initial_adapter("pissa", w, r, alpha / r, seed=0)
    # singular vectors are defined up to sign: compare the products and the residual
    np.testing.assert_allclose(b @ a, b_peft @ a_peft, atol=1e-5)
    np.testing.assert_allclose(np.abs(a), np.abs(a_peft), atol=1e-5)
    np.testing.assert_allclose(w_base, w_res, atol=1e-5)


def test_merge_agrees_with_peft() -> None:
    """PEFT's merge_and_unload on the same W, A, B and alpha gives our merged weight."""

    from loralens.core.lora import merge

    rng = np.random.default_rng(0)
    d, k, r, alpha = 10, 8, 2, 5.0
    w, a, b = rng.standard_normal((d, k)), rng.standard_normal((r, k)), rng.standard_normal((d, r))
    model = torch.nn.Sequential(torch.nn.Linear(k, d, bias=False))
    model[0].weight.data = torch.tensor(w, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=["0"]))
    layer = peft_model.base_model.model[0]
    layer.lora_A["default"].weight.data = torch.tensor(a, dtype=torch.float32)
    layer.lora_B["default"].weight.data = torch.tensor(b, dtype=torch.float32)
    merged = peft_model.merge_and_unload()[0].weight.detach().numpy()
    np.testing.assert_allclose(merge(w, b, a, alpha / r), merged, atol=1e-5)


def test_peft_default_init_has_the_same_bound() -> None:
    """PEFT's own default init of A is kaiming-uniform with a = sqrt(5): the bound loralens uses, 1/sqrt(k)."""
    layer = peft.get_peft_model(torch.nn.Sequential(torch.nn.Linear(256, 64)), peft.LoraConfig(r=8, target_modules=["0"]))
    peft_a = layer.base_model.model[0].lora_A["default"].weight.detach()
    assert 0.9 / math.sqrt(256) < float(peft_a.abs().max()) <= 1 / math.sqrt(256) + 1e-7
