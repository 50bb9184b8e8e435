"""Whether a SQL key column stores every key back exactly as the diff compares it.

The diff compares keys as Python strings.  A key column may not: an integer
column reads ``'007'`` back as ``'7'``; a PAD SPACE collation (MySQL/MariaDB's
default) finds ``'k1'`` when asked for ``'k1 '``; a case-insensitive one
(``utf8mb4_general_ci``, SQLite's ``NOCASE``) finds ``'K1'`` for ``'k1'``; a
``CHAR(n)`` pads or strips; a latin1 column cannot hold ``'Ω'``.  Written
through such a column, a key overwrites another object's row or flips between
two forms on every run.  :class:`KeyRule` says what a column does, from its
reflected type and (on the servers) its collation; :meth:`KeyRule.check`
refuses the run's keys with one :class:`RoundTripError` before anything is
written, naming table, column and an example key.

Which keys a collation treats as one is asked of the database itself
(``WEIGHT_STRING`` on MySQL/MariaDB, ``GROUP BY ... COLLATE`` for a
nondeterministic PostgreSQL collation); SQLite's built-in collations are
simple enough to mirror (``NOCASE`` folds ASCII letters, ``RTRIM`` ignores
trailing spaces).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from synctree import RoundTripError

from ._tables import reflect

__all__ = ["KeyRule", "created_rule", "key_rule"]

#: Keys sent to the server in one query when asking it how a collation sorts them.
_CHUNK = 500
_WORD = re.compile(r"^\w+$")
#: MySQL character sets as Python codecs (MySQL's latin1 is cp1252); None: all of Unicode.
_CODECS: dict[str, str | None] = {
    "utf8mb4": None,
    "utf8mb3": "utf8mb3",
    "utf8": "utf8mb3",
    "latin1": "cp1252",
    "ascii": "ascii",
}
_INT_BITS = ((sa.SmallInteger, 16), (sa.BigInteger, 64), (sa.Integer, 32))


def _encodable(codec: str) -> Callable[[str], bool]:
    if codec == "utf8mb3":  # three bytes at most: the Basic Multilingual Plane
        return lambda key: all(ord(char) <= 0xFFFF for char in key)

    def encodable(key: str) -> bool:
        try:
            key.encode(codec)
        except UnicodeError:
            return False
        return True

    return encodable


@dataclass(frozen=True, slots=True)
class KeyRule:
    """What one key column does to the key strings written into it.

    :param kind: ``'text'``; ``'int'`` (the key is written as ``int(key)`` and
        read back as ``str()`` of it); ``'uuid'`` likewise; or ``'other'``: a type
        keys cannot go through (its name in ``type_name``).
    :param length: the most characters the column holds (None: no limit enforced).
    :param fixed: ``CHAR(n)``: padded to ``n`` (PostgreSQL) or stripped (MySQL) on reading.
    :param pad: trailing spaces are ignored when comparing (PAD SPACE, ``RTRIM``).
    :param fold: the collation's sameness, for a known one: two keys with one
        fold are one row; None: exact, or asked of the server (``collation``).
    :param collation: a collation to ask the server about (MySQL/MariaDB: with
        ``charset``; PostgreSQL: a nondeterministic one).
    """

    table: str
    column: str
    dialect: str
    kind: str = "text"
    type_name: str = ""
    length: int | None = None
    fixed: bool = False
    pad: bool = False
    fold: Callable[[str], str] | None = None
    collation: str | None = None
    charset: str | None = None
    int_range: tuple[int, int] | None = None

    @property
    def exact(self) -> bool:
        """Whether every key goes through unchanged, with nothing to check."""
        return (
            self.kind == "text"
            and self.length is None
            and not self.fixed
            and not self.pad
            and self.fold is None
            and self.collation is None
            and _CODECS.get(self.charset or "utf8mb4", "?") is None
            and self.dialect != "postgresql"  # NUL
        )

    def _error(self, problem: str, example: str, path: object) -> RoundTripError:
        return RoundTripError(
            problem, path=path, table=self.table, column=self.column, example=example
        )

    def check(
        self, keys: Iterable[str], conn: sa.Connection | None = None, path: object = None
    ) -> None:
        """Raise :class:`RoundTripError` for the first key the column would not give back.

        ``keys``: every key the run may write or look up (source and destination).
        ``conn`` asks the server about a collation (needed if ``collation`` is set).
        """
        if self.exact:
            return
        keys = sorted(set(keys))
        single = self._single()
        for key in keys:
            problem = single(key)
            if problem is not None:
                raise self._error(problem, key, path)
        if self.kind != "text":
            return
        if self.fold is not None:
            self._distinct(keys, map(self.fold, keys), path)
        elif self.collation is not None and conn is not None:
            if self.dialect == "postgresql":
                self._distinct_postgres(conn, keys, path)
            else:
                self._distinct(keys, self._weights(conn, keys), path)

    def _single(self) -> Callable[[str], str | None]:
        """``key -> what is wrong with it alone``, or None."""
        if self.kind == "other":
            problem = (
                f"a {self.type_name} key column cannot hold synctree's text keys exactly; "
                f"use a text or integer key column"
            )
            return lambda key: problem
        if self.kind == "int":
            low, high = self.int_range or (-(2**63), 2**63 - 1)

            def integer(key: str) -> str | None:
                try:
                    value = int(key)
                except ValueError:
                    return "the key column is an integer and the key is not one"
                if str(value) != key:
                    return (
                        f"the key column is an integer, which gives the key back as "
                        f"{str(value)!r}; only keys written as plain decimal integers "
                        f"(str(int(key)) == key) fit it"
                    )
                if not low <= value <= high:
                    return f"the key is out of the integer key column's range {low}..{high}"
                return None

            return integer
        if self.kind == "uuid":

            def canonical(key: str) -> str | None:
                try:
                    value = str(uuid.UUID(key))
                except ValueError:
                    return "the key column is a UUID and the key is not one"
                if value != key:
                    return f"the UUID key column gives the key back as {value!r}"
                return None

            return canonical
        checks: list[Callable[[str], str | None]] = []
        length, codec = self.length, _CODECS.get(self.charset or "utf8mb4", self.charset)
        if length is not None:
            checks.append(
                lambda key: (
                    f"the key is longer than the column's {length} characters"
                    if len(key) > length
                    else None
                )
            )
        if self.fixed and self.dialect == "postgresql":
            checks.append(
                lambda key: (
                    f"a CHAR({length}) key column gives shorter keys back padded with spaces"
                    if length is None or len(key) < length
                    else None
                )
            )
        if self.pad or self.fixed:
            why = "CHAR" if self.fixed else f"the collation {self.collation or 'RTRIM'}"
            checks.append(
                lambda key: (
                    f"{why} ignores trailing spaces, so this key would find another one's row"
                    if key.endswith(" ")
                    else None
                )
            )
        if codec is not None:
            fits = _encodable(codec)
            checks.append(
                lambda key: (
                    None
                    if fits(key)
                    else f"the column's character set {self.charset} cannot hold the key"
                )
            )
        if self.dialect == "postgresql":
            checks.append(
                lambda key: "PostgreSQL text cannot hold a NUL character" if "\x00" in key else None
            )

        def text(key: str) -> str | None:
            for check in checks:
                problem = check(key)
                if problem is not None:
                    return problem
            return None

        return text

    def _distinct(self, keys: Sequence[str], folds: Iterable[Any], path: object) -> None:
        seen: dict[Any, str] = {}
        for key, folded in zip(keys, folds, strict=True):
            other = seen.setdefault(folded, key)
            if other != key:
                raise self._error(
                    f"the collation {self.collation or 'NOCASE'} treats the keys {other!r} "
                    f"and {key!r} as one, so one would overwrite the other's row",
                    key,
                    path,
                )

    def _weights(self, conn: sa.Connection, keys: Sequence[str]) -> list[bytes]:
        """Each key's sort weight under the column's collation, asked of MySQL/MariaDB."""
        charset, collation = self.charset or "utf8mb4", self.collation
        assert collation is not None and _WORD.match(charset) and _WORD.match(collation)
        weights: list[bytes] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            columns = ", ".join(
                f"WEIGHT_STRING(CONVERT(:k{i} USING {charset}) COLLATE {collation})"
                for i in range(len(chunk))
            )
            row = conn.execute(
                sa.text(f"SELECT {columns}"), {f"k{i}": key for i, key in enumerate(chunk)}
            ).one()
            weights.extend(bytes(weight) for weight in row)
        return weights

    def _distinct_postgres(self, conn: sa.Connection, keys: Sequence[str], path: object) -> None:
        """Two keys a nondeterministic PostgreSQL collation treats as one, found by the server."""
        collation = self.collation
        assert collation is not None
        quoted = '"' + collation.replace('"', '""') + '"'
        row = conn.execute(
            sa.text(
                f'SELECT min(k COLLATE "C"), max(k COLLATE "C") '
                f"FROM json_array_elements_text(CAST(:keys AS json)) AS u(k) "
                f"GROUP BY k COLLATE {quoted} HAVING count(*) > 1 LIMIT 1"
            ),
            {"keys": json.dumps(list(keys))},
        ).first()
        if row is not None:
            self._distinct([row[0], row[1]], [0, 0], path)


def check_keys(
    conn: sa.Connection,
    name: str,
    schema: str | None,
    key: str,
    keys: Iterable[str],
    *,
    created: bool,
    path: str,
) -> None:
    """Raise :class:`RoundTripError` if the key column of table ``name`` would change a key.

    A missing table is checked as :func:`._tables.new_table` would create it
    (``created``), or left to the first write to report; so is a missing column.
    """
    table, _ = reflect(conn, name, schema)
    if table is None:
        if created:
            qualified = f"{schema}.{name}" if schema else name
            created_rule(qualified, key, conn.dialect.name).check(keys, path=path)
        return
    if key in table.columns:
        key_rule(conn, table, table.columns[key]).check(keys, conn, path)


def created_rule(table: str, column: str, dialect: str) -> KeyRule:
    """The rule of a key column :func:`~._tables.new_table` creates."""
    length = 255 if dialect in ("mysql", "mariadb") else None
    return KeyRule(table, column, dialect, length=length)


def key_rule(conn: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> KeyRule:
    """The rule of a reflected key column (asking the server for its collation)."""
    dialect = conn.dialect.name
    name, kind = str(table.fullname), column.type
    base = KeyRule(name, column.name, dialect, type_name=str(kind.compile(conn.dialect)))
    try:
        python_type: type | None = kind.python_type
    except NotImplementedError:  # NullType: SQLite's column without a type, stored as given
        python_type = str
    if python_type is int and not isinstance(kind, sa.Boolean):
        bits = next((b for t, b in _INT_BITS if isinstance(kind, t)), 64)
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if getattr(kind, "unsigned", False):
            low, high = 0, 2**bits - 1
        if dialect == "sqlite":
            low, high = -(2**63), 2**63 - 1
        return _replace(base, kind="int", int_range=(low, high))
    if python_type is uuid.UUID:
        return _replace(base, kind="uuid")
    if python_type is not str or isinstance(kind, sa.Enum):
        return _replace(base, kind="other")
    fixed = isinstance(kind, sa.CHAR | sa.NCHAR) and not isinstance(kind, sa.VARCHAR)
    length = getattr(kind, "length", None)
    if dialect == "sqlite":
        collation = _sqlite_collation(conn, table, column)
        if collation not in ("BINARY", "NOCASE", "RTRIM"):
            return _replace(base, kind="other", type_name=f"{base.type_name} COLLATE {collation}")
        return _replace(
            base,
            fold=_ascii_lower if collation == "NOCASE" else None,
            collation=None,
            pad=collation == "RTRIM",
        )
    if dialect in ("mysql", "mariadb"):
        return _mysql_rule(conn, table, column, base, fixed)
    if dialect == "postgresql":
        nondeterministic = _postgres_collation(conn, table, column)
        return _replace(base, length=length, fixed=fixed, collation=nondeterministic)
    return _replace(base, length=length, fixed=fixed)


def _replace(rule: KeyRule, **changes: Any) -> KeyRule:
    from dataclasses import replace

    return replace(rule, **changes)


def _ascii_lower(key: str) -> str:
    """SQLite's NOCASE: ASCII letters folded, nothing else."""
    return key.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _sqlite_collation(conn: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> str:
    """The collation in the column's definition (SQLite reflects none): BINARY by default."""
    row = conn.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": table.name},
    ).first()
    sql = (row[0] if row else "") or ""
    quoted = re.escape(column.name)
    found = re.search(
        rf"""(?:^|[(,])\s*["`\[]?{quoted}["`\]]?\s[^,()]*(?:\([^)]*\)[^,()]*)*?"""
        rf"""\bCOLLATE\s+["`\[]?(\w+)""",
        sql,
        re.IGNORECASE,
    )
    return found.group(1).upper() if found else "BINARY"


def _mysql_rule(
    conn: sa.Connection, table: sa.Table, column: sa.Column[Any], base: KeyRule, fixed: bool
) -> KeyRule:
    row = conn.execute(
        sa.text(
            "SELECT CHARACTER_SET_NAME, COLLATION_NAME, CHARACTER_MAXIMUM_LENGTH "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) "
            "AND TABLE_NAME = :table AND COLUMN_NAME = :column"
        ),
        {"schema": table.schema, "table": table.name, "column": column.name},
    ).first()
    if row is None or row[1] is None:
        return _replace(base, kind="other")
    charset, collation, length = str(row[0]), str(row[1]), row[2]
    from sqlalchemy.dialects import mysql

    if isinstance(column.type, mysql.BINARY | mysql.VARBINARY) or charset == "binary":
        return _replace(base, kind="other")
    if not (_WORD.match(charset) and _WORD.match(collation)):
        return _replace(base, kind="other", type_name=f"{base.type_name} COLLATE {collation}")
    # NO PAD: MariaDB's *_nopad_* collations and MySQL 8's *_0900_* ones.
    pad = "_nopad_" not in collation and "_0900_" not in collation
    binary = collation.endswith("_bin")
    return _replace(
        base,
        length=int(length) if length is not None else None,
        fixed=fixed,
        pad=pad,
        collation=None if binary else collation,
        charset=charset,
    )


def _postgres_collation(conn: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> str | None:
    """The column's collation if it is nondeterministic (a deterministic one compares bytes)."""
    row = conn.execute(
        sa.text(
            "SELECT c.collname, c.collisdeterministic FROM pg_attribute a "
            "JOIN pg_collation c ON c.oid = a.attcollation "
            "WHERE a.attrelid = CAST(:table AS regclass) AND a.attname = :column"
        ),
        {"table": _pg_qualified(table), "column": column.name},
    ).first()
    if row is None or row[1]:
        return None
    return str(row[0])


def _pg_qualified(table: sa.Table) -> str:
    def quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    return f"{quote(table.schema)}.{quote(table.name)}" if table.schema else quote(table.name)
