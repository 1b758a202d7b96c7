"""export gguf: read back with the gguf package (the one llama.cpp's converter writes with): names from its
TensorNameMap, A and B as llama.cpp's convert_lora_to_gguf.py writes them (B's q/k rows permuted like the base
weights), one alpha; refusals by name."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from adapter_helpers import FIXTURES

from loralens.adapters import load_adapter
from loralens.adapters.gguf_export import export_gguf
from loralens.errors import AdapterError, ConfigError

CONFIG = FIXTURES / "base_llama" / "config.json"


def llama_permute(w: np.ndarray, n_head: int, n_kv: int) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.permute, written out again."""
    n = n_kv if n_kv != n_head else n_head
    return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_export_reads_back_with_the_gguf_package(tmp_path: Path) -> None:
    adapter = load_adapter(FIXTURES / "plain")
    written = export_gguf(adapter, CONFIG, tmp_path / "lora.gguf")
    reader = gguf.GGUFReader(tmp_path / "lora.gguf")
    fields = {name: f for name, f in reader.fields.items()}
    assert fields["general.architecture"].contents() == "llama"
    assert fields["general.type"].contents() == "adapter"
    assert fields["adapter.type"].contents() == "lora"
    assert fields["adapter.lora.alpha"].contents() == adapter.config["lora_alpha"]
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    assert sorted(tensors) == written["tensors"] and len(tensors) == 2 * len(adapter.modules)
    config = json.loads(CONFIG.read_text())
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    for m in adapter.modules:
        target = name_map.get_name(m.name + ".weight", try_suffixes=(".weight",))
        a, b = tensors[f"{target}.lora_a"], tensors[f"{target}.lora_b"]
        np.testing.assert_array_equal(a, m.a)
        expected = m.b
        if m.name.endswith("q_proj"):
            expected = llama_permute(m.b, config["num_attention_heads"], config["num_attention_heads"])
        elif m.name.endswith("k_proj"):
            expected = llama_permute(m.b, config["num_attention_heads"], config["num_key_value_heads"])
        np.testing.assert_array_equal(b, expected)


def test_what_llama_cpp_rejects_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="llama.cpp's LoRA export does not take embeddings or lm_head"):
        export_gguf(load_adapter(FIXTURES / "patterns"), CONFIG, tmp_path / "x.gguf")
    with pytest.raises(AdapterError, match="DoRA"):
        export_gguf(load_adapter(FIXTURES / "dora"), CONFIG, tmp_path / "x.gguf")
    with pytest.raises(AdapterError, match="use_rslora"):
        export_gguf(load_adapter(FIXTURES / "rslora"), CONFIG, tmp_path / "x.gguf")
    with pytest.raises(ConfigError, match="architecture 'GPT2LMHeadModel' is not one loralens exports"):
        export_gguf(load_adapter(FIXTURES / "gpt2"), FIXTURES / "base_gpt2" / "config.json", tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()
