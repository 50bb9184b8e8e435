"""The test databases: SQLite files, and PostgreSQL and MariaDB when their URLs are set.

SQLite (a file in ``tmp_path``) always; PostgreSQL and MariaDB when
``SYNCTREE_TEST_POSTGRES_URL`` / ``SYNCTREE_TEST_MYSQL_URL`` are set (``.ci/run``
sets them).  :class:`DB` gives every test its own table and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

T = TypeVar("T")
SERVERS = {"postgresql": "SYNCTREE_TEST_POSTGRES_URL", "mysql": "SYNCTREE_TEST_MYSQL_URL"}


def _server(name: str) -> Any:
    variable = SERVERS[name]
    return pytest.param(
        "asyncio",
        name,
        id=f"asyncio-{name}",
        marks=pytest.mark.skipif(not os.environ.get(variable), reason=f"{variable} is not set"),
    )


#: (event loop, database) pairs for the tests that use a database.
CASES = [("asyncio", "sqlite"), ("trio", "sqlite"), _server("postgresql"), _server("mysql")]


def make_engine(url: str, backend: str, **options: Any) -> sa.Engine | AsyncEngine:
    """An AsyncEngine on asyncio; on trio, a synchronous SQLite engine (``sqlite3``)."""
    if backend == "asyncio":
        return create_async_engine(url, **options)
    return sa.create_engine(url.replace("+aiosqlite", ""), **options)


async def dispose(engine: sa.Engine | AsyncEngine) -> None:
    if isinstance(engine, AsyncEngine):
        await engine.dispose()
    else:
        engine.dispose()


class DB:
    """A test database: a unique table name, and helpers to set it up and look inside."""

    def __init__(self, url: str, engine: sa.Engine | AsyncEngine) -> None:
        self.url = url
        self.engine = engine
        self.table = f"st_{uuid.uuid4().hex[:12]}"
        self.created: list[str] = [self.table]

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    def name(self, suffix: str) -> str:
        """Another unique table name, dropped at the end too."""
        name = f"{self.table}_{suffix}"
        self.created.append(name)
        return name

    async def run(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn(connection)`` in a transaction, on either kind of engine."""
        engine = self.engine
        if isinstance(engine, AsyncEngine):
            async with engine.begin() as conn:
                return await conn.run_sync(fn)

        def call() -> T:
            with engine.begin() as conn:
                return fn(conn)

        return await anyio.to_thread.run_sync(call)

    def _reflect(self, conn: sa.Connection, table: str | None) -> sa.Table:
        return sa.Table(table or self.table, sa.MetaData(), autoload_with=conn)

    async def create(self, *columns: sa.Column[Any], table: str | None = None) -> None:
        """Create the table (by default ``self.table``) with these columns."""
        made = sa.Table(table or self.table, sa.MetaData(), *columns)
        await self.run(made.create)

    async def students_table(self) -> None:
        """The usual table: key, a NOT NULL ``first``, ``grade``, ``classes``, ``active``."""
        await self.create(
            sa.Column("idnumber", sa.String(64), primary_key=True),
            sa.Column("first", sa.String(50), nullable=False),
            sa.Column("grade", sa.Integer),
            sa.Column("classes", sa.Text),
            sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        )

    async def insert(self, rows: list[dict[str, Any]], table: str | None = None) -> None:
        await self.run(lambda conn: conn.execute(sa.insert(self._reflect(conn, table)), rows))

    async def rows(
        self, key: str = "idnumber", table: str | None = None
    ) -> dict[Any, dict[str, Any]]:
        """Every row, ``{key: {column: value}}``."""

        def select(conn: sa.Connection) -> dict[Any, dict[str, Any]]:
            result = conn.execute(sa.select(self._reflect(conn, table)))
            return {row[key]: dict(row) for row in result.mappings()}

        return await self.run(select)

    async def drop(self) -> None:
        def drop(conn: sa.Connection) -> None:
            for name in self.created:
                sa.Table(name, sa.MetaData()).drop(conn, checkfirst=True)

        await self.run(drop)
