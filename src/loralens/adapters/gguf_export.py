"""Export a PEFT LoRA adapter as a llama.cpp LoRA GGUF (``llama-cli --lora out.gguf``), with the ``gguf`` package
the ggml project maintains (optional extra: ``pip install 'loralens[gguf]'``).

Follows llama.cpp's convert_lora_to_gguf.py: tensor names through gguf's TensorNameMap for the base model's
architecture (``model.layers.0.self_attn.q_proj`` -> ``blk.0.attn_q``) with ``.lora_a`` (r, in) and ``.lora_b``
(out, r); LLaMA-family q_proj / k_proj rows permuted as its converter permutes the base weights (so B is
permuted); ``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha`` = lora_alpha, float32.
llama.cpp scales every tensor by that one alpha over the tensor's own rank, so what it cannot express is refused by
name: per-module alpha (alpha_pattern), rsLoRA, DoRA, embeddings and lm_head, other tensors (modules_to_save), and
architectures outside the table below.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from loralens.adapters.formats.output import _check_file
from loralens.adapters.peft_format import Adapter
from loralens.errors import AdapterError, ConfigError, OutputError

#: config.json architectures[0] -> (gguf MODEL_ARCH member, q/k rows permuted like convert_hf_to_gguf's LlamaModel)
ARCHITECTURES = {
    "LlamaForCausalLM": ("LLAMA", True),
    "MistralForCausalLM": ("LLAMA", True),
    "Qwen2ForCausalLM": ("QWEN2", False),
    "Qwen3ForCausalLM": ("QWEN3", False),
}
REFUSED_MODULES = ("embed_tokens", "lm_head", "wte", "word_embeddings")


def _gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise OutputError("needs the gguf package: pip install 'loralens[gguf]'", where="export gguf") from None
    return gguf


def permute(rows: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute on the output rows (out, ...)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = rows.shape
    return rows.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"cannot read ({error})", where=str(path)) from None
    if not isinstance(config, dict):
        raise ConfigError("must be a JSON object", where=str(path))
    return config


def gguf_tensors(adapter: Adapter, config: dict[str, Any], where: str = "config.json") -> tuple[str, float,
                                                                                                 dict[str, np.ndarray]]:
    """(gguf architecture name, alpha, {gguf tensor name: float32 array}) for the adapter; refusals by name."""
    gguf = _gguf()
    archs = config.get("architectures") or []
    arch = archs[0] if archs else None
    if arch not in ARCHITECTURES:
        raise ConfigError(f"architecture {arch!r} is not one loralens exports to GGUF "
                          f"({', '.join(ARCHITECTURES)})", where=f"{where}: architectures")
    member, permutes = ARCHITECTURES[arch]
    model_arch = getattr(gguf.MODEL_ARCH, member)
    n_blocks = config.get("num_hidden_layers")
    if not isinstance(n_blocks, int):
        raise ConfigError("is missing", where=f"{where}: num_hidden_layers")
    n_head = config.get("num_attention_heads")
    n_kv = config.get("num_key_value_heads", n_head)
    if adapter.format not in ("peft", "peft-weights"):
        raise AdapterError(f"is a {adapter.format} adapter; export a PEFT adapter (loralens convert --to peft)",
                           where=adapter.name)
    spec = adapter.spec
    if spec.use_rslora:
        raise AdapterError("use_rslora: llama.cpp scales by alpha / r", where="adapter_config.json: use_rslora")
    alpha = float(spec.lora_alpha)
    name_map = gguf.get_tensor_name_map(model_arch, n_blocks)
    tensors: dict[str, np.ndarray] = {}
    for key in adapter.other_tensors:
        if not key.endswith(".base_layer.weight"):
            raise AdapterError("is not a LoRA factor; llama.cpp's LoRA GGUF cannot hold it", where=key)
    for m in adapter.modules:
        leaf = m.name.rsplit(".", 1)[-1]
        if m.kind == "embedding" or leaf in REFUSED_MODULES:
            raise AdapterError("llama.cpp's LoRA export does not take embeddings or lm_head", where=m.name)
        if m.magnitude is not None:
            raise AdapterError("DoRA: llama.cpp reads LoRA A and B only", where=m.name)
        if m.alpha != alpha:
            raise AdapterError(f"has alpha {m.alpha:g} (alpha_pattern) but llama.cpp uses one alpha "
                               f"({alpha:g}) for every tensor", where=m.name)
        if m.fan_in_fan_out:
            raise AdapterError("fan_in_fan_out weights are not exported", where=m.name)
        target = name_map.get_name(m.name + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise AdapterError(f"has no GGUF tensor name for architecture {arch}", where=m.name)
        b = m.b.astype(np.float32)
        if permutes and leaf == "q_proj":
            b = permute(b, n_head, n_head)
        elif permutes and leaf == "k_proj":
            b = permute(b, n_head, n_kv)
        base = target.removesuffix(".weight")
        tensors[f"{base}.weight.lora_a"] = np.ascontiguousarray(m.a, dtype=np.float32)
        tensors[f"{base}.weight.lora_b"] = np.ascontiguousarray(b)
    return gguf.MODEL_ARCH_NAMES[model_arch], alpha, tensors


def export_gguf(adapter: Adapter, base_config: str | Path, out: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Write the GGUF file atomically; returns what was written (arch, alpha, tensor names)."""
    gguf = _gguf()
    arch, alpha, tensors = gguf_tensors(adapter, _config(base_config), str(base_config))
    out = Path(out)
    _check_file(out, force=force, inputs=[p for p in [adapter.path] if p is not None])
    fd, temp = tempfile.mkstemp(prefix=f".{out.name}.loralens-tmp-", dir=out.resolve().parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(temp, arch=arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for name, array in tensors.items():
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return {"out": str(out), "architecture": arch, "alpha": alpha, "tensors": sorted(tensors)}
