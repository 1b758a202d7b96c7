"""kohya sd-scripts LoRA files (also what ComfyUI, A1111 and LyCORIS' LoCon write): one module per name stem,
``<stem>.lora_down.weight`` (r, in[, kh, kw]), ``<stem>.lora_up.weight`` (out, r[, 1, 1]) and a scalar
``<stem>.alpha``. Stems are ``lora_unet_…``, ``lora_te_…`` (``lora_te1_``/``lora_te2_`` for SDXL) with every '.'
of the module path written as '_'.

Rules (kohya networks/lora.py, ``create_network_from_weights`` and ``LoRAModule``): a module without ``.alpha``,
or with alpha 0, has alpha = r; scale = alpha / r; a conv LoRA's ΔW is ``up @ down`` over the flattened kernel.
LyCORIS' Tucker ``lora_mid`` (r, r, kh, kw) with 1x1 down is folded exactly into A (it is still rank r).
Training metadata (``ss_*``) is kept; ``ss_network_dim`` / ``ss_network_alpha`` follow a resize.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from loralens.adapters.formats.common import (
    ForeignModule,
    build_adapter,
    check_float,
    factor_tensors,
    factors,
    make_module,
    number,
    read_scalar,
    scalar_tensor,
    store_type,
)
from loralens.adapters.peft_format import Adapter
from loralens.adapters.safetensors_io import SafetensorsFile, TensorData
from loralens.errors import AdapterError

FORMAT = "kohya"
ROLES = {".lora_down.weight": "down", ".lora_up.weight": "up", ".alpha": "alpha", ".lora_mid.weight": "mid"}


def is_kohya(keys: list[str]) -> bool:
    return any(k.endswith((".lora_down.weight", ".lora_up.weight")) for k in keys)


def _group(file: SafetensorsFile) -> dict[str, dict[str, str]]:
    parts: dict[str, dict[str, str]] = {}
    for key in file.keys():
        for suffix, role in ROLES.items():
            if key.endswith(suffix):
                parts.setdefault(key[: -len(suffix)], {})[role] = key
                break
        else:
            raise AdapterError("is not a LoRA factor or alpha (kohya layout: .lora_down.weight, .lora_up.weight, "
                               ".alpha); loralens cannot represent it", where=file.where(key))
    return parts


def _fold_mid(file: SafetensorsFile, roles: dict[str, str]) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """LyCORIS Tucker conv: ΔW[o, c, h, w] = Σ up[o, i] mid[i, j, h, w] down[j, c] -> A[i, (c, h, w)]."""
    down_key, mid_key, up_key = roles["down"], roles["mid"], roles["up"]
    for key in (down_key, mid_key, up_key):
        check_float(file, key)
    down, mid, up = (file.tensors[k] for k in (down_key, mid_key, up_key))
    if len(mid.shape) != 4 or len(down.shape) != 4 or tuple(down.shape[2:]) != (1, 1):
        raise AdapterError(f"lora_mid {list(mid.shape)} with lora_down {list(down.shape)}: loralens reads a 4-D "
                           "lora_mid with a 1x1 lora_down only", where=file.where(mid_key))
    if len(up.shape) != 4 or tuple(up.shape[2:]) != (1, 1) or up.shape[1] != mid.shape[0] \
            or mid.shape[1] != down.shape[0]:
        raise AdapterError(f"shapes up {list(up.shape)}, mid {list(mid.shape)}, down {list(down.shape)} do not "
                           "chain", where=file.where(mid_key))
    d = file.array(down_key, np.float64).reshape(down.shape[0], down.shape[1])  # (j, c)
    m = file.array(mid_key, np.float64)  # (i, j, h, w)
    a = np.einsum("ijhw,jc->ichw", m, d)  # (i, c, h, w)
    store = store_type(down.dtype)
    conv_shape = (int(down.shape[1]), int(mid.shape[2]), int(mid.shape[3]))
    b = file.array(up_key, store).reshape(up.shape[0], up.shape[1])
    return a.reshape(a.shape[0], -1).astype(store), b, conv_shape


def read_kohya(file: SafetensorsFile, path: Path | None, name: str) -> Adapter:
    modules: list[ForeignModule] = []
    for stem, roles in _group(file).items():
        if "down" not in roles or "up" not in roles:
            have = roles.get("down") or roles.get("up") or roles.get("mid") or roles["alpha"]
            missing = "lora_up.weight" if "down" in roles else "lora_down.weight"
            raise AdapterError(f"has no matching {stem}.{missing}", where=file.where(have))
        if "mid" in roles:
            a, b, conv_shape = _fold_mid(file, roles)
        else:
            a, b, conv_shape = factors(file, roles["down"], roles["up"])
        r = a.shape[0]
        alpha_dtype = None
        alpha = float(r)
        if "alpha" in roles:
            alpha_dtype = file.tensors[roles["alpha"]].dtype
            stored = read_scalar(file, roles["alpha"])
            alpha = stored if stored != 0 else float(r)  # kohya: alpha 0 means alpha = r
        names = tuple(roles[k] for k in ("down", "up", "mid", "alpha") if k in roles)
        modules.append(make_module(stem, stem, a, b, alpha, dtype=file.tensors[roles["down"]].dtype,
                                   b_dtype=file.tensors[roles["up"]].dtype, tensor_names=names,
                                   conv_shape=conv_shape, alpha_dtype=alpha_dtype))
    note = "kohya sd-scripts layout: per-module .alpha (alpha = r where absent), scale = alpha / r"
    return build_adapter(modules, fmt=FORMAT, file=file, path=path, name=name, note=note)


def kohya_tensors(modules: list[ForeignModule] | tuple, names: Mapping[str, str] | None = None) -> dict[str, TensorData]:
    """down / up / alpha of each module under its kohya stem (``names[module.name]``, else ``module.key``)."""
    tensors: dict[str, TensorData] = {}
    for module in modules:
        if module.magnitude is not None:
            raise AdapterError("DoRA magnitudes have no place in the kohya LoRA layout", where=module.name)
        if module.kind == "embedding":
            raise AdapterError("an embedding LoRA has no place in the kohya LoRA layout", where=module.name)
        stem = names[module.name] if names else module.key
        down, up = factor_tensors(module, conv=True)
        tensors[f"{stem}.lora_down.weight"] = down
        tensors[f"{stem}.lora_up.weight"] = up
        tensors[f"{stem}.alpha"] = scalar_tensor(module.alpha, getattr(module, "alpha_dtype", None))
    return tensors


def kohya_metadata(metadata: Mapping[str, str], modules: list | tuple) -> dict[str, str]:
    """The file's metadata with ss_network_dim / ss_network_alpha describing these modules (as kohya's
    resize_lora.py writes them: the value, or "Dynamic" when modules differ)."""
    out = dict(metadata)
    ranks = {m.r for m in modules}
    alphas = {m.alpha for m in modules}
    if "ss_network_dim" in out or "ss_network_alpha" in out or not out:
        out["ss_network_dim"] = str(ranks.pop()) if len(ranks) == 1 else "Dynamic"
        out["ss_network_alpha"] = str(number(alphas.pop())) if len(alphas) == 1 else "Dynamic"
    return out
