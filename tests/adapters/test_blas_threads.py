"""single_thread_blas really sets numpy's OpenBLAS to one thread inside the block and restores it after."""

from __future__ import annotations

import threading

import numpy as np

from loralens.adapters import _blas
from loralens.adapters._blas import single_thread_blas


def _threads() -> int:
    assert _blas._api not in (None, False), "numpy's OpenBLAS was not found"
    return int(_blas._api[1]())  # type: ignore[index, operator]


def test_one_thread_inside_and_restored_after_even_when_nested_or_raised() -> None:
    with single_thread_blas():
        pass
    before = _threads()
    with single_thread_blas():
        assert _threads() == 1
        with single_thread_blas():
            assert _threads() == 1
        assert _threads() == 1
        np.linalg.svd(np.ones((8, 8)))
    assert _threads() == before
    try:
        with single_thread_blas():
            raise RuntimeError
    except RuntimeError:
        pass
    assert _threads() == before


def test_overlapping_threads_restore_the_count_once_all_are_done() -> None:
    with single_thread_blas():
        pass
    before = _threads()
    inside, release = threading.Event(), threading.Event()

    def worker() -> None:
        with single_thread_blas():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=worker)
    with single_thread_blas():
        thread.start()
        inside.wait(5)
    assert _threads() == 1  # the worker is still inside
    release.set()
    thread.join(5)
    assert _threads() == before
