"""SQLReader and SQLTemplate against SQLite, PostgreSQL and MariaDB, on asyncio and trio.

The databases and their pairing with the event loops: ``database.py`` and
``conftest.py``.  ``TestBackends`` checks the clear error where a server's async
driver meets trio.  On trio the helpers use a synchronous SQLite engine
(``sqlite3``), like the code under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import os
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from synctree import (
    Action,
    ConfigError,
    DuplicateKeyError,
    InputError,
    Leaf,
    Outcome,
    ReaderError,
    Report,
    RoundTripError,
    SyncTree,
)
from synctree.aio import Batch
from synctree.aio.sql import SQLReader, SQLTemplate

from .database import DB, SERVERS, dispose, make_engine

pytestmark = pytest.mark.anyio

#: Read the destination back as the template wrote it (MySQL's BOOLEAN is a TINYINT).
TYPES: dict[str, Any] = {"classes": set, "active": bool}


STUDENTS: dict[str, dict[str, Any]] = {
    "1": {"first": "Ann", "grade": 7, "classes": {"math", "art"}},
    "2": {"first": "Bob", "grade": 8, "classes": set()},
    "3": {"first": "Cleo", "grade": 7, "classes": {"math"}},
}


def make_tree(
    source: Mapping[str, Mapping[str, Any]], destination: Mapping[str, Mapping[str, Any]] = {}
) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["students"])
    for key, attributes in source.items():
        tree.new("source", "students", key, **attributes)
    for key, attributes in destination.items():
        tree.new("destination", "students", key, **attributes)
    return tree


async def read(reader: SQLReader) -> list[dict[str, Any]]:
    return [row async for row in reader]


async def sync(
    db: DB,
    source: Mapping[str, Mapping[str, Any]],
    template: SQLTemplate | None = None,
    reader: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Report:
    """Load ``source`` and the table, and run the template over the diff."""
    tree = make_tree(source)
    options = {"key": "idnumber", "types": TYPES, "missing_ok": True, **(reader or {})}
    await tree.load(destination={"students": SQLReader(db.url, table=db.table, **options)})
    template = template or SQLTemplate(db.url, tables={"students": db.table})
    report: Report = await (tree.source > tree.destination).run(template, **overrides)
    return report


async def plan(db: DB, source: Mapping[str, Mapping[str, Any]], **reader: Any) -> list[Action]:
    """The actions a sync would take now (none, once it has converged)."""
    tree = make_tree(source)
    options = {"key": "idnumber", "types": TYPES, **reader}
    await tree.load(destination={"students": SQLReader(db.url, table=db.table, **options)})
    return list(tree.source > tree.destination)


class TestReader:
    async def test_table(self, db: DB) -> None:
        """The key becomes a string ``idnumber`` and leaves the attributes; ints stay ints."""
        await db.create(
            sa.Column("student_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("first", sa.String(50)),
            sa.Column("grade", sa.Integer),
        )
        await db.insert([{"student_id": 1, "first": "Ann", "grade": 7}])
        rows = await read(SQLReader(db.url, table=db.table, key="student_id"))
        assert rows == [{"idnumber": "1", "first": "Ann", "grade": 7}]

    async def test_loads_a_tree(self, db: DB) -> None:
        """``tree.load`` takes a SQLReader like any reader."""
        await db.students_table()
        await db.insert([{"idnumber": "1", "first": "Ann", "grade": 7, "classes": "art;math"}])
        tree = make_tree({})
        reader = SQLReader(db.url, table=db.table, key="idnumber", types=TYPES)
        await tree.load(destination={"students": reader})
        leaf = tree.destination.students["1"]
        assert leaf.to_dict() == {
            "first": "Ann",
            "grade": 7,
            "classes": {"art", "math"},
            "active": True,
        }

    async def test_columns_and_where(self, db: DB) -> None:
        """``columns`` keeps some columns; ``where`` is an equality filter (None: IS NULL)."""
        await db.students_table()
        await db.insert(
            [
                {"idnumber": "1", "first": "Ann", "grade": 7},
                {"idnumber": "2", "first": "Bob", "grade": 8},
                {"idnumber": "3", "first": "Cleo", "grade": None},
            ]
        )
        reader = SQLReader(db.url, table=db.table, key="idnumber", columns=["first"])
        assert await read(reader) == [
            {"idnumber": "1", "first": "Ann"},
            {"idnumber": "2", "first": "Bob"},
            {"idnumber": "3", "first": "Cleo"},
        ]
        reader = SQLReader(
            db.url, table=db.table, key="idnumber", columns=["first"], where={"grade": 7}
        )
        assert await read(reader) == [{"idnumber": "1", "first": "Ann"}]
        reader = SQLReader(
            db.url, table=db.table, key="idnumber", columns=["first"], where={"grade": None}
        )
        assert await read(reader) == [{"idnumber": "3", "first": "Cleo"}]

    async def test_text_query(self, db: DB) -> None:
        """A SQL text query, filtered by ``where`` around it."""
        await db.students_table()
        await db.insert(
            [
                {"idnumber": "1", "first": "Ann", "grade": 7},
                {"idnumber": "2", "first": "Bob", "grade": 8},
            ]
        )
        query = f"SELECT idnumber, first, grade FROM {db.table} ORDER BY idnumber"
        rows = await read(SQLReader(db.url, query=query, key="idnumber"))
        assert rows == [
            {"idnumber": "1", "first": "Ann", "grade": 7},
            {"idnumber": "2", "first": "Bob", "grade": 8},
        ]
        reader = SQLReader(db.url, query=query, key="idnumber", where={"grade": 8})
        assert await read(reader) == [{"idnumber": "2", "first": "Bob", "grade": 8}]

    async def test_select_query(self, db: DB) -> None:
        """A ``select()`` query, with ``where`` added to it."""
        await db.students_table()
        await db.insert(
            [
                {"idnumber": "1", "first": "Ann", "grade": 7},
                {"idnumber": "2", "first": "Bob", "grade": 8},
            ]
        )
        table = sa.table(db.table, sa.column("idnumber"), sa.column("first"), sa.column("grade"))
        query = sa.select(table.c.idnumber, table.c.first).where(table.c.grade > 6)
        reader = SQLReader(db.url, query=query, key="idnumber", where={"first": "Bob"})
        assert await read(reader) == [{"idnumber": "2", "first": "Bob"}]

    async def test_composite_key(self, db: DB) -> None:
        """Several key columns are joined with ``key_separator``, in the given order."""
        await db.create(
            sa.Column("school", sa.String(10), primary_key=True),
            sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("first", sa.String(50)),
        )
        await db.insert([{"school": "north", "number": 7, "first": "Ann"}])
        reader = SQLReader(db.url, table=db.table, key=["school", "number"], key_separator="/")
        assert await read(reader) == [{"idnumber": "north/7", "first": "Ann"}]

    async def test_batches(self, db: DB) -> None:
        """``batches()`` yields Batches of ``batch_size`` rows naming database, rows and key."""
        await db.students_table()
        await db.insert([{"idnumber": f"{i:02}", "first": f"F{i}"} for i in range(5)])
        reader = SQLReader(
            db.url,
            query=f"SELECT * FROM {db.table} ORDER BY idnumber",
            key="idnumber",
            batch_size=2,
        )
        sizes, lines = [], []
        async for batch in reader.batches():
            assert isinstance(batch, Batch)
            assert (batch.path, batch.key) == (reader.path, "idnumber")
            assert batch.line_of is not None
            sizes.append(len(batch.rows))
            lines += [batch.line_of(index) for index in range(len(batch.rows))]
        assert sizes == [2, 2, 1]
        assert lines == [1, 2, 3, 4, 5]
        assert not hasattr(reader, "line")

    async def test_batch_key_names_every_key_column(self, db: DB) -> None:
        """A batch of a composite key names its columns, in order."""
        await db.create(
            sa.Column("school", sa.String(10), primary_key=True),
            sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        )
        await db.insert([{"school": "north", "number": 7}])
        reader = SQLReader(db.url, table=db.table, key=["school", "number"])
        assert [batch.key async for batch in reader.batches()] == ["school + number"]

    async def test_read_twice_at_once(self, sqlite_db: DB) -> None:
        """Two concurrent passes over one reader give the same rows each."""
        await sqlite_db.students_table()
        await sqlite_db.insert([{"idnumber": f"{i:02}", "first": f"F{i}"} for i in range(7)])
        reader = SQLReader(
            sqlite_db.url,
            query=f"SELECT * FROM {sqlite_db.table} ORDER BY idnumber",
            key="idnumber",
            batch_size=2,
        )
        passes: list[list[tuple[int | None, dict[str, Any]]]] = [[], []]

        async def read_into(out: list[tuple[int | None, dict[str, Any]]]) -> None:
            async for batch in reader.batches():
                assert batch.line_of is not None
                out += [(batch.line_of(i), row) for i, row in enumerate(batch.rows)]
                await anyio.sleep(0.001)  # let the other pass fetch in between

        async with anyio.create_task_group() as group:
            group.start_soon(read_into, passes[0])
            group.start_soon(read_into, passes[1])
        expected = [(i + 1, {"idnumber": f"{i:02}", "first": f"F{i}"}) for i in range(7)]
        assert [(line, {k: row[k] for k in ("idnumber", "first")}) for line, row in passes[0]] == (
            expected
        )
        assert passes[0] == passes[1]

    async def test_duplicate_key_names_database_and_row(self, db: DB) -> None:
        """A key the loader meets twice is a ReaderError naming the database and the row."""
        await db.create(sa.Column("id", sa.Integer), sa.Column("first", sa.String(50)))
        await db.insert([{"id": 1, "first": "A"}, {"id": 2, "first": "B"}, {"id": 1, "first": "C"}])
        reader = SQLReader(
            db.url, query=f"SELECT id, first FROM {db.table} ORDER BY first", key="id"
        )
        with pytest.raises(ReaderError, match="duplicate key") as info:
            await make_tree({}).load(destination={"students": reader})
        assert isinstance(info.value.__cause__, DuplicateKeyError)
        assert (info.value.path, info.value.line, info.value.field) == (reader.path, 3, "id")

    async def test_sets_and_bools(self, db: DB) -> None:
        """``types``: sets split on ';' (NULL and '' give an empty set), bools from 0/1."""
        await db.students_table()
        await db.insert(
            [
                {"idnumber": "1", "first": "A", "classes": "art;math", "active": True},
                {"idnumber": "2", "first": "B", "classes": None, "active": False},
                {"idnumber": "3", "first": "C", "classes": "", "active": True},
            ]
        )
        reader = SQLReader(
            db.url, table=db.table, key="idnumber", columns=["classes", "active"], types=TYPES
        )
        rows = {row["idnumber"]: row for row in await read(reader)}
        assert rows["1"] == {"idnumber": "1", "classes": {"art", "math"}, "active": True}
        assert rows["2"]["classes"] == set() and rows["2"]["active"] is False
        assert rows["3"]["classes"] == set()

    async def test_given_engine_is_not_disposed(self, db: DB) -> None:
        """A reader given an AsyncEngine uses it and leaves it open."""
        await db.students_table()
        await db.insert([{"idnumber": "1", "first": "Ann"}])
        reader = SQLReader(db.engine, table=db.table, key="idnumber", columns=["first"])
        assert await read(reader) == [{"idnumber": "1", "first": "Ann"}]
        assert await read(reader) == [{"idnumber": "1", "first": "Ann"}]
        assert (await db.rows())["1"]["first"] == "Ann"  # the engine still works


class TestReaderErrors:
    async def test_missing_table(self, db: DB) -> None:
        """A missing table is an InputError naming the table and the database."""
        reader = SQLReader(db.url, table="no_such_table", key="idnumber")
        with pytest.raises(InputError, match="no table 'no_such_table'") as info:
            await read(reader)
        assert info.value.path == reader.path
        tree = make_tree({})
        with pytest.raises(ReaderError, match="no_such_table"):
            await tree.load(destination={"students": reader})

    async def test_missing_table_is_empty_when_allowed(self, db: DB) -> None:
        """``missing_ok=True`` reads a missing table as no rows."""
        assert await read(SQLReader(db.url, table="no_such_table", key="id", missing_ok=True)) == []

    @pytest.mark.parametrize("option", ["key", "columns", "where"])
    async def test_missing_column(self, db: DB, option: str) -> None:
        """A key, column or where column the table lacks is an InputError naming it."""
        await db.students_table()
        options: dict[str, Any] = {"key": "idnumber"}
        options[option] = {"where": {"nope": 1}, "columns": ["nope"], "key": "nope"}[option]
        with pytest.raises(InputError, match="no column 'nope'") as info:
            await read(SQLReader(db.url, table=db.table, **options))
        assert info.value.field == "nope"
        assert db.table in str(info.value)

    async def test_query_without_key_column(self, db: DB) -> None:
        """A query that does not select the key column is an InputError naming it."""
        await db.students_table()
        query = f"SELECT first FROM {db.table}"
        with pytest.raises(InputError, match="no key column 'idnumber'") as info:
            await read(SQLReader(db.url, query=query, key="idnumber"))
        assert info.value.field == "idnumber"

    async def test_null_key(self, db: DB) -> None:
        """A NULL key is an InputError naming the row and the column."""
        await db.create(sa.Column("id", sa.Integer), sa.Column("first", sa.String(50)))
        await db.insert([{"id": 1, "first": "A"}, {"id": None, "first": "B"}])
        query = f"SELECT id, first FROM {db.table} ORDER BY first"
        with pytest.raises(InputError, match="empty key") as info:
            await read(SQLReader(db.url, query=query, key="id"))
        assert (info.value.line, info.value.field) == (2, "id")

    async def test_bad_query(self, db: DB) -> None:
        """A query the database rejects is an InputError with the database's message."""
        with pytest.raises(InputError, match="no_such_table"):
            await read(SQLReader(db.url, query="SELECT * FROM no_such_table", key="id"))

    async def test_type_conversion_error(self, db: DB) -> None:
        """A value its type rejects is an InputError naming row and column."""
        await db.students_table()
        await db.insert([{"idnumber": "1", "first": "Ann"}])
        reader = SQLReader(db.url, table=db.table, key="idnumber", types={"first": int})
        with pytest.raises(InputError, match="invalid literal") as info:
            await read(reader)
        assert (info.value.line, info.value.field) == (1, "first")

    async def test_dates_from_text(self, db: DB) -> None:
        """types date/datetime read ISO text (a TEXT column) as they read a DATE column."""
        await db.students_table()
        await db.insert([{"idnumber": "1", "first": "2025-01-17"}])
        reader = SQLReader(db.url, table=db.table, key="idnumber", types={"first": dt.date})
        assert [row["first"] for row in await read(reader)] == [dt.date(2025, 1, 17)]
        reader = SQLReader(db.url, table=db.table, key="idnumber", types={"first": dt.datetime})
        assert [row["first"] for row in await read(reader)] == [dt.datetime(2025, 1, 17)]
        await db.insert([{"idnumber": "2", "first": "soon"}])
        reader = SQLReader(db.url, table=db.table, key="idnumber", types={"first": dt.date})
        with pytest.raises(InputError, match="soon"):
            await read(reader)

    async def test_missing_sqlite_file(self, tmp_path: Path) -> None:
        """Reading a SQLite file that does not exist is an error, and does not create it."""
        path = tmp_path / "missing.db"
        reader = SQLReader(f"sqlite+aiosqlite:///{path}", table="students", key="id")
        with pytest.raises(InputError, match="no such SQLite database file"):
            await read(reader)
        assert not path.exists()
        reader = SQLReader(f"sqlite+aiosqlite:///{path}", table="t", key="id", missing_ok=True)
        assert await read(reader) == []
        assert not path.exists()

    async def test_password_never_shown(self) -> None:
        """Neither the repr nor a connection error shows the URL's password."""
        url = "postgresql+asyncpg://someone:s3cret-pw@127.0.0.1:1/nowhere"
        reader = SQLReader(url, table="students", key="id")
        assert "s3cret" not in repr(reader) and "***" in repr(reader)
        assert "s3cret" not in str(reader.path)
        tree = make_tree({})
        with pytest.raises(ReaderError) as info:
            await tree.load(destination={"students": reader})
        assert "s3cret" not in str(info.value)
        assert "s3cret" not in repr(SQLTemplate(url))

    @pytest.mark.skipif(not os.environ.get(SERVERS["postgresql"]), reason="no PostgreSQL")
    @pytest.mark.parametrize("anyio_backend", ["asyncio"])
    async def test_password_not_in_server_errors(self) -> None:
        """A server error (a missing table) does not show the URL's password either."""
        url = sa.make_url(os.environ[SERVERS["postgresql"]]).set(password="s3cret-pw")
        reader = SQLReader(url, table="no_such_table", key="id")
        with pytest.raises(InputError) as info:
            await read(reader)
        assert "no_such_table" in str(info.value) and "s3cret" not in str(info.value)

    def test_bad_options(self, sqlite_url: str) -> None:
        """Options are checked when the reader is made, naming the parameter."""
        with pytest.raises(ValueError, match="exactly one of 'table' and 'query'"):
            SQLReader(sqlite_url, key="id")
        with pytest.raises(ValueError, match="exactly one of 'table' and 'query'"):
            SQLReader(sqlite_url, table="t", query="SELECT 1", key="id")
        with pytest.raises(ValueError, match="'batch_size'"):
            SQLReader(sqlite_url, table="t", key="id", batch_size=0)
        with pytest.raises(ValueError, match="'key'"):
            SQLReader(sqlite_url, table="t", key=["a", "a"])
        with pytest.raises(ValueError, match="'types' converts key column"):
            SQLReader(sqlite_url, table="t", key="id", types={"id": int})
        with pytest.raises(ValueError, match="'url' is not a database URL"):
            SQLReader("not a url", table="t", key="id")
        with pytest.raises(ConfigError, match="unknown database dialect"):
            SQLReader("nosuchdb://host/db", table="t", key="id")
        with pytest.raises(ConfigError, match="Invalid SQLite URL") as info:
            SQLReader("sqlite+aiosqlite://admin:hunter2@/x.db", table="t", key="id")
        assert "hunter2" not in str(info.value)

    def test_url_without_driver_gets_the_async_one(self, tmp_path: Path) -> None:
        """``sqlite:///x.db`` means ``sqlite+aiosqlite:///x.db``."""
        reader = SQLReader(f"sqlite:///{tmp_path / 'x.db'}", table="t", key="id")
        assert reader.path.startswith("sqlite+aiosqlite:///")


class TestTemplate:
    async def test_new_update_old(self, db: DB) -> None:
        """Creates, updates and deletes land, and a second plan is empty."""
        await db.students_table()
        await db.insert(
            [
                {"idnumber": "2", "first": "Bobby", "grade": 8, "classes": ""},
                {"idnumber": "9", "first": "Gone", "grade": 9, "classes": ""},
            ]
        )
        report = await sync(db, STUDENTS, max_deletes=None)
        assert report.ok, report
        assert {m: dict(c) for m, c in report.counts.items()} == {
            "new_students": {Outcome.SUCCEEDED: 2},
            "update_students": {Outcome.SUCCEEDED: 1},
            "old_students": {Outcome.SUCCEEDED: 1},
        }
        rows = await db.rows()
        assert sorted(rows) == ["1", "2", "3"]
        assert rows["1"]["classes"] == "art;math"  # sets: sorted, ';'-joined
        assert rows["2"]["first"] == "Bob"
        assert await plan(db, STUDENTS) == []

    async def test_grouped_update_many_columns(self, db: DB) -> None:
        """An object's changed attributes go in one UPDATE; objects differ in which."""
        await db.students_table()
        await db.insert(
            [
                {"idnumber": "1", "first": "A", "grade": 1, "classes": ""},
                {"idnumber": "2", "first": "B", "grade": 2, "classes": ""},
            ]
        )
        source = {
            "1": {"first": "A2", "grade": 10, "classes": set()},
            "2": {"first": "B", "grade": 20, "classes": set()},
        }
        report = await sync(db, source)
        assert report.ok and report.totals == {Outcome.SUCCEEDED: 2}
        rows = await db.rows()
        assert (rows["1"]["first"], rows["1"]["grade"]) == ("A2", 10)
        assert (rows["2"]["first"], rows["2"]["grade"]) == ("B", 20)
        assert await plan(db, source) == []

    async def test_deactivate(self, db: DB) -> None:
        """``on_old='deactivate'`` sets active false; a returning object is active again."""
        await db.students_table()
        await db.insert([{"idnumber": str(i), "first": f"F{i}", "classes": ""} for i in range(4)])
        source = {str(i): {"first": f"F{i}", "classes": set()} for i in range(3)}
        scope = {"where": {"active": True}}
        template = SQLTemplate(db.url, tables={"students": db.table}, on_old="deactivate")
        report = await sync(db, source, template, reader=scope)
        assert report.ok and report.totals == {Outcome.SUCCEEDED: 1}
        rows = await db.rows()
        assert len(rows) == 4 and not rows["3"]["active"] and rows["2"]["active"]
        assert await plan(db, source, **scope) == []
        back = {**source, "3": {"first": "F3", "classes": set()}}
        report = await sync(db, back, template, reader=scope)
        assert report.ok and [r.action.message for r in report.results] == ["new_students"]
        assert (await db.rows())["3"]["active"]
        assert await plan(db, back, **scope) == []

    async def test_keep(self, db: DB) -> None:
        """``on_old='keep'`` skips removals (with no safety limit: nothing is removed)."""
        await db.students_table()
        await db.insert([{"idnumber": str(i), "first": "x", "classes": ""} for i in range(5)])
        template = SQLTemplate(db.url, tables={"students": db.table}, on_old="keep")
        report = await sync(db, {"0": {"first": "x", "classes": set()}}, template)
        assert report.totals == {Outcome.SKIPPED: 4}
        assert {r.reason for r in report.results} == {"on_old=keep"}
        assert len(await db.rows()) == 5

    async def test_deletes_respect_max_deletes(self, db: DB) -> None:
        """The inherited safety limit stops a run that would delete most of the table."""
        from synctree import SafetyLimitExceeded

        await db.students_table()
        await db.insert([{"idnumber": str(i), "first": "x", "classes": ""} for i in range(10)])
        with pytest.raises(SafetyLimitExceeded):
            await sync(db, {"0": {"first": "x", "classes": set()}})
        assert len(await db.rows()) == 10

    async def test_add_and_remove_members(self, db: DB) -> None:
        """Set members added and removed rewrite the object's column once."""
        await db.students_table()
        await db.insert(
            [
                {"idnumber": "1", "first": "Ann", "grade": 7, "classes": "bio;math"},
                {"idnumber": "2", "first": "Bob", "grade": 8, "classes": "x"},
                {"idnumber": "3", "first": "Cleo", "grade": 7, "classes": "math"},
            ]
        )
        report = await sync(db, STUDENTS)
        assert report.ok, report
        counts = {m: sum(c.values()) for m, c in report.counts.items()}
        assert counts == {"add_students_classes": 1, "remove_students_classes": 2}
        rows = await db.rows()
        assert (rows["1"]["classes"], rows["2"]["classes"]) == ("art;math", "")
        assert await plan(db, STUDENTS) == []

    async def test_many_members_of_one_object(self, db: DB) -> None:
        """An object gaining several members (one action each, in turn) converges."""
        await db.students_table()
        await db.insert([{"idnumber": "1", "first": "Ann", "classes": "a"}])
        source = {"1": {"first": "Ann", "classes": {"b", "c", "d"}}}
        report = await sync(db, source)
        assert report.ok and report.totals == {Outcome.SUCCEEDED: 4}
        assert (await db.rows())["1"]["classes"] == "b;c;d"
        assert await plan(db, source) == []

    async def test_member_with_separator_fails_that_object(self, db: DB) -> None:
        """A member holding the separator cannot be stored: that object fails, others land."""
        await db.students_table()
        source = {"1": {"first": "A", "classes": {"a;b"}}, "2": {"first": "B", "classes": {"c"}}}
        report = await sync(db, source)
        assert [f.action.idnumber for f in report.failures] == ["1"]
        assert "separator" in str(report.failures[0].error)
        assert sorted(await db.rows()) == ["2"]

    async def test_failing_row_in_a_batch(self, db: DB) -> None:
        """One bad row fails with its database error; the rest of its batch lands."""
        await db.students_table()
        source = {str(i): {"first": f"F{i}", "grade": i} for i in range(10)}
        source["3"]["first"] = None  # NOT NULL
        source["7"]["first"] = None
        report = await sync(db, source)
        assert sorted(f.action.idnumber for f in report.failures) == ["3", "7"]
        assert all(isinstance(f.error, sa.exc.IntegrityError) for f in report.failures)
        assert report.totals[Outcome.SUCCEEDED] == 8
        assert sorted(await db.rows()) == ["0", "1", "2", "4", "5", "6", "8", "9"]

    async def test_failing_update_in_a_batch(self, db: DB) -> None:
        """Updates too: the bad one fails, the others land."""
        await db.students_table()
        await db.insert([{"idnumber": str(i), "first": "old"} for i in range(4)])
        source: dict[str, dict[str, Any]] = {str(i): {"first": "new"} for i in range(4)}
        source["2"]["first"] = None
        report = await sync(db, source)
        assert [f.action.idnumber for f in report.failures] == ["2"]
        rows = await db.rows()
        assert [rows[k]["first"] for k in "0123"] == ["new", "new", "old", "new"]

    async def test_update_of_a_vanished_row(self, db: DB) -> None:
        """An update whose row is gone fails with LookupError; the others land."""
        await db.students_table()
        await db.insert([{"idnumber": "1", "first": "old"}])
        tree = make_tree(
            {"1": {"first": "new"}, "2": {"first": "new"}},
            {"1": {"first": "old"}, "2": {"first": "old"}},
        )
        template = SQLTemplate(db.url, tables={"students": db.table})
        report = await ((tree.source > tree.destination) | template)
        assert [f.action.idnumber for f in report.failures] == ["2"]
        assert isinstance(report.failures[0].error, LookupError)
        assert (await db.rows())["1"]["first"] == "new"

    async def test_new_is_an_upsert(self, db: DB) -> None:
        """A create for a row that exists already (a stale read) overwrites it."""
        await db.students_table()
        await db.insert([{"idnumber": "1", "first": "old", "grade": 1}])
        tree = make_tree({"1": {"first": "new", "grade": 2}, "2": {"first": "b", "grade": 3}})
        template = SQLTemplate(db.url, tables={"students": db.table})
        report = await ((tree.source > tree.destination) | template)
        assert report.ok and report.totals == {Outcome.SUCCEEDED: 2}
        rows = await db.rows()
        assert (rows["1"]["first"], rows["1"]["grade"]) == ("new", 2)

    async def test_model_with_derived_attributes(self, db: DB) -> None:
        """A model's derived attributes are written; one it cannot derive fails that object."""

        class SISStudent(Leaf):
            @property
            def first(self) -> str:
                return str(self._lastfirst.split(",")[1].strip())

        await db.students_table()
        tree = SyncTree(
            ["source", "destination"], ["students"], models={"source": {"students": SISStudent}}
        )
        tree.new("source", "students", "1", _lastfirst="Shmoe, Joe", grade=7)
        tree.new("source", "students", "2", _lastfirst="no comma", grade=8)
        template = SQLTemplate(db.url, tables={"students": db.table})
        report = await ((tree.source > tree.destination) | template)
        assert [f.action.idnumber for f in report.failures] == ["2"]
        assert "IndexError" in str(report.failures[0].error)
        rows = await db.rows()
        assert (rows["1"]["first"], rows["1"]["grade"]) == ("Joe", 7) and "2" not in rows

    async def test_small_batches(self, db: DB) -> None:
        """``batch_size`` sets the batch of every generic method for this instance."""
        await db.students_table()
        source = {str(i): {"first": f"F{i}", "grade": i} for i in range(25)}
        source["11"]["first"] = None
        template = SQLTemplate(db.url, tables={"students": db.table}, batch_size=4)
        assert template.batch_size == 4  # the executemany sizes: TestBatchSize
        report = await sync(db, source, template)
        assert [f.action.idnumber for f in report.failures] == ["11"]
        assert len(await db.rows()) == 24

    async def test_integer_key(self, db: DB) -> None:
        """An integer key column gets ``int(idnumber)``."""
        await db.create(
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("first", sa.String(50)),
        )
        await db.insert([{"id": 1, "first": "old"}, {"id": 2, "first": "gone"}])
        tree = make_tree({"1": {"first": "new"}, "3": {"first": "c"}})
        await tree.load(destination={"students": SQLReader(db.url, table=db.table, key="id")})
        template = SQLTemplate(db.url, tables={"students": db.table}, key="id")
        report = await (tree.source > tree.destination).run(template, max_deletes=None)
        assert report.ok, report
        assert await db.rows("id") == {1: {"id": 1, "first": "new"}, 3: {"id": 3, "first": "c"}}

    async def test_key_per_subbranch(self, db: DB) -> None:
        """``key`` and ``tables`` map subbranches to their table and key column."""
        await db.create(
            sa.Column("code", sa.String(20), primary_key=True), sa.Column("name", sa.Text)
        )
        tree = SyncTree(["source", "destination"], ["classes"])
        tree.new("source", "classes", "M1", name="Math")
        template = SQLTemplate(db.url, tables={"classes": db.table}, key={"classes": "code"})
        report = await ((tree.source > tree.destination) | template)
        assert report.ok
        assert await db.rows("code") == {"M1": {"code": "M1", "name": "Math"}}

    async def test_dry_run_changes_nothing(self, db: DB) -> None:
        """A dry run plans every action and leaves the table alone."""
        await db.students_table()
        await db.insert([{"idnumber": "2", "first": "Bobby", "classes": ""}])
        before = await db.rows()
        report = await sync(db, STUDENTS, dry_run=True)
        assert report.totals == {Outcome.PLANNED: 3}
        assert await db.rows() == before

    async def test_given_engine_is_not_disposed(self, db: DB) -> None:
        """A template given an AsyncEngine leaves it open after the run."""
        await db.students_table()
        template = SQLTemplate(db.engine, tables={"students": db.table})
        report = await sync(db, STUDENTS, template)
        assert report.ok
        assert len(await db.rows()) == 3  # the engine still works

    async def test_template_can_run_twice(self, db: DB) -> None:
        """One template instance serves several runs (it disposes and reopens its engine)."""
        await db.students_table()
        template = SQLTemplate(db.url, tables={"students": db.table})
        assert (await sync(db, STUDENTS, template)).ok
        changed = {**STUDENTS, "4": {"first": "Dan", "grade": 9, "classes": set()}}
        assert (await sync(db, changed, template)).ok
        assert await plan(db, changed) == []


#: Pairs of attribute sets for new objects in one batch (the first one twice).
SHAPES: dict[str, list[dict[str, Any]]] = {
    "fewer-first": [{"first": "a"}, {"first": "b", "grade": 2}],
    "more-first": [{"first": "a", "grade": 1}, {"first": "b"}],
    "other-names": [{"first": "a", "grade": 1}, {"first": "b", "classes": {"y", "x"}}],
    "private-first": [{"first": "a", "_note": 1}, {"first": "b", "grade": 2}],
    "private-alike": [{"first": "a", "_note": 1}, {"first": "b", "_note": 2}],
}


class TestNewRows:
    """Batches of new objects that cannot all be bound alike still bind each row right."""

    async def test_some_rows_hold_collections(self, db: DB) -> None:
        """Sets and lists are joined in the rows that hold them; text is left alone."""
        await db.students_table()
        source: dict[str, dict[str, Any]] = {
            str(i): {"first": f"F{i}", "classes": f"t{i}"} for i in range(6)
        }
        source["2"]["classes"] = {"b", "a"}
        source["4"]["classes"] = ["z", "y"]
        report = await sync(db, source)
        assert report.ok and report.totals == {Outcome.SUCCEEDED: 6}
        rows = await db.rows()
        classes = [rows[str(i)]["classes"] for i in range(6)]
        assert classes == ["t0", "t1", "a;b", "t3", "z;y", "t5"]

    @pytest.mark.parametrize("shapes", SHAPES.values(), ids=list(SHAPES))
    async def test_rows_of_different_shapes(self, db: DB, shapes: list[dict[str, Any]]) -> None:
        """Each row writes its own attributes and leaves the table's other columns alone."""
        await db.students_table()
        old = {"first": "old", "grade": 9, "classes": "old"}
        await db.insert([{"idnumber": key, **old} for key in "123"])
        source = dict(zip("123", [*shapes, shapes[0]], strict=True))
        tree = make_tree(source)
        template = SQLTemplate(db.url, tables={"students": db.table})
        report = await ((tree.source > tree.destination) | template)
        assert report.ok and report.totals == {Outcome.SUCCEEDED: 3}
        rows = await db.rows()
        for key, attributes in source.items():
            written = {"classes": "x;y"} if "classes" in attributes else {}
            expected = {**old, **attributes, **written}
            assert {name: rows[key][name] for name in old} == {name: expected[name] for name in old}

    async def test_integer_key_that_is_not_a_number(self, db: DB) -> None:
        """An idnumber an integer key column cannot take stops the run before any write."""
        await db.create(
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("first", sa.String(50)),
        )
        tree = make_tree({"1": {"first": "a"}, "x": {"first": "b"}, "3": {"first": "c"}})
        template = SQLTemplate(db.url, tables={"students": db.table}, key="id")
        with pytest.raises(RoundTripError, match="'x'"):
            await ((tree.source > tree.destination) | template)
        assert await db.rows("id") == {}

    async def test_action_without_source(self, db: DB) -> None:
        """A new action without its source object fails alone; the others land."""
        await db.students_table()
        tree = make_tree({"1": {"first": "a"}, "2": {"first": "b"}, "3": {"first": "c"}})
        actions = list(tree.source > tree.destination)
        actions[1] = Action(actions[1].idnumber, actions[1].message)
        template = SQLTemplate(db.url, tables={"students": db.table})
        await template.before_all()
        try:
            outcomes = await template.new(actions)
        finally:
            await template.after_all(Report())
        assert outcomes[0] is None and outcomes[2] is None
        assert isinstance(outcomes[1], ValueError) and "source object" in str(outcomes[1])
        assert sorted(await db.rows()) == ["1", "3"]


class TestTemplateTables:
    async def test_create_tables(self, db: DB) -> None:
        """``create_tables=True`` makes the table from the source's attributes and types."""
        source = {
            "1": {
                "first": "Ann",
                "grade": 7,
                "gpa": 3.5,
                "enrolled": True,
                "born": dt.date(2010, 5, 17),
                "classes": {"art", "math"},
                "nick": None,
            },
            "2": {
                "first": "Bob",
                "grade": 8,
                "gpa": 2.25,
                "enrolled": False,
                "born": dt.date(2011, 1, 2),
                "classes": set(),
                "nick": "B",
            },
        }
        template = SQLTemplate(db.url, tables={"students": db.table}, create_tables=True)
        report = await sync(db, source, template)
        assert report.ok, report
        types = {"classes": set, "enrolled": bool}
        assert await plan(db, source, types=types) == []
        rows = await db.rows()
        assert rows["1"]["born"] == dt.date(2010, 5, 17)
        assert rows["1"]["grade"] == 7 and rows["2"]["gpa"] == 2.25

    async def test_create_tables_with_active_column(self, db: DB) -> None:
        """With ``on_old='deactivate'``, a created table gets the active column too."""
        template = SQLTemplate(
            db.url, tables={"students": db.table}, create_tables=True, on_old="deactivate"
        )
        source = {"1": {"first": "Ann"}, "2": {"first": "Bob"}}
        scope = {"where": {"active": True}, "types": {"active": bool}}
        assert (await sync(db, source, template, reader=scope)).ok
        rows = await db.rows()
        assert rows["1"]["active"] and rows["2"]["active"]
        report = await sync(db, {"1": {"first": "Ann"}}, template, scope, max_deletes=None)
        assert report.ok and not (await db.rows())["2"]["active"]

    async def test_missing_table(self, db: DB) -> None:
        """Without ``create_tables``, a missing table fails the actions with a ConfigError."""
        report = await sync(db, STUDENTS)
        assert len(report.failures) == 3
        error = report.failures[0].error
        assert isinstance(error, ConfigError) and "create_tables=True" in str(error)
        assert db.table in str(error)

    async def test_missing_key_column(self, db: DB) -> None:
        """A table without the key column is a ConfigError naming it."""
        await db.create(sa.Column("id", sa.String(20), primary_key=True))
        report = await sync(db, {"1": {}}, reader={"key": "id", "types": {}})
        error = report.failures[0].error
        assert isinstance(error, ConfigError) and "key 'idnumber'" in str(error)

    async def test_unknown_column(self, db: DB) -> None:
        """An attribute the table has no column for fails those objects, naming it."""
        await db.students_table()
        report = await sync(db, {"1": {"first": "A", "shoe_size": 42}, "2": {"first": "B"}})
        assert [f.action.idnumber for f in report.failures] == ["1"]
        assert "no column 'shoe_size'" in str(report.failures[0].error)
        assert sorted(await db.rows()) == ["2"]

    async def test_deactivate_needs_the_column(self, db: DB) -> None:
        """``on_old='deactivate'`` on a table without the active column is a ConfigError."""
        await db.create(sa.Column("idnumber", sa.String(20), primary_key=True))
        await db.insert([{"idnumber": "1"}, {"idnumber": "2"}])
        template = SQLTemplate(db.url, tables={"students": db.table}, on_old="deactivate")
        report = await sync(db, {"1": {}}, template, reader={"types": {}}, max_deletes=None)
        error = report.failures[0].error
        assert isinstance(error, ConfigError) and "'active'" in str(error)


class TestSQLite:
    async def test_round_trip(self, sqlite_db: DB) -> None:
        """tree → SQLite → SQLReader gives back the same tree."""
        source = {
            str(i): {
                "first": f"F{i}",
                "grade": i % 13,
                "gpa": i / 4,
                "active": i % 2 == 0,
                "born": dt.date(2010, 1, 1) + dt.timedelta(days=i),
                "classes": {f"c{i % 3}", f"c{i % 5}"},
            }
            for i in range(500)
        }
        template = SQLTemplate(
            sqlite_db.url, tables={"students": sqlite_db.table}, create_tables=True
        )
        report = await sync(sqlite_db, source, template)
        assert report.ok and report.totals == {Outcome.SUCCEEDED: 500}
        tree = make_tree({})
        reader = SQLReader(sqlite_db.url, table=sqlite_db.table, key="idnumber", types=TYPES)
        await tree.load(source={"students": reader})
        assert {leaf.idnumber: leaf.to_dict() for leaf in tree.source.students} == source

    async def test_busy_database_is_retried(
        self, sqlite_db: DB, tmp_path: Path, anyio_backend: str
    ) -> None:
        """A locked database (another writer) retries the batch instead of failing it."""
        await sqlite_db.students_table()
        path = tmp_path / "school.db"
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # hold the write lock
        released: list[float] = []

        async def sleep(delay: float) -> None:
            released.append(delay)
            if other.in_transaction:
                other.execute("COMMIT")

        engine = make_engine(sqlite_db.url, anyio_backend, connect_args={"timeout": 0.01})
        try:
            template = SQLTemplate(engine, tables={"students": sqlite_db.table})
            report = await sync(sqlite_db, STUDENTS, template, sleep=sleep)
        finally:
            await dispose(engine)
            other.close()
        assert report.ok and len(released) == 1
        assert all(r.attempts == 2 for r in report.results)
        assert len(await sqlite_db.rows()) == 3

    async def test_bad_options(self, sqlite_url: str) -> None:
        """Options are checked when the template is made, naming the parameter."""
        cases: list[tuple[dict[str, Any], str]] = [
            ({"on_old": "drop"}, "'on_old'"),
            ({"batch_size": 0}, "'batch_size'"),
            ({"separator": ""}, "'separator'"),
            ({"tables": {"students": ""}}, "'tables'"),
            ({"key": ""}, "'key'"),
            ({"create_tables": "yes"}, "'create_tables'"),
        ]
        for options, param in cases:
            with pytest.raises(ValueError, match=param):
                SQLTemplate(sqlite_url, **options)

    async def test_default_batch_sizes(self, sqlite_url: str) -> None:
        """SQLite batches 10,000 actions per transaction (a commit waits for the disk)."""
        assert SQLTemplate(sqlite_url).batch_size == 10_000
        assert SQLTemplate(sqlite_url, batch_size=10).batch_size == 10
        assert SQLTemplate("postgresql+asyncpg://u@h/db").batch_size == 1000


class TestBatchSize:
    """The generic methods take batches of the instance's ``batch_size`` (executemany sizes)."""

    @staticmethod
    def inserts(tables: list[str]) -> tuple[Callable[[], None], dict[str, list[int]]]:
        """Record the row count of every INSERT into ``tables`` (a batch of one is no
        executemany); and a function that stops recording."""
        sizes: dict[str, list[int]] = {table: [] for table in tables}

        def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
            match = re.match(r"\s*INSERT INTO [`\"]?(\w+)", sql, re.IGNORECASE)
            if match and match[1] in sizes:
                sizes[match[1]].append(len(params) if many else 1)

        sa.event.listen(sa.Engine, "before_cursor_execute", record)
        return lambda: sa.event.remove(sa.Engine, "before_cursor_execute", record), sizes

    async def test_batches_of_batch_size(self, db: DB) -> None:
        """``batch_size=4`` writes 10 new rows as executemany calls of 4, 4 and 2."""
        await db.students_table()
        source = {str(i): {"first": f"F{i}"} for i in range(10)}
        stop, sizes = self.inserts([db.table])
        try:
            template = SQLTemplate(db.url, tables={"students": db.table}, batch_size=4)
            report = await sync(db, source, template)
        finally:
            stop()
        assert report.ok, report
        assert sorted(sizes[db.table]) == [2, 4, 4]
        assert len(await db.rows()) == 10

    async def test_two_instances_do_not_interfere(self, sqlite_db: DB) -> None:
        """Two templates with different sizes, run at once, each keep their own."""
        second = sqlite_db.name("second")
        await sqlite_db.students_table()
        await sqlite_db.create(
            sa.Column("idnumber", sa.String(64), primary_key=True),
            sa.Column("first", sa.String(50)),
            table=second,
        )
        source = {str(i): {"first": f"F{i}"} for i in range(10)}
        stop, sizes = self.inserts([sqlite_db.table, second])

        templates: list[SQLTemplate] = []

        async def run(table: str, size: int) -> None:
            tree = make_tree(source)
            template = SQLTemplate(sqlite_db.url, tables={"students": table}, batch_size=size)
            templates.append(template)
            report = await (tree.source > tree.destination).run(template)
            assert report.ok, report

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(run, sqlite_db.table, 4)
                group.start_soon(run, second, 3)
        finally:
            stop()
        assert sorted(sizes[sqlite_db.table]) == [2, 4, 4]
        assert sorted(sizes[second]) == [1, 3, 3, 3]
        for template in templates:  # no method is rebound on the instance
            assert not {"new", "update", "old", "add", "remove"} & vars(template).keys()


ASYNC_SERVERS = [
    pytest.param("postgresql+asyncpg://someone:s3cret-pw@127.0.0.1:1/db", "psycopg", id="pg"),
    pytest.param("mysql+asyncmy://someone:s3cret-pw@127.0.0.1:1/db", "pymysql", id="mysql"),
]


class TestBackends:
    """SQLite runs on both loops; the servers' async drivers on asyncio only."""

    @pytest.mark.parametrize("anyio_backend", ["trio"])
    @pytest.mark.parametrize(("url", "fix"), ASYNC_SERVERS)
    async def test_async_server_driver_reader_on_trio(self, url: str, fix: str) -> None:
        """Loading from a server through an async driver on trio fails, naming both fixes."""
        reader = SQLReader(url, table="students", key="id")
        with pytest.raises(ReaderError, match="async drivers run on asyncio only") as info:
            await make_tree({}).load(destination={"students": reader})
        assert isinstance(info.value.__cause__, ConfigError)
        message = str(info.value)
        assert "backend='asyncio'" in message and f"+{fix}://" in message
        assert "s3cret" not in message

    @pytest.mark.parametrize("anyio_backend", ["trio"])
    @pytest.mark.parametrize(("url", "fix"), ASYNC_SERVERS)
    async def test_async_server_driver_template_on_trio(self, url: str, fix: str) -> None:
        """Running a template on a server through an async driver on trio fails before any
        action; a dry run touches no database, so it works."""
        tree = make_tree(STUDENTS)
        with pytest.raises(ConfigError, match=f"SQLTemplate cannot use .* on trio.*{fix}"):
            await ((tree.source > tree.destination) | SQLTemplate(url))
        report = await (tree.source > tree.destination).run(SQLTemplate(url), dry_run=True)
        assert report.totals == {Outcome.PLANNED: 3}

    @pytest.mark.parametrize("anyio_backend", ["trio"])
    async def test_async_engine_on_trio(self, sqlite_url: str) -> None:
        """A given AsyncEngine cannot serve trio: a clear error, the engine left alone."""
        engine = create_async_engine(sqlite_url)
        tree = make_tree(STUDENTS)
        with pytest.raises(ConfigError, match="given an AsyncEngine, which runs on asyncio only"):
            await ((tree.source > tree.destination) | SQLTemplate(engine))
        reader = SQLReader(engine, table="students", key="id")
        with pytest.raises(ReaderError, match="given an AsyncEngine"):
            await make_tree({}).load(destination={"students": reader})

    async def test_sync_driver_url(self, sqlite_db: DB, monkeypatch: pytest.MonkeyPatch) -> None:
        """A URL naming a synchronous driver runs in worker threads, on either loop; the
        engines made for it are disposed."""
        disposed: list[str] = []
        real_dispose = sa.Engine.dispose

        def dispose(engine: sa.Engine, close: bool = True) -> None:
            disposed.append(engine.url.drivername)
            real_dispose(engine, close)

        monkeypatch.setattr(sa.Engine, "dispose", dispose)
        await sqlite_db.students_table()
        url = sqlite_db.url.replace("+aiosqlite", "+pysqlite")
        template = SQLTemplate(url, tables={"students": sqlite_db.table})
        report = await sync(sqlite_db, STUDENTS, template, reader={"key": "idnumber"})
        assert report.ok and report.totals == {Outcome.SUCCEEDED: 3}
        reader = SQLReader(url, table=sqlite_db.table, key="idnumber", types=TYPES)
        assert len(await read(reader)) == 3
        assert disposed.count("sqlite+pysqlite") == 2

    async def test_sync_engine(self, sqlite_db: DB, tmp_path: Path) -> None:
        """A given synchronous Engine runs in worker threads on either loop, and stays open."""
        await sqlite_db.students_table()
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'school.db'}")
        try:
            template = SQLTemplate(engine, tables={"students": sqlite_db.table})
            assert (await sync(sqlite_db, STUDENTS, template)).ok
            reader = SQLReader(engine, table=sqlite_db.table, key="idnumber", types=TYPES)
            assert len(await read(reader)) == 3
            with engine.connect() as conn:  # still open
                assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        finally:
            engine.dispose()

    def test_sync_engine_of_an_async_engine(self, sqlite_url: str) -> None:
        """An AsyncEngine's ``sync_engine`` is no synchronous engine: a clear error."""
        engine = create_async_engine(sqlite_url)
        with pytest.raises(ValueError, match="give the AsyncEngine itself"):
            SQLTemplate(engine.sync_engine)

    @pytest.mark.skipif(importlib.util.find_spec("psycopg") is not None, reason="installed")
    def test_sync_driver_not_installed(self) -> None:
        """A synchronous driver that is not installed is a ConfigError naming it."""
        with pytest.raises(ConfigError, match=r"not installed \(psycopg\)"):
            SQLTemplate("postgresql+psycopg://u@127.0.0.1/db")

    async def test_reader_cancelled_mid_load_closes_cleanly(
        self, tmp_path: Path, anyio_backend: str
    ) -> None:
        """A reader cancelled at any point by a failing sibling leaves no task behind (its
        connection closed, not left closing: "Event loop is closed" or a hang at exit)."""
        path = tmp_path / "school.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE users (idnumber TEXT PRIMARY KEY, name TEXT)")
            conn.executemany(
                "INSERT INTO users VALUES (?, ?)", [(f"s{i}", "x") for i in range(5000)]
            )
        conn.close()
        tasks = asyncio.all_tasks if anyio_backend == "asyncio" else set
        before = tasks()

        async def failing(steps: int) -> AsyncIterator[dict[str, Any]]:
            for _ in range(steps):
                await anyio.lowlevel.checkpoint()
            raise OSError(5, "Input/output error")
            yield {}

        for steps in range(30):
            tree = SyncTree(["source", "destination"], ["users"])
            reader = SQLReader(f"sqlite+aiosqlite:///{path}", table="users", key="idnumber")
            with pytest.raises(ReaderError, match="Input/output error"):
                await tree.load(source={"users": failing(steps)}, destination={"users": reader})
            assert tasks() == before, steps

    async def test_cancelled_batch_is_whole(self, sqlite_db: DB, anyio_backend: str) -> None:
        """A run cancelled during a batch (grace 0) lets the batch finish: written whole.

        On trio it runs in a worker thread, on asyncio in aiosqlite's: both uninterruptible.
        """
        await sqlite_db.students_table()
        engine = make_engine(sqlite_db.url, anyio_backend)
        sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
        scope = anyio.CancelScope()
        inserts: list[str] = []

        def cancel(*args: Any) -> None:
            """Cancel the run when the batch's first INSERT starts."""
            if not args[-1]:  # not an executemany
                return
            inserts.append(args[2])
            if len(inserts) > 1:
                return
            if threading.current_thread() is threading.main_thread():
                scope.cancel()  # asyncio: the greenlet runs in the event loop's thread
            else:
                anyio.from_thread.run_sync(scope.cancel)

        sa.event.listen(sync_engine, "before_cursor_execute", cancel)
        # Two shapes of rows: two INSERTs in the one transaction of the batch.
        source = {str(i): {"first": f"F{i}", **({"grade": i} if i % 2 else {})} for i in range(6)}
        tree = make_tree(source)
        template = SQLTemplate(engine, tables={"students": sqlite_db.table})
        try:
            with scope:
                await (tree.source > tree.destination).run(template, grace=0)
        finally:
            await dispose(engine)
        assert scope.cancelled_caught
        count = len(await sqlite_db.rows())
        assert (count, len(inserts)) == (6, 2)
