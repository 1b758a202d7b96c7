"""Heavy work is bounded, queued with a visible position, one run per session, and stops when replaced."""

from __future__ import annotations

import asyncio
import ctypes
import threading

import pytest
from nicegui import ui
from nicegui.testing import User

from loralens.app import workers
from loralens.app.labs import page as labs_page
from loralens.errors import LoraLensError

WAIT = 300


def blocker() -> tuple[threading.Event, list[str]]:
    return threading.Event(), []


async def test_runs_beyond_the_slots_wait_in_order_and_know_their_place() -> None:
    pool = workers.Workers(slots=1)
    gate, order = threading.Event(), []
    positions: dict[str, list[int]] = {"b": [], "c": []}

    def work(name: str) -> str:
        gate.wait(10)
        order.append(name)
        return name

    a = asyncio.create_task(pool.run(pool.job("s1", "lab"), work, "a"))
    await asyncio.sleep(0.05)
    b = asyncio.create_task(pool.run(pool.job("s2", "lab"), work, "b", on_position=positions["b"].append))
    c = asyncio.create_task(pool.run(pool.job("s3", "lab"), work, "c", on_position=positions["c"].append))
    await asyncio.sleep(0.1)
    assert positions["b"][-1] == 1 and positions["c"][-1] == 2
    gate.set()
    assert await asyncio.gather(a, b, c) == ["a", "b", "c"]
    assert order == ["a", "b", "c"]
    assert not pool.running and not pool.waiting and not pool.latest


async def test_a_newer_run_of_the_same_session_replaces_the_waiting_one() -> None:
    pool = workers.Workers(slots=1)
    gate, ran = threading.Event(), []

    def work(name: str) -> str:
        gate.wait(10)
        ran.append(name)
        return name

    other = asyncio.create_task(pool.run(pool.job("other", "lab"), work, "other"))
    await asyncio.sleep(0.05)
    old = asyncio.create_task(pool.run(pool.job("me", "lab"), work, "old"))
    await asyncio.sleep(0.05)
    new = asyncio.create_task(pool.run(pool.job("me", "lab"), work, "new"))
    with pytest.raises(workers.Cancelled):
        await old  # left the queue at once, never ran
    gate.set()
    assert await asyncio.gather(other, new) == ["other", "new"]
    assert ran == ["other", "new"]


async def test_a_running_run_is_told_to_stop_and_does_at_its_next_step() -> None:
    pool = workers.Workers(slots=1)
    steps_after_cancel: list[int] = []
    cancelled_at: list[int] = []
    job = pool.job("me", "lab")

    def work() -> None:
        for step in range(10**9):
            if job.cancelled():
                cancelled_at.append(step)
                raise workers.Cancelled
            if cancelled_at:
                steps_after_cancel.append(step)
            threading.Event().wait(0.001)

    task = asyncio.create_task(pool.run(job, work))
    await asyncio.sleep(0.1)
    pool.cancel_session("me")
    with pytest.raises(workers.Cancelled):
        await task
    assert cancelled_at and not steps_after_cancel
    assert not pool.running


async def test_the_queue_is_capped_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = workers.Workers(slots=1)
    monkeypatch.setattr(workers, "MAX_WAITING", 0)
    with pytest.raises(LoraLensError, match="the server is busy"):
        pool.job("me", "lab")


def test_blas_runs_on_one_thread() -> None:
    import numpy  # noqa: F401 - loads OpenBLAS

    assert workers.limit_blas_threads(1)
    with open("/proc/self/maps", encoding="utf-8") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    library = ctypes.CDLL(paths.pop())
    getter = next(getattr(library, n) for n in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads")
                  if hasattr(library, n))
    assert getter() == 1


def label_text(user: User, marker: str) -> str:
    element = next(iter(user.find(marker=marker).elements))
    assert isinstance(element, ui.label)
    return element.text


async def test_the_labs_page_shows_its_place_in_the_queue(user: User) -> None:
    gate = threading.Event()
    pool = workers.current
    busy = [asyncio.create_task(pool.run(pool.job(f"other-{i}", "lab"), gate.wait, 10))
            for i in range(pool.slots + 1)]
    try:
        await user.open("/labs?lab=fit&d=16&k=16&rank=2&target_rank=2&steps=20")
        await user.should_see("waiting for the server: 1 run ahead", retries=WAIT)
    finally:
        gate.set()
        await asyncio.gather(*busy)
    await user.should_see("A rank-2 LoRA", retries=WAIT)


async def test_a_run_over_the_page_budget_stops_and_names_the_command(user: User,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labs_page, "PAGE_BUDGET_SECONDS", 0.0)
    await user.open("/labs?lab=fit&d=16&k=16&rank=2&target_rank=2&steps=200")
    await user.should_see("this run takes longer than the 0 s a page allows; run it from the command line: "
                          "loralens lab fit --d 16 --k 16 --rank 2 --steps 200 --target-rank 2", retries=WAIT)


async def test_closing_the_tab_stops_its_run(user: User) -> None:
    client = await user.open("/labs?lab=fit&d=128&k=128&rank=2&target_rank=4&steps=5000&batch=512")
    await user.should_see("running… ", retries=WAIT)
    client.delete()
    for _ in range(WAIT):
        if not workers.current.running:
            break
        await asyncio.sleep(0.05)
    assert not workers.current.running  # stopped at its next progress call, not 5,000 steps later
