"""Compact rows (tuples, set cells kept as text) diff exactly as plain rows of values do."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctree import SyncTree
from synctree.aio import Batch, CSVReader, PackedTable, Pipeline, Table, TableReader

pytestmark = pytest.mark.anyio

HEADER = ["id", "name", "classes"]


def write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def members(cell: str) -> set[str]:
    """What ``types={'classes': set}`` means, spelled out."""
    return {part.strip() for part in cell.split(";") if part.strip()}


def plain_tree(left: list[list[str]], right: list[list[str]]) -> SyncTree:
    """The same data as real sets, added one row at a time (the slow path)."""
    tree = SyncTree(["source", "destination"], ["enrollments"])
    for branch, rows in (("source", left), ("destination", right)):
        for key, name, cell in rows:
            tree.new(branch, "enrollments", key, name=name, classes=members(cell))
    return tree


def actions(tree: SyncTree) -> list[tuple[Any, ...]]:
    return [
        (a.idnumber, a.message, a.attribute, a.value, a.old_value)
        for a in tree.source > tree.destination
    ]


async def csv_tree(tmp_path: Path, left: list[list[str]], right: list[list[str]]) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["enrollments"])
    types = {"classes": set}
    await tree.load(
        source={"enrollments": CSVReader(write(tmp_path / "l.csv", left), key="id", types=types)},
        destination={
            "enrollments": CSVReader(write(tmp_path / "r.csv", right), key="id", types=types)
        },
    )
    return tree


LEFT = [
    ["1", "Ann", "A;B;C"],
    ["2", "Bob", "A;B"],
    ["3", "Cleo", "A; B ;C"],
    ["4", "Dan", ""],
    ["5", "Eve", "A;B"],
    ["6", "Finn", "X"],
    ["7", "Gus", ";;"],
    ["8", "Hana", "A;B"],
]
RIGHT = [
    ["1", "Ann", "C;B;A"],  # the same members in another order: no change
    ["2", "Bob", "A"],  # B to add
    ["3", "Cleo", "C;A;B"],  # spaces around members: no change
    ["4", "Dan", ";"],  # empty both ways: no change
    ["5", "Eve", "A;B;D"],  # D to remove
    ["7", "Gus", ""],  # empty: no change
    ["8", "Hannah", "B;A"],  # the name changed, the members did not
    ["9", "Ivo", "A"],  # old
]


class TestCompactRows:
    async def test_csv_diff_matches_plain_sets(self, tmp_path: Path) -> None:
        """Loaded from CSV (tuples, text cells), the diff is that of rows of real sets."""
        tree = await csv_tree(tmp_path, LEFT, RIGHT)
        assert actions(tree) == actions(plain_tree(LEFT, RIGHT))
        assert actions(tree) == [
            ("2", "add_enrollments_classes", "classes", "B", None),
            ("6", "new_enrollments", None, None, None),
            ("8", "update_enrollments_name", "name", "Hana", "Hannah"),
            ("5", "remove_enrollments_classes", "classes", "D", None),
            ("9", "old_enrollments", None, None, None),
        ]

    async def test_leaves_hold_sets(self, tmp_path: Path) -> None:
        """A leaf's set-valued attribute is a set, its row decoded for good."""
        tree = await csv_tree(tmp_path, LEFT, RIGHT)
        leaf = tree.source.enrollments["3"]
        assert leaf.classes == {"A", "B", "C"} and isinstance(leaf.classes, set)
        assert tree.source.enrollments["4"].classes == set()
        leaf.name = "Changed"  # a leaf is a view of the row: the change stays
        assert tree.source.enrollments["3"].name == "Changed"
        assert [leaf.idnumber for leaf in tree.destination.enrollments] == [row[0] for row in RIGHT]
        assert all(isinstance(leaf.classes, set) for leaf in tree.source.enrollments)

    async def test_changed_member_is_a_change(self, tmp_path: Path) -> None:
        """Text that differs in one member is not mistaken for a reordering."""
        tree = await csv_tree(tmp_path, [["1", "Ann", "A;B"]], [["1", "Ann", "A;C"]])
        assert [a.message for a in tree.source > tree.destination] == [
            "add_enrollments_classes",
            "remove_enrollments_classes",
        ]

    async def test_text_cell_against_plain_string_is_an_error(self, tmp_path: Path) -> None:
        """A set column against a plain string of the same text is a type clash, not equal."""
        tree = SyncTree(["source", "destination"], ["enrollments"])

        async def plain() -> AsyncIterator[dict[str, Any]]:
            yield {"idnumber": "1", "name": "Ann", "classes": "A;B"}

        path = write(tmp_path / "l.csv", [["1", "Ann", "A;B"]])
        await tree.load(
            source={"enrollments": CSVReader(path, key="id", types={"classes": set})},
            destination={"enrollments": plain()},
        )
        assert [a.message for a in tree.source > tree.destination] == ["error_enrollments_classes"]

    async def test_tuples_against_dicts_of_sets(self, tmp_path: Path) -> None:
        """Tuple rows compare with another reader's dict rows of real sets."""
        tree = SyncTree(["source", "destination"], ["enrollments"])

        async def dicts() -> AsyncIterator[dict[str, Any]]:
            for key, name, cell in RIGHT:
                yield {"idnumber": key, "name": name, "classes": members(cell)}

        path = write(tmp_path / "l.csv", LEFT)
        await tree.load(
            source={"enrollments": CSVReader(path, key="id", types={"classes": set})},
            destination={"enrollments": dicts()},
        )
        assert actions(tree) == actions(plain_tree(LEFT, RIGHT))

    async def test_columns_in_another_order(self, tmp_path: Path) -> None:
        """Two files with their columns in another order compare by name, not position."""
        tree = SyncTree(["source", "destination"], ["enrollments"])
        left = write(tmp_path / "l.csv", [["1", "x", "y"]], ["id", "a", "b"])
        right = write(tmp_path / "r.csv", [["1", "x", "y"]], ["id", "b", "a"])
        await tree.load(
            source={"enrollments": CSVReader(left, key="id")},
            destination={"enrollments": CSVReader(right, key="id")},
        )
        assert [(a.attribute, a.value, a.old_value) for a in tree.source > tree.destination] == [
            ("a", "x", "y"),
            ("b", "y", "x"),
        ]

    async def test_merge_duplicates_sees_sets(self, tmp_path: Path) -> None:
        """The merge policy merges members, not text."""
        tree = SyncTree(["source", "destination"], ["enrollments"], duplicates="merge")
        path = write(tmp_path / "l.csv", [["1", "Ann", "A;B"], ["1", "Ann", "C"]])
        await tree.load(source={"enrollments": CSVReader(path, key="id", types={"classes": set})})
        assert tree.source.enrollments["1"].classes == {"A", "B", "C"}

    async def test_hooks_and_async_for_see_sets(self, tmp_path: Path) -> None:
        """Pipeline hooks and ``async for`` get decoded rows; batches say what is text."""
        path = write(tmp_path / "l.csv", LEFT)
        reader = CSVReader(path, key="id", types={"classes": set})
        assert isinstance(reader, TableReader)
        seen: list[Any] = []

        def hook(row: dict[str, Any]) -> dict[str, Any]:
            seen.append(row["classes"])
            return row

        tree = SyncTree(["source", "destination"], ["enrollments"])
        await tree.load(source={"enrollments": Pipeline(reader, preprocess=hook)})
        assert seen[0] == {"A", "B", "C"}
        assert [row["classes"] async for row in reader][2] == {"A", "B", "C"}
        async for batch in reader.batches():
            assert isinstance(batch, Batch)
            assert batch.rows[0]["classes"] == "A;B;C"
            assert batch.encoded == {"classes": (set, ";")}
            assert batch.decoded()[0]["classes"] == {"A", "B", "C"}
        async for table in reader.tables():  # a file with no quotes: its lines, packed
            assert isinstance(table, PackedTable)
            assert table.texts[0] == "1,Ann,A;B;C" and table.keys[0] == "1"
            unpacked = table.table()
            assert unpacked.columns == ("idnumber", "name", "classes")
            assert unpacked.rows[0] == ("1", "Ann", "A;B;C")
            assert unpacked.batch().rows[0] == {"idnumber": "1", "name": "Ann", "classes": "A;B;C"}

    async def test_snapshot_round_trip(self, tmp_path: Path) -> None:
        """A tree of compact rows saves and restores as sets."""
        tree = await csv_tree(tmp_path, LEFT, RIGHT)
        again = SyncTree.from_json(tree.to_json())
        assert again.source.enrollments["1"].classes == {"A", "B", "C"}
        assert actions(again) == actions(tree)

    async def test_duplicate_key_names_the_line(self, tmp_path: Path) -> None:
        """A key twice in a file loaded as tuples is still an error naming file and line."""
        from synctree import ReaderError

        path = write(tmp_path / "l.csv", [["1", "Ann", "A"], ["2", "Bob", "B"], ["1", "X", ""]])
        tree = SyncTree(["source", "destination"], ["enrollments"])
        with pytest.raises(ReaderError) as caught:
            await tree.load(
                source={"enrollments": CSVReader(path, key="id", types={"classes": set})}
            )
        assert caught.value.line == 4 and caught.value.field == "id"


cells = st.lists(st.sampled_from(["A", "B", "C", "Dee"]), max_size=4).flatmap(
    lambda chosen: st.tuples(
        st.permutations(chosen), st.sampled_from([";", " ; ", "; ", ";;"]), st.booleans()
    ).map(lambda t: t[1].join(t[0]) + (";" if t[2] else ""))
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(
        st.tuples(cells, cells, st.sampled_from(["x", "y"]), st.sampled_from(["x", "y"])),
        min_size=1,
        max_size=8,
    )
)
async def test_property_csv_is_plain(
    tmp_path: Path, pairs: list[tuple[str, str, str, str]]
) -> None:
    """Any cells, spelt any way on either side: the CSV diff is the plain-sets diff."""
    left = [[str(i), a_name, a] for i, (a, _, a_name, _) in enumerate(pairs)]
    right = [[str(i), b_name, b] for i, (_, b, _, b_name) in enumerate(pairs)]
    tree = await csv_tree(tmp_path, left, right)
    assert actions(tree) == actions(plain_tree(left, right))


class TestTableCoverage:
    async def test_delta_table(self) -> None:
        """A table that says it is a delta removes only the keys it names."""

        class Delta:
            def batches(self) -> AsyncIterator[Batch]:
                raise AssertionError("tables() should be used")

            async def tables(self) -> AsyncIterator[Table]:
                yield Table(("idnumber", "name"), [("1", "Ann")], coverage="delta", removed=("3",))

        tree = SyncTree(["source", "destination"], ["students"])

        async def dest() -> AsyncIterator[dict[str, Any]]:
            for key in "123":
                yield {"idnumber": key, "name": "Ann"}

        await tree.load(source={"students": Delta()}, destination={"students": dest()})
        assert tree.source.students.coverage == "delta"
        assert [(a.idnumber, a.message) for a in tree.source > tree.destination] == [
            ("3", "old_students")
        ]
