"""The reader seam: what the loader reads, declared rather than probed for.

A reader is either a plain async iterable of row dicts (each holding
``'idnumber'``), or an object with ``batches()``, an async iterator of
:class:`Batch` (or plain lists of rows).  A batch says where its rows came
from, so an error found while loading (a key twice) names the file and line,
and the reader keeps no per-iteration state: it can be iterated twice at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable

from .._tree import Coverage, Packing
from .._util.members import decode_row

__all__ = [
    "Batch",
    "BatchReader",
    "PackedTable",
    "Packing",
    "Reader",
    "Row",
    "Table",
    "TableReader",
    "rows_of",
]

#: One object as a reader gives it: attribute -> value, with ``'idnumber'``.
Row: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows read together, and where they came from.

    :param rows: the row dicts, fresh (the tree keeps them).
    :param path: the file or URL they came from, if any (already free of secrets).
    :param line_of: ``index -> line``: the line (or row number) of ``rows[index]``.
    :param key: the column(s) the key came from, to name in an error (``'id'``,
        ``'school + number'``).
    :param coverage: how much of the truth the reader gives for this subbranch,
        if it says (see :data:`synctree.Coverage`): ``"delta"`` when its rows
        are changes only, ``"absent"`` when it does not provide this kind.
    :param removed: keys a delta source says are gone (they become ``old_``
        actions; keys it does not name are left alone).
    :param notes: lines for the plan: a reader's warnings (naming file and
        line), why a subbranch is absent.
    :param encoded: set- or list-valued columns whose cells the rows still hold
        as text, ``{'classes': (set, ';')}``: ``kind`` of the members split on
        the separator, stripped, empty ones dropped (``None`` is empty).  The
        tree keeps the text, which costs little and which the garbage collector
        never tracks, and decodes a cell when a leaf needs it; ``async for`` over
        a reader gives the rows decoded.
    """

    rows: list[Row]
    path: str | None = None
    line_of: Callable[[int], int | None] | None = None
    key: str | None = None
    coverage: Coverage | None = None
    removed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    encoded: Mapping[str, tuple[type, str]] | None = None

    def decoded(self) -> list[Row]:
        """The rows with their :attr:`encoded` cells decoded (in place)."""
        if self.encoded:
            encoded = dict(self.encoded)
            for row in self.rows:
                decode_row(row, encoded)
        return self.rows


@runtime_checkable
class BatchReader(Protocol):
    """A reader that gives its rows in batches (the built-in readers do)."""

    def batches(self) -> AsyncIterator[Batch | list[Row]]:
        """A fresh pass over the rows; each call starts another, independent one."""
        ...


@dataclass(frozen=True, slots=True)
class Table:
    """Rows read together as tuples under one header: a :class:`Batch` in compact form.

    A big load keeps such rows as they are (a tuple costs a third of a dict) and
    makes a row's dict only when a leaf of it is needed.

    :param columns: the names of the cells, ``'idnumber'`` first.
    :param rows: tuples of cells in that order, fresh (the tree keeps them).
    :param path: as :class:`Batch`'s.
    :param line_of: as :class:`Batch`'s.
    :param key: as :class:`Batch`'s.
    :param coverage: as :class:`Batch`'s.
    :param removed: as :class:`Batch`'s.
    :param notes: as :class:`Batch`'s.
    :param encoded: as :class:`Batch`'s.
    """

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    path: str | None = None
    line_of: Callable[[int], int | None] | None = None
    key: str | None = None
    coverage: Coverage | None = None
    removed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    encoded: Mapping[str, tuple[type, str]] | None = None

    def batch(self) -> Batch:
        """The same rows as a :class:`Batch` of dicts (their encoded cells still text)."""
        columns = self.columns
        rows = [dict(zip(columns, row, strict=True)) for row in self.rows]
        return Batch(
            rows,
            self.path,
            self.line_of,
            self.key,
            self.coverage,
            self.removed,
            self.notes,
            encoded=self.encoded,
        )


@dataclass(frozen=True, slots=True)
class PackedTable:
    """Rows read together, each packed into one text (a CSV line): the most compact form.

    A big load keeps such rows as they are (one string a row, a third of a
    tuple's size).  Under equal :class:`~synctree.Packing`\\ s on both sides the
    diff compares a pair of rows as their texts and unpacks only the pairs
    that differ.

    :param keys: the key of each row, ``keys[i]`` that of ``texts[i]``.
    :param texts: the rows, packed, fresh strings (the tree keeps them; it tells a
        key seen twice by its text not being the one kept);
        ``packing.unpack(texts)`` gives their tuples.
    :param packing: how they are packed (its ``columns`` name the cells).
    :param path: as :class:`Batch`'s.
    :param line_of: as :class:`Batch`'s.
    :param key: as :class:`Batch`'s.
    :param coverage: as :class:`Batch`'s.
    :param removed: as :class:`Batch`'s.
    :param notes: as :class:`Batch`'s.
    :param encoded: as :class:`Batch`'s (of the unpacked cells).
    """

    keys: list[str]
    texts: list[str]
    packing: Packing
    path: str | None = None
    line_of: Callable[[int], int | None] | None = None
    key: str | None = None
    coverage: Coverage | None = None
    removed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    encoded: Mapping[str, tuple[type, str]] | None = None

    def table(self) -> Table:
        """The same rows as a :class:`Table` of tuples."""
        return Table(
            self.packing.columns,
            self.packing.unpack(self.texts),
            self.path,
            self.line_of,
            self.key,
            self.coverage,
            self.removed,
            self.notes,
            encoded=self.encoded,
        )


@runtime_checkable
class TableReader(Protocol):
    """A batch reader that can also give its rows as tables, for big loads.

    The loader prefers ``tables()`` when nothing needs the rows as dicts (no
    :class:`~synctree.aio.Pipeline` hooks).  A table is a :class:`Table` of
    tuples or a :class:`PackedTable` of texts.
    """

    def batches(self) -> AsyncIterator[Batch | list[Row]]:
        """As :meth:`BatchReader.batches`."""
        ...

    def tables(self) -> AsyncIterator[Table | PackedTable]:
        """A fresh pass over the rows as tables; each call starts another one."""
        ...


#: What ``load`` accepts for a subbranch: a batch reader or rows one by one.
Reader: TypeAlias = "BatchReader | AsyncIterable[Row]"


def rows_of(batches: AsyncIterator[Batch]) -> AsyncIterator[Row]:
    """The rows of ``batches`` one at a time: a batch reader's ``__aiter__``.

    ``async for row in reader`` is then ``rows_of(reader.batches())``, the rows
    decoded (:meth:`Batch.decoded`).  Closing
    it (``aclose()``) closes the batches; it is a plain iterator, not an async
    generator, so one abandoned half-way leaves nothing behind.
    """
    return _Rows(batches)


class _Rows:
    def __init__(self, batches: AsyncIterator[Batch]) -> None:
        self._batches = batches
        self._rows: list[Row] = []
        self._next = 0

    def __aiter__(self) -> _Rows:
        return self

    async def __anext__(self) -> Row:
        while self._next >= len(self._rows):
            self._rows = (await self._batches.__anext__()).decoded()
            self._next = 0
        index = self._next
        self._next = index + 1
        return self._rows[index]

    async def aclose(self) -> None:
        aclose = getattr(self._batches, "aclose", None)
        if aclose is not None:
            await aclose()
