"""Binding: the actions of a batch as the driver parameters of compiled statements.

A new object's row is its source leaf's compared attributes, its key (converted
for an integer key column) and, when the table deactivates, ``active = true``;
sets and lists are encoded as text (:func:`synctree._util.members.encode_members`)
and every value goes through its column's bind processor (SQLite stores dates
as text).  Nearly every batch of new objects is *alike* (one model without
derived attributes, the same attribute names): it is bound column-wise, the
values read straight out of each leaf's ``__dict__`` with one ``itemgetter``
call and each fixup mapped over its whole column.  Any other batch, or one
with a value that does not bind, is bound row by row, so that a bad row fails
alone.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from synctree import (
    Action,
    ConfigError,
    Leaf,
    Missing,
    NewActions,
    compared_values,
    derived_names,
)
from synctree._util.members import decode_text, encode_members

from ._tables import KEY, Statement, Target, getter
from ._writes import Rows

__all__ = ["Binder"]

_COLLECTIONS = (set, frozenset, list, tuple)
#: Value types bound as they are (anything else goes through ``encode_members``).
_PLAIN = frozenset(
    {str, int, float, bool, type(None), dt.date, dt.datetime, dt.time, decimal.Decimal, bytes}
)

_source = operator.attrgetter("source")
_dict = operator.attrgetter("__dict__")
#: Whitespace, which decoding strips from members (``str.strip``'s, in C).
_SPACE = re.compile(r"\s")
_NONE = type(None)


class _Plan:
    """How to bind the new objects of one shape: a getter over the leaf's ``__dict__``."""

    __slots__ = ("fixups", "get", "reads", "sources", "statement")

    def __init__(
        self,
        statement: Statement,
        sources: list[str],
        reads: frozenset[str],
        fixups: tuple[tuple[int, Callable[[Any], Any]], ...],
    ) -> None:
        self.statement = statement
        #: The attribute each statement parameter is read from, in order.
        self.sources = sources
        self.get = getter(sources)
        #: The names ``get`` reads out of the ``__dict__``.
        self.reads = reads
        #: ``(position, function)`` applied in order: key conversion, bind processors.
        self.fixups = fixups

    def fix(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(values)
        for position, function in self.fixups:
            out[position] = function(out[position])
        return tuple(out)

    def fix_all(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """:meth:`fix` of every row: each function maps its whole column."""
        columns: list[Any] = list(zip(*rows, strict=True))
        for position, function in self.fixups:
            columns[position] = map(function, columns[position])
        return list(zip(*columns, strict=True))


def _encoded(values: tuple[Any, ...], separator: str) -> tuple[Any, ...]:
    """``values``, or, if any is not of a plain type, each through ``encode_members``."""
    if _PLAIN.issuperset(map(type, values)):
        return values
    return tuple(encode_members(value, separator) for value in values)


def _true(value: object) -> bool:
    return True


class Binder:
    """Binds actions to a table's statements: sets and lists joined by ``separator``.

    :param path: the database's name (free of secrets), for errors.
    """

    __slots__ = ("_path", "_separator")

    def __init__(self, separator: str, path: str) -> None:
        self._separator = separator
        self._path = path

    def new(self, target: Target, actions: Sequence[Action], outcomes: list[object]) -> list[Rows]:
        """The rows of new objects: from the stored rows of a :class:`NewActions` if it
        can, else column-wise if alike, else one by one."""
        if isinstance(actions, NewActions):
            rows = self.stored(target, actions)
            if rows is not None:
                return [rows]
            actions = list(actions)  # made now: every row gets its own outcome
        rows = self.alike(target, list(actions))
        return [rows] if rows is not None else self.new_rows(target, list(actions), outcomes)

    def stored(self, target: Target, actions: NewActions) -> Rows | None:
        """A run of new objects bound from their source rows as stored (no leaf, no row
        dict per object); None: bind them the other ways.

        The same values as :meth:`alike` gives for the leaves: a set column's text
        is written as it is when it reads back as the same set (no member to
        strip, none empty, the template's separator), which costs nothing and
        makes the next run's texts equal; other cells are decoded and encoded
        (members stripped, empty ones dropped, sorted), one by one.
        """
        try:
            cells = actions.cells()
            if cells is None:
                return None
            names, rows, encodings = cells
            plan = self._plan(target, Leaf, names)
            if plan is None or not rows:
                return None
            place = {name: index for index, name in enumerate(names)}
            positions = [place[name] for name in plan.sources]
            # Only the columns that need it are changed, a column at a time, read
            # straight out of the rows; a batch needing no change gets one tuple a row.
            changes: list[tuple[int, Callable[[Any], Any] | tuple[type, str] | None]] = []
            for position, name in enumerate(plan.sources):
                encoding = encodings.get(name)
                if encoding is not None or not _PLAIN.issuperset(
                    set(map(type, map(operator.itemgetter(positions[position]), rows)))
                ):
                    changes.append((position, encoding))
            changes += plan.fixups
            if not changes:
                if len(positions) == 1:
                    only = positions[0]
                    params: list[Any] = [(row[only],) for row in rows]
                else:
                    params = list(map(operator.itemgetter(*positions), rows))
            else:
                columns: list[Any] = [list(map(operator.itemgetter(p), rows)) for p in positions]
                for position, change in changes:
                    column = columns[position]
                    if callable(change):  # a fixup: key conversion, bind processor
                        columns[position] = list(map(change, column))
                    elif change is not None:
                        columns[position] = self._members(column, change)
                    else:
                        columns[position] = list(
                            map(encode_members, column, itertools.repeat(self._separator))
                        )
                params = list(zip(*columns, strict=True))
        except Exception:
            return None
        return Rows(plan.statement, indexes=list(range(len(rows))), params=params)

    def _members(self, column: Sequence[Any], encoding: tuple[type, str]) -> list[Any]:
        """A set or list column's cells (text, None, or decoded already) as written."""
        kind, separator = encoding
        mine = self._separator
        types = set(map(type, column))
        if not ((kind is set or kind is frozenset) and separator == mine != "\0"):
            return [self._member_cell(value, kind, separator) for value in column]
        texts = list(column)
        odd: list[int] = []  # cells decoded already (a leaf of their row was made)
        if not types <= {str}:
            odd = [
                i for i, value in enumerate(texts) if value is not None and type(value) is not str
            ]
            for i, value in enumerate(texts):
                if type(value) is not str:
                    texts[i] = ""
        joined = "\0".join(texts)
        if (
            _SPACE.search(joined)
            or mine + mine in joined
            or mine + "\0" in joined
            or "\0" + mine in joined
            or joined.startswith(mine)
            or joined.endswith(mine)
        ):  # a member to strip, or an empty one: decoded and encoded cell by cell
            return [self._member_cell(value, kind, separator) for value in column]
        # No member to strip, none empty: each text already reads back as its set, so
        # it is written as it is (in the source's order, not sorted).  Then the next
        # run's diff finds the two texts equal, and needs to split neither.
        out = texts
        for i in odd:
            out[i] = encode_members(column[i], mine)
        return out

    def _member_cell(self, value: Any, kind: type, separator: str) -> Any:
        """One cell of a set or list column as written: its text decoded, then encoded."""
        if value is None or type(value) is str:
            value = decode_text(value, kind, separator)
        return encode_members(value, self._separator)

    def created_rows(self, actions: Sequence[Action]) -> list[dict[str, Any]]:
        """New objects' compared attributes (sets as text), to create a table from."""
        cells = actions.cells() if isinstance(actions, NewActions) else None
        if cells is None:
            return [self.row(action) for action in actions if action.source is not None]
        names, rows, _ = cells
        kept = [(i, n) for i, n in enumerate(names) if n[0] != "_" and n != "idnumber"]
        return [{name: row[i] for i, name in kept} for row in rows]

    def alike(self, target: Target, actions: list[Action]) -> Rows | None:
        """A batch of alike new objects, bound column-wise; None: bind it row by row.

        Alike: one model without derived attributes, the same attribute names,
        and values that all bind (sets and lists encoded, key converted, bind
        processors applied).  Nearly every batch is; for the others, and on any
        error here, :meth:`new_rows` gives each row its own outcome.
        """
        sources = list(map(_source, actions))
        if len(set(map(type, sources))) != 1 or sources[0] is None:
            return None
        try:
            dicts = list(map(_dict, sources))
            first = dicts[0]
            plan = self._plan(target, type(sources[0]), tuple(first))
            if plan is None:
                return None
            if len(plan.reads) == len(first):
                # ``plan.get`` fails on a dict without one of the names it reads,
                # so the same length means the same names.
                if len(set(map(len, dicts))) != 1:
                    return None
            elif not all(map(operator.eq, map(dict.keys, dicts), itertools.repeat(first.keys()))):
                return None
            params = list(map(plan.get, dicts))
            if not _PLAIN.issuperset(set(map(type, itertools.chain.from_iterable(params)))):
                params = self._encode_columns(params)
            if plan.fixups:
                params = plan.fix_all(params)
        except Exception:
            return None
        return Rows(plan.statement, indexes=list(range(len(actions))), params=params)

    def _encode_columns(self, params: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """:func:`_encoded` of every row: only the columns holding a value not of a
        plain type go through ``encode_members``, a column at a time."""
        separator = self._separator
        columns: list[Any] = list(zip(*params, strict=True))
        for position, column in enumerate(columns):
            if not _PLAIN.issuperset(set(map(type, column))):
                columns[position] = list(
                    map(encode_members, column, itertools.repeat(separator, len(column)))
                )
        return list(zip(*columns, strict=True))

    def new_rows(self, target: Target, actions: list[Action], outcomes: list[object]) -> list[Rows]:
        """The rows of new objects, bound one by one: a row that cannot bind fails alone."""
        groups: dict[Statement, tuple[list[int], list[Any]]] = {}
        plans: dict[tuple[type, tuple[str, ...]], _Plan | None] = {}
        separator = self._separator
        model: type | None = None
        names: frozenset[str] = frozenset()
        plan: _Plan | None = None
        for index, action in enumerate(actions):
            try:
                leaf = action.source
                if leaf is None:
                    raise ValueError(f"{action.message} needs the source object")
                attributes = leaf.__dict__
                if type(leaf) is not model or attributes.keys() != names:
                    shape = (type(leaf), tuple(attributes))
                    plan = plans[shape] if shape in plans else self._plan(target, *shape)
                    plans[shape] = plan
                    model, names = shape[0], frozenset(attributes)
                if plan is None:
                    statement, params = self._insert_params(target, action)
                else:
                    statement = plan.statement
                    params = _encoded(plan.get(attributes), separator)
                    if plan.fixups:
                        params = plan.fix(params)
            except Exception as exc:
                outcomes[index] = exc
            else:
                group = groups.get(statement)
                if group is None:
                    group = groups[statement] = ([], [])
                group[0].append(index)
                group[1].append(params)
        return [
            Rows(statement, indexes=indexes, params=params)
            for statement, (indexes, params) in groups.items()
        ]

    def updates(
        self,
        target: Target,
        actions: list[Action],
        changes: list[dict[str, Any]],
        outcomes: list[object],
    ) -> list[Rows]:
        """The UPDATE rows of each action's ``changes`` (``{column: value}``), grouped by
        their columns; an action that cannot bind gets its error in ``outcomes``."""
        groups: dict[tuple[str, ...], Rows] = {}
        separator = self._separator
        for index, (action, change) in enumerate(zip(actions, changes, strict=True)):
            try:
                columns = tuple(change)
                rows = groups.get(columns)
                if rows is None:
                    for name in columns:
                        self.check_column(target, name)
                    rows = groups[columns] = Rows(target.update(columns), check=True)
                value = target.key_value(action.idnumber)
                params = {KEY: value}
                for i, new in enumerate(change.values()):
                    params[f"synctree_{i}"] = encode_members(new, separator)
                driver_params = rows.statement.params(params)
            except Exception as exc:
                outcomes[index] = exc
            else:
                rows.indexes.append(index)
                rows.keys.append(value)
                rows.params.append(driver_params)
        return list(groups.values())

    def keys(
        self, statement: Statement, target: Target, actions: list[Action], outcomes: list[object]
    ) -> Rows:
        """The rows of a statement bound by key alone (a DELETE, a deactivation)."""
        rows = Rows(statement)
        for index, action in enumerate(actions):
            try:
                params = statement.params({KEY: target.key_value(action.idnumber)})
            except Exception as exc:
                outcomes[index] = exc
            else:
                rows.indexes.append(index)
                rows.params.append(params)
        return rows

    def row(self, action: Action) -> dict[str, Any]:
        """A new object's compared attributes, sets and lists encoded."""
        if action.source is None:
            raise ValueError(f"{action.message} needs the source object")
        row = compared_values(action.source)
        for name, value in row.items():
            if value.__class__ in _COLLECTIONS:
                row[name] = encode_members(value, self._separator)
            elif isinstance(value, Missing):
                raise ValueError(f"attribute {name!r}: {value.reason}")
        return row

    def check_column(self, target: Target, name: str) -> None:
        """Raise :class:`ConfigError` if the table has no column ``name``."""
        if name not in target.table.columns:
            raise ConfigError(
                f"the table has no column {name!r} for that attribute",
                path=self._path,
                table=target.name,
            )

    def _plan(self, target: Target, model: type, names: tuple[str, ...]) -> _Plan | None:
        """How to bind the leaves whose ``__dict__`` has ``names``; None: the general way.

        The fast way reads the values straight out of the leaf's ``__dict__`` in
        the statement's order (one ``itemgetter`` call); it needs a model without
        derived attributes and a positional driver.
        """
        if derived_names(model):
            return None
        key = target.key.key
        attributes = [n for n in names if n[0] != "_" and n != "idnumber" and n != key]
        columns = [*attributes, key]
        active = target.active.key if target.active is not None else None
        if active is not None and active not in attributes:
            columns.append(active)
        for name in columns:
            self.check_column(target, name)
        statement = target.insert(tuple(columns))
        if not statement.positional:
            return None
        fixups: list[tuple[int, Callable[[Any], Any]]] = []
        sources = []
        for position, name in enumerate(statement.names):
            if name == key:
                sources.append("idnumber")
                if target.key_value is not str:
                    fixups.append((position, target.key_value))
            elif name == active and name not in attributes:
                sources.append("idnumber")  # a placeholder, replaced by True
                fixups.append((position, _true))
            else:
                sources.append(name)
        fixups += statement.processors
        return _Plan(statement, sources, frozenset(sources), tuple(fixups))

    def _insert_params(self, target: Target, action: Action) -> tuple[Statement, Any]:
        """The statement and parameters of one new object, the general way."""
        row = self.row(action)
        row[target.key.key] = target.key_value(action.idnumber)
        if target.active is not None and target.active.key not in row:
            row[target.active.key] = True
        for name in row:
            self.check_column(target, name)
        statement = target.insert(tuple(row))
        return statement, statement.params(row)
