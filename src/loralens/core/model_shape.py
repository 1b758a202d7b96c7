"""What a model family's builder returns: the modules of one model under PEFT's names, with their shapes.

A builder reads a config.json through ``ConfigReader`` (every error names the file and the field) and lists the
modules with ``ShapeBuilder``, whose ``block`` helper writes the repeated transformer blocks once. Shapes follow
PEFT: a linear layer's W is (out_features, in_features).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from loralens.errors import ConfigError


@dataclass(frozen=True, slots=True)
class LinearModule:
    """One linear layer (nn.Linear, or GPT-2's Conv1D with ``fan_in_fan_out``)."""

    name: str
    in_features: int
    out_features: int
    bias: bool
    fan_in_fan_out: bool = False
    is_output_head: bool = False  # excluded from "all-linear", as PEFT does
    shared: bool = False  # weight (and bias) are another module's tensors (tied output head): not counted again
    layer: int | None = None  # the transformer block index, or None outside the blocks
    #: a Conv2d (ViT's patch embedding): in_features = in_channels * kernel area; LoRA-able, not "all-linear"
    conv: bool = False
    kernel: tuple[int, ...] = ()  # a conv's (in_channels, kernel height, kernel width): the LoRA A's shape after r

    @property
    def weight_params(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True, slots=True)
class ParamHolder:
    """A module with parameters that is not linear: an embedding, a norm, or a lone bias vector."""

    name: str
    kind: str  # "embedding" | "layernorm" | "rmsnorm" | "bias" | "param" (a bare tensor: MoE experts, router, ...)
    weight: int  # number of weight parameters (0 for a lone bias)
    bias: int  # number of bias parameters
    shape: tuple[int, ...] = ()  # (num_embeddings, embedding_dim) for an embedding; the tensor's for a "param"
    #: for a "param": the name of the module it belongs to (``name`` is then ``module + "." + parameter``)
    module: str = ""


@dataclass(frozen=True)
class ModelShape:
    """A builder's result: the model's dimensions and every parameter holder, in model order."""

    hidden_size: int
    num_layers: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    linear_modules: tuple[LinearModule, ...]
    other_modules: tuple[ParamHolder, ...]
    task: str = ""  # the head built (core/heads.py: causal_lm, seq_cls, ...)
    num_labels: int = 0  # classifier width for the classification heads

    @functools.cached_property
    def total_params(self) -> int:
        """Every parameter once (tied weights counted once), as ``sum(p.numel() for p in model.parameters())``."""
        linear = sum(m.weight_params + (m.out_features if m.bias else 0) for m in self.linear_modules if not m.shared)
        return linear + sum(h.weight + h.bias for h in self.other_modules)


@dataclass
class ShapeBuilder:
    """Collects modules in model order; ``block(prefix, layer)`` names the modules of one transformer block."""

    linear: list[LinearModule] = field(default_factory=list)
    other: list[ParamHolder] = field(default_factory=list)
    _prefix: str = ""
    _layer: int | None = None

    @contextmanager
    def block(self, prefix: str, layer: int | None = None) -> Iterator[ShapeBuilder]:
        """Within it, names are relative to ``prefix`` and modules belong to block ``layer``."""
        outer = self._prefix, self._layer
        self._prefix, self._layer = outer[0] + prefix, layer if layer is not None else outer[1]
        try:
            yield self
        finally:
            self._prefix, self._layer = outer

    def dense(self, name: str, in_features: int, out_features: int, bias: bool, *, fan_in_fan_out: bool = False,
              output_head: bool = False, shared: bool = False, kernel: tuple[int, ...] = ()) -> None:
        self.linear.append(LinearModule(self._prefix + name, in_features, out_features, bias, fan_in_fan_out,
                                        output_head, shared, self._layer, bool(kernel), kernel))

    def param(self, module: str, name: str, *shape: int) -> None:
        """A bare parameter ``name`` of ``module`` (fused MoE experts (E, out, in), a router (E, hidden), a class
        token): not a module itself, so never a target_modules match; target_parameters can name it."""
        numel = 1
        for size in shape:
            numel *= size
        full = self._prefix + module
        self.other.append(ParamHolder(f"{full}.{name}", "param", numel, 0, tuple(shape), full))

    def embedding(self, name: str, rows: int, dim: int) -> None:
        self.other.append(ParamHolder(self._prefix + name, "embedding", rows * dim, 0, (rows, dim)))

    def tied_embedding(self, name: str, rows: int, dim: int) -> None:
        """An embedding whose weight is another module's (T5's encoder/decoder embed_tokens are ``shared``): a
        LoRA target with its shape, no parameters of its own."""
        self.other.append(ParamHolder(self._prefix + name, "embedding", 0, 0, (rows, dim)))

    def norm(self, name: str, dim: int, *, kind: str = "layernorm", bias: bool = True, affine: bool = True) -> None:
        """A LayerNorm (weight and, with ``bias``, bias of ``dim``) or an RMSNorm (weight only)."""
        weight = dim if affine else 0
        self.other.append(ParamHolder(self._prefix + name, kind, weight, dim if bias and affine else 0))

    def lone_bias(self, name: str, dim: int) -> None:
        self.other.append(ParamHolder(self._prefix + name, "bias", 0, dim))

    def shape(self, *, hidden_size: int, num_layers: int, intermediate_size: int, num_attention_heads: int,
              num_key_value_heads: int, vocab_size: int, max_position_embeddings: int,
              tie_word_embeddings: bool, task: str = "", num_labels: int = 0) -> ModelShape:
        return ModelShape(hidden_size, num_layers, intermediate_size, num_attention_heads, num_key_value_heads,
                          vocab_size, max_position_embeddings, tie_word_embeddings, tuple(self.linear),
                          tuple(self.other), task, num_labels)


class ConfigReader:
    """Reads fields of one config.json, raising ConfigError that names the file and the field."""

    def __init__(self, data: Mapping[str, Any], source: str, task: str = "") -> None:
        self.data, self.source, self.task = data, source, task

    @property
    def model_type(self) -> str:
        return str(self.data.get("model_type", ""))

    def int(self, *keys: str, default: int | None = None, low: int = 1) -> int:
        """The first of ``keys`` present (not null), a whole number >= ``low``; ``default`` when none is."""
        for key in keys:
            if key in self.data and self.data[key] is not None:
                value = self.data[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ConfigError(
                        f"field '{key}' must be a whole number of at least {low}, got {value!r}", where=self.source
                    )
                if value > 10**9:
                    raise ConfigError(f"field '{key}' is {value:,}, beyond any real model", where=self.source)
                return value
        if default is None:
            raise ConfigError(f"missing field '{keys[0]}'", where=self.source)
        return default

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"field '{key}' must be true or false, got {value!r}", where=self.source)
        return value

    def int_list(self, key: str) -> tuple[int, ...]:
        """A list of whole numbers >= 0 (null or absent: empty)."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in value):
            raise ConfigError(f"field '{key}' must be a list of whole numbers, got {value!r}", where=self.source)
        return tuple(value)

    def num_labels(self) -> int:
        """transformers' num_labels: len(id2label) when given, else num_labels, else 2."""
        id2label = self.data.get("id2label")
        if isinstance(id2label, Mapping) and id2label:
            return len(id2label)
        return self.int("num_labels", default=2)

    def divide(self, numerator: int, denominator: int, what: str) -> int:
        """numerator / denominator, which must be whole (heads per group, head size, ...)."""
        if numerator % denominator:
            raise ConfigError(f"{what}: {numerator} is not divisible by {denominator}", where=self.source)
        return numerator // denominator


__all__ = ["ConfigReader", "LinearModule", "ModelShape", "ParamHolder", "ShapeBuilder"]
