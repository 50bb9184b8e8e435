"""The CSV file reader: :class:`CSVReader`, its options, and its passes over the file.

The options are checked when the reader is made, with a :class:`ValueError`
naming the parameter.  Each pass (:meth:`CSVReader.batches`, ``async for``) is
an iterator of its own, feeding chunks of the file to a ``_parse.Parser`` and
yielding :class:`~synctree.aio.Batch` records that carry the file, each row's
line and the key column: the reader keeps no state of a pass, so it can be iterated
twice at once.  The passes are small classes, not async generators, so a
loader that stops early (``break``, an error) leaves no file open and no
warning behind.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from os import PathLike
from pathlib import Path, PurePath
from typing import Any

from synctree.aio import Batch, PackedTable, Row, Table, rows_of

from ._columns import Columns
from ._convert import Conversion, Converter, conversion
from ._parse import NEED, Lines, Packed, Parser
from ._source import ByteSource, Opener, open_file

__all__ = ["CSVReader"]


def _names(value: object, param: str, *, allow_empty: bool = False) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{param!r} must be a sequence of column names, not {value!r}")
    names = list(value)
    if not names and not allow_empty:
        raise ValueError(f"{param!r} must not be empty")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{param!r} must hold non-empty strings, not {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{param!r} names a column twice: {names!r}")
    return names


class CSVReader:
    """Read rows of a CSV file as dicts keyed by column, for :meth:`SyncTree.load`.

    Each row is a fresh dict with the key under ``'idnumber'`` (a ``str``) and
    the other columns as attributes. Iterate it with ``async for``, or call
    :meth:`batches` for :class:`~synctree.aio.Batch` records (faster), which
    also say the line each row starts on.  Each pass is independent: a reader
    can be iterated twice at once.

    :param path: the CSV file.
    :param key: the key column, or several whose values are joined with
        ``key_separator`` (in the given order) into one key.
    :param delimiter: the field delimiter; ``','`` unless ``dialect`` says otherwise.
    :param dialect: a :mod:`csv` dialect (name, class or instance).
    :param encoding: the text encoding; the default reads UTF-8 with or without BOM.
    :param rename: new names for header columns, applied before everything else.
    :param columns: keep only these columns (after renaming); key columns are
        always read.
    :param types: per column (after renaming): ``int``, ``float``, ``bool``
        (true/false, yes/no, y/n, t/f, 1/0), ``datetime.date`` or
        ``datetime.datetime`` (ISO 8601) — an empty cell becomes ``None`` —;
        ``set``, ``frozenset``, ``list`` or ``tuple``, which split the cell on
        ``separator`` (items stripped, empty items dropped); or any callable,
        given the raw string.
    :param fieldnames: the column names of a file without a header row.
    :param keep_key: also keep the key columns as attributes.
    :param allow_empty: accept a file with no rows; by default that is an error,
        so that an empty export never looks like everyone left.
    :param missing_ok: read a missing file as no rows (whatever ``allow_empty``
        says): a destination file that ``CSVTemplate`` is about to create.  By
        default a missing file is an error; never set it for a source export.
    :param neutralised_formulas: the file was written by
        ``CSVTemplate(neutralise_formulas=True)`` (the default): take off the
        leading ``'`` it put before cells a spreadsheet could run as formulas,
        before any conversion, in every column including the key, so that the
        values read back as they were synced.  Other cells (``'hello``,
        ``'-5``) are left as they are.
    :param chunk_size: bytes read at a time.
    """

    path: PurePath

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        key: str | Sequence[str],
        delimiter: str | None = None,
        dialect: str | csv.Dialect | type[csv.Dialect] | None = None,
        encoding: str = "utf-8-sig",
        rename: Mapping[str, str] | None = None,
        columns: Sequence[str] | None = None,
        types: Mapping[str, Converter] | None = None,
        separator: str = ";",
        key_separator: str = "|",
        fieldnames: Sequence[str] | None = None,
        keep_key: bool = False,
        allow_empty: bool = False,
        missing_ok: bool = False,
        neutralised_formulas: bool = False,
        chunk_size: int = 1 << 20,
    ) -> None:
        if not isinstance(path, str | PathLike):
            raise ValueError(f"'path' must be a str or path, not {path!r}")
        if not isinstance(missing_ok, bool):
            raise ValueError(f"'missing_ok' must be a bool, not {missing_ok!r}")
        self.path = Path(path)
        self._open: Opener = partial(open_file, self.path, missing_ok)

        self._keys = [key] if isinstance(key, str) else _names(key, "key")
        if not all(self._keys):
            raise ValueError("'key' must not be empty")
        self._dialect = self._make_dialect(dialect, delimiter)
        try:
            codecs.getincrementaldecoder(encoding)
        except (LookupError, TypeError):
            raise ValueError(f"'encoding' is not a known text encoding: {encoding!r}") from None
        self._encoding = encoding

        self._rename = dict(rename or {})
        for old, new in self._rename.items():
            if not isinstance(old, str) or not isinstance(new, str) or not new:
                raise ValueError(
                    f"'rename' must map names to non-empty names, not {old!r}: {new!r}"
                )
        if len(set(self._rename.values())) != len(self._rename):
            raise ValueError("'rename' gives two columns the same name")

        self._columns = None if columns is None else _names(columns, "columns", allow_empty=True)

        for param, value in (("separator", separator), ("key_separator", key_separator)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{param!r} must be a non-empty string, not {value!r}")

        self._types: dict[str, Conversion | None] = {}
        for name, kind in (types or {}).items():
            if not isinstance(name, str) or not callable(kind):
                raise ValueError(f"'types' must map column names to types or callables: {name!r}")
            if name in self._keys and not keep_key:
                raise ValueError(
                    f"'types' converts key column {name!r}; keys stay strings "
                    "(pass keep_key=True to also keep a converted copy)"
                )
            if self._columns is not None and name not in self._columns and name not in self._keys:
                raise ValueError(f"'types' names column {name!r}, which 'columns' leaves out")
            self._types[name] = conversion(kind, separator)

        self._fieldnames = None if fieldnames is None else _names(fieldnames, "fieldnames")
        if self._fieldnames is not None:
            unknown = [name for name in self._rename if name not in self._fieldnames]
            if unknown:
                raise ValueError(f"'rename' names columns not in 'fieldnames': {unknown!r}")
            known = {self._rename.get(name, name) for name in self._fieldnames}
            for param, wanted in (
                ("key", self._keys),
                ("columns", self._columns or []),
                ("types", list(self._types)),
            ):
                missing = [name for name in wanted if name not in known]
                if missing:
                    raise ValueError(f"{param!r} names columns not in 'fieldnames': {missing!r}")

        if not isinstance(keep_key, bool):
            raise ValueError(f"'keep_key' must be a bool, not {keep_key!r}")
        if not isinstance(allow_empty, bool):
            raise ValueError(f"'allow_empty' must be a bool, not {allow_empty!r}")
        if not isinstance(neutralised_formulas, bool):
            raise ValueError(f"'neutralised_formulas' must be a bool, not {neutralised_formulas!r}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"'chunk_size' must be an int >= 1, not {chunk_size!r}")
        self._chunk_size = chunk_size

        self._parser = Parser(
            path=self.path,
            dialect=self._dialect,
            encoding=self._encoding,
            columns=Columns(
                keys=self._keys,
                rename=self._rename,
                columns=self._columns,
                types=self._types,
                key_separator=key_separator,
                keep_key=keep_key,
                unquote=neutralised_formulas,
                fieldnames=self._fieldnames,
            ),
            allow_empty=allow_empty,
        )
        #: The set- and list-valued columns, whose cells the batches keep as text.
        self._encoded = {
            name: c.encoding for name, c in self._types.items() if c is not None and c.encoding
        }
        self._shown = str(self.path)  # what a batch names as its path
        self._key_label = " + ".join(self._keys)  # what a batch names as its key

    @classmethod
    def from_opener(
        cls,
        opener: Callable[[], Awaitable[ByteSource]],
        *,
        path: str | PathLike[str],
        key: str | Sequence[str],
        **options: Any,
    ) -> CSVReader:
        """A reader whose bytes come from ``opener`` rather than a file: a zip member, ...

        ``opener()`` is awaited at the start of each pass and gives a fresh
        :class:`ByteSource`; ``path`` names the data in batches and errors.  The
        other options are those of :class:`CSVReader` (``missing_ok`` aside).
        """
        if not callable(opener):
            raise ValueError(f"'opener' must be a callable giving a ByteSource, not {opener!r}")
        if "missing_ok" in options:
            raise ValueError("'missing_ok' is for files; an opener gives its source or raises")
        reader = cls(path, key=key, **options)
        reader._open = opener
        return reader

    @staticmethod
    def _make_dialect(
        dialect: str | csv.Dialect | type[csv.Dialect] | None, delimiter: str | None
    ) -> Any:
        if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
            raise ValueError(f"'delimiter' must be a single character, not {delimiter!r}")
        if delimiter is not None and delimiter in "\r\n\x00":
            raise ValueError(f"'delimiter' cannot be {delimiter!r}")
        options: dict[str, Any] = {} if delimiter is None else {"delimiter": delimiter}
        try:
            made = csv.reader([], dialect if dialect is not None else "excel", **options).dialect
        except (csv.Error, TypeError) as exc:
            raise ValueError(f"'dialect' is not a usable csv dialect: {exc}") from None
        if made.quoting == csv.QUOTE_NONNUMERIC:
            raise ValueError("'dialect' must not use QUOTE_NONNUMERIC; use 'types' to convert")
        if made.delimiter in (made.quotechar, made.escapechar):
            param = "dialect" if delimiter is None else "delimiter"
            raise ValueError(
                f"{param!r}: the delimiter {made.delimiter!r} is also a quote or escape"
            )
        for char in (made.delimiter, made.quotechar, made.escapechar):
            if char is not None and char in "\r\n\x00":
                raise ValueError(f"'dialect' cannot use {char!r} as a delimiter, quote or escape")
        return made

    def __repr__(self) -> str:
        return f"<CSVReader {str(self.path)!r} key={self._keys!r}>"

    # -- passes over the file ----------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())

    def batches(self) -> AsyncIterator[Batch]:
        """A new pass: :class:`~synctree.aio.Batch` records of a few thousand rows.

        Each batch names the file, the line each row starts on (``line_of``) and
        the key column(s).  Set-, frozenset-, list- and tuple-typed cells are
        still their text, which ``Batch.encoded`` declares and
        ``Batch.decoded()`` (or ``async for`` over the reader) decodes.  The
        iterator has ``aclose()``; the file is closed at the end, on an error,
        and even if the pass is abandoned.
        """
        return _Batches(self)

    def tables(self) -> AsyncIterator[Table | PackedTable]:
        """A new pass like :meth:`batches`, the rows in compact form: what the loader reads.

        Where the file allows (no quotes, no typed cells that need checking: see
        :class:`~synctree.aio.PackedTable`), rows stay their lines, one string
        a row, parsed when their cells are needed; other rows come as tuples
        (:class:`~synctree.aio.Table`), which cost a third of a dict.
        """
        return _Batches(self, tuples=True)


class _Batches:
    """One pass over a file: feeds chunks to a parse of it.

    Not an async generator, so that abandoning it (``break``, an error in the
    loader) leaves nothing behind: the file is closed when the parse ends or
    fails, by :meth:`aclose`, or at the latest when the iterator is collected.
    """

    def __init__(self, reader: CSVReader, tuples: bool = False) -> None:
        self._tuples = tuples
        self._open = reader._open
        self._chunk_size = reader._chunk_size
        self._path = reader._shown
        self._key = reader._key_label
        self._encoded = reader._encoded or None
        self._parser = reader._parser.parse(tuples, packed=tuples)
        self._source: ByteSource | None = None
        self._reply: bytes | None = None
        self._done = False

    def __aiter__(self) -> _Batches:
        return self

    async def __anext__(self) -> Any:  # a Batch, or a Table with tuples
        if self._done:
            raise StopAsyncIteration
        try:
            while True:
                item = self._parser.send(self._reply)
                self._reply = None
                if item is NEED:
                    if self._source is None:
                        self._source = await self._open()
                        if self._source is None:  # missing, and missing_ok: no rows
                            raise StopAsyncIteration  # closed below
                    self._reply = await self._source.read(self._chunk_size)
                    continue
                rows: list[Any]
                lines: Lines
                rows, lines, names = item
                if isinstance(rows, Packed):
                    return PackedTable(
                        rows.keys,
                        rows.texts,
                        rows.packing,
                        path=self._path,
                        line_of=lines.__getitem__,
                        key=self._key,
                        encoded=self._encoded,
                    )
                if self._tuples:
                    return Table(
                        names,
                        rows,
                        path=self._path,
                        line_of=lines.__getitem__,
                        key=self._key,
                        encoded=self._encoded,
                    )
                return Batch(
                    rows,
                    path=self._path,
                    line_of=lines.__getitem__,
                    key=self._key,
                    encoded=self._encoded,
                )
        except StopIteration:
            await self.aclose()
            raise StopAsyncIteration from None
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        self._done = True
        self._parser.close()
        source, self._source = self._source, None
        if source is not None:
            await source.aclose()

    def __del__(self) -> None:
        if self._source is not None:
            self._source.close()
