"""The units of work of :class:`SQLTemplate`: the rows of a batch written in one transaction.

A batch is a list of :class:`Rows`, one executemany each (an upsert, an UPDATE
of one set of columns, a DELETE), all in one transaction.  If it fails for
some rows, it is rolled back and written again in one transaction with a
savepoint per half, halving down to single rows (bisection): the bad rows fail
with their database error, the others land.  A transient failure (see
:func:`._errors.transient`) raises :class:`~synctree.aio.Retry` for the batch.

The functions taking a ``sa.Connection`` are synchronous; :class:`.Database`
runs each in one transaction without blocking the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from synctree.aio import Retry

from ._database import Database
from ._errors import transient
from ._tables import Statement, Target

__all__ = ["Rows", "execute"]


@dataclass(slots=True)
class Rows:
    """The rows one statement writes, in parallel lists (sliced, never copied row by row).

    ``check``: an UPDATE, each of whose rows must find its row in the table; it
    needs ``keys`` (the rows' key values), which are left empty otherwise.
    """

    statement: Statement
    check: bool = False
    #: The action index of each row.
    indexes: list[int] = field(default_factory=list)
    keys: list[Any] = field(default_factory=list)
    #: The driver parameters of each row, handed to ``executemany`` as they are.
    params: list[Any] = field(default_factory=list)

    def halves(self) -> tuple[Rows, Rows]:
        """The first and the second half, to write in a savepoint each."""
        middle = len(self.params) // 2
        return self._part(slice(None, middle)), self._part(slice(middle, None))

    def _part(self, part: slice) -> Rows:
        return Rows(
            self.statement, self.check, self.indexes[part], self.keys[part], self.params[part]
        )


async def execute(db: Database, target: Target, work: list[Rows], outcomes: list[object]) -> None:
    """Write ``work`` in one transaction; if that fails, again, halving in savepoints.

    Failures land in ``outcomes`` (by action index); transient ones raise
    :class:`Retry` for the whole batch.
    """
    work = [rows for rows in work if rows.params]
    if not work:
        return
    try:
        failures = await db.transaction(_write_all, target, work)
    except sa_exc.DBAPIError as exc:
        if transient(exc):
            raise Retry(reason=db.describe(exc)) from exc
        if sum(len(rows.params) for rows in work) == 1:
            failures = {work[0].indexes[0]: exc}
        else:
            try:
                failures = await db.transaction(_bisected, target, work)
            except sa_exc.DBAPIError as again:
                if transient(again):
                    raise Retry(reason=db.describe(again)) from again
                raise
    for index, error in failures.items():
        outcomes[index] = error


def _write_all(conn: sa.Connection, target: Target, work: list[Rows]) -> dict[int, Exception]:
    """Every statement of ``work``; the failures of rows an UPDATE found no match for."""
    failures: dict[int, Exception] = {}
    _begin(conn)
    for rows in work:
        _write(conn, target, rows, failures)
    return failures


def _bisected(conn: sa.Connection, target: Target, work: list[Rows]) -> dict[int, Exception]:
    """:func:`_write_all` with a savepoint per part, halving failed parts down to single rows."""
    failures: dict[int, Exception] = {}

    def part(rows: Rows) -> None:
        try:
            with conn.begin_nested():
                _write(conn, target, rows, failures)
        except sa_exc.DBAPIError as exc:
            if transient(exc) or not conn.in_transaction():
                raise
            if len(rows.params) == 1:
                failures[rows.indexes[0]] = exc
                return
            for half in rows.halves():
                part(half)

    _begin(conn)
    for rows in work:
        part(rows)
    return failures


def _begin(conn: sa.Connection) -> None:
    """Really begin the transaction on SQLite.

    Python's sqlite3 begins one only before the first INSERT/UPDATE/DELETE, so a
    SAVEPOINT before that would be committed by its own RELEASE.  BEGIN IMMEDIATE
    also takes the write lock up front (waiting on a busy database).
    """
    if conn.dialect.name != "sqlite":
        return
    if not getattr(conn.connection.driver_connection, "in_transaction", True):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _write(conn: sa.Connection, target: Target, rows: Rows, failures: dict[int, Exception]) -> None:
    """One executemany; for an UPDATE, the rows it found no match for fail."""
    result = conn.exec_driver_sql(rows.statement.sql, rows.params)
    if not rows.check:
        return
    count = len(rows.params)
    sane = conn.dialect.supports_sane_multi_rowcount or count == 1
    if sane and result.rowcount == count:
        return
    found: set[Any] = set()
    keys = rows.keys
    for start in range(0, count, 500):
        chunk = keys[start : start + 500]
        selected = conn.execute(sa.select(target.key).where(target.key.in_(chunk)))
        found.update(row[0] for row in selected)
    for index, value in zip(rows.indexes, keys, strict=True):
        if value not in found:
            failures[index] = LookupError(
                f"table {target.name!r} has no row with {target.key.name} = {value!r} "
                f"(removed since the destination was read?)"
            )
