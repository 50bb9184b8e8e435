"""A Google sync under the emulator's quota: how close to the quota, how often throttled.

    python bench/google_quota.py [--students 1000] [--classes 40] [--window 5] [--rate 95%]

Starts the emulator (``python -m tests.google_emulator``) in its own process with
Google's documented quotas (Directory 2,400 and Classroom 1,200 queries per window;
``--window`` seconds stand for Google's minute, so the run takes seconds, not an hour),
then syncs a synthetic school (students in ``--classes`` classes of 4 per student, a
group and a course per class, teachers) into it with the library's defaults, the same
window told to the template.  Reported per API: calls answered, the sustained rate over
the API's busy spell as a share of its quota, the busiest window as a share of the
quota, and the share of answers that were throttled (403 rateLimitExceeded).  Targets:
sustained >= 90 % of the quota, < 1 % throttled.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx

from synctree import SyncTree
from synctree.aio.google import GoogleReader, GoogleRoster, GoogleTemplate

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "school.example.org"


class _Rows:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        for row in self.rows:
            yield dict(row)


class School:
    """A synthetic export shaped as synctree's OneRoster reader gives it."""

    def __init__(self, students: int, classes: int) -> None:
        self.students = [
            {"idnumber": f"s{i}", "first": f"Kid{i}", "last": "Doe", "grade": f"{6 + i % 7:02d}"}
            for i in range(students)
        ]
        self.staff = [
            {"idnumber": f"t{n}", "first": f"Tia{n}", "last": "Teach"} for n in range(classes)
        ]
        self.classes = [
            {"idnumber": f"c{n}", "title": f"Class {n}", "code": f"C{n}"} for n in range(classes)
        ]
        self.enrollments = [
            {"idnumber": f"s{i}", "classes": {f"c{(i + k * 7) % classes}" for k in range(4)}}
            for i in range(students)
        ] + [{"idnumber": f"t{n}", "classes": {f"c{n}"}} for n in range(classes)]

    def readers(self) -> dict[str, _Rows]:
        return {
            name: _Rows(getattr(self, name))
            for name in ("students", "staff", "classes", "enrollments")
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _busy_spell(times: list[float], gap: float) -> tuple[int, float]:
    """The longest run of calls with no pause over ``gap`` s: (calls, seconds)."""
    best = (0, 0.0)
    start = 0
    for i in range(1, len(times) + 1):
        if i == len(times) or times[i] - times[i - 1] > gap:
            count, span = i - start, times[i - 1] - times[start]
            if count > best[0]:
                best = (count, span)
            start = i
    return best


def _busiest_window(times: list[float], window: float) -> int:
    most, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        most = max(most, i - j + 1)
    return most


async def measure(args: argparse.Namespace, url: str) -> None:
    if True:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    await client.get(f"{url}/_emulator/stats")
                    break
                except httpx.TransportError:
                    await anyio.sleep(0.1)
            school = School(args.students, args.classes)
            options = {"base_url": url, "quota_window": args.window, "rate": args.rate}
            tree = SyncTree(["source", "destination"], ["users", "groups", "members", "courses"])
            source = GoogleRoster(
                "-", roster=school, email=f"{{first}}.{{last}}@{DOMAIN}", ou="/Students/{grade}",
                staff_ou="/Staff", group_email=f"{{code}}@{DOMAIN}",
            ).readers()  # fmt: skip
            destination = GoogleReader(**options).readers()
            del destination["orgunits"]
            started = time.monotonic()
            await tree.load(source=source, destination=destination)
            report = await ((tree.source > tree.destination) | GoogleTemplate(**options))
            elapsed = time.monotonic() - started
            stats = (await client.get(f"{url}/_emulator/stats")).json()
    print(f"{len(report.results)} actions in {elapsed:.1f}s, ok={report.ok}, "
          f"window={args.window:g}s, rate={args.rate}")  # fmt: skip
    print("| API | quota / window | calls | batches (parts) | sustained | busiest | throttled |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for api in ("directory", "classroom"):
        times = sorted(stats["times"][api])
        quota = stats["quota"][api]
        calls, span = _busy_spell(times, gap=args.window / 10)
        sustained = calls / span / (quota / args.window) if span else 0.0
        busiest = _busiest_window(times, args.window) / quota
        throttled = stats["throttled"].get(api, 0)
        answered = stats["calls"].get(api, 0)
        share = throttled / (answered + throttled) if answered else 0.0
        print(
            f"| {api} | {quota} | {answered} | {stats['batches'].get(api, 0)} "
            f"({stats['parts'].get(api, 0)}) | {sustained:.1%} over {span:.1f}s | {busiest:.1%} "
            f"| {throttled} ({share:.2%}) |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--rate", default="95%")
    arguments = parser.parse_args()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.google_emulator", "--port", str(port), "--window",
         str(arguments.window), "--domain", DOMAIN],
        cwd=ROOT,
    )  # fmt: skip
    try:
        anyio.run(measure, arguments, f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(10)
