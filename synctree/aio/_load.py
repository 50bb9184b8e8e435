"""Loading a tree from readers: every subbranch of every branch at once."""

from __future__ import annotations

import inspect
import logging
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
)
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio
from anyio.lowlevel import checkpoint

from .._exceptions import DuplicateKeyError, InputError, ReaderError, SyncTreeError
from .._util.redact import error_text
from ._reader import Batch, BatchReader, PackedTable, Reader, Row, Table, TableReader

if TYPE_CHECKING:
    from .._tree import Subbranch, SyncTree

__all__ = ["Derived", "Pipeline", "load"]

#: The ``synctree`` logger (see ``synctree.aio._runner``): loading is a run's first phase.
logger = logging.getLogger("synctree")

#: Rows added between two checkpoints, so one big load lets other tasks run.
_CHECKPOINT_ROWS = 1000


class Pipeline:
    """A reader with per-row hooks, applied in order before a row reaches the tree.

    :param preprocess: transforms a row; returning ``None`` drops it.
    :param scope: ``row -> bool``; rows outside the scope are left out of the
        tree, so synctree neither updates nor removes them (use it on the
        destination for objects synctree does not manage, such as admins).
    """

    def __init__(
        self,
        reader: Reader | Derived,
        *,
        preprocess: Callable[[Row], Row | None] | None = None,
        scope: Callable[[Row], bool] | None = None,
    ) -> None:
        self.reader = reader
        self.preprocess = preprocess
        self.scope = scope

    def __repr__(self) -> str:
        return repr(self.reader)

    def apply(self, rows: list[Row]) -> list[Row]:
        """The rows that remain after the hooks."""
        if self.preprocess is not None:
            done = (self.preprocess(row) for row in rows)
            rows = [row for row in done if row is not None]
        if self.scope is not None:
            rows = [row for row in rows if self.scope(row)]
        return rows


class Derived:
    """Rows computed from another subbranch of the same branch, once it has loaded.

    ``Derived('students', parents_of)`` calls ``parents_of(students_subbranch)``,
    which returns (or async-yields) rows, e.g. one parent per student contact.
    """

    def __init__(
        self,
        subbranch: str,
        derive: Callable[[Subbranch], Iterable[Row] | AsyncIterable[Row]],
    ) -> None:
        self.subbranch = subbranch
        self.derive = derive

    def __repr__(self) -> str:
        name = getattr(self.derive, "__qualname__", repr(self.derive))
        return f"Derived({self.subbranch!r}, {name})"


async def load(
    tree: SyncTree,
    readers: Mapping[str, Mapping[str, Any]],
    *,
    progress: Callable[[str, str, int], None] | None = None,
) -> None:
    """Load ``{branch: {subbranch: reader}}`` into ``tree`` in one task group.

    The first reader to fail cancels the others, and one :class:`ReaderError`
    names the branch, subbranch and reader (and file and line where known).
    ``progress(branch, subbranch, rows)`` is called as rows arrive (rows so far).
    """
    loaded: dict[tuple[str, str], anyio.Event] = {}
    jobs = []
    for branch, per_subbranch in readers.items():
        if branch not in tree.branches:
            raise ValueError(
                f"cannot load unknown branch {branch!r} (the tree has {tree.branches})"
            )
        for name, reader in per_subbranch.items():
            if name not in tree.subbranches:
                raise ValueError(
                    f"cannot load {branch} {name!r}: no such subbranch (the tree has "
                    f"{tree.subbranches})"
                )
            loaded[branch, name] = anyio.Event()
            jobs.append((branch, name, reader))
    for branch, name, reader in jobs:
        inner = reader.reader if isinstance(reader, Pipeline) else reader
        if isinstance(inner, Derived) and (branch, inner.subbranch) not in loaded:
            raise ValueError(
                f"{branch} {name} is derived from {inner.subbranch!r}, which is not being loaded"
            )
    _check_cycles(jobs)

    failure: list[ReaderError] = []
    async with anyio.create_task_group() as group:
        for branch, name, reader in jobs:
            group.start_soon(
                _load_one,
                tree,
                tree[branch][name],
                reader,
                loaded,
                failure,
                group.cancel_scope,
                progress,
            )
    if failure:
        logger.error("load failed: %s", failure[0])
        raise failure[0]
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "loaded: %s",
            ", ".join(f"{branch} {name} {len(tree[branch][name])}" for branch, name, _ in jobs),
        )


def _check_cycles(jobs: list[tuple[str, str, Any]]) -> None:
    edges = {}
    for branch, name, reader in jobs:
        inner = reader.reader if isinstance(reader, Pipeline) else reader
        if isinstance(inner, Derived):
            edges[branch, name] = (branch, inner.subbranch)
    for start in edges:
        seen = {start}
        node = edges.get(start)
        while node is not None:
            if node in seen:
                raise ValueError(f"derived subbranches form a cycle through {start[0]} {start[1]}")
            seen.add(node)
            node = edges.get(node)


async def _load_one(
    tree: SyncTree,
    subbranch: Subbranch,
    reader: Any,
    loaded: dict[tuple[str, str], anyio.Event],
    failure: list[ReaderError],
    scope: anyio.CancelScope,
    progress: Callable[[str, str, int], None] | None,
) -> None:
    pipeline = reader if isinstance(reader, Pipeline) else None
    source = pipeline.reader if pipeline is not None else reader
    # the reader's current batch, before any hooks
    current: list[Batch | Table | PackedTable] = [Batch([])]
    try:
        if isinstance(source, Derived):
            await loaded[subbranch.branch, source.subbranch].wait()
            batches = _batches(_derived_rows(tree[subbranch.branch][source.subbranch], source))
            await _load_batches(subbranch, batches, pipeline, progress, current)
        elif pipeline is None and isinstance(source, TableReader):
            await _load_tables(subbranch, source, progress, current)
        else:
            await _load_batches(subbranch, _batches(source), pipeline, progress, current)
    except Exception as exc:
        if not failure:
            failure.append(_reader_error(subbranch, source, exc, current[0]))
        scope.cancel()
        return
    if progress is not None:
        progress(subbranch.branch, subbranch.name, len(subbranch))
    loaded[subbranch.branch, subbranch.name].set()


def _apply_coverage(subbranch: Subbranch, batch: Batch | Table | PackedTable) -> None:
    """What a batch says of the subbranch as a whole: its coverage, removals, notes."""
    if batch.coverage == "absent":
        subbranch.mark_absent(batch.notes[0] if batch.notes else "not provided by the reader")
        subbranch.notes.extend(batch.notes[1:])
        return
    if batch.coverage == "delta" or batch.removed:
        subbranch.mark_delta(batch.removed)
    subbranch.notes.extend(batch.notes)


def _where(current: list[Batch | Table | PackedTable]) -> Callable[[Any], tuple[Any, Any]]:
    """``where(row)``: the path and line of a row of the current batch (only asked on an error).

    Of a :class:`PackedTable`, ``row`` is the row's index.
    """

    def where(row: Any) -> tuple[Any, Any]:
        batch = current[0]
        if batch.line_of is None:
            return batch.path, None
        if isinstance(batch, PackedTable):
            return batch.path, batch.line_of(row)
        found = [i for i, other in enumerate(batch.rows) if other is row]
        return batch.path, batch.line_of(found[0]) if found else None

    return where


async def _load_batches(
    subbranch: Subbranch,
    batches: AsyncGenerator[Batch, None],
    pipeline: Pipeline | None,
    progress: Callable[[str, str, int], None] | None,
    current: list[Batch | Table | PackedTable],
) -> None:
    add_rows = subbranch._add_rows
    where = _where(current)
    count = 0
    async with aclosing(batches):
        async for batch in batches:
            current[0] = batch
            if batch.coverage is not None or batch.removed or batch.notes:
                _apply_coverage(subbranch, batch)
            if pipeline is None:
                add_rows(batch.rows, where, batch.encoded)
                rows = batch.rows
            else:  # hooks see the values, not their text
                rows = pipeline.apply(batch.decoded())
                add_rows(rows, where)
            count += len(rows)
            if count >= _CHECKPOINT_ROWS:
                count = 0
                if progress is not None:
                    progress(subbranch.branch, subbranch.name, len(subbranch))
                await checkpoint()


async def _load_tables(
    subbranch: Subbranch,
    reader: TableReader,
    progress: Callable[[str, str, int], None] | None,
    current: list[Batch | Table | PackedTable],
) -> None:
    """The tables of a :class:`TableReader`, added to the subbranch as they are."""
    add, add_packed = subbranch._add_tuples, subbranch._add_packed
    where = _where(current)
    tables = reader.tables()
    try:
        async for table in tables:
            current[0] = table
            if table.coverage is not None or table.removed or table.notes:
                _apply_coverage(subbranch, table)
            if isinstance(table, PackedTable):
                add_packed(table.keys, table.texts, table.packing, where, table.encoded)
            else:
                add(table.columns, table.rows, where, table.encoded)
            if progress is not None:
                progress(subbranch.branch, subbranch.name, len(subbranch))
            await checkpoint()
    finally:
        close = getattr(tables, "aclose", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await close()


def _reader_error(
    subbranch: Subbranch, reader: Any, exc: Exception, batch: Batch | Table | PackedTable
) -> ReaderError:
    name = repr(reader)
    if isinstance(exc, InputError):
        field = exc.field
        if field is None and isinstance(exc, DuplicateKeyError):
            field = batch.key
        error = ReaderError(
            exc.problem,
            branch=subbranch.branch,
            subbranch=subbranch.name,
            reader=name,
            path=exc.path,
            line=exc.line,
            field=field,
        )
    else:
        problem = error_text(exc)  # a custom reader's error may quote a URL with credentials
        if isinstance(exc, KeyError) and not isinstance(exc, SyncTreeError):
            problem = f"a row has no {exc} (readers must give every row an 'idnumber')"
        error = ReaderError(
            problem,
            branch=subbranch.branch,
            subbranch=subbranch.name,
            reader=name,
            path=batch.path,
        )
    error.__cause__ = exc
    return error


async def _batches(reader: Reader) -> AsyncGenerator[Batch, None]:
    """The reader's batches: its ``batches()`` if it has one, else a row at a time.

    Rows from a plain async iterable are passed on one by one, so that a key
    clash is found on the row that brought it.  The reader's iterator is
    closed when this one is, even on an error.
    """
    if isinstance(reader, BatchReader):
        inner: Any = reader.batches()
    elif hasattr(reader, "__aiter__"):
        inner = aiter(reader)
    else:
        raise TypeError(f"{reader!r} is not a reader (an async iterable of row dicts)")
    try:
        if isinstance(reader, BatchReader):
            async for batch in inner:
                yield batch if isinstance(batch, Batch) else Batch(batch)
        else:
            async for row in inner:
                yield Batch([row])
    finally:
        close = getattr(inner, "aclose", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await close()


async def _derived_rows(parent: Subbranch, derived: Derived) -> AsyncIterator[Row]:
    rows = derived.derive(parent)
    if inspect.isawaitable(rows):
        rows = await rows
    if hasattr(rows, "__aiter__"):
        async for row in rows:
            yield row
    else:
        for row in rows:
            yield row
