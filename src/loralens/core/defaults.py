"""The one set of defaults the CLI (``params``, ``memory``, ``methods``) and the Models page share.

LoRA's are PEFT's LoraConfig defaults (r 8, lora_alpha 8, PEFT's default targets, bias none); the training run's
are a common fine-tuning setting (bf16 mixed precision, AdamW, micro-batch 4 of 512 tokens, gradient checkpointing
on, one GPU).
"""

from __future__ import annotations

R = 8
LORA_ALPHA = 8.0
BIAS = "none"
DTYPE = "bf16"
OPTIMIZER = "adamw"
BATCH_SIZE = 4
SEQ_LEN = 512
GRADIENT_CHECKPOINTING = True
GPUS = 1
SHARDING = "none"

__all__ = ["BATCH_SIZE", "BIAS", "DTYPE", "GPUS", "GRADIENT_CHECKPOINTING", "LORA_ALPHA", "OPTIMIZER", "R",
           "SEQ_LEN", "SHARDING"]
