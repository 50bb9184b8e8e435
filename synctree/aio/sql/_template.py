"""Write the actions into SQL tables: :class:`SQLTemplate`, its template methods and hooks.

The work is done beside it: :mod:`._binding` turns actions into statement
parameters, :mod:`._writes` runs them in transactions, :mod:`._tables` reflects
or creates the tables, :mod:`._keys` checks the keys round-trip, and
:mod:`._database` runs it all off the event loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeAlias, get_args

import anyio

from synctree import Action, NewActions, Report, Skip
from synctree.aio import AsyncTemplate, Verdict, batch, idempotent

from ._binding import Binder
from ._database import Database, EngineLike
from ._errors import destination_failure
from ._keys import check_keys
from ._tables import Target, open_target
from ._writes import execute

__all__ = ["OnOld", "SQLTemplate"]

OnOld: TypeAlias = Literal["delete", "deactivate", "keep"]

#: Batch size by dialect when none is given: SQLite pays a disk sync per commit.
_BATCH_SIZES = {"sqlite": 10_000}
_BATCH_SIZE = 1000


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
        SQLite (each commit waits for the disk) and 1,000 elsewhere.  Kept as
        the attribute ``batch_size``, which the generic methods' marker
        (``@batch(size="batch_size")``) names: the runner reads it per run.
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
        self._db = Database(url, owner=type(self).__name__)
        self._binder = Binder(separator, self._db.name)
        self._targets: dict[str, Target] = {}
        self._lock = anyio.Lock()
        self._written: set[tuple[str, str, str]] = set()
        if on_old == "keep" and "max_deletes" not in type(self).__dict__:
            self.max_deletes = None  # type: ignore[misc]  # nothing is removed
        if batch_size is None:
            batch_size = _BATCH_SIZES.get(self._db.dialect, _BATCH_SIZE)
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._db.name!r} on_old={self._on_old!r}>"

    # -- hooks ---------------------------------------------------------------------------

    def classify(self, error: Exception) -> Verdict | None:
        """A missing table, DDL the database refuses, or no connection stop the run once."""
        return destination_failure(error)

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
                left, right = diff.left[name], diff.right[name]
                if len(left) or len(right):  # every key, read only if the column needs it
                    await self._check_keys(name, itertools.chain(left.keys(), right.keys()))
        except BaseException:
            await self._db.dispose()  # after_all is not called when before_all fails
            raise

    async def _check_keys(self, subbranch: str, keys: Iterable[str]) -> None:
        """Raise :class:`RoundTripError` if the subbranch's key column would change a key."""
        await self._db.transaction(
            check_keys,
            self._tables.get(subbranch, subbranch),
            self._schema,
            self._key_name(subbranch),
            keys,
            created=self._create_tables,
            path=self._db.name,
        )

    def _key_name(self, subbranch: str) -> str:
        return self._keys.get(subbranch) or self._keys.get("") or "idnumber"

    async def after_all(self, report: Report) -> None:
        """Dispose of an engine made from a URL."""
        self._targets.clear()
        await self._db.dispose()

    # -- the generic methods --------------------------------------------------------------

    @batch(size="batch_size", lazy=True)
    @idempotent
    async def new(self, actions: Sequence[Action]) -> list[object]:
        """INSERT (or upsert) the source objects (a run's straight from its stored rows)."""
        subbranch = actions.subbranch if isinstance(actions, NewActions) else actions[0].subbranch
        target = await self._target(subbranch, actions)
        outcomes: list[object] = [None] * len(actions)
        work = self._binder.new(target, actions, outcomes)
        await execute(self._db, target, work, outcomes)
        return outcomes

    @batch(size="batch_size")
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

    @batch(size="batch_size")
    async def old(self, actions: list[Action]) -> list[object]:
        """DELETE, deactivate, or keep (``on_old``) the objects the source no longer has."""
        if self._on_old == "keep":
            return [Skip("on_old=keep")] * len(actions)
        target = await self._target(actions[0].subbranch)
        statement = target.remove(deactivate=self._on_old == "deactivate")
        outcomes: list[object] = [None] * len(actions)
        rows = self._binder.keys(statement, target, actions, outcomes)
        await execute(self._db, target, [rows], outcomes)
        return outcomes

    @batch(size="batch_size")
    async def add(self, actions: list[Action]) -> list[object]:
        """Write the source's collection into the attribute's text column."""
        return await self._members(actions)

    @batch(size="batch_size")
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
        work = self._binder.updates(target, actions, changes, outcomes)
        await execute(self._db, target, work, outcomes)
        return outcomes

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
        binder = self._binder

        def rows() -> list[dict[str, Any]]:
            return binder.created_rows(new)

        return await open_target(
            self._db,
            self._tables.get(subbranch, subbranch),
            self._schema,
            self._key_name(subbranch),
            active=self._active_column if self._on_old == "deactivate" else None,
            create=rows if self._create_tables and new else None,
        )
