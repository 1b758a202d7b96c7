"""Run small, skinny linear algebra on one BLAS thread.

The labs multiply small matrices thousands of times and an adapter's factors are tall and thin (11008 x 16). BLAS
splits even these over its threads; on a machine whose cores are busy those threads spin and wait, and a run
that takes 1 s took 25-55 s here (inspecting a LLaMA-7B-shaped adapter: 33 s instead of 0.25 s). One thread is as
fast for these sizes on an idle machine, and it makes the labs' results the same bits on any core count.

This finds numpy's own OpenBLAS among the loaded libraries and sets its (process-wide) thread count, counting the
blocks that are inside so that the last one to leave, in whichever thread, restores the count. threadpoolctl was
tried: its OpenBLAS rule lets only the first thread control the limit, and when blocks in two threads overlap it
left the count at 1 after both had finished. With another BLAS this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import numpy  # noqa: F401  (numpy's BLAS must be loaded before looking for it)

P = ParamSpec("P")
R = TypeVar("R")

_SYMBOLS = (  # (get, set) by OpenBLAS build: numpy's wheels bundle scipy-openblas with a 64-bit interface
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)
_lock = threading.Lock()
_api: tuple[Callable[[], int], Callable[[int], None]] | None | bool = False  # False: not looked up yet
_inside = 0  # blocks inside, over all threads
_saved = 0  # the count to restore when the last block leaves


def _find_openblas() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """numpy's OpenBLAS get/set-threads functions, or None (not Linux, or another BLAS)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.split()[-1].lower()})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _SYMBOLS:
            get, put = getattr(lib, get_name, None), getattr(lib, set_name, None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                return (lambda: int(get())), (lambda n: put(ctypes.c_int(n)))
    return None


def blas_threads() -> int | None:
    """numpy's OpenBLAS thread count now (None when it is not OpenBLAS)."""
    global _api
    with _lock:
        if _api is False:
            _api = _find_openblas()
    return None if _api is None else _api[0]()  # type: ignore[index]


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """One BLAS thread inside the block (nested and thread-safe); the previous count is restored after."""
    global _api, _inside, _saved
    with _lock:
        if _api is False:
            _api = _find_openblas()
        if _api is not None and _inside == 0:
            _saved = _api[0]()  # type: ignore[index]
            _api[1](1)  # type: ignore[index]
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _api is not None and _inside == 0:
                _api[1](_saved)  # type: ignore[index]


def one_blas_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run ``function`` inside single_threaded_blas() (the signature stays visible to inspect)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with single_threaded_blas():
            return function(*args, **kwargs)

    return wrapper
