"""merge against PEFT's merge_and_unload() on adapters PEFT saved, for everything besides plain LoRA factors.

Tiny models are built from configs (no hub), saved with transformers (sharded bases included) in fp32, fp16 and
bf16; every trainable parameter PEFT creates (LoRA factors, modules_to_save copies, trainable token rows, biases,
lora_B.bias) is perturbed so that it differs from the base, the adapter is saved with save_pretrained, and then
loralens' merged folder, loaded by transformers, must equal PEFT's merged model tensor for tensor (bit for bit).
What loralens cannot apply exactly must be refused with one line and nothing written.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
)

from adapter_helpers import tree_digest

from loralens.adapters import merge_adapter
from loralens.errors import AdapterError

pytestmark = pytest.mark.oracle
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def llama(tie: bool = False) -> LlamaConfig:
    return LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=tie, pad_token_id=0,
                       num_labels=3)


def gpt2() -> GPT2Config:
    return GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)


def neox() -> GPTNeoXConfig:
    return GPTNeoXConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, tie_word_embeddings=False)


# name -> (model class, config, LoraConfig kwargs)
CASES: dict[str, tuple[Callable, Callable, dict]] = {
    "seq_cls_head": (LlamaForSequenceClassification, llama, dict(target_modules=["q_proj", "v_proj"],
                                                                 task_type="SEQ_CLS")),
    "modules_to_save_lm_head": (LlamaForCausalLM, llama, dict(target_modules=["q_proj"], modules_to_save=["lm_head"])),
    "trainable_tokens": (LlamaForCausalLM, llama, dict(target_modules=["q_proj"], trainable_token_indices=[1, 5, 9])),
    "trainable_tokens_tied": (LlamaForCausalLM, lambda: llama(tie=True),
                              dict(target_modules=["q_proj"], trainable_token_indices=[2, 3])),
    "tied_lm_head": (LlamaForCausalLM, lambda: llama(tie=True), dict(target_modules=["q_proj", "lm_head"])),
    "embed_tokens": (LlamaForCausalLM, llama, dict(target_modules=["embed_tokens", "o_proj"])),
    "tied_embed_tokens": (LlamaForCausalLM, lambda: llama(tie=True), dict(target_modules=["v_proj", "embed_tokens"])),
    "bias_all": (GPT2LMHeadModel, gpt2, dict(target_modules=["c_attn"], bias="all", fan_in_fan_out=True)),
    "bias_lora_only": (GPT2LMHeadModel, gpt2, dict(target_modules=["c_attn", "c_fc"], bias="lora_only",
                                                   fan_in_fan_out=True)),
    "lora_bias": (GPT2LMHeadModel, gpt2, dict(target_modules=["c_attn", "c_proj"], lora_bias=True,
                                              fan_in_fan_out=True)),
    "neox_embed_out": (GPTNeoXForCausalLM, neox, dict(target_modules=["query_key_value", "lm_head"])),
    "dora_embedding": (LlamaForCausalLM, llama, dict(target_modules=["embed_tokens", "k_proj"], use_dora=True)),
    "dora_modules_to_save": (LlamaForCausalLM, llama, dict(target_modules=["q_proj", "o_proj"], use_dora=True,
                                                           modules_to_save=["lm_head"])),
}


def make(tmp: Path, name: str, dtype: torch.dtype, *, shard: bool = False) -> tuple[type, Path, Path]:
    cls, config, lora = CASES[name]
    torch.manual_seed(0)
    base = cls(config()).to(dtype)
    base.save_pretrained(tmp / "base", max_shard_size="20KB" if shard else "1GB")
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, **lora))
        gen = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for _, param in model.named_parameters():
                if param.requires_grad:  # LoRA factors, saved copies, token rows, biases: all differ from the base
                    param.add_(torch.randn(param.shape, generator=gen).to(param.dtype) * 0.05)
        model.save_pretrained(tmp / "adapter")
    return cls, tmp / "base", tmp / "adapter"


def peft_merged(cls: type, base: Path, adapter: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PeftModel.from_pretrained(cls.from_pretrained(base, dtype=dtype), adapter)
        return model.merge_and_unload().state_dict()


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", list(CASES))
def test_merge_equals_peft_merge_and_unload(tmp_path: Path, name: str, dtype: str) -> None:
    torch_dtype = DTYPES[dtype]
    cls, base, adapter = make(tmp_path, name, torch_dtype, shard=name in ("bias_all", "trainable_tokens"))
    merge_adapter(adapter, base, tmp_path / "merged")
    ours = cls.from_pretrained(tmp_path / "merged", dtype=torch_dtype).state_dict()
    theirs = peft_merged(cls, base, adapter, torch_dtype)
    original = cls.from_pretrained(base, dtype=torch_dtype).state_dict()
    assert ours.keys() == theirs.keys()
    changed = [k for k in theirs if not torch.equal(theirs[k], original[k])]
    assert changed  # the case really changes the model
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype, key
        if "dora" in name:  # DoRA's row norms: torch sums in another order (documented in docs/inspector-cli.md)
            assert ulps(ours[key], theirs[key]) <= (4 if dtype == "fp32" else 1), (key, ulps(ours[key], theirs[key]))
        else:
            assert torch.equal(ours[key], theirs[key]), (key, ulps(ours[key], theirs[key]))


def ulps(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest difference in units of the last place of the stored dtype (at the larger magnitude)."""
    eps = torch.finfo(a.dtype).eps
    scale = torch.maximum(a.abs(), b.abs()).double().clamp_min(torch.finfo(a.dtype).tiny)
    spacing = torch.exp2(torch.floor(torch.log2(scale))) * eps
    return float(((a.double() - b.double()).abs() / spacing).max())


def _refused(tmp_path: Path, adapter: Path, base: Path, *fragments: str) -> None:
    before = tree_digest(adapter), tree_digest(base)
    with pytest.raises(AdapterError) as info:
        merge_adapter(adapter, base, tmp_path / "merged")
    assert (tree_digest(adapter), tree_digest(base)) == before  # the inputs are only read
    text = str(info.value)
    assert "\n" not in text
    for fragment in fragments:
        assert fragment in text
    assert not (tmp_path / "merged").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "base"]


def test_a_task_head_the_base_does_not_hold_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, adapter = make(tmp_path, "seq_cls_head", torch.float32)
    torch.manual_seed(0)
    for item in (tmp_path / "base").iterdir():
        item.unlink()
    LlamaForCausalLM(llama()).save_pretrained(tmp_path / "base")  # the causal LM the classifier was built from
    _refused(tmp_path, adapter, tmp_path / "base", "base_model.model.score.weight", "has no tensor 'score.weight'")
    from loralens.cli import main

    capsys.readouterr()  # transformers' progress bars so far
    assert main(["merge", str(adapter), "--base", str(tmp_path / "base"), "-o", str(tmp_path / "merged")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("loralens: error: ") and "score.weight" in err
    assert not (tmp_path / "merged").exists()


def _resized_vocabulary_adapter(tmp: Path, targets: list[str], *, tie: bool = False,
                                dtype: torch.dtype = torch.float32, shard: bool = False) -> None:
    """tmp/base: a 64-row Llama; tmp/adapter: LoRA on ``targets`` trained after resizing it to 72 rows, saved
    with its embedding layers (save_embedding_layers=True)."""
    torch.manual_seed(0)
    base = LlamaForCausalLM(llama(tie=tie)).to(dtype)
    base.save_pretrained(tmp / "base", max_shard_size="20KB" if shard else "1GB")
    base.resize_token_embeddings(72, mean_resizing=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(base, LoraConfig(r=4, target_modules=targets, init_lora_weights=False))
        model.save_pretrained(tmp / "adapter", save_embedding_layers=True)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("tie, shard", [(False, False), (False, True), (True, False)])
def test_a_resized_vocabulary_merges_as_peft_does(tmp_path: Path, dtype: str, tie: bool, shard: bool) -> None:
    """The base resized (64 -> 72 rows) before training, the embeddings saved whole (save_embedding_layers):
    PEFT's merged model has 72 rows, and so does loralens' (config.json's vocab_size follows)."""
    torch_dtype = DTYPES[dtype]
    # untied: PEFT saves both copies only when embed_tokens is not targeted (else just the embedding's base
    # layer, and the head's new rows exist only in the user's own resize: refused, see below)
    targets = ["q_proj", "embed_tokens"] if tie else ["q_proj", "v_proj"]
    _resized_vocabulary_adapter(tmp_path, targets, tie=tie, dtype=torch_dtype, shard=shard)
    merge_adapter(tmp_path / "adapter", tmp_path / "base", tmp_path / "merged")
    ours = LlamaForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch_dtype).state_dict()
    resized = LlamaForCausalLM.from_pretrained(tmp_path / "base", dtype=torch_dtype)
    resized.resize_token_embeddings(72, mean_resizing=False)  # what a PEFT user does before loading the adapter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = PeftModel.from_pretrained(resized, tmp_path / "adapter").merge_and_unload().state_dict()
    assert ours.keys() == theirs.keys()
    assert ours["model.embed_tokens.weight"].shape[0] == 72
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), (key, ulps(ours[key], theirs[key]))


def test_a_resized_vocabulary_without_the_head_s_new_rows_is_refused(tmp_path: Path) -> None:
    _resized_vocabulary_adapter(tmp_path, ["q_proj", "embed_tokens"])
    _refused(tmp_path, tmp_path / "adapter", tmp_path / "base", "resizes the vocabulary to 72 rows but not "
             "'lm_head.weight'", "the adapter does not hold them")


def test_vocabularies_resized_to_different_sizes_are_refused(tmp_path: Path) -> None:
    _resized_vocabulary_adapter(tmp_path, ["q_proj"])
    from loralens.adapters.safetensors_io import load_arrays, save_arrays

    weights = tmp_path / "adapter" / "adapter_model.safetensors"
    arrays = load_arrays(weights)
    arrays["base_model.model.lm_head.weight"] = arrays["base_model.model.lm_head.weight"][:70]
    save_arrays(weights, arrays)
    _refused(tmp_path, tmp_path / "adapter", tmp_path / "base", "resize the vocabulary to different sizes")


def test_modules_to_save_on_a_tied_head_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = LlamaForCausalLM(llama(tie=True))
    base.save_pretrained(tmp_path / "base")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], modules_to_save=["lm_head"],
                                                init_lora_weights=False))
        model.save_pretrained(tmp_path / "adapter")
    _refused(tmp_path, tmp_path / "adapter", tmp_path / "base", "base_model.model.lm_head.weight", "tied")
