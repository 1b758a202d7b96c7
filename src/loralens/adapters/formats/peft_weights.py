"""PEFT adapter weights without their adapter_config.json (``base_model.model.<path>.lora_A.weight`` ...).

r is read from each module's shapes (the most common one is ``r``, the others go to rank_pattern). alpha is not in
the weights: it is the ``alpha`` given (``--alpha``), else PEFT's LoraConfig default, lora_alpha = 8, and the
adapter says so (its note is printed by inspect and convert). use_rslora is assumed off (PEFT's default).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from loralens.adapters.formats.common import NOTE_KEY, number, synthesized_config
from loralens.adapters.peft_format import PREFIX, Adapter, _build
from loralens.adapters.safetensors_io import SafetensorsFile
from loralens.core.peft_config import spec_from_peft_config
from loralens.errors import AdapterError, InvalidParameterError

FORMAT = "peft-weights"
PEFT_DEFAULT_ALPHA = 8  # peft/tuners/lora/config.py: lora_alpha: int = field(default=8, ...)
_A = (".lora_A.weight", ".lora_embedding_A")
_B = (".lora_B.weight", ".lora_embedding_B")


def is_peft_weights(keys: list[str]) -> bool:
    return any(k.startswith(PREFIX) and k.endswith(_A + _B) for k in keys)


def read_peft_weights(file: SafetensorsFile, path: Path | None, name: str, alpha: float | None) -> Adapter:
    ranks: dict[str, int] = {}
    for key in file.keys():
        for suffix in _B:
            if key.endswith(suffix):
                info = file.tensors[key]
                if len(info.shape) != 2:
                    raise AdapterError(f"must be 2-D, got shape {list(info.shape)}", where=file.where(key))
                ranks[key[len(PREFIX): -len(suffix)] if key.startswith(PREFIX) else key[: -len(suffix)]] = \
                    int(info.shape[1])
    if not ranks:
        raise AdapterError("holds no lora_B tensors, so r cannot be inferred", where=file.label)
    given = alpha is not None
    value = float(alpha) if given else float(PEFT_DEFAULT_ALPHA)

    class _M:  # the shape synthesized_config reads: name, r, alpha
        def __init__(self, module: str, r: int) -> None:
            self.name, self.r, self.alpha = module, r, value

    config = synthesized_config([_M(n, r) for n, r in ranks.items()], lora_alpha=number(value),
                                alpha_pattern={}, use_rslora=False)
    try:
        spec = spec_from_peft_config(config)
    except InvalidParameterError as error:
        raise AdapterError(error.message, where=f"--alpha ({error.where})") from None
    adapter = _build(config, spec, file, name=name, path=path)
    how = (f"lora_alpha {number(value)} as given" if given else
           f"lora_alpha {PEFT_DEFAULT_ALPHA} assumed (PEFT's default); pass --alpha to set it")
    note = f"PEFT weights without adapter_config.json: r from the shapes, {how}"
    return replace(adapter, format=FORMAT, config={**adapter.config, NOTE_KEY: note})
