"""The few errors loralens raises. Only ``cli.py`` turns them into a line on stderr and an exit code;
the app shows ``str(error)`` beside the control named by ``error.field``.

    LoraLensError                  exit 1: something is wrong with an input the user gave
    ├── InvalidParameterError      exit 2: a parameter value or a combination of them (also a ValueError)
    ├── ConfigError                exit 2: a model id or a config.json that cannot be used
    ├── AdapterError               exit 1: an adapter or safetensors file that cannot be read
    └── OutputError                exit 1: an output that cannot be written (exists, no room, ...)
"""

from __future__ import annotations


class LoraLensError(Exception):
    """Base class. ``where`` names the file, tensor, field or URL parameter at fault."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class InvalidParameterError(LoraLensError, ValueError):
    """A parameter is out of range, of the wrong type, or inconsistent with another one."""

    exit_code = 2


class ConfigError(LoraLensError):
    """An unknown model id, or a model config that is not usable."""

    exit_code = 2


class AdapterError(LoraLensError):
    """An adapter folder, adapter_config.json or safetensors file that cannot be read."""


class OutputError(LoraLensError):
    """An output that cannot or must not be written."""


__all__ = ["LoraLensError", "InvalidParameterError", "ConfigError", "AdapterError", "OutputError"]
