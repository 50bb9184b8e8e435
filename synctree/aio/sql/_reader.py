"""Stream rows out of a SQL table or query: :class:`SQLReader`.

Each pass (:meth:`SQLReader.batches`) opens its own connection and server-side
cursor and keeps its state in local variables, so one reader can be read twice
at once; each :class:`~synctree.aio.Batch` names the database (without its
password), the row numbers and the key column(s).
"""

from __future__ import annotations

import datetime
import functools
import operator
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeAlias

import anyio
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from synctree import InputError
from synctree._util.members import decode_members
from synctree.aio import Batch, Row, Table

from ._database import Database, EngineLike

__all__ = ["SQLReader"]

Converter: TypeAlias = "type | Callable[[Any], Any]"
#: Conversions a table's column types call for: column -> function.
Implied: TypeAlias = dict[str, Callable[[Any], Any]]

_COLLECTIONS: tuple[type, ...] = (set, frozenset, list, tuple)
_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "t": True, "f": False}
_BOOL_WORDS |= {"y": True, "n": False, "1": True, "0": False}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    raise ValueError(f"cannot convert {value!r} to bool")


def _text_of_members(value: Any, separator: str) -> Any:
    """A set- or list-valued cell, kept as its text (``Batch.encoded``); checked only."""
    if value is None or value.__class__ is str:
        return value
    return decode_members(value, set, separator)  # not text: raises, saying what it got


def _to_date(value: Any) -> datetime.date:
    """A date from a DATE column, or from ISO text (a column typed TEXT, SQLite's dates)."""
    if isinstance(value, datetime.datetime):
        raise ValueError(f"cannot convert {value!r} to a date (it has a time)")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        return datetime.date.fromisoformat(value.strip())
    raise ValueError(f"cannot convert {value!r} to a date")


def _to_datetime(value: Any) -> datetime.datetime:
    """A datetime from a DATETIME column, or from ISO text."""
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value.strip())
    raise ValueError(f"cannot convert {value!r} to a datetime")


_CONVERSIONS: dict[Any, Callable[[Any], Any]] = {
    bool: _to_bool,
    datetime.date: _to_date,
    datetime.datetime: _to_datetime,
}


def _converter(kind: Converter, separator: str) -> Callable[[Any], Any]:
    """``value -> converted``; called for every value, ``None`` included."""
    if isinstance(kind, type) and kind in _COLLECTIONS:
        return lambda value: _text_of_members(value, separator)
    convert = _CONVERSIONS.get(kind, kind)
    return lambda value: None if value is None else convert(value)


def _as_written(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """``column``, read as the Python type written: a float column gives floats.

    (MySQL/MariaDB's DOUBLE reflects with ``asdecimal=True``, which would give
    ``Decimal('0.1000000000')`` for the ``0.1`` written, unequal to it.)
    """
    kind = column.type
    if isinstance(kind, sa.Float) and kind.asdecimal:
        return sa.type_coerce(column, sa.Double()).label(column.name)
    return column


def _is_mysql_boolean(kind: sa.types.TypeEngine[Any]) -> bool:
    """MySQL/MariaDB's BOOLEAN, which is TINYINT(1): read as bool (0/1 only)."""
    # Only when the dialect is loaded (by a MySQL engine) can a column be of its types.
    mysql = sys.modules.get("sqlalchemy.dialects.mysql")
    return (
        mysql is not None
        and isinstance(kind, mysql.TINYINT)
        and getattr(kind, "display_width", None) == 1
    )


def _stream(conn: sa.Connection, statement: sa.Executable) -> sa.CursorResult[Any]:
    """Execute ``statement`` with a server-side cursor where the driver has one."""
    return conn.execution_options(stream_results=True).execute(statement)


def _fetch(conn: sa.Connection, result: sa.CursorResult[Any], size: int) -> Sequence[Any]:
    return result.fetchmany(size)


def _close(conn: sa.Connection, result: sa.CursorResult[Any]) -> None:
    result.close()


def _names(value: object, param: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{param!r} must be a column name or a sequence of them, not {value!r}")
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"{param!r} names a column twice: {names!r}")
    return names


class SQLReader:
    """Read the rows of a table (or a query) as dicts, for :meth:`SyncTree.load`.

    Rows are streamed in partitions of ``batch_size`` (:meth:`batches`).  The key
    column(s) become ``'idnumber'`` (``str(value)``; several are joined with
    ``key_separator``) and leave the attributes.  Other values keep their
    database types (an ``INTEGER`` stays ``int``, a ``DATE`` read through a table
    is a ``date``, a float column gives ``float`` on every backend, MySQL's
    ``BOOLEAN``, a ``TINYINT(1)``, gives ``bool``), so the source must type its
    columns the same way for the diff to compare them (``CSVReader(types=...)``).
    Values of a raw text query come as the driver gives them (SQLite gives dates
    as text).

    Runs on asyncio and on trio; on trio, SQLite only, unless the URL names a
    synchronous driver (see :mod:`synctree.aio.sql._database`).

    :param url: a URL (``'sqlite+aiosqlite:///school.db'``,
        ``'postgresql+asyncpg://...'``, ``'mysql+asyncmy://...'``; a URL without a
        driver gets the async default), or an ``AsyncEngine`` or ``Engine``, which
        is then not disposed.
    :param table: the table to read; or give ``query``: SQL text, a ``text()``
        clause or a ``select()``.
    :param key: the key column, or several.
    :param columns: keep only these columns (the key columns are always read).
    :param where: ``{column: value}``, an equality filter: rows outside it are
        not loaded, so synctree neither updates nor removes them (a scope).
    :param types: per column, a conversion of the database value: ``set``,
        ``frozenset``, ``list`` or ``tuple`` split text on ``separator`` (as
        :class:`SQLTemplate` stores them; NULL gives an empty collection);
        ``bool`` accepts 0/1 (MySQL's ``BOOLEAN`` is a ``TINYINT``);
        ``datetime.date`` and ``datetime.datetime`` accept ISO text too (a
        column that ``create_tables`` typed TEXT because its first values were
        all NULL); any other
        callable gets each non-NULL value.
    :param missing_ok: read a missing table (or SQLite file) as empty: a
        destination that ``SQLTemplate(create_tables=True)`` is about to create.
    """

    #: The database, as its URL without the password.
    path: str

    def __init__(
        self,
        url: EngineLike,
        *,
        table: str | None = None,
        query: str | sa.TextClause | sa.Select[Any] | None = None,
        key: str | Sequence[str],
        columns: Sequence[str] | None = None,
        where: Mapping[str, object] | None = None,
        types: Mapping[str, Converter] | None = None,
        schema: str | None = None,
        separator: str = ";",
        key_separator: str = "|",
        missing_ok: bool = False,
        batch_size: int = 5000,
    ) -> None:
        if (table is None) == (query is None):
            raise ValueError("give exactly one of 'table' and 'query'")
        if table is not None and (not isinstance(table, str) or not table):
            raise ValueError(f"'table' must be a non-empty string, not {table!r}")
        if query is not None and not isinstance(query, str | sa.TextClause | sa.Select):
            raise ValueError(f"'query' must be SQL text, text() or select(), not {query!r}")
        self._keys = _names(key, "key")
        self._columns = None if columns is None else _names(columns, "columns")
        self._where = dict(where or {})
        if not all(isinstance(name, str) and name for name in self._where):
            raise ValueError(f"'where' must map column names to values, not {where!r}")
        for param, value in (("separator", separator), ("key_separator", key_separator)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{param!r} must be a non-empty string, not {value!r}")
        self._types: dict[str, Callable[[Any], Any]] = {}
        for name, kind in (types or {}).items():
            if not isinstance(name, str) or not callable(kind):
                raise ValueError(f"'types' must map column names to types or callables: {name!r}")
            if name in self._keys:
                raise ValueError(f"'types' converts key column {name!r}; keys become strings")
            self._types[name] = _converter(kind, separator)
        #: Set- and list-valued columns: the batches keep their text (``Batch.encoded``).
        self._encoded = {
            name: (kind, separator)
            for name, kind in (types or {}).items()
            if isinstance(kind, type) and kind in _COLLECTIONS
        }
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"'batch_size' must be an int >= 1, not {batch_size!r}")
        if not isinstance(missing_ok, bool):
            raise ValueError(f"'missing_ok' must be a bool, not {missing_ok!r}")
        self._table = table
        self._query = sa.text(query) if isinstance(query, str) else query
        self._schema = schema
        self._key_separator = key_separator
        self._missing_ok = missing_ok
        self._batch_size = batch_size
        self._db = Database(url, owner="SQLReader")
        self.path = self._db.name
        #: The key column(s), as an error names them.
        self._key_label = " + ".join(self._keys)

    def __repr__(self) -> str:
        what = f"table={self._qualified!r}" if self._table is not None else "query"
        return f"<SQLReader {self._db.name!r} {what} key={self._keys!r}>"

    @property
    def _qualified(self) -> str:
        assert self._table is not None
        return f"{self._schema}.{self._table}" if self._schema else self._table

    def _error(self, problem: str, field: str | None = None, line: int | None = None) -> InputError:
        return InputError(problem, path=self.path, line=line, field=field)

    async def __aiter__(self) -> AsyncIterator[Row]:
        async for batch in self.batches():
            for row in batch.decoded():
                yield row

    def batches(self) -> AsyncIterator[Batch]:
        """Yield the rows in batches of up to ``batch_size``; ``line_of`` gives the row number
        (1 for the first row read).  Set- and list-typed cells are still their text
        (``Batch.encoded``; ``Batch.decoded()`` decodes them)."""
        return self._pass(tuples=False)

    def tables(self) -> AsyncIterator[Table]:
        """A pass like :meth:`batches`, the rows as tuples (:class:`~synctree.aio.Table`).

        What the loader reads: the rows are made a column at a time, in C.
        """
        return self._pass(tuples=True)

    async def _pass(self, tuples: bool) -> AsyncIterator[Any]:
        self._db.check()
        if self._db.missing_sqlite_file() is not None:
            if self._missing_ok:
                return
            raise self._error("no such SQLite database file")
        async with self._db.used():  # the last pass to end disposes the engine
            try:
                async with self._db.connect() as link:
                    selected = await link.run(self._statement)
                    if selected is None:
                        return
                    statement, implied = selected
                    result = await link.run(_stream, statement)
                    try:
                        names, build, build_tuples = self._builder(list(result.keys()), implied)
                        path, key = self.path, self._key_label
                        encoded = self._encoded or None
                        count = 0
                        while part := await link.run(_fetch, result, self._batch_size):
                            line_of = functools.partial(operator.add, count + 1)
                            if tuples:
                                cells = build_tuples(part, count)
                                count += len(cells)
                                yield Table(names, cells, path, line_of, key, encoded=encoded)
                            else:
                                rows = build(part, count)
                                count += len(rows)
                                yield Batch(rows, path, line_of, key, encoded=encoded)
                    finally:
                        # An open cursor holds SQLite's read lock even after its connection
                        # went back to the pool, for as long as an error's traceback lives.
                        with anyio.CancelScope(shield=True):
                            await link.run(_close, result)
            except (sa_exc.SQLAlchemyError, OSError) as exc:  # OSError: cannot connect
                raise self._error(self._db.describe(exc)) from exc

    def _statement(self, conn: sa.Connection) -> tuple[sa.Executable, Implied] | None:
        """The SELECT to stream, checked against the table's columns, and the conversions
        its column types call for (MySQL's BOOLEAN); None: no table."""
        if self._query is not None:
            if isinstance(self._query, sa.Select):
                query = self._query
                selected = query.selected_columns
                for name, value in self._where.items():
                    if name not in selected:
                        raise self._error("the query selects no such column (for 'where')", name)
                    query = query.where(selected[name] == value)
                return query, {}
            if not self._where:
                return self._query, {}
            subquery = self._query.columns().subquery("synctree_query")
            conditions = [sa.column(name) == value for name, value in self._where.items()]
            return sa.select(sa.text("*")).select_from(subquery).where(*conditions), {}
        assert self._table is not None
        try:
            table = sa.Table(self._table, sa.MetaData(), schema=self._schema, autoload_with=conn)
        except sa_exc.NoSuchTableError:
            if self._missing_ok:
                return None
            raise self._error(f"no table {self._qualified!r}") from None
        wanted = self._keys + [
            name for name in (self._columns or table.columns.keys()) if name not in self._keys
        ]
        for param, names in (("key", self._keys), ("columns", wanted), ("where", self._where)):
            for name in names:
                if name not in table.columns:
                    have = ", ".join(table.columns.keys())
                    raise self._error(
                        f"table {self._qualified!r} has no column {name!r} "
                        f"(named by {param!r}; it has: {have})",
                        name,
                    )
        conditions = [table.columns[name] == value for name, value in self._where.items()]
        implied = {
            name: _converter(bool, ";")
            for name in wanted
            if name not in self._keys and name not in self._types
            if _is_mysql_boolean(table.columns[name].type)
        }
        columns = (_as_written(table.columns[name]) for name in wanted)
        return sa.select(*columns).where(*conditions), implied

    def _builder(
        self, names: list[str], implied: Implied
    ) -> tuple[
        tuple[str, ...],
        Callable[[Sequence[Any], int], list[Row]],
        Callable[[Sequence[Any], int], list[tuple[Any, ...]]],
    ]:
        """For the result's columns: the names of a tuple row's cells, and
        ``(result rows, rows before them) -> row dicts`` and ``-> tuples``."""
        for name in self._keys:
            if name not in names:
                raise self._error(
                    f"the query gives no key column {name!r} (it gives: {', '.join(names)})", name
                )
        for name in self._columns or ():
            if name not in names:
                raise self._error("the query gives no such column (for 'columns')", name)
        attributes = [
            (index, name)
            for index, name in enumerate(names)
            if name not in self._keys and (self._columns is None or name in self._columns)
        ]
        attr_names = [name for _, name in attributes]
        attr_get: Callable[[Sequence[Any]], Sequence[Any]]
        if len(attributes) == 1:
            only = attributes[0][0]
            attr_get = lambda row: (row[only],)  # noqa: E731
        elif attributes:
            attr_get = operator.itemgetter(*(index for index, _ in attributes))
        else:
            attr_get = lambda row: ()  # noqa: E731
        key_indexes = [names.index(name) for name in self._keys]
        separator = self._key_separator
        conversions = [(name, convert) for name, convert in self._types.items()]
        conversions += [(name, convert) for name, convert in implied.items() if name in names]
        for name, _ in conversions:
            if name not in attr_names:
                raise self._error("no such column (for 'types')", name)

        def key_of(row: Sequence[Any], line: int) -> str:
            parts = [row[index] for index in key_indexes]
            for name, part in zip(self._keys, parts, strict=True):
                if part is None or part == "":
                    raise self._error("empty key (NULL)", name, line)
            return separator.join(map(str, parts))

        single = key_indexes[0] if len(key_indexes) == 1 else None

        def build(part: Sequence[Any], before: int) -> list[Row]:
            rows = []
            for line, row in enumerate(part, before + 1):
                out = dict(zip(attr_names, attr_get(row), strict=True))
                key = row[single] if single is not None else None
                if key.__class__ is str and key:
                    out["idnumber"] = key
                elif key.__class__ is int:
                    out["idnumber"] = str(key)
                else:
                    out["idnumber"] = key_of(row, line)
                rows.append(out)
            for name, convert in conversions:
                for line, out in enumerate(rows, before + 1):
                    try:
                        out[name] = convert(out[name])
                    except Exception as exc:
                        raise self._error(f"{type(exc).__name__}: {exc}", name, line) from None
            return rows

        attr_indexes = [index for index, _ in attributes]
        position = {name: n for n, name in enumerate(attr_names)}
        text_only = {name for name in self._encoded if name in position}
        text_types = {str, type(None)}

        def build_tuples(part: Sequence[Any], before: int) -> list[tuple[Any, ...]]:
            """The same values as :func:`build`, made a column at a time (in C)."""
            keys: list[Any] = []
            if single is not None:
                keys = list(map(operator.itemgetter(single), part))
            if single is None or not set(map(type, keys)) <= {str} or not all(keys):
                keys = [
                    key if key.__class__ is str and key else
                    str(key) if key.__class__ is int else key_of(row, line)
                    for line, (row, key) in enumerate(
                        zip(part, keys or [None] * len(part), strict=True), before + 1
                    )
                ]  # fmt: skip
            columns = [list(map(operator.itemgetter(i), part)) for i in attr_indexes]
            for name, convert in conversions:
                column = columns[position[name]]
                if name in text_only and set(map(type, column)) <= text_types:
                    continue  # kept as text, and text it is
                for line, value in enumerate(column, before + 1):
                    try:
                        column[line - before - 1] = convert(value)
                    except Exception as exc:
                        raise self._error(f"{type(exc).__name__}: {exc}", name, line) from None
            return list(zip(keys, *columns, strict=True))

        return ("idnumber", *attr_names), build, build_tuples
