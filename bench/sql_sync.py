"""Sync 100,000 new rows into an empty SQLite table, against a raw ``sqlite3`` baseline.

    python bench/sql_sync.py [--rows 100000] [--repeat 3] [--batch-size N]
                             [--backend asyncio|trio] [--driver aiosqlite|pysqlite]
                             [--no-gc]

Each repetition uses fresh database files under ``bench/_data/`` holding the same
empty table (6 columns, the key the primary key):

- baseline: ``sqlite3`` ``executemany`` of the rows in one transaction;
- synctree: ``await ((tree.source > tree.destination) | SQLTemplate(url))`` on a
  tree whose source holds the rows and whose destination is empty: the diff, the
  runner and the batched upserts (engine start, reflection and disposal included).
  Building the source tree is not timed (``bench/csv_load.py`` measures loading);
- the breakdown: the time spent inside SQLTemplate's ``new`` calls (building the
  parameters and the SQL itself), and the rest (the diff, the runner, the report);
  and, across both, the time Python's cyclic garbage collector ran (``gc.callbacks``):
  the run makes an action, a leaf view and a parameter tuple per row, and the
  collector walks them, which the baseline never pays.

Times are the best of ``--repeat`` runs, in one process. The target is synctree
<= 1.5x the baseline. ``--backend trio`` runs on trio (SQLite through ``sqlite3``
in a worker thread); ``--driver pysqlite`` names the synchronous driver in the
URL, which runs in a worker thread on asyncio too.  ``--no-gc`` turns the garbage
collector off while both sides run: a diagnostic, to see the figures without it.
"""

from __future__ import annotations

import argparse
import gc
import random
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from synctree import Action, Outcome, SyncTree
from synctree.aio import idempotent
from synctree.aio.sql import SQLTemplate

DATA = Path(__file__).parent / "_data"
FIRST = "Ann Bob Cleo Dan Eve Finn Gus Hana Ivo Jo Kai Lea Mo Noor Otto Pia Quin Rae Sam Tia"
LAST = "Smith Jones Brown Garcia Miller Davis Lopez Wilson Moore Taylor Lee Clark Young King"
TABLE = (
    "CREATE TABLE students (idnumber TEXT PRIMARY KEY, first TEXT, last TEXT, "
    "email TEXT, grade INTEGER, homeroom TEXT)"
)
TARGET = 1.5

Row = tuple[str, str, str, str, int, str]


def make_rows(count: int, seed: int = 2024) -> list[Row]:
    rng = random.Random(seed)
    firsts, lasts = FIRST.split(), LAST.split()
    rows = []
    for i in range(count):
        first, last = rng.choice(firsts), rng.choice(lasts)
        number = str(1_000_000 + i)
        email = f"{first}.{last}{number}@school.example".lower()
        rows.append((number, first, last, email, rng.randrange(13), f"R{rng.randrange(100, 140)}"))
    return rows


def fresh_db(name: str) -> Path:
    """An empty database file holding the empty table."""
    DATA.mkdir(exist_ok=True)
    path = DATA / name
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute(TABLE)
    conn.close()
    return path


def count_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM students").fetchone()[0])
    finally:
        conn.close()


def baseline(rows: list[Row]) -> float:
    path = fresh_db("sql_sync_baseline.db")
    conn = sqlite3.connect(path)
    start = time.perf_counter()
    with conn:
        conn.executemany("INSERT INTO students VALUES (?, ?, ?, ?, ?, ?)", rows)
    elapsed = time.perf_counter() - start
    conn.close()
    assert count_rows(path) == len(rows)
    return elapsed


def make_tree(rows: list[Row]) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["students"])
    for number, first, last, email, grade, room in rows:
        tree.new(
            "source", "students", number, first=first, last=last, email=email, grade=grade,
            homeroom=room,
        )  # fmt: skip
    return tree


class GCTimer:
    """Seconds Python's cyclic garbage collector runs while it is installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> GCTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def with_synctree(
    tree: SyncTree, rows: list[Row], batch_size: int | None, driver: str
) -> tuple[float, float, float, int]:
    """Seconds for the whole run, inside SQLTemplate's calls, collecting garbage; batch size."""
    path = fresh_db("sql_sync_synctree.db")
    template = SQLTemplate(f"sqlite+{driver}:///{path}", batch_size=batch_size)
    inside = 0.0
    new: Any = template.new

    async def timed_new(actions: Sequence[Action]) -> Any:
        nonlocal inside
        start = time.perf_counter()
        try:
            return await new(actions)
        finally:
            inside += time.perf_counter() - start

    timed_new.__synctree_batch__ = new.__synctree_batch__  # type: ignore[attr-defined]
    timed_new.__synctree_lazy__ = new.__synctree_lazy__  # type: ignore[attr-defined]
    template.new = idempotent(timed_new)  # type: ignore[method-assign]
    with GCTimer() as collecting:
        start = time.perf_counter()
        report = await ((tree.source > tree.destination) | template)
        elapsed = time.perf_counter() - start
    assert report.totals[Outcome.SUCCEEDED] == len(rows), report
    assert count_rows(path) == len(rows)
    return elapsed, inside, collecting.seconds, template.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the template's")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--driver", choices=["aiosqlite", "pysqlite"], default="aiosqlite")
    parser.add_argument("--no-gc", action="store_true", help="collector off (a diagnostic)")
    args = parser.parse_args()

    rows = make_rows(args.rows)
    tree = make_tree(rows)
    times: dict[str, list[float]] = {"baseline": [], "synctree": []}
    best: tuple[float, float, float] = (float("inf"), 0.0, 0.0)
    if args.no_gc:
        gc.disable()
    for _ in range(args.repeat):
        times["baseline"].append(baseline(rows))
        run: Any = with_synctree
        elapsed, inside, collecting, batch_size = anyio.run(
            run, tree, rows, args.batch_size, args.driver, backend=args.backend
        )
        times["synctree"].append(elapsed)
        best = min(best, (elapsed, inside, collecting))
    base, ours = min(times["baseline"]), min(times["synctree"])
    _, inside, collecting = best
    ratio = ours / base
    print(
        f"{args.rows:,} new rows into an empty SQLite table, best of {args.repeat} "
        f"({args.backend}, sqlite+{args.driver}{', garbage collector off' if args.no_gc else ''})"
    )
    print(f"  sqlite3 executemany, one transaction  {base:8.3f} s")
    print(f"  tree + SQLTemplate (batch {batch_size:,})    {ours:8.3f} s")
    print(f"    inside SQLTemplate (params + SQL)   {inside:8.3f} s  ({inside / base:.2f}x)")
    rest = ours - inside
    print(f"    the diff, runner and report         {rest:8.3f} s  ({rest / base:.2f}x)")
    gc_ratio = collecting / base
    print(f"    of both, garbage collection         {collecting:8.3f} s  ({gc_ratio:.2f}x)")
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"  ratio {ratio:.2f}x   target <= {TARGET}x: {verdict}")


if __name__ == "__main__":
    main()
