"""Rows kept as their CSV lines (``PackedTable``) diff exactly as rows of values do."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctree import Leaf, ReaderError, SyncTree
from synctree.aio import Batch, CSVReader, PackedTable, Table
from tests.aio.engine.test_compact_rows import HEADER, actions, cells, plain_tree, write

pytestmark = pytest.mark.anyio


async def csv_tree(
    tmp_path: Path, left: list[list[str]], right: list[list[str]], **options: Any
) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["enrollments"], **options.pop("tree", {}))
    types = {"classes": set}
    await tree.load(
        source={
            "enrollments": CSVReader(
                write(tmp_path / "l.csv", left), key="id", types=types, **options
            )
        },
        destination={
            "enrollments": CSVReader(
                write(tmp_path / "r.csv", right), key="id", types=types, **options
            )
        },
    )
    return tree


async def forms(reader: CSVReader) -> list[str]:
    return [type(table).__name__ async for table in reader.tables()]


def stored_forms(tree: SyncTree, branch: str = "source") -> set[str]:
    return {type(row).__name__ for row in tree[branch].enrollments._rows.values()}


LEFT = [
    ["1", "Ann", "A;B;C"],
    ["2", "Bob", "A;B"],
    ["3", "Cleo", "A; B ;C"],
    ["4", "Dan", ""],
    ["5", "Eve", "A;B"],
    ["6", "Finn", "X"],
    ["8", "Hana", "A;B"],
]
RIGHT = [
    ["1", "Ann", "C;B;A"],  # the same members in another order: no change
    ["2", "Bob", "A"],  # B to add
    ["3", "Cleo", "A; B ;C"],  # the same line: no change, never unpacked
    ["4", "Dan", ";"],  # empty both ways: no change
    ["5", "Eve", "A;B;D"],  # D to remove
    ["8", "Hannah", "B;A"],  # the name changed
    ["9", "Ivo", "A"],  # old
]


class TestPackedRows:
    async def test_unquoted_file_is_kept_as_lines(self, tmp_path: Path) -> None:
        """A file with no quotes loads as its lines, and the diff is that of plain sets."""
        tree = await csv_tree(tmp_path, LEFT, RIGHT)
        assert stored_forms(tree) == {"str"} and stored_forms(tree, "destination") == {"str"}
        assert actions(tree) == actions(plain_tree(LEFT, RIGHT))
        # only the rows whose lines differ were unpacked; equal lines stay text
        assert type(tree.source.enrollments._rows["3"]) is str
        assert type(tree.destination.enrollments._rows["3"]) is str

    async def test_leaves_of_lines(self, tmp_path: Path) -> None:
        """A leaf of a row kept as its line has the values, and is a view of the row."""
        tree = await csv_tree(tmp_path, LEFT, RIGHT)
        leaf = tree.source.enrollments["3"]
        assert leaf.classes == {"A", "B", "C"} and leaf.name == "Cleo"
        leaf.name = "Changed"
        assert tree.source.enrollments["3"].name == "Changed"
        assert [leaf.idnumber for leaf in tree.destination.enrollments] == [r[0] for r in RIGHT]
        again = SyncTree.from_json(tree.to_json())
        assert again.destination.enrollments["1"].classes == {"A", "B", "C"}

    async def test_quoted_lines_are_kept_too(self, tmp_path: Path) -> None:
        """Quoted fields, each row on its line, are kept as lines; equal cells quoted
        differently are no change."""
        rows = [[str(n), f"Name, {n}", "A;B"] for n in range(50)]
        path = write(tmp_path / "l.csv", rows)
        assert set(await forms(CSVReader(path, key="id"))) == {"PackedTable"}
        right = tmp_path / "r.csv"
        with right.open("w", newline="", encoding="utf-8") as file:
            csv.writer(file, quoting=csv.QUOTE_ALL).writerows([HEADER, *rows])
        tree = SyncTree(["source", "destination"], ["enrollments"])
        await tree.load(
            source={"enrollments": CSVReader(path, key="id", types={"classes": set})},
            destination={"enrollments": CSVReader(right, key="id", types={"classes": set})},
        )
        assert stored_forms(tree, "destination") == {"str"}
        assert list(tree.source > tree.destination) == []

    async def test_line_breaks_in_fields_are_tuples(self, tmp_path: Path) -> None:
        """A block with a row over two lines is parsed into tuples; the others stay lines."""
        rows = [[str(n), f"Name {n}", "A;B"] for n in range(300)]
        rows[250][1] = 'Two\nlines, "quoted"'
        path = write(tmp_path / "l.csv", rows)
        reader = CSVReader(path, key="id", types={"classes": set}, chunk_size=1024)
        kinds = await forms(reader)
        assert "PackedTable" in kinds and "Table" in kinds
        right = [list(row) for row in rows]
        right[250][1] = "Other"
        right[10][2] = "B"
        tree = await csv_tree(tmp_path, rows, right, chunk_size=1024)
        assert stored_forms(tree) == {"str", "tuple"}
        assert actions(tree) == actions(plain_tree(rows, right))
        assert tree.source.enrollments["250"].name == 'Two\nlines, "quoted"'

    async def test_row_cut_by_a_block_end(self, tmp_path: Path) -> None:
        """A quoted field whose line break falls at a block's end is not taken for a row."""
        path = tmp_path / "l.csv"
        path.write_text('id,name,note\n1,Ann,"first half\nsecond half"\n2,Bob,x\n')
        for chunk in range(8, 40):
            tree = SyncTree(["source", "destination"], ["students"])
            await tree.load(source={"students": CSVReader(path, key="id", chunk_size=chunk)})
            assert tree.source.students["1"].note == "first half\nsecond half", chunk
            assert sorted(tree.source.students.keys()) == ["1", "2"]

    async def test_typed_columns_are_tuples(self, tmp_path: Path) -> None:
        """A column whose values are checked on loading (``int``) is never kept as text."""
        path = write(tmp_path / "l.csv", [["1", "7"]], ["id", "grade"])
        assert await forms(CSVReader(path, key="id", types={"grade": int})) == ["Table"]
        assert await forms(CSVReader(path, key="id")) == ["PackedTable"]

    async def test_other_packings_are_unpacked(self, tmp_path: Path) -> None:
        """Two files with their columns in another order compare by name, not by line."""
        tree = SyncTree(["source", "destination"], ["enrollments"])
        left = write(tmp_path / "l.csv", [["1", "x", "y"], ["2", "p", "q"]], ["id", "a", "b"])
        right = write(tmp_path / "r.csv", [["1", "y", "x"], ["2", "r", "q"]], ["id", "b", "a"])
        await tree.load(
            source={"enrollments": CSVReader(left, key="id")},
            destination={"enrollments": CSVReader(right, key="id")},
        )
        diff = tree.source > tree.destination
        got = [(a.idnumber, a.attribute, a.value, a.old_value) for a in diff]
        assert got == [("2", "a", "p", "q"), ("2", "b", "q", "r")]

    async def test_derived_attributes_see_values(self, tmp_path: Path) -> None:
        """A model deriving an attribute compares the derived values, not the lines."""

        class Student(Leaf):
            @property
            def initial(self) -> str:
                return str(self.name)[:1]

        models = {"source": {"enrollments": Student}, "destination": {"enrollments": Student}}
        left, right = [["1", "Ann", "A"]], [["1", "Bob", "A"]]
        tree = await csv_tree(tmp_path, left, right, tree={"models": models})
        assert sorted(a.attribute or "" for a in tree.source > tree.destination) == [
            "initial",
            "name",
        ]

    async def test_duplicate_key_names_the_line(self, tmp_path: Path) -> None:
        """A key twice in a file kept as lines is an error naming file, line and key column."""
        path = write(tmp_path / "l.csv", [["1", "Ann", "A"], ["2", "Bob", "B"], ["1", "X", ""]])
        tree = SyncTree(["source", "destination"], ["enrollments"])
        with pytest.raises(ReaderError) as caught:
            await tree.load(
                source={"enrollments": CSVReader(path, key="id", types={"classes": set})}
            )
        assert caught.value.line == 4 and caught.value.field == "id"
        assert caught.value.path is not None and caught.value.path.endswith("l.csv")

    async def test_duplicate_across_blocks(self, tmp_path: Path) -> None:
        """A key seen in an earlier block of lines is found too, with its line."""
        rows = [[str(n), "x", "A"] for n in range(200)] + [["5", "y", "B"]]
        path = write(tmp_path / "l.csv", rows)
        tree = SyncTree(["source", "destination"], ["enrollments"])
        with pytest.raises(ReaderError) as caught:
            await tree.load(source={"enrollments": CSVReader(path, key="id", chunk_size=256)})
        assert caught.value.line == 202

    async def test_duplicate_policies_see_values(self, tmp_path: Path) -> None:
        """merge merges members; replace keeps the last row; skip the first."""
        rows = [["1", "Ann", "A;B"], ["1", "Ann", "C"]]
        for policy, expected in (
            ("merge", {"A", "B", "C"}),
            ("replace", {"C"}),
            ("skip", {"A", "B"}),
        ):
            tree = SyncTree(["source", "destination"], ["enrollments"], duplicates=policy)
            path = write(tmp_path / f"{policy}.csv", rows)
            await tree.load(
                source={"enrollments": CSVReader(path, key="id", types={"classes": set})}
            )
            assert tree.source.enrollments["1"].classes == expected, policy

    async def test_blank_and_short_lines(self, tmp_path: Path) -> None:
        """A blank line is skipped and a short row is an error naming its line and field."""
        path = tmp_path / "l.csv"
        path.write_text("id,name,classes\n1,Ann,A\n\n2,Bob,B\n")
        tree = SyncTree(["source", "destination"], ["enrollments"])
        await tree.load(source={"enrollments": CSVReader(path, key="id")})
        assert sorted(tree.source.enrollments.keys()) == ["1", "2"]
        path.write_text("id,name,classes\n1,Ann,A\n2,Bob\n")
        with pytest.raises(ReaderError) as caught:
            await tree.load(destination={"enrollments": CSVReader(path, key="id")})
        assert caught.value.line == 3 and caught.value.field == "classes"

    async def test_crlf_lines_against_lf_lines(self, tmp_path: Path) -> None:
        """Line endings are not part of a row: a CRLF file equals the same LF file."""
        left, right = tmp_path / "l.csv", tmp_path / "r.csv"
        left.write_bytes(b"id,name\r\n1,Ann\r\n2,Bob\r\n")
        right.write_bytes(b"id,name\n1,Ann\n2,Bo\n")
        tree = SyncTree(["source", "destination"], ["enrollments"])
        await tree.load(
            source={"enrollments": CSVReader(left, key="id")},
            destination={"enrollments": CSVReader(right, key="id")},
        )
        assert [(a.idnumber, a.value) for a in tree.source > tree.destination] == [("2", "Bob")]

    async def test_formula_quote_in_key(self, tmp_path: Path) -> None:
        """A neutralised formula quote in a key is taken off, as on the tuple path."""
        path = write(tmp_path / "l.csv", [["'=1", "Ann", "A"], ["2", "'=x", "B"]])
        tree = SyncTree(["source", "destination"], ["enrollments"])
        reader = CSVReader(path, key="id", neutralised_formulas=True)
        await tree.load(source={"enrollments": reader})
        assert sorted(tree.source.enrollments.keys()) == ["2", "=1"]
        assert tree.source.enrollments["2"].name == "=x"


@dataclass(frozen=True)
class Pipes:
    """A reader's own packing: cells joined by ``|``."""

    columns: tuple[str, ...]

    def unpack(self, texts: Iterable[str]) -> list[tuple[Any, ...]]:
        return [tuple(text.split("|")) for text in texts]


class TestCustomPacking:
    async def test_a_reader_of_its_own(self) -> None:
        """Any reader may hand over packed rows; equal packings compare by text."""

        class Packed:
            def __init__(self, texts: list[str], packing: Pipes) -> None:
                self.texts, self.packing = texts, packing

            def batches(self) -> AsyncIterator[Batch]:
                raise AssertionError("tables() should be used")

            async def tables(self) -> AsyncIterator[PackedTable | Table]:
                keys = [text.split("|")[0] for text in self.texts]
                yield PackedTable(keys, self.texts, self.packing, path="mem")

        columns = ("idnumber", "name")
        tree = SyncTree(["source", "destination"], ["students"])
        await tree.load(
            source={"students": Packed(["1|Ann", "2|Bob"], Pipes(columns))},
            destination={"students": Packed(["1|Ann", "2|Bo", "3|Cy"], Pipes(columns))},
        )
        assert [(a.idnumber, a.message) for a in tree.source > tree.destination] == [
            ("2", "update_students_name"),
            ("3", "old_students"),
        ]
        assert type(tree.source.students._rows["1"]) is str  # equal texts: never unpacked
        assert tree.destination.students["3"].name == "Cy"

    async def test_keys_and_texts_must_match(self) -> None:
        """A table with more keys than rows is refused, naming the counts."""

        class Broken:
            def batches(self) -> AsyncIterator[Batch]:
                raise AssertionError

            async def tables(self) -> AsyncIterator[PackedTable]:
                yield PackedTable(["1", "2"], ["1|Ann"], Pipes(("idnumber", "name")))

        tree = SyncTree(["source", "destination"], ["students"])
        with pytest.raises(ReaderError, match="2 keys for 1 packed rows"):
            await tree.load(source={"students": Broken()})


names = st.sampled_from(["x", "y", "x,y", 'q"u', " x", "two\nlines", "cr\r\nlf"])


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(st.tuples(cells, cells, names, names), min_size=1, max_size=40),
    chunk=st.sampled_from([64, 200, 1 << 20]),
)
async def test_property_lines_are_plain(
    tmp_path: Path, pairs: list[tuple[str, str, str, str]], chunk: int
) -> None:
    """Any cells, quoted or not, in blocks of any size: the diff is the plain-sets diff."""
    left = [[str(i), a_name, a] for i, (a, _, a_name, _) in enumerate(pairs)]
    right = [[str(i), b_name, b] for i, (_, b, _, b_name) in enumerate(pairs)]
    tree = await csv_tree(tmp_path, left, right, chunk_size=chunk)
    assert actions(tree) == actions(plain_tree(left, right))


class Tuples:
    """Another reader's rows, as tuples (what ``SQLReader`` gives)."""

    def __init__(self, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        self.columns, self.rows = columns, rows

    def batches(self) -> AsyncIterator[Batch]:
        raise AssertionError("tables() should be used")

    async def tables(self) -> AsyncIterator[Table]:
        yield Table(self.columns, list(self.rows), encoded={"classes": (set, ";")})


class TestLinesAgainstTuples:
    """A CSV export against the tuples of the table it was synced into."""

    async def tree(
        self, tmp_path: Path, rows: list[list[str]], other: Tuples, *, csv_left: bool = True
    ) -> SyncTree:
        tree = SyncTree(["source", "destination"], ["enrollments"])
        reader = CSVReader(write(tmp_path / "e.csv", rows), key="id", types={"classes": set})
        sides = {"source": reader, "destination": other}
        if not csv_left:
            sides = {"source": other, "destination": reader}
        await tree.load(**{side: {"enrollments": r} for side, r in sides.items()})
        return tree

    async def test_equal_rows_are_never_unpacked(self, tmp_path: Path) -> None:
        """Rows equal to their line (columns in another order) need no parsing at all."""
        columns = ("idnumber", "classes", "name")
        other = Tuples(columns, [(r[0], r[2], r[1]) for r in LEFT])
        for csv_left in (True, False):
            tree = await self.tree(tmp_path, LEFT, other, csv_left=csv_left)
            assert list(tree.source > tree.destination) == []
            side = tree.source if csv_left else tree.destination
            assert stored_forms_of(side.enrollments) == {"str"}

    async def test_differences_are_found(self, tmp_path: Path) -> None:
        """Unequal texts are compared as values: the plain-sets diff."""
        other = Tuples(("idnumber", "name", "classes"), [tuple(r) for r in RIGHT])
        tree = await self.tree(tmp_path, LEFT, other)
        assert actions(tree) == actions(plain_tree(LEFT, RIGHT))
        assert type(tree.source.enrollments._rows["3"]) is str  # equal: still its line

    async def test_quotes_in_cells(self, tmp_path: Path) -> None:
        """A cell holding a quote is compared as a value, never as a line: the line
        '2,"x",B' has the name x, and a cell '"x"' joined as a line would look like it."""
        path = tmp_path / "q.csv"
        path.write_text('id,name,classes\n1,"Ann",A\n2,"x",B\n')
        other = Tuples(("idnumber", "name", "classes"), [("1", "Ann", "A"), ("2", '"x"', "B")])
        tree = SyncTree(["source", "destination"], ["enrollments"])
        await tree.load(
            source={"enrollments": CSVReader(path, key="id", types={"classes": set})},
            destination={"enrollments": other},
        )
        assert stored_forms_of(tree.source.enrollments) == {"str"}
        assert [(a.idnumber, a.value, a.old_value) for a in tree.source > tree.destination] == [
            ("2", "x", '"x"')
        ]

    async def test_cells_not_text(self, tmp_path: Path) -> None:
        """Another reader's cells that are not strings: the rows are compared as values."""
        rows = [["1", "7", "A"]]
        other = Tuples(("idnumber", "name", "classes"), [("1", 7, "A")])
        tree = await self.tree(tmp_path, rows, other)
        assert [a.message for a in tree.source > tree.destination] == ["error_enrollments_name"]

    async def test_a_column_left_out(self, tmp_path: Path) -> None:
        """A file whose columns are not all read cannot be packed back: values compared."""
        path = write(tmp_path / "c.csv", [["1", "Ann", "A"], ["2", "Bob", "B"]])
        tree = SyncTree(["source", "destination"], ["enrollments"])
        await tree.load(
            source={
                "enrollments": CSVReader(
                    path, key="id", columns=["classes"], types={"classes": set}
                )
            },
            destination={"enrollments": Tuples(("idnumber", "classes"), [("1", "A"), ("2", "C")])},
        )
        assert [(a.idnumber, a.message) for a in tree.source > tree.destination] == [
            ("2", "add_enrollments_classes"),
            ("2", "remove_enrollments_classes"),
        ]


def stored_forms_of(subbranch: Any) -> set[str]:
    return {type(row).__name__ for row in subbranch._rows.values()}
