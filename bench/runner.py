"""Runner benchmarks: a rate-limited API kept busy at its limit, and the per-action overhead.

1. A real HTTP server (tests/http_server.py, in its own process on 127.0.0.1)
   limited to R calls/s (429 + Retry-After beyond it) with L seconds of
   latency; N creates through an AsyncTemplate with ``rate = R``.  Target:
   elapsed <= 1.05 x N/R, nothing lost, fewer than 1% of calls answered 429.
   The same workload through aiometer (``max_at_once``, ``max_per_second``)
   is printed beside it.
2. No limit and a no-op template: the runner against a bare anyio task-group
   loop over the same actions.  Target: <= 2x, and >= 20,000 actions/s.

    python bench/runner.py [--rate 200] [--latency 0.02] [--actions 5000] [--noop 100000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synctree import Action, SyncTree  # noqa: E402
from synctree.aio import AsyncTemplate  # noqa: E402

SERVER = """
import sys, uvicorn
from tests.http_server import make_app
app = make_app(rate=float(sys.argv[2]), latency=float(sys.argv[3]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The test API in a subprocess, so that it does not share our GIL."""

    def __init__(self, rate: float, latency: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.port), str(rate), str(latency)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/stats", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.process.kill()
        raise RuntimeError("the benchmark server did not start")

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/stats", timeout=5).json()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def tree_of(n: int) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["users"])
    for i in range(n):
        tree.new("source", "users", f"u{i}", name=f"User {i}")
    return tree


def check(server: Server, n: int, label: str) -> dict[str, Any]:
    stats = server.stats()
    creates = stats["creates"]
    lost = n - len(creates)
    twice = sum(1 for count in creates.values() if count > 1)
    calls = stats["calls"]
    throttled = stats["throttled"]
    return {
        "label": label,
        "lost": lost,
        "twice": twice,
        "calls": calls,
        "throttled": throttled,
        "share_429": throttled / calls if calls else 0.0,
    }


async def synctree_run(url: str, n: int, rate: float) -> float:
    class Create(AsyncTemplate):
        concurrency = 32
        retries = 8

        async def before_all(self) -> None:
            self.client = httpx.AsyncClient(base_url=url, timeout=30)

        async def after_all(self, report: Any) -> None:
            await self.client.aclose()

        async def new_users(self, action: Action) -> None:
            response = await self.client.post(
                "/users", json={"id": action.idnumber, "name": action.source.name}
            )
            response.raise_for_status()

    Create.rate = rate
    tree = tree_of(n)
    start = time.perf_counter()
    report = await ((tree.source > tree.destination) | Create())
    elapsed = time.perf_counter() - start
    assert report.ok, str(report)
    return elapsed


async def aiometer_run(url: str, n: int, rate: float) -> float:
    import aiometer

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def create(i: int) -> None:
            for _ in range(9):
                response = await client.post("/users", json={"id": f"u{i}", "name": "x"})
                if response.status_code != 429:
                    response.raise_for_status()
                    return
                await anyio.sleep(float(response.headers.get("Retry-After", "1")))

        start = time.perf_counter()
        await aiometer.run_on_each(create, range(n), max_at_once=32, max_per_second=rate)
        return time.perf_counter() - start


def rate_limited(rate: float, latency: float, n: int) -> None:
    ideal = n / rate
    limit = f"server limit {rate:g}/s, latency {latency * 1000:g} ms"
    print(f"\n1. rate-limited API: {n} creates, {limit}")
    print(f"   ideal N/R = {ideal:.2f} s; target <= 1.05 x N/R = {1.05 * ideal:.2f} s")
    for label, runner in (("synctree", synctree_run), ("aiometer", aiometer_run)):
        server = Server(rate, latency)
        try:
            elapsed = anyio.run(runner, server.url, n, rate)
            figures = check(server, n, label)
        finally:
            server.close()
        ok = elapsed <= 1.05 * ideal and figures["lost"] == 0 and figures["share_429"] < 0.01
        verdict = f"  [{'ok' if ok else 'MISSED'}]" if label == "synctree" else ""
        print(
            f"   {label:9} {elapsed:7.2f} s = {elapsed / ideal:.3f} x N/R; lost {figures['lost']}, "
            f"applied twice {figures['twice']}, 429s {figures['throttled']} of {figures['calls']} "
            f"calls ({figures['share_429']:.2%}){verdict}"
        )


async def noop_runner(n: int) -> float:
    class Noop(AsyncTemplate):
        concurrency = 64

        async def new_users(self, action: Action) -> None:
            pass

    tree = tree_of(n)
    diff = tree.source > tree.destination
    start = time.perf_counter()
    report = await (diff | Noop())
    elapsed = time.perf_counter() - start
    assert len(report) == n
    return elapsed


async def noop_baseline(n: int) -> float:
    tree = tree_of(n)
    diff = tree.source > tree.destination

    async def noop(action: Action) -> None:
        pass

    start = time.perf_counter()
    actions = [action async for action in diff]
    limiter = anyio.CapacityLimiter(64)

    async def bounded(action: Action) -> None:
        async with limiter:
            await noop(action)

    async with anyio.create_task_group() as group:
        for action in actions:
            group.start_soon(bounded, action)
    return time.perf_counter() - start


def overhead(n: int) -> None:
    print(f"\n2. runner overhead: {n} no-op actions, no limit (best of 3)")
    for backend in ("asyncio", "trio"):
        ours = min(anyio.run(noop_runner, n, backend=backend) for _ in range(3))
        base = min(anyio.run(noop_baseline, n, backend=backend) for _ in range(3))
        rate = n / ours
        ok = ours <= 2 * base and rate >= 20_000
        print(
            f"   {backend:8} runner {ours:.3f} s ({rate:,.0f} actions/s) vs bare task group "
            f"{base:.3f} s: {ours / base:.2f}x  (target <= 2x and >= 20,000/s) "
            f"[{'ok' if ok else 'MISSED'}]"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--actions", type=int, default=5000)
    parser.add_argument("--noop", type=int, default=100_000)
    parser.add_argument("--skip-api", action="store_true")
    args = parser.parse_args()
    if not args.skip_api:
        rate_limited(args.rate, args.latency, args.actions)
    overhead(args.noop)


if __name__ == "__main__":
    main()
