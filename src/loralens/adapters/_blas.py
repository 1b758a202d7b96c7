"""Run a block of small, skinny linear algebra with one OpenBLAS thread.

An adapter's factors are tall and thin (e.g. 11008 x 16). OpenBLAS splits even these products over its threads;
on a machine whose cores are busy, those threads spin and wait, and a 1 ms product takes 30 ms or more (measured
here: inspecting a LLaMA-7B-shaped adapter took 33 s instead of 0.6 s). One thread is as fast for these sizes
when the machine is idle. This finds numpy's own OpenBLAS among the loaded libraries and sets its thread count
for the duration of the block (what threadpoolctl does, without the dependency); with another BLAS it does nothing.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")
_lock = threading.RLock()
_depth = 0
_api: tuple[object, object] | None | bool = False  # False: not looked up yet; None: not found


def _find() -> tuple[object, object] | None:
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in zip(_SETTERS, _GETTERS, strict=True):
            setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                return setter, getter
    return None


_saved: int | None = None


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """One OpenBLAS thread inside the block (nested and thread-safe); the previous count is restored after."""
    global _api, _depth, _saved
    with _lock:
        if _api is False:
            import numpy  # noqa: F401  (make sure numpy's BLAS is loaded before looking for it)

            _api = _find()
        if _api is not None and _depth == 0:
            setter, getter = _api  # type: ignore[misc]
            _saved = getter()
            setter(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _api is not None and _depth == 0 and _saved is not None:
                _api[0](_saved)  # type: ignore[index, operator]
                _saved = None
