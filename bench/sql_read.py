"""Read a 200,000-row SQLite table with SQLReader, against a raw cursor fetch into dicts.

    python bench/sql_read.py [--rows 200000] [--rounds 5]

The table holds ``bench/plan.py``'s source export (``classes`` a set-valued
column).  Timed in one process, rounds interleaved, medians of wall time:

- baseline: ``sqlite3`` ``SELECT *`` and a dict per row (``dict(zip(names, row))``);
- the target: ``await tree.load(...)`` of ``SQLReader(url, table=..., key=...,
  types={'classes': set})`` into a subbranch (engine start and reflection included);
- for information, ``SQLReader.batches()`` consumed into a plain dict.

Target (issue 15): SQLReader <= 1.5x the raw fetch.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from plan import make_files  # noqa: E402

from synctree import SyncTree  # noqa: E402
from synctree.aio.sql import SQLReader  # noqa: E402

TARGET = 1.5


def fill(db: Path, source: Path) -> None:
    with source.open(newline="", encoding="utf-8") as file, sqlite3.connect(db) as con:
        reader = csv.reader(file)
        next(reader)
        con.execute(
            "CREATE TABLE enrollments (idnumber TEXT PRIMARY KEY, first TEXT, last TEXT, "
            "email TEXT, grade TEXT, classes TEXT)"
        )
        con.executemany("INSERT INTO enrollments VALUES (?, ?, ?, ?, ?, ?)", reader)


def raw(db: Path) -> int:
    with sqlite3.connect(db) as con:
        cursor = con.execute("SELECT * FROM enrollments")
        names = [d[0] for d in cursor.description]
        rows = {row[0]: dict(zip(names, row, strict=True)) for row in cursor}
    return len(rows)


def reader(db: Path) -> SQLReader:
    url = f"sqlite+aiosqlite:///{db}"
    return SQLReader(url, table="enrollments", key="idnumber", types={"classes": set})


def tree_load(db: Path) -> int:
    tree = SyncTree(["source", "destination"], ["enrollments"])

    async def run() -> None:
        await tree.load(source={"enrollments": reader(db)})

    anyio.run(run)
    return len(tree.source.enrollments)


def batches(db: Path) -> int:
    rows: dict[str, Any] = {}

    async def run() -> None:
        async for batch in reader(db).batches():
            for row in batch.rows:
                rows[row["idnumber"]] = row

    anyio.run(run)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    generate = [sys.executable, str(HERE.with_name("plan.py")), "--child", "generate"]
    subprocess.run([*generate, str(args.rows)], check=True)
    source = make_files(args.rows, "sets")[0]
    runs = {
        "raw cursor -> dicts": raw,
        "tree.load(SQLReader)": tree_load,
        "SQLReader.batches() -> dict": batches,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        fill(db, source)
        for _ in range(args.rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                count = run(db)
                times[name].append(time.perf_counter() - start)
                assert count == args.rows, (name, count)
    median = {name: statistics.median(values) for name, values in times.items()}
    first = next(iter(runs))
    print(f"{args.rows:,} rows, {args.rounds} rounds interleaved, medians")
    for name, value in median.items():
        print(f"{name:<28} {value:6.3f}s  {value / median[first]:5.2f}x")
    ratio = median["tree.load(SQLReader)"] / median[first]
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"ratio {ratio:.2f}x (target <= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
