"""Heavy work (labs, adapter reads, resizes) off the event loop, bounded, queued and cancellable.

Measured on the 2-core machine (fit lab, d = k = 256, r = 16, 300 steps, BLAS limited to one thread, an asyncio
loop doing small Python work beside it; /tmp probe, ms of loop lag p50 / p95 / max): no run 0.14 / 0.33 / 3.3,
the run in a thread 0.16 / 0.36 / 3.3, in a process 0.16 / 0.41 / 3.2. numpy releases the GIL in its linear
algebra, so a thread costs the loop nothing a process would save, and a thread needs no pickling of adapters or
results and can be stopped through a flag that its progress callback reads. So: threads, with

- **one BLAS thread per run** (OpenBLAS otherwise starts one per core for every run, and two runs on two cores
  fight the event loop for them), set at start-up through OpenBLAS's own ``set_num_threads``;
- **a bounded number of runs at once** (``slots``: one less than the cores, at least one); further runs wait in a
  FIFO queue and are told their position, instead of slowing every page;
- **one run per session and purpose** (``key``): a newer run from the same session for the same purpose (a lab
  whose setting changed again) replaces the older one: a waiting one leaves the queue at once, a running one is
  told to stop at its next progress call (``cancelled()`` becomes true; labs raise from their callback);
- **a cap on the queue** (``MAX_WAITING``): past it a run is refused with a message, not queued for minutes.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from loralens.errors import LoraLensError

T = TypeVar("T")
MAX_WAITING = 200
POSITION_INTERVAL = 0.25  # seconds between two reports of a waiting run's position


class Cancelled(Exception):
    """A run that a newer run of the same session replaced, or whose session ended, before it finished."""


@dataclass(eq=False)
class Job:
    key: tuple[str, str]
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stop: bool = False

    def cancelled(self) -> bool:
        """True once this run should stop (read by progress callbacks in the worker thread)."""
        return self.stop


class Workers:
    def __init__(self, slots: int | None = None) -> None:
        self.slots = slots or max(1, (os.cpu_count() or 2) - 1)
        self.executor = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="loralens-work")
        self.waiting: deque[Job] = deque()
        self.running: set[Job] = set()
        self.latest: dict[tuple[str, str], Job] = {}

    def job(self, session: str, purpose: str) -> Job:
        """A new job for ``(session, purpose)``; the previous one for that key is cancelled."""
        key = (session, purpose)
        if len(self.waiting) >= MAX_WAITING:
            raise LoraLensError(f"the server is busy ({len(self.waiting)} runs waiting); try again in a minute")
        old = self.latest.get(key)
        if old is not None:
            self.cancel(old)
        job = self.latest[key] = Job(key)
        return job

    def cancel(self, job: Job) -> None:
        job.stop = True
        if job in self.waiting:
            self.waiting.remove(job)
            job.started.set()  # wakes its waiter, which sees ``stop``

    def cancel_session(self, session: str) -> None:
        """Stop every run of a session that ended."""
        for key, job in list(self.latest.items()):
            if key[0] == session:
                self.cancel(job)
                del self.latest[key]

    def position(self, job: Job) -> int:
        """1 for the next run to start, 2 for the one after; 0 once it runs."""
        try:
            return self.waiting.index(job) + 1
        except ValueError:
            return 0

    def _dispatch(self) -> None:
        while len(self.running) < self.slots and self.waiting:
            job = self.waiting.popleft()
            self.running.add(job)
            job.started.set()

    async def run(self, job: Job, function: Callable[..., T], *args: Any,
                  on_position: Callable[[int], None] | None = None, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in a worker thread once a slot is free; Cancelled if replaced first."""
        self.waiting.append(job)
        self._dispatch()
        try:
            while not job.started.is_set():
                if on_position is not None:
                    on_position(self.position(job))
                try:
                    await asyncio.wait_for(asyncio.shield(job.started.wait()), POSITION_INTERVAL)
                except TimeoutError:
                    pass
            if job.stop:
                raise Cancelled
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, partial(function, *args, **kwargs))
        finally:
            if job in self.waiting:
                self.waiting.remove(job)
            if job in self.running:
                self.running.discard(job)
                self._dispatch()
            if self.latest.get(job.key) is job:
                del self.latest[job.key]


def limit_blas_threads(count: int = 1) -> bool:
    """Ask the OpenBLAS that numpy loaded to use ``count`` threads; False when it cannot be found."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return False
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            setter = getattr(library, name, None)
            if setter is not None:
                setter(ctypes.c_int(count))
                return True
    return False


current = Workers()
