"""The tables :class:`SQLTemplate` writes: reflected or created, with statements compiled once.

:func:`open_target` reflects a subbranch's table (or creates it from the first
new objects, with the types of :func:`new_table`) and checks its key and active
columns; the :class:`Target` it gives compiles each statement once.

Statements are built with SQLAlchemy (identifiers quoted, values bound) and
compiled once per table and set of columns; each batch then goes to the driver's
``executemany`` through ``exec_driver_sql``, with the parameters put in the
compiled order and passed through the column types' bind processors.  That
skips SQLAlchemy's per-row parameter handling, which costs several times what
SQLite itself needs to insert a row.
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from synctree import ConfigError

from ._database import Database

__all__ = [
    "KEY",
    "Statement",
    "Target",
    "column_type",
    "getter",
    "new_table",
    "open_target",
    "reflect",
]

#: The bind parameter of the key; other values are ``synctree_0``, ``synctree_1``...
#: (never a column's name, which SQLAlchemy reserves in VALUES and SET).
KEY = "synctree_key"

_COLLECTIONS = (set, frozenset, list, tuple)
_UPSERT_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")


def getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """``mapping -> tuple of its values at names`` (``operator.itemgetter``, always a tuple)."""
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*names)


class Statement:
    """SQL compiled once for a dialect, and how to bind a row to it.

    :param columns: bind name -> the column whose type binds it (its bind
        processor, if any, is applied: SQLite stores dates as text, say).
    """

    __slots__ = ("_escaped", "_get", "names", "positional", "processors", "sql")

    def __init__(
        self,
        statement: sa.ClauseElement,
        dialect: Dialect,
        columns: Mapping[str, sa.Column[Any]],
        column_keys: Sequence[str] | None = None,
    ) -> None:
        keys = list(column_keys) if column_keys is not None else None
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        assert isinstance(compiled, SQLCompiler)
        self.sql: str = compiled.string
        self.positional: bool = compiled.positional
        #: The bind names in the order the driver takes them.
        self.names = tuple(compiled.positiontup or ()) if self.positional else tuple(compiled.binds)
        processors = []
        for position, name in enumerate(self.names):
            column = columns.get(name)
            if column is not None:
                processor = column.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors.append((position, processor))
        #: ``(position in names, bind processor)``.
        self.processors: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(processors)
        self._escaped = compiled.escaped_bind_names
        self._get = getter(self.names)

    def params(self, row: Mapping[str, Any]) -> Any:
        """The driver parameters for ``{bind name: value}``."""
        values = self._get(row)
        if self.processors:
            values = self.process(values)
        if self.positional:
            return values
        escaped = self._escaped
        return {escaped.get(n, n): v for n, v in zip(self.names, values, strict=True)}

    def process(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """``values`` (in :attr:`names` order) through the bind processors."""
        out = list(values)
        for position, processor in self.processors:
            out[position] = processor(out[position])
        return tuple(out)


@dataclass(slots=True)
class Target:
    """One subbranch's table, reflected once per run, and its compiled statements."""

    table: sa.Table
    key: sa.Column[Any]
    active: sa.Column[Any] | None
    dialect: Dialect
    key_value: Callable[[str], Any] = field(init=False)
    unique: bool = field(init=False)
    _statements: dict[tuple[str, tuple[str, ...]], Statement] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        try:
            python_type = self.key.type.python_type
        except NotImplementedError:
            python_type = str
        self.key_value = int if python_type is int else str
        self.unique = _is_unique(self.table, self.key)

    @property
    def name(self) -> str:
        return str(self.table.fullname)

    def insert(self, columns: tuple[str, ...]) -> Statement:
        """INSERT of ``columns`` (bound by column name); an upsert where the dialect has one."""
        cached = self._statements.get(("new", columns))
        if cached is not None:
            return cached
        table, key = self.table, self.key
        rest = [name for name in columns if name != key.key]
        dialect = self.dialect.name
        statement: sa.ClauseElement
        if not self.unique or dialect not in _UPSERT_DIALECTS:
            statement = sa.insert(table)
        elif dialect in ("sqlite", "postgresql"):
            # the dialects' modules imported when needed (PostgreSQL's: 50 ms)
            if dialect == "sqlite":
                from sqlalchemy.dialects import sqlite as module
            else:
                from sqlalchemy.dialects import postgresql as module  # type: ignore[no-redef]
            insert = module.insert(table)
            if rest:
                set_ = {name: insert.excluded[name] for name in rest}
                statement = insert.on_conflict_do_update(index_elements=[key], set_=set_)
            else:
                statement = insert.on_conflict_do_nothing(index_elements=[key])
        else:
            from sqlalchemy.dialects import mysql  # imported when needed: 35 ms

            minsert = mysql.insert(table)
            statement = minsert.on_duplicate_key_update(
                {name: minsert.inserted[name] for name in (rest or [key.key])}
            )
        binds = {name: table.columns[name] for name in columns}
        compiled = Statement(statement, self.dialect, binds, columns)
        self._statements["new", columns] = compiled
        return compiled

    def update(self, columns: tuple[str, ...]) -> Statement:
        """UPDATE ``columns`` (bound as ``synctree_0``...) of the row with key ``synctree_key``."""
        cached = self._statements.get(("update", columns))
        if cached is None:
            table = self.table
            binds = {f"synctree_{i}": table.columns[name] for i, name in enumerate(columns)}
            values: dict[sa.Column[Any], Any] = {
                column: sa.bindparam(bind) for bind, column in binds.items()
            }
            statement = sa.update(table).where(self.key == sa.bindparam(KEY)).values(values)
            binds[KEY] = self.key
            cached = Statement(statement, self.dialect, binds)
            self._statements["update", columns] = cached
        return cached

    def remove(self, deactivate: bool) -> Statement:
        """DELETE the row with key ``synctree_key``, or set its active column false."""
        cached = self._statements.get(("old", ()))
        if cached is None:
            where = self.key == sa.bindparam(KEY)
            statement: sa.ClauseElement
            if deactivate:
                assert self.active is not None
                statement = sa.update(self.table).where(where).values({self.active: sa.false()})
            else:
                statement = sa.delete(self.table).where(where)
            cached = Statement(statement, self.dialect, {KEY: self.key})
            self._statements["old", ()] = cached
        return cached


def _is_unique(table: sa.Table, column: sa.Column[Any]) -> bool:
    """Whether ``column`` alone is the primary key or has a unique constraint or index."""
    sets = [list(table.primary_key.columns)]
    sets += [list(c.columns) for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    sets += [list(index.columns) for index in table.indexes if index.unique]
    return any(len(columns) == 1 and columns[0] is column for columns in sets)


def column_type(
    values: Iterable[Any], attribute: str, dialect: str = "sqlite"
) -> sa.types.TypeEngine[Any]:
    """A column type for an attribute, from its first non-None value, that reads back as
    the value written (see :func:`new_table`)."""
    mysql_like = dialect in ("mysql", "mariadb")
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            return sa.Boolean()
        if isinstance(value, int):
            return sa.BigInteger()
        if isinstance(value, float):
            return sa.Double()
        if isinstance(value, decimal.Decimal):
            if dialect == "sqlite":  # NUMERIC affinity stores a float: digits would be lost
                raise ConfigError(
                    f"SQLite cannot store the Decimal values of attribute {attribute!r} "
                    f"exactly; create the table yourself (a TEXT column, say)"
                )
            # MySQL's bare DECIMAL is DECIMAL(10, 0): it would round every value.
            return _mysql().DECIMAL(65, 30) if mysql_like else sa.Numeric()
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                if dialect == "postgresql":
                    return sa.DateTime(timezone=True)
                raise ConfigError(
                    f"attribute {attribute!r} holds timezone-aware datetimes, which "
                    f"{dialect} cannot store with their zone; create the table yourself"
                )
            # MySQL's bare DATETIME drops the microseconds.
            return _mysql().DATETIME(fsp=6) if mysql_like else sa.DateTime()
        if isinstance(value, dt.date):
            return sa.Date()
        if isinstance(value, str) or isinstance(value, _COLLECTIONS):
            return _text(dialect)
        raise ConfigError(
            f"cannot choose a column type for attribute {attribute!r} "
            f"(a {type(value).__name__}); create the table yourself"
        )
    return _text(dialect)


def _text(dialect: str, length: int | None = None) -> sa.types.TypeEngine[Any]:
    """Text stored and compared exactly: on MySQL/MariaDB, utf8mb4 with a binary NO PAD
    collation (the defaults may be latin1, case-insensitive, and ignore trailing spaces)."""
    if dialect == "mariadb":
        collation = "utf8mb4_nopad_bin"
    elif dialect == "mysql":
        collation = "utf8mb4_0900_bin"
    else:
        return sa.Text()
    if length is None:
        return sa.Text(collation=collation)
    return sa.String(length, collation=collation)


def new_table(
    name: str,
    schema: str | None,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    dialect: Dialect,
    active: str | None,
) -> sa.Table:
    """A table for ``rows`` (attribute dicts): the key the primary key, types inferred.

    Every type reads back as the Python type written.  The key is TEXT, or, on
    MySQL/MariaDB, which cannot index TEXT, VARCHAR(255); text there is utf8mb4
    with a binary NO PAD collation, so that keys and values compare exactly
    (not case-insensitively, nor ignoring trailing spaces); datetimes keep their
    microseconds.  ``active``, when given and not an attribute, becomes a BOOLEAN
    defaulting to true.
    """
    names = list(dict.fromkeys(attribute for row in rows for attribute in row))
    flavour = "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name
    columns = [sa.Column(key, _text(flavour, 255), primary_key=True)]
    for attribute in names:
        if attribute != key:
            kind = column_type((row.get(attribute) for row in rows), attribute, flavour)
            columns.append(sa.Column(attribute, kind, nullable=True))
    if active is not None and active not in names:
        columns.append(sa.Column(active, sa.Boolean(), nullable=False, server_default=sa.true()))
    return sa.Table(name, sa.MetaData(), *columns, schema=schema)


def reflect(conn: sa.Connection, name: str, schema: str | None) -> tuple[sa.Table | None, Dialect]:
    """The table (None: there is none), and the dialect to compile statements for."""
    try:
        return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn), conn.dialect
    except sa_exc.NoSuchTableError:
        return None, conn.dialect


async def open_target(
    db: Database,
    name: str,
    schema: str | None,
    key: str,
    *,
    active: str | None,
    create: Callable[[], Sequence[Mapping[str, Any]]] | None,
) -> Target:
    """The table ``name``, reflected, with its key column and (if given) its active column.

    :param create: when the table is missing, the rows to create it from (see
        :func:`new_table`); None: a missing table is a :class:`ConfigError`.
    """
    qualified = f"{schema}.{name}" if schema else name
    table, dialect = await db.transaction(reflect, name, schema)
    if table is None:
        if create is None:
            raise ConfigError(
                "no such table (SQLTemplate(create_tables=True) creates it "
                "from the source's attributes)",
                path=db.name,
                table=qualified,
            )
        table = new_table(name, schema, key, create(), dialect, active)
        await db.transaction(table.create, checkfirst=True)
    if key not in table.columns:
        raise ConfigError(
            f"the table has no key column (it has: {', '.join(table.columns.keys())})",
            path=db.name,
            table=qualified,
            key=key,
        )
    active_column = None
    if active is not None:
        if active not in table.columns:
            raise ConfigError(
                f"on_old='deactivate' needs the column {active!r}",
                path=db.name,
                table=qualified,
            )
        active_column = table.columns[active]
    return Target(table, table.columns[key], active_column, dialect)


def _mysql() -> Any:
    """SQLAlchemy's MySQL dialect, imported when a MySQL-like table needs its types."""
    from sqlalchemy.dialects import mysql

    return mysql
