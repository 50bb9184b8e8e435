"""Write the actions into SQL tables: :class:`SQLTemplate`."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import itertools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias, get_args

import anyio
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect

from synctree._action import Action
from synctree._exceptions import ConfigError
from synctree._leaf import Missing, compared_values, derived_names
from synctree._report import Report
from synctree._template import Skip
from synctree.aio._retry import Retry, Verdict
from synctree.aio._template import AsyncTemplate, batch, idempotent
from synctree.aio.sql._database import Database, EngineLike, encode_members
from synctree.aio.sql._keys import created_rule, key_rule
from synctree.aio.sql._tables import KEY, Statement, Target, getter, new_table

__all__ = ["OnOld", "SQLTemplate"]

OnOld: TypeAlias = Literal["delete", "deactivate", "keep"]

_COLLECTIONS = (set, frozenset, list, tuple)
#: Value types bound as they are (anything else goes through ``encode_members``).
_PLAIN = frozenset(
    {str, int, float, bool, type(None), dt.date, dt.datetime, dt.time, decimal.Decimal, bytes}
)
#: Retryable database failures: serialization failure, deadlock (SQLSTATE), MySQL's
#: lock wait timeout and deadlock (errno), SQLite's busy and locked (result code).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
_TRANSIENT_MYSQL = frozenset({1205, 1213})
_TRANSIENT_SQLITE = frozenset({5, 6})
#: Batch size by dialect when none is given: SQLite pays a disk sync per commit.
_BATCH_SIZES = {"sqlite": 10_000}
_BATCH_SIZE = 1000

_source = operator.attrgetter("source")
_dict = operator.attrgetter("__dict__")


@dataclass(slots=True)
class _Rows:
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

    def halves(self) -> tuple[_Rows, _Rows]:
        """The first and the second half, to write in a savepoint each."""
        middle = len(self.params) // 2
        return self._part(slice(None, middle)), self._part(slice(middle, None))

    def _part(self, part: slice) -> _Rows:
        return _Rows(
            self.statement, self.check, self.indexes[part], self.keys[part], self.params[part]
        )


class _Plan:
    """How to bind the new objects of one shape: a getter over the leaf's ``__dict__``."""

    __slots__ = ("fixups", "get", "reads", "statement")

    def __init__(
        self,
        statement: Statement,
        get: Callable[[Mapping[str, Any]], tuple[Any, ...]],
        reads: frozenset[str],
        fixups: tuple[tuple[int, Callable[[Any], Any]], ...],
    ) -> None:
        self.statement = statement
        self.get = get
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


def _transient(error: sa_exc.DBAPIError) -> bool:
    """Whether the failure is worth another attempt of the whole batch."""
    if error.connection_invalidated:
        return True
    orig = error.orig
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    if getattr(orig, "sqlite_errorcode", None) in _TRANSIENT_SQLITE:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _TRANSIENT_MYSQL


def _destination_failure(error: BaseException) -> Verdict | None:
    """The SQL errors that fail the whole destination, not one row: the rest is left to
    the runner's rules (and to the per-row outcomes of a batch)."""
    if isinstance(error, ConfigError):  # no such table, no key column...
        return Verdict(False, "no", reason="ConfigError", fatal=True)
    if not isinstance(error, sa_exc.DBAPIError) or isinstance(error, sa_exc.IntegrityError):
        return None
    reason = type(error.orig or error).__name__
    if error.statement is None:  # no statement: connecting failed; retried, then fatal
        return Verdict(True, "no", reason=reason, fatal=True)
    if error.statement.lstrip()[:6].upper() in ("CREATE", "ALTER ", "DROP T"):
        return Verdict(False, "no", reason=f"{reason} (DDL)", fatal=True)
    return None


class SQLTemplate(AsyncTemplate):
    """Apply the actions to SQL tables, one table per subbranch, in batched transactions.

    - ``new``: an INSERT per batch (executemany) of the source leaf's compared
      attributes and the key; an upsert where the dialect has one (SQLite,
      PostgreSQL, MySQL/MariaDB) and the key column is unique, so a repeated
      create is harmless.
    - ``update``: every changed attribute of an object in one UPDATE; a batch
      runs one executemany per set of changed columns.  An update whose row is
      gone fails with :class:`LookupError`.
    - ``old``: DELETE, ``UPDATE ... SET active = false`` (``on_old='deactivate'``;
      read the destination with ``SQLReader(where={'active': True})``, and a
      returning object's upsert sets it true again), or nothing
      (``on_old='keep'``, recorded as skipped; ``max_deletes`` is then off).
    - ``add``/``remove``: sets and lists live in one text column, members joined
      by ``separator`` (sets sorted, lists in order), which
      ``SQLReader(types={'classes': set})`` splits back.  The first add or
      remove of an object's attribute writes the source's whole collection;
      its other members' actions then need no statement.

    Each batch runs in one transaction.  If it fails for some rows (a
    constraint, a value too long), it is rolled back and written again in one
    transaction with a savepoint per half, halving down to single rows: the bad
    rows fail with their database error, the others land.  Deadlocks, lock
    timeouts and lost connections retry the whole batch (every statement here
    is idempotent).

    Runs on asyncio and on trio; on trio, SQLite only, unless the URL names a
    synchronous driver (see :mod:`synctree.aio.sql._database`).  On SQLite, and with a
    synchronous driver, a batch runs in a thread that a cancellation waits for:
    it is committed (or rolled back) whole.  ``concurrency`` is 1: SQLite allows
    one writer at a time; a server database may take more
    (``await diff.run(template, concurrency=4)``).

    :param url: a database URL, or an ``AsyncEngine`` or ``Engine`` (not disposed).
    :param tables: ``{subbranch: table}``; by default a subbranch's table has its name.
    :param key: the key column, or ``{subbranch: key column}`` (others:
        ``'idnumber'``); an integer key column gets ``int(idnumber)``.  It should
        be the primary key or unique; otherwise creates are plain INSERTs.  Before
        the first write, every key of the run is checked against the column (its
        type, length, character set and collation): one it would not give back
        exactly (``'007'`` in an integer column, ``'K1'`` beside ``'k1'`` under a
        case-insensitive collation, ``'k1 '`` under PAD SPACE) raises
        :class:`~synctree.RoundTripError` and nothing is written.
    :param schema: the schema of the tables (None: the default one).
    :param on_old: ``'delete'``, ``'deactivate'`` or ``'keep'`` (see above).
    :param active_column: the boolean column ``on_old='deactivate'`` clears.
    :param separator: joins the members of set and list attributes.
    :param create_tables: create a missing table from the first batch of new
        objects: ``int`` → BIGINT, ``float`` → DOUBLE, ``bool``, ``date``,
        ``datetime``, ``Decimal``; text, sets and lists → TEXT; the key column
        the primary key (VARCHAR(255) on MySQL).  Each reads back as the type
        written; on MySQL/MariaDB text is utf8mb4 with a binary NO PAD collation,
        datetimes keep microseconds, and Decimal is DECIMAL(65, 30) (SQLite
        refuses Decimal, which it would store as a float).
    :param batch_size: actions per batch and transaction; by default 10,000 on
        SQLite (each commit waits for the disk) and 1,000 elsewhere.
    """

    concurrency: ClassVar[int] = 1

    def __init__(
        self,
        url: EngineLike,
        *,
        tables: Mapping[str, str] | None = None,
        key: str | Mapping[str, str] = "idnumber",
        schema: str | None = None,
        on_old: OnOld = "delete",
        active_column: str = "active",
        create_tables: bool = False,
        separator: str = ";",
        batch_size: int | None = None,
    ) -> None:
        self._tables = dict(tables or {})
        if not all(isinstance(v, str) and v for v in self._tables.values()):
            raise ValueError(f"'tables' must map subbranch names to table names, not {tables!r}")
        self._keys = {"": key} if isinstance(key, str) else dict(key)
        if not self._keys or not all(isinstance(v, str) and v for v in self._keys.values()):
            raise ValueError(f"'key' must be a column name or map subbranches to them: {key!r}")
        if on_old not in get_args(OnOld):
            raise ValueError(f"'on_old' must be one of {get_args(OnOld)}, not {on_old!r}")
        if not isinstance(active_column, str) or not active_column:
            raise ValueError(f"'active_column' must be a column name, not {active_column!r}")
        if not isinstance(create_tables, bool):
            raise ValueError(f"'create_tables' must be a bool, not {create_tables!r}")
        if not isinstance(separator, str) or not separator:
            raise ValueError(f"'separator' must be a non-empty string, not {separator!r}")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"'batch_size' must be an int >= 1 or None, not {batch_size!r}")
        self._schema = schema
        self._on_old: OnOld = on_old
        self._active_column = active_column
        self._create_tables = create_tables
        self._separator = separator
        self._db = Database(url, owner=type(self).__name__)
        self._targets: dict[str, Target] = {}
        self._lock = anyio.Lock()
        self._written: set[tuple[str, str, str]] = set()
        if on_old == "keep" and "max_deletes" not in type(self).__dict__:
            self.max_deletes = None  # type: ignore[misc]  # nothing is removed
        if batch_size is None:
            batch_size = _BATCH_SIZES.get(self._db.dialect, _BATCH_SIZE)
        self.batch_size = batch_size
        # The generic methods take batches of ``batch_size`` for this instance
        # (unless a subclass overrides them).
        for name in ("new", "update", "old", "add", "remove"):
            method = getattr(type(self), name)
            if method is getattr(SQLTemplate, name):
                bound: Any = functools.partial(method, self)
                bound.__synctree_batch__ = batch_size
                if getattr(method, "__synctree_idempotent__", False):
                    bound = idempotent(bound)
                setattr(self, name, bound)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._db.name!r} on_old={self._on_old!r}>"

    # -- hooks ---------------------------------------------------------------------------

    def classify(self, error: Exception) -> Verdict | None:
        """A missing table, DDL the database refuses, or no connection stop the run once."""
        return _destination_failure(error)

    async def before_all(self) -> None:
        """Check the engine suits the event loop and every table keeps the keys exactly.

        Forgets what an earlier run reflected.
        """
        self._db.check()
        self._targets.clear()
        self._written.clear()
        diff = self.diff
        if diff is None:
            return
        try:
            for name in diff.left.subbranches:
                keys = set(diff.left[name].keys()).union(diff.right[name].keys())
                if keys:
                    await self._check_keys(name, keys)
        except BaseException:
            await self._db.dispose()  # after_all is not called when before_all fails
            raise

    async def _check_keys(self, subbranch: str, keys: set[str]) -> None:
        """Raise :class:`RoundTripError` if the subbranch's key column would change a key."""
        name = self._tables.get(subbranch, subbranch)
        key_name = self._key_name(subbranch)
        schema, path = self._schema, self._db.name

        def check(conn: sa.Connection) -> None:
            table, _ = _reflect(conn, name, schema)
            if table is None:
                if self._create_tables:
                    qualified = f"{schema}.{name}" if schema else name
                    created_rule(qualified, key_name, conn.dialect.name).check(keys, path=path)
                return
            if key_name in table.columns:  # else the first action says so
                key_rule(conn, table, table.columns[key_name]).check(keys, conn, path)

        await self._db.transaction(check)

    def _key_name(self, subbranch: str) -> str:
        return self._keys.get(subbranch) or self._keys.get("") or "idnumber"

    async def after_all(self, report: Report) -> None:
        """Dispose of an engine made from a URL."""
        self._targets.clear()
        await self._db.dispose()

    # -- the generic methods --------------------------------------------------------------

    @batch(size=_BATCH_SIZE)
    @idempotent
    async def new(self, actions: list[Action]) -> list[object]:
        """INSERT (or upsert) the source objects."""
        target = await self._target(actions[0].subbranch, actions)
        outcomes: list[object] = [None] * len(actions)
        rows = self._alike(target, actions)
        work = [rows] if rows is not None else self._new_rows(target, actions, outcomes)
        await self._execute(work, target, outcomes)
        return outcomes

    @batch(size=_BATCH_SIZE)
    async def update(self, actions: list[Action]) -> list[object]:
        """UPDATE every changed attribute of each object."""
        target = await self._target(actions[0].subbranch)
        changes = []
        for action in actions:
            if action.changes is not None:
                changes.append(dict(action.changes))
            else:
                changes.append({action.attribute or "": action.value})
        return await self._updates(target, actions, changes)

    @batch(size=_BATCH_SIZE)
    async def old(self, actions: list[Action]) -> list[object]:
        """DELETE, deactivate, or keep (``on_old``) the objects the source no longer has."""
        if self._on_old == "keep":
            return [Skip("on_old=keep")] * len(actions)
        target = await self._target(actions[0].subbranch)
        statement = target.remove(deactivate=self._on_old == "deactivate")
        outcomes: list[object] = [None] * len(actions)
        rows = _Rows(statement)
        for index, action in enumerate(actions):
            try:
                params = statement.params({KEY: target.key_value(action.idnumber)})
            except Exception as exc:
                outcomes[index] = exc
            else:
                rows.indexes.append(index)
                rows.params.append(params)
        await self._execute([rows], target, outcomes)
        return outcomes

    @batch(size=_BATCH_SIZE)
    async def add(self, actions: list[Action]) -> list[object]:
        """Write the source's collection into the attribute's text column."""
        return await self._members(actions)

    @batch(size=_BATCH_SIZE)
    async def remove(self, actions: list[Action]) -> list[object]:
        """Write the source's collection into the attribute's text column."""
        return await self._members(actions)

    # -- preparing rows ---------------------------------------------------------------------

    async def _members(self, actions: list[Action]) -> list[object]:
        target = await self._target(actions[0].subbranch)
        todo, changes = [], []
        outcomes: list[object] = [None] * len(actions)
        for index, action in enumerate(actions):
            attribute = action.attribute or ""
            if (action.subbranch, action.idnumber, attribute) in self._written:
                continue  # an earlier action wrote the whole collection
            if action.source is None:
                outcomes[index] = ValueError(f"{action.message} needs the source object")
                continue
            todo.append(index)
            changes.append({attribute: getattr(action.source, attribute, None)})
        done = await self._updates(target, [actions[i] for i in todo], changes)
        for index, outcome in zip(todo, done, strict=True):
            outcomes[index] = outcome
            if outcome is None:
                action = actions[index]
                self._written.add((action.subbranch, action.idnumber, action.attribute or ""))
        return outcomes

    async def _updates(
        self, target: Target, actions: list[Action], changes: list[dict[str, Any]]
    ) -> list[object]:
        """UPDATE each action's object with its ``changes`` (``{column: value}``)."""
        outcomes: list[object] = [None] * len(actions)
        groups: dict[tuple[str, ...], _Rows] = {}
        separator = self._separator
        for index, (action, change) in enumerate(zip(actions, changes, strict=True)):
            try:
                columns = tuple(change)
                rows = groups.get(columns)
                if rows is None:
                    for name in columns:
                        self._check_column(target, name)
                    rows = groups[columns] = _Rows(target.update(columns), check=True)
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
        await self._execute(list(groups.values()), target, outcomes)
        return outcomes

    def _alike(self, target: Target, actions: list[Action]) -> _Rows | None:
        """A batch of alike new objects, bound column-wise; None: bind it row by row.

        Alike: one model without derived attributes, the same attribute names,
        and values that all bind (sets and lists encoded, key converted, bind
        processors applied).  Nearly every batch is; for the others, and on any
        error here, :meth:`_new_rows` gives each row its own outcome.
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
                separator = self._separator
                params = [_encoded(values, separator) for values in params]
            if plan.fixups:
                params = plan.fix_all(params)
        except Exception:
            return None
        return _Rows(plan.statement, indexes=list(range(len(actions))), params=params)

    def _new_rows(
        self, target: Target, actions: list[Action], outcomes: list[object]
    ) -> list[_Rows]:
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
            _Rows(statement, indexes=indexes, params=params)
            for statement, (indexes, params) in groups.items()
        ]

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
            self._check_column(target, name)
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
        return _Plan(statement, getter(sources), frozenset(sources), tuple(fixups))

    def _insert_params(self, target: Target, action: Action) -> tuple[Statement, Any]:
        """The statement and parameters of one new object, the general way."""
        row = self._row(action)
        row[target.key.key] = target.key_value(action.idnumber)
        if target.active is not None and target.active.key not in row:
            row[target.active.key] = True
        for name in row:
            self._check_column(target, name)
        statement = target.insert(tuple(row))
        return statement, statement.params(row)

    def _row(self, action: Action) -> dict[str, Any]:
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

    def _check_column(self, target: Target, name: str) -> None:
        if name not in target.table.columns:
            raise ConfigError(
                f"the table has no column {name!r} for that attribute",
                path=self._db.name,
                table=target.name,
            )

    # -- execution --------------------------------------------------------------------------

    async def _execute(self, work: list[_Rows], target: Target, outcomes: list[object]) -> None:
        """Write ``work`` in one transaction; if that fails, again, halving in savepoints.

        Failures land in ``outcomes`` (by action index); transient ones raise
        :class:`Retry` for the whole batch.
        """
        work = [rows for rows in work if rows.params]
        if not work:
            return
        try:
            failures = await self._db.transaction(_write_all, target, work)
        except sa_exc.DBAPIError as exc:
            if _transient(exc):
                raise Retry(reason=self._db.describe(exc)) from exc
            if sum(len(rows.params) for rows in work) == 1:
                failures = {work[0].indexes[0]: exc}
            else:
                try:
                    failures = await self._db.transaction(_bisected, target, work)
                except sa_exc.DBAPIError as again:
                    if _transient(again):
                        raise Retry(reason=self._db.describe(again)) from again
                    raise
        for index, error in failures.items():
            outcomes[index] = error

    # -- tables -------------------------------------------------------------------------------

    async def _target(self, subbranch: str, new: Sequence[Action] = ()) -> Target:
        """The subbranch's table, reflected (or created from ``new`` actions) once per run."""
        target = self._targets.get(subbranch)
        if target is not None:
            return target
        async with self._lock:
            target = self._targets.get(subbranch)
            if target is None:
                target = self._targets[subbranch] = await self._reflect(subbranch, new)
            return target

    async def _reflect(self, subbranch: str, new: Sequence[Action]) -> Target:
        name = self._tables.get(subbranch, subbranch)
        key_name = self._key_name(subbranch)
        schema = self._schema
        qualified = f"{schema}.{name}" if schema else name
        table, dialect = await self._db.transaction(_reflect, name, schema)
        if table is None:
            if not (self._create_tables and new):
                raise ConfigError(
                    "no such table (SQLTemplate(create_tables=True) creates it "
                    "from the source's attributes)",
                    path=self._db.name,
                    table=qualified,
                )
            rows = [self._row(action) for action in new if action.source is not None]
            active = self._active_column if self._on_old == "deactivate" else None
            table = new_table(name, schema, key_name, rows, dialect, active)
            await self._db.transaction(table.create, checkfirst=True)
        if key_name not in table.columns:
            raise ConfigError(
                f"the table has no key column (it has: {', '.join(table.columns.keys())})",
                path=self._db.name,
                table=qualified,
                key=key_name,
            )
        active_column = None
        if self._on_old == "deactivate":
            if self._active_column not in table.columns:
                raise ConfigError(
                    f"on_old='deactivate' needs the column {self._active_column!r}",
                    path=self._db.name,
                    table=qualified,
                )
            active_column = table.columns[self._active_column]
        return Target(table, table.columns[key_name], active_column, dialect)


# -- the units of work: synchronous, each in one transaction (see ._database) --------------


def _reflect(conn: sa.Connection, name: str, schema: str | None) -> tuple[sa.Table | None, Dialect]:
    """The table (None: there is none), and the dialect to compile statements for."""
    try:
        return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn), conn.dialect
    except sa_exc.NoSuchTableError:
        return None, conn.dialect


def _write_all(conn: sa.Connection, target: Target, work: list[_Rows]) -> dict[int, Exception]:
    """Every statement of ``work``; the failures of rows an UPDATE found no match for."""
    failures: dict[int, Exception] = {}
    _begin(conn)
    for rows in work:
        _write(conn, target, rows, failures)
    return failures


def _bisected(conn: sa.Connection, target: Target, work: list[_Rows]) -> dict[int, Exception]:
    """:func:`_write_all` with a savepoint per part, halving failed parts down to single rows."""
    failures: dict[int, Exception] = {}

    def part(rows: _Rows) -> None:
        try:
            with conn.begin_nested():
                _write(conn, target, rows, failures)
        except sa_exc.DBAPIError as exc:
            if _transient(exc) or not conn.in_transaction():
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


def _write(
    conn: sa.Connection, target: Target, rows: _Rows, failures: dict[int, Exception]
) -> None:
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
