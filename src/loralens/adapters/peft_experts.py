"""LoRA on fused MoE expert parameters (PEFT's ``target_parameters`` / ParamWrapper), split into one module per
expert for inspect, resize (adapters.resize: one rank per wrapper) and merge (adapters.merge_plan)."""

from __future__ import annotations

import numpy as np

from loralens.adapters.peft_format import PREFIX, AdapterModule
from loralens.adapters.safetensors_io import SafetensorsFile
from loralens.core.peft_config import LoraConfigSpec


def expert_modules(spec: LoraConfigSpec, file: SafetensorsFile, stem: str, a_key: str, b_key: str,
                    experts: int, r: int, alpha: float, scaling: float,
                   params: tuple[str, ...] = ()) -> tuple[AdapterModule, ...]:
    """PEFT's ParamWrapper (target_parameters on a fused (E, ·, ·) parameter): lora_A (r·E, in) read as E blocks
    A.reshape(E, r, in)[e], lora_B (out, r·E) as B.reshape(out, r, E)[:, :, e]; ΔW_e = s·B_e A_e."""
    # PEFT nests one wrapper per targeted parameter (``experts.base_layer`` is the inner one); which parameter each
    # wrapper holds is not in the file (the config's target_parameters may be saved in any order), so the
    # experts are named by their key stem: model.layers.0.mlp.experts.base_layer[3]
    module = stem.removeprefix(PREFIX)
    store = np.float64 if file.tensors[a_key].dtype == "F64" else np.float32
    a = file.array(a_key, store)
    b = file.array(b_key, store)
    a_blocks = a.reshape(experts, r, a.shape[1])  # (E, r, in)
    b_blocks = b.reshape(b.shape[0], r, experts)  # (out, r, E)
    b_dtype = file.tensors[b_key].dtype
    a_dtype = file.tensors[a_key].dtype
    return tuple(AdapterModule(
        name=f"{module}[{e}]", a=np.ascontiguousarray(a_blocks[e]), b=np.ascontiguousarray(b_blocks[:, :, e]),
        r=r, alpha=alpha, scaling=scaling, in_features=a.shape[1], out_features=b.shape[0], kind="expert",
        key=stem, dtype=a_dtype, parameters_wrapped=params, tensor_names=(a_key, b_key), b_dtype=b_dtype if b_dtype != a_dtype else None)
        for e in range(experts))


def wrapped_parameters(spec: LoraConfigSpec, name: str) -> tuple[str, ...]:
    """The parameter paths a ParamWrapper stem may hold: PEFT's ``_inject_parameters`` matches
    ``f"{module}.{param}"`` (``.base_layer`` removed) to a target_parameters entry, equal or as a dotted suffix, and
    matches rank_pattern / alpha_pattern against that path."""
    module = name
    while ".base_layer" in module:
        head, _, tail = module.rpartition(".base_layer")
        module = head + tail
    paths = []
    for target in spec.target_parameters or ():
        path = f"{module}.{target.rpartition('.')[2]}"
        if (path == target or path.endswith(f".{target}")) and path not in paths:
            paths.append(path)
    return tuple(sorted(paths))
