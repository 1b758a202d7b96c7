"""Server load: N live sessions of a page (page load + socket.io connection, as a browser makes), then the latency
of a probe page load beside them, errors and server RSS; the same with heavy labs running; and the memory one
Inspector session keeps after its tab closed.

    PYTHONPATH=src python benchmarks/bench_server_load.py --sessions 10 50 --pages / /labs --heavy 4

Sessions are python-socketio clients (no browser): they hold what a tab holds on the server (a NiceGUI client
with its elements, a socket) and trigger what a tab's connection triggers (the Labs page starts its run). Runs on
the machine it is given: keep N small on a shared laptop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import socketio

APP = os.environ.get("LORALENS_BENCH_APP") or """
from loralens.app.main import run_app
run_app(show=False)
"""
HEAVY_LAB = "/labs?lab=fit&d=256&k=256&rank=64&target_rank=64&steps=2000&batch=512"


def start_server() -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NICEGUI"))}
    process = subprocess.Popen([sys.executable, "-c", APP], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**env, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    for line in process.stdout:
        if match := re.search(r"(http://[^/\s]+)", line):
            return process, match.group(1)
    raise RuntimeError("the server did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Session:
    """One tab: the page's HTML, then the socket.io connection with the page's client id."""

    connect_timeout = 20.0  # seconds; socket.io-client's default in a browser (python-socketio's is 1 s)

    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base, self.http = base, http
        self.sio = socketio.AsyncClient(reconnection=False)

    async def open(self, path: str) -> None:
        async with self.http.get(self.base + path) as response:
            html = await response.text()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
        client_id = re.search(r"'client_id': '([0-9a-f-]+)'", html).group(1)  # type: ignore[union-attr]
        next_id = re.search(r"'next_message_id': (\d+)", html)
        query = (f"client_id={client_id}&next_message_id={next_id.group(1) if next_id else 0}"
                 f"&implicit_handshake=true&document_id={uuid.uuid4()}&tab_id={uuid.uuid4()}")
        await self.sio.connect(f"{self.base}?{query}", socketio_path="/_nicegui_ws/socket.io",
                               transports=["websocket"], headers={"Origin": self.base},
                               wait_timeout=self.connect_timeout)

    async def close(self) -> None:
        await self.sio.disconnect()


async def probe(base: str, http: aiohttp.ClientSession, path: str, count: int) -> tuple[list[float], int]:
    """Page-load latencies (ms) of ``count`` sequential loads of ``path``, and the number that failed."""
    times, errors = [], 0
    for _ in range(count):
        start = time.perf_counter()
        try:
            async with http.get(base + path) as response:
                await response.read()
                errors += response.status != 200
        except aiohttp.ClientError:
            errors += 1
        times.append((time.perf_counter() - start) * 1000)
    return times, errors


def percentiles(times: list[float]) -> str:
    times = sorted(times)
    return f"p50 {statistics.median(times):6.1f}  p95 {times[int(0.95 * (len(times) - 1))]:6.1f} ms"


async def rounds(base: str, http: aiohttp.ClientSession, pid: int, args: argparse.Namespace) -> None:
    """Memory over a lesson: ``--rounds`` times, open N sessions of each page, close them, wait until NiceGUI
    deleted them, and read the server's RSS (it should level off, not grow with every round)."""
    for path in args.pages:
        for number in range(args.rounds):
            sessions = [Session(base, http) for _ in range(args.sessions[0])]
            await asyncio.gather(*(s.open(path) for s in sessions))
            await asyncio.sleep(2)
            await asyncio.gather(*(s.close() for s in sessions if s.sio.connected))
            await asyncio.sleep(12)
            print(f"{path:<10} round {number + 1}: {args.sessions[0]} sessions opened and closed, "
                  f"RSS {rss_mb(pid):.0f} MB", flush=True)


async def run(args: argparse.Namespace) -> None:
    process, base = start_server()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(base + "/") as response:
                        await response.read()
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            times, _ = await probe(base, http, "/models", 5)
            print(f"idle: probe /models {percentiles(times)}; RSS {rss_mb(process.pid):.0f} MB", flush=True)
            if args.rounds:
                await rounds(base, http, process.pid, args)
                return
            for heavy in sorted({0, args.heavy}):
                labs = [Session(base, http) for _ in range(heavy)]
                await asyncio.gather(*(s.open(HEAVY_LAB) for s in labs))
                for path in args.pages:
                    for n in args.sessions:
                        sessions = [Session(base, http) for _ in range(n)]
                        start = time.perf_counter()
                        results = await asyncio.gather(*(s.open(path) for s in sessions), return_exceptions=True)
                        opened = time.perf_counter() - start
                        failures = Counter(f"{type(r).__name__}: {r}"[:80] for r in results
                                           if isinstance(r, BaseException))
                        failed = sum(failures.values())
                        times, errors = await probe(base, http, "/models", args.probes)
                        print(f"{heavy} heavy labs, {n:3d} sessions of {path:<10} opened in {opened:5.1f} s "
                              f"({failed} failed); probe /models {percentiles(times)} ({errors} errors); "
                              f"RSS {rss_mb(process.pid):.0f} MB", flush=True)
                        for reason, count in failures.most_common():
                            print(f"    {count} failed with {reason}", flush=True)
                        await asyncio.gather(*(s.close() for s in sessions if s.sio.connected))
                await asyncio.gather(*(s.close() for s in labs if s.sio.connected))
            for waited in range(0, args.settle + 1, 5):  # clients go 10 s after their socket closed; never-connected
                await asyncio.sleep(5)                   # ones (the probes) when NiceGUI prunes them after 60 s
                print(f"all closed (+{waited + 5} s): RSS {rss_mb(process.pid):.0f} MB", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument("--pages", nargs="+", default=["/", "/models", "/labs", "/lessons", "/inspector"])
    parser.add_argument("--heavy", type=int, default=4, help="sessions running a heavy lab in the second pass")
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=0, help="instead: memory over R rounds of N sessions per page")
    parser.add_argument("--connect-timeout", type=float, default=Session.connect_timeout,
                        help="seconds a session waits for its socket.io connection (a browser's default: 20)")
    parser.add_argument("--settle", type=int, default=15, help="seconds to watch RSS after every session closed")
    args = parser.parse_args()
    Session.connect_timeout = args.connect_timeout
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
