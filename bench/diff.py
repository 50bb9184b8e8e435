"""Load two sides into a tree and diff them, against a plain standard-library baseline.

    python bench/diff.py [--rows N] [--repeat 3] [--no-memory]

Rows are dicts like a reader yields (``{'idnumber': ..., 'first': ..., ...}``), fresh
for every run and made before the clock starts.  The destination differs from the
source by 1% new rows, 1% old rows and 2% rows with one or two changed attributes.
Times are the best of ``--repeat`` runs with the garbage collector enabled, as in real
use; peak memory is measured separately (tracemalloc slows everything down).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any

from synctree import SyncTree

COLUMNS = ("idnumber", "first", "last", "email", "grade", "homeroom")
FIRST = "Ann Bob Cleo Dan Eve Finn Gus Hana Ivo Jo Kai Lea Mo Noor Otto Pia Quin Rae Sam Tia"
LAST = "Smith Jones Brown Garcia Miller Davis Lopez Wilson Moore Taylor Lee Clark Young King"

Values = tuple[str, str, str, str, int, str]
Row = dict[str, Any]
Baseline = dict[str, tuple[Any, ...]]


def generate(rows: int, seed: int = 2024) -> tuple[list[Values], list[Values], dict[str, int]]:
    """The source's and destination's values, and how many of each difference there are."""
    rng = random.Random(seed)
    firsts, lasts = FIRST.split(), LAST.split()

    def person(number: int) -> Values:
        first, last = rng.choice(firsts), rng.choice(lasts)
        email = f"{first}.{last}{number}@school.example".lower()
        return (str(number), first, last, email, rng.randrange(13), f"R{rng.randrange(100, 140)}")

    source = [person(1_000_000 + i) for i in range(rows)]
    one_percent = rows // 100
    picked = rng.sample(range(rows), 3 * one_percent)
    new, changed = set(picked[:one_percent]), picked[one_percent:]
    destination = [values for i, values in enumerate(source) if i not in new]
    index = {values[0]: i for i, values in enumerate(destination)}
    for i in changed:
        position = index[source[i][0]]
        values = list(destination[position])
        for column in rng.sample(range(1, len(COLUMNS)), rng.choice((1, 2))):
            values[column] = values[column] + 1 if column == 4 else values[column] + "x"
        destination[position] = tuple(values)  # type: ignore[assignment]  # same shape
    destination += [person(9_000_000 + i) for i in range(one_percent)]
    counts = {"new": one_percent, "old": one_percent, "changed": len(changed)}
    return source, destination, counts


def fresh_rows(values: list[Values]) -> list[Row]:
    """New row dicts (sharing the value objects) for one run."""
    return [dict(zip(COLUMNS, v, strict=True)) for v in values]


def reader(values: list[Values]) -> Iterator[Row]:
    """Rows as a CSV reader yields them: a fresh dict of freshly made strings per row."""
    for v in values:
        fields = ",".join(map(str, v)).split(",")
        row: Row = dict(zip(COLUMNS, fields, strict=True))
        row["grade"] = int(fields[4])
        yield row


_values_of = itemgetter(*COLUMNS[1:])


def baseline_build(rows: Iterable[Row]) -> Baseline:
    """The plain-Python structure: ``{id: (first, last, email, grade, homeroom)}``."""
    values_of = _values_of
    return {row["idnumber"]: values_of(row) for row in rows}


def values_only(rows: Iterable[Row]) -> list[Any]:
    """Only the row values, in one flat list (what any structure must keep)."""
    out: list[Any] = []
    for row in rows:
        out.extend(row.values())
    return out


def baseline_diff(left: Baseline, right: Baseline) -> tuple[list[str], list[str], list[str]]:
    """New, old and changed keys by set operations and tuple comparison."""
    new = list(left.keys() - right.keys())
    old = list(right.keys() - left.keys())
    changed = [key for key in left.keys() & right.keys() if left[key] != right[key]]
    return new, old, changed


def tree_build(source: Any, destination: Any) -> SyncTree:
    """A tree loaded through the loader's path, ``Subbranch._add(row)``."""
    tree = SyncTree(["source", "destination"], ["students"])
    for branch, rows in (("source", source), ("destination", destination)):
        add = tree[branch].students._add
        for row in rows:
            add(row)
    return tree


def tree_new(source: list[Values], destination: list[Values]) -> SyncTree:
    """A tree loaded with the public ``tree.new(...)``, one call per row."""
    tree = SyncTree(["source", "destination"], ["students"])
    for branch, rows in (("source", source), ("destination", destination)):
        new = tree.new
        for i, first, last, email, grade, homeroom in rows:
            new(branch, "students", i, first=first, last=last, email=email, grade=grade,
                homeroom=homeroom)  # fmt: skip
    return tree


def best(repeat: int, setup: Callable[[], Any], run: Callable[[Any], Any]) -> float:
    """The fastest of ``repeat`` runs of ``run(setup())``; ``setup`` is not timed."""
    times = []
    for _ in range(repeat):
        argument = setup()
        gc.collect()
        start = time.perf_counter()
        run(argument)
        times.append(time.perf_counter() - start)
        del argument
    return min(times)


def peak(build: Callable[[], Any]) -> int:
    """Peak traced memory while ``build()`` makes a structure, keeping it until measured."""
    gc.collect()
    tracemalloc.start()
    try:
        kept = build()
        top = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del kept
    return top


def line(label: str, value: float, baseline: float, target: float | None, unit: str) -> None:
    ratio = value / baseline
    verdict = (
        "" if target is None else f"  (target ≤ {target}×: {'ok' if ratio <= target else 'MISSED'})"
    )
    figures = f"{value:9.3f} {unit}   baseline {baseline:9.3f} {unit}   {ratio:5.2f}×"
    print(f"{label:<28} {figures}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (the best counts)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    args = parser.parse_args()

    source, destination, counts = generate(args.rows)
    print(f"{args.rows:,} rows per side: {counts['new']:,} new, {counts['old']:,} old, "
          f"{counts['changed']:,} changed; best of {args.repeat}, gc enabled")  # fmt: skip

    # Correctness first: the tree finds what the baseline finds.
    base = baseline_build(fresh_rows(source)), baseline_build(fresh_rows(destination))
    tree = tree_build(fresh_rows(source), fresh_rows(destination))
    new, old, changed = baseline_diff(*base)
    kinds: dict[str, set[str]] = {"new": set(), "old": set(), "update": set()}
    for action in tree.source > tree.destination:
        kinds[action.kind].add(action.idnumber)
    assert kinds == {"new": set(new), "old": set(old), "update": set(changed)}, "diffs disagree"
    assert (len(new), len(old), len(changed)) == (counts["new"], counts["old"], counts["changed"])

    rows = lambda: (fresh_rows(source), fresh_rows(destination))  # noqa: E731
    build_base = best(args.repeat, rows, lambda r: (baseline_build(r[0]), baseline_build(r[1])))
    build_tree = best(args.repeat, rows, lambda r: tree_build(*r))
    build_new = best(args.repeat, lambda: None, lambda _: tree_new(source, destination))
    diff_base = best(args.repeat, lambda: base, lambda b: baseline_diff(*b))
    diff_tree = best(args.repeat, lambda: tree, lambda t: [a for a in t.source > t.destination])

    print()
    line("build (Subbranch._add)", build_tree, build_base, 2, "s")
    line("build (tree.new, info)", build_new, build_base, None, "s")
    line("diff (consume all actions)", diff_tree, diff_base, 1.5, "s")

    if not args.no_memory:
        del base, tree
        mb = 1024 * 1024
        values = peak(lambda: values_only(reader(source + destination)))
        memory_base = peak(
            lambda: (baseline_build(reader(source)), baseline_build(reader(destination)))
        )
        memory_tree = peak(lambda: tree_build(reader(source), reader(destination)))
        line("peak memory, two sides", memory_tree / mb, memory_base / mb, 2, "MB")
        print(f"{'  (the row values alone':<28} {values / mb:9.3f} MB, in both figures)")


if __name__ == "__main__":
    main()
