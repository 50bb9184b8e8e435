"""Plan two big exports end to end (load both sides + the whole diff), against peers.

    python bench/plan.py [--rows 100000 1000000] [--rounds 3] [--big] [--case sets|plain]
                         [--tools floor,baseline,csv-diff,polars,library,cli]

The generator writes two CSV files like an enrollments export (``id, first, last,
email, grade, classes`` with ``classes="C012;C107;C033"``, a set-valued column) and
knows how many differences it put in: 1% new rows, 1% old rows, 2% changed rows
(a grade or an email changed, a class added or dropped), and 3% rows whose
``classes`` cell lists the same classes in another order or with spaces, which is
no change.  ``--case plain`` drops the set-valued column (today's
``bench/csv_load.py`` shape).

Every tool runs in a child process of its own, so its wall time counts its
imports and its peak RSS (``os.wait4``) is its own; rounds are interleaved, the
figures are medians.  Each tool's counts are checked against the generator's:

- ``floor``: ``csv.reader`` over both files, nothing kept (the parse floor);
- ``baseline``: plain stdlib, ``dict[id, tuple]`` per side, set operations on the
  keys, tuples compared, the ``classes`` cells split into sets only where their
  text differs;
- ``csv-diff`` (``pip install csv-diff``): compares text, so a reordered cell is a
  changed row to it (checked against that count);
- ``polars`` (``pip install polars``, 2 threads): joins and column comparisons,
  members compared as sets;
- ``library``: ``SyncTree`` + ``CSVReader(types={'classes': set})`` + the diff;
- ``cli``: ``synctree plan --json`` on a config doing the same.

Targets (issue 15): library and CLI <= 1.0x the baseline and <= 0.6x csv-diff,
peak RSS <= 1.0x the baseline's; aim for <= 2x polars.  ``pip install -e '.[bench]'``
installs the optional peers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "_data"
HERE = Path(__file__).resolve()
FIRST = "Ann Bob Cleo Dan Eve Finn Gus Hana Ivo Jo Kai Lea Mo Noor Otto Pia Quin Rae Sam Tia"
LAST = "Smith Jones Brown Garcia Miller Davis Lopez Wilson Moore Taylor Lee Clark Young King"
CLASSES = [f"C{n:03d}" for n in range(400)]
TOOLS = ("floor", "baseline", "csv-diff", "polars", "library", "cli")
#: What each tool's counts are checked against.
KINDS = ("new", "old", "update", "add", "remove")


# -- the generator ---------------------------------------------------------------------


def make_files(rows: int, case: str, seed: int = 15) -> tuple[Path, Path, dict[str, int]]:
    """Write (or reuse) the two exports and the counts of what differs between them."""
    DATA.mkdir(exist_ok=True)
    stem = DATA / f"plan_{case}_{rows}"
    left, right, expected = (
        stem.with_name(stem.name + "_source.csv"),
        stem.with_name(stem.name + "_destination.csv"),
        stem.with_name(stem.name + "_expected.json"),
    )
    if expected.exists():
        return left, right, json.loads(expected.read_text())
    sets = case == "sets"
    rng = random.Random(seed)
    firsts, lasts = FIRST.split(), LAST.split()
    header = ["id", "first", "last", "email", "grade"] + (["classes"] if sets else [])

    def person(number: int) -> list[str]:
        first, last = rng.choice(firsts), rng.choice(lasts)
        out = [str(number), first, last, f"{first}.{last}{number}@school.example".lower()]
        out.append(str(rng.randrange(13)))
        if sets:
            out.append(";".join(rng.sample(CLASSES, rng.randrange(3, 7))))
        return out

    source = [person(1_000_000 + i) for i in range(rows)]
    one = rows // 100
    picked = rng.sample(range(rows), 6 * one)
    new = set(picked[:one])
    changed = picked[one : 3 * one]
    reordered = picked[3 * one :] if sets else []
    dest = {i: list(row) for i, row in enumerate(source) if i not in new}
    counts = dict.fromkeys(KINDS, 0)
    counts["new"] = one
    counts["old"] = one
    for n, i in enumerate(changed):
        row = dest[i]
        what = n % 5 if sets else n % 2
        if what == 0:
            row[4] = str((int(row[4]) + 1) % 13)
            counts["update"] += 1
        elif what == 1:
            row[3] = "x" + row[3]
            counts["update"] += 1
        elif what in (2, 3):  # the destination lacks one of the source's classes
            members = row[5].split(";")
            members.pop(rng.randrange(len(members)))
            row[5] = ";".join(members)
            counts["add"] += 1
        else:  # the destination has a class the source does not
            members = row[5].split(";")
            extra = rng.choice([c for c in CLASSES if c not in members])
            row[5] = ";".join([*members, extra])
            counts["remove"] += 1
    for n, i in enumerate(reordered):
        members = dest[i][5].split(";")
        members.reverse()
        dest[i][5] = (";" if n % 2 else " ; ").join(members)
    text_changed = len(changed) + len(reordered)
    for path, table in (
        (left, source),
        (right, [*dest.values(), *(person(9_000_000 + i) for i in range(one))]),
    ):
        partial = path.with_suffix(".tmp")
        with partial.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            writer.writerows(table)
        partial.replace(path)
    counts["text_changed"] = text_changed
    expected.write_text(json.dumps(counts))
    return left, right, counts


# -- the tools, each run in a child process ------------------------------------------


def floor(left: str, right: str, sets: bool) -> dict[str, int]:
    rows = 0
    for path in (left, right):
        with open(path, newline="", encoding="utf-8") as file:
            for _ in csv.reader(file):
                rows += 1
    return {"rows": rows}


def baseline(left: str, right: str, sets: bool) -> dict[str, int]:
    """What a competent 20-line stdlib script does."""

    def load(path: str) -> dict[str, tuple[str, ...]]:
        with open(path, newline="", encoding="utf-8") as file:
            reader = csv.reader(file)
            next(reader)
            return {row[0]: tuple(row[1:]) for row in reader}

    def members(text: str) -> set[str]:
        return {part for part in map(str.strip, text.split(";")) if part}

    source, dest = load(left), load(right)
    plan: list[tuple[str, str, int | None, str | None]] = []
    last = 4 if sets else None
    for key in source.keys() - dest.keys():
        plan.append(("new", key, None, None))
    for key, values in source.items():
        other = dest.get(key)
        if other is None or other == values:
            continue
        for index, (a, b) in enumerate(zip(values, other, strict=True)):
            if a == b:
                continue
            if index == last:
                mine, theirs = members(a), members(b)
                plan.extend(("add", key, index, m) for m in sorted(mine - theirs))
                plan.extend(("remove", key, index, m) for m in sorted(theirs - mine))
            else:
                plan.append(("update", key, index, a))
    for key in dest.keys() - source.keys():
        plan.append(("old", key, None, None))
    counts = dict.fromkeys(KINDS, 0)
    for kind, *_ in plan:
        counts[kind] += 1
    return counts


def csv_diff(left: str, right: str, sets: bool) -> dict[str, int]:
    from csv_diff import compare, load_csv

    with (
        open(left, newline="", encoding="utf-8") as a,
        open(right, newline="", encoding="utf-8") as b,
    ):
        result = compare(load_csv(a, key="id"), load_csv(b, key="id"))
    return {
        "new": len(result["added"]),
        "old": len(result["removed"]),
        "text_changed": len(result["changed"]),
    }


def polars_plan(left: str, right: str, sets: bool) -> dict[str, int]:
    import polars as pl

    source = pl.read_csv(left, infer_schema=False)
    dest = pl.read_csv(right, infer_schema=False)
    new = source.join(dest, on="id", how="anti")
    old = dest.join(source, on="id", how="anti")
    both = source.join(dest, on="id", how="inner", suffix="_d")
    counts = dict.fromkeys(KINDS, 0)
    counts["new"], counts["old"] = new.height, old.height
    for column in ("first", "last", "email", "grade"):
        counts["update"] += both.filter(pl.col(column) != pl.col(column + "_d")).height
    if sets:
        differ = both.filter(pl.col("classes") != pl.col("classes_d")).select(
            a=pl.col("classes").str.split(";").list.eval(pl.element().str.strip_chars()),
            b=pl.col("classes_d").str.split(";").list.eval(pl.element().str.strip_chars()),
        )
        diffs = differ.select(
            add=pl.col("a").list.set_difference("b").list.len(),
            remove=pl.col("b").list.set_difference("a").list.len(),
        )
        counts["add"] = int(diffs["add"].sum())
        counts["remove"] = int(diffs["remove"].sum())
    return counts


def library(left: str, right: str, sets: bool) -> dict[str, int]:
    import anyio

    from synctree import SyncTree
    from synctree.aio import CSVReader

    types: dict[str, Any] = {"classes": set} if sets else {}
    tree = SyncTree(["source", "destination"], ["enrollments"])

    async def load() -> None:
        await tree.load(
            source={"enrollments": CSVReader(left, key="id", types=types)},
            destination={"enrollments": CSVReader(right, key="id", types=types)},
        )

    anyio.run(load)
    counts = dict.fromkeys(KINDS, 0)
    for action in tree.source > tree.destination:
        counts[str(action.kind)] += 1
    return counts


CHILDREN = {
    "floor": floor,
    "baseline": baseline,
    "csv-diff": csv_diff,
    "polars": polars_plan,
    "library": library,
}


def config_for(left: Path, right: Path, sets: bool) -> Path:
    """The ``synctree plan`` config of the same plan as :func:`library`."""
    path = left.with_name(left.stem.removesuffix("_source") + ".toml")
    types = '\ntypes = { classes = "set" }' if sets else ""
    path.write_text(
        f"""[sync]
subbranches = ["enrollments"]

[source.enrollments]
reader = "csv"
path = "{left.name}"
key = "id"{types}

[destination.enrollments]
reader = "csv"
path = "{right.name}"
key = "id"{types}

[template]
use = "csv"
path = "{right.name}"
key = "id"
"""
    )
    return path


def cli_counts(stdout: str) -> dict[str, int]:
    data = json.loads(stdout)
    counts = dict.fromkeys(KINDS, 0)
    for per_kind in data["summary"].values():
        for kind, n in per_kind.items():
            counts[kind] += n
    return counts


def run_measured(
    tool: str, left: Path, right: Path, sets: bool
) -> tuple[float, float, float, dict[str, int]]:
    """(wall seconds, peak RSS in MB, CPU seconds, counts) of one tool in a child process."""
    env = dict(os.environ, POLARS_MAX_THREADS="2")
    if tool == "cli":
        exe = Path(sys.executable).with_name("synctree")
        command = [str(exe), "plan", "--json", str(config_for(left, right, sets))]
    else:
        command = [sys.executable, str(HERE), "--child", tool, str(left), str(right)]
        command += ["--case", "sets" if sets else "plain"]
    out_path, err_path = left.with_name(f".{tool}.out"), left.with_name(f".{tool}.err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, rusage = os.wait4(process.pid, 0)  # the child's own peak RSS
        wall = time.perf_counter() - start
    process.returncode = code = os.waitstatus_to_exitcode(status)
    text, problem = out_path.read_text(), err_path.read_text()
    out_path.unlink()
    err_path.unlink()
    if code != 0:
        raise SystemExit(f"{tool} failed with exit code {code}:\n{problem[-3000:]}")
    counts = cli_counts(text) if tool == "cli" else json.loads(text.strip().splitlines()[-1])
    return wall, rusage.ru_maxrss / 1024, rusage.ru_utime + rusage.ru_stime, counts


def available(tool: str) -> bool:
    module = {"csv-diff": "csv_diff", "polars": "polars"}.get(tool)
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


def check(tool: str, counts: dict[str, int], expected: dict[str, int], rows: int) -> None:
    if tool == "floor":
        want = {"rows": 2 * (rows + 1)}
    elif tool == "csv-diff":
        want = {k: expected[k] for k in ("new", "old", "text_changed")}
    else:
        want = {k: expected[k] for k in KINDS}
    if counts != want:
        raise SystemExit(f"{tool} counted {counts}, the generator made {want}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--big", action="store_true", help="also 3,000,000 rows")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--case", choices=("sets", "plain"), default="sets")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sets = args.case == "sets"
    if args.child == "generate":
        make_files(int(args.paths[0]), args.case)
        return
    if args.child:
        counts = CHILDREN[args.child](args.paths[0], args.paths[1], sets)
        print(json.dumps(counts))
        sys.stdout.flush()
        return

    tools = [t for t in args.tools.split(",") if t]
    for tool in tools:
        if tool not in TOOLS:
            raise SystemExit(f"unknown tool {tool!r} (known: {', '.join(TOOLS)})")
    skipped = [t for t in tools if not available(t)]
    tools = [t for t in tools if t not in skipped]
    if skipped:
        print(f"not installed, skipped: {', '.join(skipped)} (pip install -e '.[bench]')")
    compile_package()
    sizes = list(args.rows) + ([3_000_000] if args.big else [])
    print(f"case {args.case}, {args.rounds} rounds interleaved, medians; {os.cpu_count()} CPUs")
    for rows in sizes:
        # Written by a child, so that this process stays small: a child's peak RSS
        # may count what it shared with its parent before exec.
        generate = [sys.executable, str(HERE), "--child", "generate", str(rows)]
        subprocess.run([*generate, "--case", args.case], check=True, stdout=subprocess.DEVNULL)
        left, right, expected = make_files(rows, args.case)
        walls: dict[str, list[float]] = {t: [] for t in tools}
        rsss: dict[str, list[float]] = {t: [] for t in tools}
        cpus: dict[str, list[float]] = {t: [] for t in tools}
        for round_ in range(args.rounds):
            order = tools[round_ % len(tools) :] + tools[: round_ % len(tools)]
            for tool in order:
                wall, rss, cpu, counts = run_measured(tool, left, right, sets)
                check(tool, counts, expected, rows)
                walls[tool].append(wall)
                rsss[tool].append(rss)
                cpus[tool].append(cpu)
        report(rows, tools, walls, rsss, cpus)


def compile_package() -> None:
    """Write synctree's bytecode first, as ``pip install`` does for the peers' packages.

    With ``PYTHONDONTWRITEBYTECODE`` set (as on some machines) an editable install is
    otherwise compiled again in every child, which a user's install never is.
    """
    import compileall

    import synctree

    compileall.compile_dir(Path(synctree.__file__).parent, quiet=1)


def report(
    rows: int,
    tools: list[str],
    walls: dict[str, list[float]],
    rsss: dict[str, list[float]],
    cpus: dict[str, list[float]],
) -> None:
    wall = {t: statistics.median(v) for t, v in walls.items()}
    rss = {t: statistics.median(v) for t, v in rsss.items()}
    cpu = {t: statistics.median(v) for t, v in cpus.items()}
    print(f"\n{rows:,} rows per side (counts checked)")
    print(
        f"{'tool':<10} {'wall':>8} {'x base':>7} {'CPU':>8} {'x base':>7} {'peak RSS':>9}  (walls)"
    )
    for tool in tools:
        ratios = ["     -", "     -"]
        if "baseline" in wall:
            ratios = [
                f"{wall[tool] / wall['baseline']:5.2f}x",
                f"{cpu[tool] / cpu['baseline']:5.2f}x",
            ]
        spread = " ".join(f"{w:.2f}" for w in walls[tool])
        print(
            f"{tool:<10} {wall[tool]:7.2f}s {ratios[0]:>7} {cpu[tool]:7.2f}s {ratios[1]:>7}"
            f" {rss[tool]:7.0f}MB  ({spread})"
        )
    targets = [
        ("baseline", 1.0, "wall"),
        ("csv-diff", 0.6, "wall"),
        ("baseline", 1.0, "rss"),
        ("polars", 2.0, "wall (aim)"),
    ]
    for ours in ("library", "cli"):
        if ours not in wall:
            continue
        for peer, limit, what in targets:
            if peer not in wall:
                continue
            figures = rss if what == "rss" else wall
            ratio = figures[ours] / figures[peer]
            verdict = "met" if ratio <= limit else "MISSED"
            print(f"  {ours} {what} / {peer}: {ratio:.2f}x (target <= {limit}x) {verdict}")


if __name__ == "__main__":
    main()
