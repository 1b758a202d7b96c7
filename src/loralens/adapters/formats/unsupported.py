"""Layouts loralens recognises but does not read, named in the error (their ΔW is not a product B·A).

Key markers from LyCORIS (lycoris/modules: loha ``hada_w1_a``, lokr ``lokr_w1``, ia3 ``on_input``, glora ``a1``,
oft ``oft_blocks`` / ``oft_diag``, boft ``boft_blocks``, full ``diff``), kohya's DoRA ``dora_scale``, MLX-LM's
DoRA ``.m`` and its mixture-of-experts 3-D factors, PEFT's non-LoRA methods (``ia3_l``, ``lokr_``, ``hada_``,
``oft_r``, ``vera_``).
"""

from __future__ import annotations

from loralens.adapters.safetensors_io import SafetensorsFile
from loralens.errors import AdapterError

ONLY = "loralens reads LoRA factors only"

#: (key fragment, what the file is)
MARKERS = (
    (".hada_w1_a", "a LyCORIS LoHa file"),
    (".hada_w1_b", "a LyCORIS LoHa file"),
    (".lokr_w1", "a LyCORIS LoKr file"),
    (".lokr_w2", "a LyCORIS LoKr file"),
    (".on_input", "a LyCORIS (IA)³ file"),
    (".a1.weight", "a LyCORIS GLoRA file"),
    (".oft_blocks", "a LyCORIS OFT file"),
    (".oft_diag", "a LyCORIS OFT file"),
    (".boft_blocks", "a LyCORIS BOFT file"),
    (".diff_b", "a LyCORIS full (diff) file"),
    (".dora_scale", "a DoRA file in the kohya/LyCORIS layout"),
    (".ia3_l", "a PEFT IA3 adapter"),
    (".vera_lambda_b", "a PEFT VeRA adapter"),
    (".oft_r", "a PEFT OFT adapter"),
)


def refuse_unsupported(file: SafetensorsFile) -> None:
    """AdapterError naming the layout if any key marks one loralens recognises but cannot read."""
    for key in file.keys():
        for marker, what in MARKERS:
            if marker in key:
                raise AdapterError(f"this is {what}; {ONLY}", where=file.where(key))
        if ".lora_magnitude_vector" in key and not key.startswith("base_model.model."):
            raise AdapterError(f"this is a DoRA file in the diffusers layout; {ONLY}", where=file.where(key))
        if key.endswith(".diff") and "lora" not in key:
            raise AdapterError(f"this is a LyCORIS full (diff) file; {ONLY}", where=file.where(key))
