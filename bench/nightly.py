"""A school admin's syncs from the command line, CSV -> SQLite, against a naive script.

    python bench/nightly.py [--initial-rows 100000] [--nightly-rows 200000] [--rounds 3]
                            [--no-compile]

- initial: ``synctree run`` of a config into an empty SQLite file, against a
  naive ``csv`` + ``sqlite3`` script (read the file, read the table, insert what
  is new, replace what changed, delete what left; one transaction).
- nightly: the same run again with nothing to do (both sides loaded and compared).

The export is ``bench/plan.py``'s source file (``classes`` a set-valued column).
Every run is a child process (its start-up counted); rounds are interleaved,
figures are medians.  Targets (issue 15): nightly no-op <= 1.5x the naive
script, initial sync <= 2.0x.

synctree's modules are byte-compiled first, as ``pip install`` does for an
installed package: an editable install under ``PYTHONDONTWRITEBYTECODE=1`` (set
in some containers) would otherwise compile them from source at every run,
which costs a run about 0.2 s here.  ``--no-compile`` measures that case.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from plan import make_files  # noqa: E402  # the same generator

NAIVE = """
import csv, sqlite3, sys
source_path, db_path = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db_path)
con.execute("CREATE TABLE IF NOT EXISTS enrollments (idnumber TEXT PRIMARY KEY, "
            "first TEXT, last TEXT, email TEXT, grade TEXT, classes TEXT)")
with open(source_path, newline="", encoding="utf-8") as file:
    reader = csv.reader(file)
    next(reader)
    source = {row[0]: tuple(row) for row in reader}
dest = {row[0]: row for row in con.execute("SELECT * FROM enrollments")}
new = [row for key, row in source.items() if key not in dest]
changed = [row for key, row in source.items() if key in dest and dest[key] != row]
old = [(key,) for key in dest if key not in source]
with con:
    con.executemany("INSERT INTO enrollments VALUES (?, ?, ?, ?, ?, ?)", new)
    con.executemany("INSERT OR REPLACE INTO enrollments VALUES (?, ?, ?, ?, ?, ?)", changed)
    con.executemany("DELETE FROM enrollments WHERE idnumber = ?", old)
print(len(new), len(changed), len(old))
"""

CONFIG = """[sync]
subbranches = ["enrollments"]

[source.enrollments]
reader = "csv"
path = "{source}"
key = "id"
types = {{ classes = "set" }}

[destination.enrollments]
reader = "sql"
url = "sqlite+aiosqlite:///{db}"
key = "idnumber"
missing_ok = true
types = {{ classes = "set" }}

[template]
use = "sql"
url = "sqlite+aiosqlite:///{db}"
create_tables = true
on_old = "delete"
"""


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def naive(workdir: Path, source: Path, db: str) -> list[str]:
    script = workdir / "naive.py"
    script.write_text(NAIVE)
    return [sys.executable, str(script), str(source), str(workdir / db)]


def synctree(workdir: Path, source: Path, db: str) -> list[str]:
    config = workdir / f"{db}.toml"
    config.write_text(CONFIG.format(source=source, db=db))
    exe = Path(sys.executable).with_name("synctree")
    return [str(exe), "run", "--quiet", str(config)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--initial-rows", type=int, default=100_000)
    parser.add_argument("--nightly-rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-compile", action="store_true", help="do not byte-compile synctree first"
    )
    args = parser.parse_args()
    if not args.no_compile:
        import importlib.util

        spec = importlib.util.find_spec("synctree")
        assert spec is not None and spec.origin is not None
        compileall.compile_dir(Path(spec.origin).parent, quiet=1)
    for rows in {args.initial_rows, args.nightly_rows}:
        generate = [sys.executable, str(HERE.with_name("plan.py")), "--child", "generate"]
        subprocess.run([*generate, str(rows)], check=True)
    initial_source = make_files(args.initial_rows, "sets")[0]
    nightly_source = make_files(args.nightly_rows, "sets")[0]

    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # The nightly databases, synced once by each tool.
        subprocess.run(naive(work, nightly_source, "naive_nightly.db"), check=True, stdout=-3)
        subprocess.run(synctree(work, nightly_source, "st_nightly.db"), check=True)
        for _ in range(args.rounds):
            for name, tool in (("naive", naive), ("synctree", synctree)):
                db = f"{name}_initial.db"
                (work / db).unlink(missing_ok=True)
                times.setdefault(f"initial {name}", []).append(
                    timed(tool(work, initial_source, db))
                )
                db = "naive_nightly.db" if name == "naive" else "st_nightly.db"
                times.setdefault(f"nightly {name}", []).append(
                    timed(tool(work, nightly_source, db))
                )
        count = _count(work / "synctree_initial.db")
        assert count == args.initial_rows, count
        shutil.rmtree(work, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{os.cpu_count()} CPUs, {args.rounds} rounds interleaved, medians (wall, start-up counted)"
        + ("; synctree not byte-compiled" if args.no_compile else "")
    )
    for name, value in median.items():
        spread = " ".join(f"{v:.2f}" for v in times[name])
        print(f"{name:<20} {value:6.2f}s  ({spread})")
    for what, rows, target in (
        ("initial", args.initial_rows, 2.0),
        ("nightly", args.nightly_rows, 1.5),
    ):
        ratio = median[f"{what} synctree"] / median[f"{what} naive"]
        verdict = "met" if ratio <= target else "MISSED"
        print(
            f"{what} ({rows:,} rows): {ratio:.2f}x the naive script (target <= {target}x) {verdict}"
        )


def _count(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT count(*) FROM enrollments").fetchone()[0])


if __name__ == "__main__":
    main()
