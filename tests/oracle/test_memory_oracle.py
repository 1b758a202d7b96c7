"""Training memory against what torch and PEFT really allocate (the formulas without torch:
tests/core/test_memory.py)."""

from __future__ import annotations

import pytest

from loralens.core import memory
from loralens.core.architectures import architecture_from_config
from loralens.core.memory import (
    estimate_memory,
)


@pytest.mark.oracle
@pytest.mark.parametrize("model_type", ["gpt2", "llama", "opt", "bert"])
def test_activations_against_torch_saved_tensors(model_type: str) -> None:
    """Measure what autograd really keeps (saved-tensor hooks on a small real model, fp32, eager attention, train
    mode) and compare with the formula: within 15 %. The rest is HF implementation detail (masks, loss buffers)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    configs = {
        "gpt2": dict(model_type="gpt2", n_embd=128, n_layer=3, n_head=4, vocab_size=500, n_positions=128),
        "llama": dict(model_type="llama", hidden_size=128, intermediate_size=344, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, vocab_size=500, max_position_embeddings=128),
        "opt": dict(model_type="opt", hidden_size=128, ffn_dim=512, num_hidden_layers=3, num_attention_heads=4,
                    vocab_size=500, max_position_embeddings=128, word_embed_proj_dim=128),
        "bert": dict(model_type="bert", hidden_size=128, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=512, vocab_size=500, max_position_embeddings=128),
    }
    data = configs[model_type]
    config = transformers.AutoConfig.for_model(**data, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    cls = transformers.AutoModelForMaskedLM if model_type == "bert" else transformers.AutoModelForCausalLM
    model = cls.from_config(config).train()
    s, b = 96, 3
    ids = torch.randint(1, 500, (b, s))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor):  # noqa: ANN001, ANN202
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids)
    measured = sum(n for ptr, n in saved.items() if ptr not in params)
    estimate = memory.activation_bytes(architecture_from_config(data), batch_size=b, seq_len=s, element_bytes=4,
                                       attention="eager")
    assert estimate == pytest.approx(measured, rel=0.15)


@pytest.mark.oracle
@pytest.mark.parametrize("method", ["lora", "full"])
def test_model_states_equal_what_torch_and_peft_allocate(method: str) -> None:
    """One real AdamW step on a small Llama (bf16 base; PEFT LoRA, or full fine-tuning in fp32): the bytes of the
    parameters, their gradients and AdamW's states equal our weights, gradients and optimizer exactly. This checks
    the claim that PEFT keeps LoRA's A and B in fp32 on a bf16 model (autocast_adapter_dtype)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    import warnings

    from loralens.core.peft_config import LoraConfigSpec

    data = dict(model_type="llama", hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=101, max_position_embeddings=64)
    config = transformers.AutoConfig.for_model(**data, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if method == "lora" else torch.float32
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    if method == "lora":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained)
    ids = torch.randint(1, 101, (2, 8))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in trained)
    states = sum(t.numel() * t.element_size() for state in optimizer.state.values() for t in state.values()
                 if torch.is_tensor(t) and t.dim() > 0)  # exp_avg and exp_avg_sq (not the 0-d step)
    arch = architecture_from_config(data)
    spec = LoraConfigSpec(r=4, target_modules=("q_proj", "v_proj"))
    est = estimate_memory(arch, spec, method=method, dtype="bf16" if method == "lora" else "fp32").per_device
    assert (est.weights, est.gradients, est.optimizer) == (weights, grads, states)
