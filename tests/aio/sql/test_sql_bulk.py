"""SQLTemplate writing a run of new objects straight from the rows the tree stores.

Every case runs the fast path (the diff's :class:`~synctree.NewActions`, bound from
the stored rows) beside the slow one (a filtered diff makes every action and leaf,
bound from the leaves) into two tables, and compares what they wrote.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from synctree import Action, Leaf, NewActions, Outcome, Report, SyncTree
from synctree._util.members import decode_members
from synctree.aio import Batch, Table
from synctree.aio.sql import SQLReader, SQLTemplate

from .database import DB

pytestmark = pytest.mark.anyio

COLUMNS = ("idnumber", "first", "grade", "classes", "_note")


class Rows:
    """A table reader of ready tuples, its ``classes`` cells kept as text."""

    def __init__(
        self,
        rows: Sequence[tuple[Any, ...]],
        encoded: Mapping[str, tuple[type, str]] | None = None,
        columns: tuple[str, ...] = COLUMNS,
    ) -> None:
        self.rows = list(rows)
        self.columns = columns
        self.encoded = {"classes": (set, ";")} if encoded is None else encoded

    async def tables(self) -> AsyncIterator[Table]:
        yield Table(self.columns, list(self.rows), encoded=self.encoded)

    async def batches(self) -> AsyncIterator[Batch]:
        yield Table(self.columns, list(self.rows), encoded=self.encoded).batch()


def row(key: str, classes: Any, grade: Any = 7) -> tuple[Any, ...]:
    return (key, f"F{key}", grade, classes, "private")


#: Texts of a set column that need every rule of the slow path.
TEXTS = [
    "b;a", "a;b;c", "c;b;a;b", "a; b", " a;b ", "a;;b", ";a", "a;", "", None, "x y;z",
    "Ω;é;a", "a\tb;c", "solo", "a;a",
]  # fmt: skip


async def load(reader: Rows, model: type[Leaf] = Leaf) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["students"], models={"source": {"students": model}})
    await tree.load(source={"students": reader})
    return tree


async def both(
    db: DB, reader: Rows, *, before: Any = None, **options: Any
) -> tuple[Report, Report, dict[Any, Any], dict[Any, Any]]:
    """The same source written the fast way into one table, the slow way into another."""
    fast_tree, slow_tree = await load(reader), await load(reader)
    if before is not None:
        before(fast_tree)
        before(slow_tree)
    slow_table = f"{db.table}_slow"
    if slow_table not in db.created:
        db.created.append(slow_table)
    options.setdefault("create_tables", True)
    fast = await (
        (fast_tree.source > fast_tree.destination)
        | SQLTemplate(db.url, tables={"students": db.table}, **options)
    )
    slow = await (
        (slow_tree.source > slow_tree.destination).filter(lambda action: True)
        | SQLTemplate(db.url, tables={"students": slow_table}, **options)
    )
    key = options.get("key", "idnumber")
    return fast, slow, await db.rows(key), await db.rows(key, slow_table)


def as_sets(rows: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """The rows with their ``classes`` text read back as the set it stands for."""
    return {
        key: {**row, "classes": decode_members(row["classes"], set, ";")}
        for key, row in rows.items()
    }


def outcomes(report: Report) -> dict[str, Outcome]:
    return {result.action.idnumber: result.outcome for result in report.results}


class TestSameAsTheSlowPath:
    async def test_set_texts(self, db: DB) -> None:
        """Set cells are written sorted, stripped, without empty or repeated members."""
        reader = Rows([row(str(i), text) for i, text in enumerate(TEXTS)])
        fast, slow, written, expected = await both(db, reader)
        assert fast.ok and slow.ok and fast.totals == {Outcome.SUCCEEDED: len(TEXTS)}
        assert written == expected
        assert written["0"]["classes"] == "a;b" and written["5"]["classes"] == "a;b"
        assert written["9"]["classes"] == "" and written["10"]["classes"] == "x y;z"
        assert "_note" not in written["0"]

    async def test_clean_texts_in_bulk(self, db: DB) -> None:
        """Texts needing no stripping (the bulk case) are written as they are: they read
        back as the sets decoding gives, and the next run finds them equal."""
        reader = Rows([row(str(i), f"c{i % 7};c{i % 3};c{i % 5}") for i in range(300)])
        fast, slow, written, expected = await both(db, reader, batch_size=64)
        assert fast.ok and len(written) == 300
        assert as_sets(written) == as_sets(expected)
        assert written["10"]["classes"] == "c3;c1;c0" and expected["10"]["classes"] == "c0;c1;c3"
        again = await load(reader)
        await again.load(
            destination={
                "students": SQLReader(
                    db.url, table=db.table, key="idnumber", types={"classes": set}
                )
            }
        )
        dest = again.destination.students
        assert dest._rows["10"][dest._columns.index("classes")] == "c3;c1;c0"
        assert list(again.source > again.destination) == []

    async def test_some_rows_already_leaves(self, db: DB) -> None:
        """Rows a leaf was made of (their sets decoded) are written as the others."""
        reader = Rows([row(str(i), text) for i, text in enumerate(TEXTS)])

        def touch(tree: SyncTree) -> None:
            for key in ("0", "3", "9"):
                assert isinstance(tree.source.students[key].classes, set)

        fast, slow, written, expected = await both(db, reader, before=touch)
        assert fast.ok and written == expected

    async def test_another_separator(self, db: DB) -> None:
        """Members holding the template's separator fail alone, on both paths."""
        for table in (db.table, db.name("slow")):
            await db.create(
                sa.Column("idnumber", sa.String(64), primary_key=True),
                sa.Column("first", sa.String(50)),
                sa.Column("grade", sa.Integer),
                sa.Column("classes", sa.Text),
                table=table,
            )
        reader = Rows(
            [row("1", "a,b"), row("2", "x;y,z"), row("3", "b, a")], encoded={"classes": (set, ",")}
        )
        fast, slow, written, expected = await both(db, reader, create_tables=False)
        assert outcomes(fast) == outcomes(slow)
        assert outcomes(fast)["2"] is Outcome.FAILED and not fast.ok
        assert written == expected and sorted(written) == ["1", "3"]
        assert written["3"]["classes"] == "a;b"

    async def test_a_list_column(self, db: DB) -> None:
        """List cells keep their order (members stripped, empty ones dropped)."""
        reader = Rows([row("1", "b;a"), row("2", " z ;;y")], encoded={"classes": (list, ";")})
        fast, slow, written, expected = await both(db, reader)
        assert fast.ok and written == expected
        assert written["1"]["classes"] == "b;a" and written["2"]["classes"] == "z;y"

    async def test_other_values(self, db: DB) -> None:
        """Values of other types, and collections in a column not kept as text."""
        rows = [("1", "A", 7, "a;b", "p"), ("2", "B", None, {"y", "x"}, "p")]
        reader = Rows(rows, encoded={})
        fast, slow, written, expected = await both(db, reader)
        assert fast.ok and written == expected
        assert written["2"]["classes"] == "x;y" and written["1"]["grade"] == 7

    async def test_an_integer_key_column(self, db: DB) -> None:
        """The key is converted for an integer key column, as for leaves."""
        slow_table = db.name("slow")
        for table in (db.table, slow_table):
            await db.create(
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                sa.Column("first", sa.String(50)),
                sa.Column("grade", sa.Integer),
                sa.Column("classes", sa.Text),
                table=table,
            )
        reader = Rows([row("1", "b;a"), row("22", "c")])
        tree = await load(reader)
        fast = await (
            (tree.source > tree.destination)
            | SQLTemplate(db.url, tables={"students": db.table}, key="id")
        )
        tree = await load(reader)
        slow = await (
            (tree.source > tree.destination).filter(lambda action: True)
            | SQLTemplate(db.url, tables={"students": slow_table}, key="id")
        )
        assert fast.ok and slow.ok
        assert as_sets(await db.rows("id")) == as_sets(await db.rows("id", slow_table))
        assert sorted(await db.rows("id")) == [1, 22]

    async def test_a_model_with_derived_attributes(self, db: DB) -> None:
        """A model's derived attributes are written: its runs are bound from leaves."""

        class Student(Leaf):
            @property
            def last(self) -> str:
                return str(self.first).upper()

        slow_table = db.name("slow")
        reports = []
        for table, filtered in ((db.table, False), (slow_table, True)):
            tree = await load(Rows([row("1", "b;a")]), Student)
            diff = tree.source > tree.destination
            reports.append(
                await (
                    (diff.filter(lambda action: True) if filtered else diff)
                    | SQLTemplate(db.url, tables={"students": table}, create_tables=True)
                )
            )
        assert all(report.ok for report in reports)
        written = await db.rows()
        assert written == await db.rows("idnumber", slow_table)
        assert written["1"]["last"] == "F1" and written["1"]["classes"] == "a;b"


class TestTheRunsLeafless:
    async def test_no_leaf_is_made(self, db: DB) -> None:
        """A run of new objects written in bulk leaves the source rows as they were stored."""
        reader = Rows([row(str(i), "b;a") for i in range(50)])
        tree = await load(reader)
        report = await (
            (tree.source > tree.destination)
            | SQLTemplate(db.url, tables={"students": db.table}, create_tables=True)
        )
        assert report.ok and len(report) == 50
        stored = tree.source.students._rows
        assert all(type(cells) is tuple for cells in stored.values())
        # The report's actions are made when read, the same as the diff's.
        assert [r.action for r in report.results] == list(tree.source > tree.destination)
        assert all(type(cells) is dict for cells in stored.values())

    async def test_the_method_takes_new_actions(self, db: DB) -> None:
        """SQLTemplate.new is given the run itself, sliced into batches."""
        seen: list[Sequence[Action]] = []

        class Watched(SQLTemplate):
            async def new(self, actions: Sequence[Action]) -> list[object]:
                seen.append(actions)
                return await super().new(actions)

        Watched.new.__synctree_batch__ = "batch_size"  # type: ignore[attr-defined]
        Watched.new.__synctree_lazy__ = True  # type: ignore[attr-defined]
        reader = Rows([row(str(i), "b;a") for i in range(25)])
        tree = await load(reader)
        template = Watched(db.url, tables={"students": db.table}, create_tables=True, batch_size=10)
        report = await ((tree.source > tree.destination) | template)
        assert report.ok and sorted(len(actions) for actions in seen) == [5, 10, 10]
        assert all(isinstance(actions, NewActions) for actions in seen)
        assert len(await db.rows()) == 25
