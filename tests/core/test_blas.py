"""single_threaded_blas really sets numpy's BLAS to one thread inside the block and restores it after."""

from __future__ import annotations

import threading

import numpy as np

from loralens.core.blas import blas_threads, one_blas_thread, single_threaded_blas


def _threads() -> list[int]:
    count = blas_threads()
    assert count is not None, "numpy's OpenBLAS was not found"
    return [count]


def test_one_thread_inside_and_restored_after_even_when_nested_or_raised() -> None:
    before = _threads()
    with single_threaded_blas():
        assert _threads() == [1] * len(before)
        with single_threaded_blas():
            assert _threads() == [1] * len(before)
        assert _threads() == [1] * len(before)
        np.linalg.svd(np.ones((8, 8)))
    assert _threads() == before
    try:
        with single_threaded_blas():
            raise RuntimeError
    except RuntimeError:
        pass
    assert _threads() == before


def test_overlapping_threads_leave_the_count_as_it_was() -> None:
    before = _threads()
    inside, release = threading.Event(), threading.Event()

    def worker() -> None:
        with single_threaded_blas():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=worker)
    with single_threaded_blas():
        thread.start()
        inside.wait(5)
    assert _threads() == [1]  # the worker is still inside
    release.set()
    thread.join(5)
    assert _threads() == before


def test_decorator_keeps_the_signature_and_limits_inside() -> None:
    @one_blas_thread
    def run(n: int = 3) -> list[int]:
        """doc"""
        return _threads()

    assert run.__doc__ == "doc" and run() == [1] * len(_threads())
