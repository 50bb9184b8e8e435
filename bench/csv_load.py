"""Load a big CSV file through CSVReader, against a plain standard-library baseline.

    python bench/csv_load.py [--rows 1000000] [--repeat 3] [--backend asyncio|trio]

The file (6 columns, written once under ``bench/_data/``, reused while its size
matches) is read by

- baseline: ``csv.reader`` building ``dict[id, tuple]``;
- the target: ``await tree.load(source={'students': CSVReader(...)})``, the
  file loaded into a tree subbranch through the loader;
- for information, ``CSVReader.batches()`` consumed into a plain ``dict``, and
  the same with ``types={'grade': int}``.

Times are the best of ``--repeat`` runs (alternating, garbage collector on), in
one process; the reader is timed inside a running event loop. Wall and CPU time
are both shown (CPU time is steadier on a busy machine). The target is
CSVReader <= 1.3x the baseline.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path
from typing import Any

import anyio

from synctree import SyncTree
from synctree.aio import CSVReader

DATA = Path(__file__).parent / "_data"
HEADER = ("student_id", "first", "last", "email", "grade", "homeroom")
FIRST = "Ann Bob Cleo Dan Eve Finn Gus Hana Ivo Jo Kai Lea Mo Noor Otto Pia Quin Rae Sam Tia"
LAST = "Smith Jones Brown Garcia Miller Davis Lopez Wilson Moore Taylor Lee Clark Young King"
TARGET = 1.3


def make_file(rows: int, seed: int = 2024) -> Path:
    """Write (or reuse) a CSV file of ``rows`` students."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"students_{rows}.csv"
    if path.exists():
        return path
    rng = random.Random(seed)
    firsts, lasts = FIRST.split(), LAST.split()
    partial = path.with_suffix(".tmp")
    with partial.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for i in range(rows):
            first, last = rng.choice(firsts), rng.choice(lasts)
            number = 1_000_000 + i
            email = f"{first}.{last}{number}@school.example".lower()
            room = f"R{rng.randrange(100, 140)}"
            writer.writerow((number, first, last, email, rng.randrange(13), room))
    partial.replace(path)
    return path


def baseline(path: Path) -> dict[str, tuple[str, ...]]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        next(reader)
        return {row[0]: tuple(row[1:]) for row in reader}


async def with_reader(path: Path, loaded: dict[str, dict[str, Any]], **options: Any) -> None:
    async for batch in CSVReader(path, key="student_id", **options).batches():
        for row in batch.rows:
            loaded[row["idnumber"]] = row


Timing = tuple[float, float, int]  # wall seconds, CPU seconds, rows


def time_baseline(path: Path) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    loaded = baseline(path)
    return time.perf_counter() - wall, time.process_time() - cpu, len(loaded)


def time_reader(path: Path, backend: str, **options: Any) -> Timing:
    """Time the load inside a running event loop (not the loop's start-up)."""
    loaded: dict[str, dict[str, Any]] = {}  # filled in place: asyncio repr()s a task's result
    timing: list[float] = []

    async def run() -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        await with_reader(path, loaded, **options)
        timing.extend((time.perf_counter() - wall, time.process_time() - cpu))

    anyio.run(run, backend=backend)
    return timing[0], timing[1], len(loaded)


def time_tree(path: Path, backend: str) -> Timing:
    """Time ``tree.load`` of the file into a subbranch, inside a running event loop."""
    tree = SyncTree(["source", "destination"], ["students"])
    timing: list[float] = []

    async def run() -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        await tree.load(source={"students": CSVReader(path, key="student_id")})
        timing.extend((time.perf_counter() - wall, time.process_time() - cpu))

    anyio.run(run, backend=backend)
    return timing[0], timing[1], len(tree.source.students)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()

    path = make_file(args.rows)
    size = path.stat().st_size / 1e6
    print(f"{path.name}: {args.rows:,} rows, {size:.1f} MB, backend {args.backend}")

    runs = {
        "baseline: csv.reader -> dict[id, tuple]": lambda: time_baseline(path),
        "tree.load(CSVReader) -> subbranch": lambda: time_tree(path, args.backend),
        "CSVReader.batches() -> dict[id, dict]": lambda: time_reader(path, args.backend),
        "  same, types={'grade': int}": lambda: time_reader(
            path, args.backend, types={"grade": int}
        ),
    }
    walls = {name: float("inf") for name in runs}
    cpus = dict(walls)
    for _ in range(args.repeat):
        for name, run in runs.items():
            wall, cpu, count = run()
            assert count == args.rows, (name, count)
            walls[name], cpus[name] = min(walls[name], wall), min(cpus[name], cpu)

    first = next(iter(runs))
    width = max(map(len, runs))
    print(f"{'best of ' + str(args.repeat):<{width}}  {'wall':>7}  ratio  {'CPU':>7}  ratio")
    for name in runs:
        wall, cpu = walls[name], cpus[name]
        print(
            f"{name:<{width}}  {wall:6.3f}s  {wall / walls[first]:4.2f}x"
            f"  {cpu:6.3f}s  {cpu / cpus[first]:4.2f}x"
        )
    reader = "tree.load(CSVReader) -> subbranch"
    ratio = walls[reader] / walls[first]
    verdict = "met" if ratio <= TARGET else "MISSED"
    cpu_ratio = cpus[reader] / cpus[first]
    print(f"ratio {ratio:.2f} wall, {cpu_ratio:.2f} CPU (target <= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
