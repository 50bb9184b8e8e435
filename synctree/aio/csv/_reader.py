"""Stream rows out of a CSV file: :class:`CSVReader`.

How it stays fast and exact:

- The file is read in big chunks (``anyio``, so it runs on asyncio and trio)
  and decoded with an incremental decoder, so a multibyte character split
  between two chunks is fine.
- Each chunk is cut after its last line ending and its lines go to the stdlib
  :mod:`csv` parser. A generated list comprehension turns the parsed rows into
  dicts, about a thousand at a time (unpacking checks the field count, a dict
  display builds a presized dict), so there is no per-row Python function call.
- A quoted field may hold line endings and so run past a chunk's cut. To see
  that, a marker line of NUL fields is appended twice after the lines; parsing
  stops at the first marker read as a row of its own. If instead an open quoted
  field swallows it, the parser reads on past it, and the block is redone.
  Real data can hold no NUL (it is an error), so a marker is never a real row.
- Anything unusual in a block (a blank line, a bad field count, an empty key,
  a value its type rejects, a row cut by the block's end) sends that block
  through a slower row-by-row path that either copes or raises an
  :class:`~synctree.InputError` naming file, line and field.
- Physical line numbers of rows are computed lazily: a batch whose rows each
  sit on one line needs only its first line number.
- Iteration is done by small classes, not async generators, so a loader that
  stops early (``break``, an error) leaves no file open and no warning behind.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from functools import partial
from os import PathLike
from pathlib import Path, PurePath
from typing import Any, Protocol

import anyio

from synctree._exceptions import InputError
from synctree.aio.csv._formulas import unneutralised

__all__ = ["CSVReader"]

Row = dict[str, Any]
Converter = type | Callable[[str], Any]

_MARK = "\x00"
_NEED = object()  # the parser wants the next chunk
_BATCH_ROWS = 1024  # rows per batch: small enough to stay in the CPU cache
_KEY = "idnumber"
_STRING_TYPES = (str,)
_COLLECTION_TYPES: tuple[type, ...] = (set, frozenset, list, tuple)
_BOOL_WORDS = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "t": True,
    "f": False,
    "1": True,
    "0": False,
}
_FAST_BOOLS: dict[str, bool | None] = {"": None}
for _word, _value in _BOOL_WORDS.items():
    for _variant in (_word, _word.upper(), _word.capitalize()):
        _FAST_BOOLS[_variant] = _value
del _word, _value, _variant


class _SlowPath(Exception):
    """Raised inside the fast path to hand a block to the careful path."""


def _empty_key() -> bool:
    raise _SlowPath


def _physical_lines(text: str) -> list[str]:
    """``text`` split after CR, LF and CRLF (what :class:`io.StringIO` does, faster)."""
    # str.splitlines also splits at these, which are data in a CSV file.
    breaks = "\x0b\x0c\x1c\x1d\x1e" if text.isascii() else "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    if any(char in text for char in breaks):
        return list(io.StringIO(text, newline=""))
    return text.splitlines(keepends=True)


def _count_lines(text: str) -> int:
    """Line endings in ``text``, counted like :class:`io.StringIO` splits them."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


# -- where the bytes come from ------------------------------------------------


class _ByteSource(Protocol):
    async def read(self, size: int) -> bytes: ...

    async def aclose(self) -> None: ...

    def close(self) -> None:
        """Close without awaiting, when an abandoned iterator is collected."""


_Opener = Callable[[], Awaitable[_ByteSource | None]]  # None: missing, and that is fine


class _FileSource:
    """A file on disk, read through :func:`anyio.open_file`."""

    def __init__(self, file: anyio.AsyncFile[bytes], path: Path) -> None:
        self._file = file
        self._path = path

    async def read(self, size: int) -> bytes:
        try:
            return await self._file.read(size)
        except OSError as exc:
            raise InputError(
                f"cannot read the file: {exc.strerror or exc}", path=self._path
            ) from exc

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._file.aclose()

    def close(self) -> None:
        self._file.wrapped.close()


async def _open_file(path: Path, missing_ok: bool = False) -> _ByteSource | None:
    try:
        return _FileSource(await anyio.open_file(path, "rb"), path)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise InputError("file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a CSV file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot open the file: {exc.strerror or exc}", path=path) from exc


# -- type conversion ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Conversion:
    """How one typed column is converted.

    ``expr`` is a Python expression (with ``{v}`` for the raw value and ``{f}``
    for ``fast``) used by the generated fast path; it may raise on any value it
    does not like. ``careful`` is the authority: it converts or raises
    :class:`ValueError` with an explanation.
    """

    expr: str
    fast: Any
    careful: Callable[[str], Any]


def _scalar(kind: Callable[[str], Any], label: str) -> _Conversion:
    def careful(value: str) -> Any:
        text = value.strip()
        if not text:
            return None
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"cannot convert {value!r} to {label}") from None

    return _Conversion("{f}({v}) if {v} else None", kind, careful)


def _parse_bool(value: str) -> bool | None:
    text = value.strip().lower()
    if not text:
        return None
    try:
        return _BOOL_WORDS[text]
    except KeyError:
        raise ValueError(
            f"cannot convert {value!r} to bool (expected true/false, yes/no, y/n, t/f or 1/0)"
        ) from None


def _splitter(kind: type, separator: str) -> Callable[[str], Any]:
    def split(value: str) -> Any:
        return kind([part for part in map(str.strip, value.split(separator)) if part])

    return split


def _custom(func: Callable[[str], Any]) -> Callable[[str], Any]:
    name = getattr(func, "__name__", repr(func))

    def careful(value: str) -> Any:
        try:
            return func(value)
        except Exception as exc:
            raise ValueError(f"{name}({value!r}) failed: {exc}") from exc

    return careful


def _conversion(kind: Converter, separator: str) -> _Conversion | None:
    """The conversion for a ``types`` entry; None for ``str`` (no conversion)."""
    if kind in _STRING_TYPES:
        return None
    if kind is bool:
        return _Conversion("{f}[{v}]", _FAST_BOOLS, _parse_bool)
    if kind is int or kind is float:
        return _scalar(kind, kind.__name__)
    if kind is dt.datetime:
        return _scalar(dt.datetime.fromisoformat, "datetime (ISO 8601)")
    if kind is dt.date:
        return _scalar(dt.date.fromisoformat, "date (ISO 8601, YYYY-MM-DD)")
    if isinstance(kind, type) and kind in _COLLECTION_TYPES:
        split = _splitter(kind, separator)
        return _Conversion("{f}({v})", split, split)
    return _Conversion("{f}({v})", kind, _custom(kind))


# -- the plan: what to do with each column, made once per file ----------------------


@dataclass(frozen=True, slots=True)
class _Attr:
    index: int  # column in the file
    name: str  # key in the row dict
    label: str  # column name as the file spells it, for messages
    conversion: _Conversion | None


@dataclass(frozen=True, slots=True)
class _Plan:
    labels: list[str]  # column names as the file spells them
    keys: list[int]  # key columns, in key order
    attrs: list[_Attr]
    build: Callable[[Iterable[list[str]]], list[Row]]
    marker_line: str
    marker_row: list[str]

    @property
    def width(self) -> int:
        return len(self.labels)


def _compile(
    width: int, keys: list[int], attrs: list[_Attr], key_sep: str, unquote: bool
) -> Callable[..., Any]:
    """Generate ``build(rows)``: one list comprehension that makes every row dict.

    With ``unquote``, every cell starting with ``'`` goes through
    :func:`unneutralised` first; without, the generated code has no such check.
    """
    names = [f"_{i}" for i in range(width)]
    env: dict[str, Any] = {"_empty_key": _empty_key, "_ks": key_sep}
    cells = names
    if unquote:
        env["_u"] = unneutralised
        cells = [f'(_u({v}) if {v}[:1] == "\'" else {v})' for v in names]
    key_expr = " + _ks + ".join(cells[k] for k in keys)
    items = [f"{_KEY!r}: {key_expr}"]
    for n, attr in enumerate(attrs):
        value = cells[attr.index]
        if attr.conversion is not None:
            env[f"_c{n}"] = attr.conversion.fast
            value = "(" + attr.conversion.expr.format(v=value, f=f"_c{n}") + ")"
        items.append(f"{attr.name!r}: {value}")
    check = " and ".join(names[k] for k in keys)
    source = (
        "def build(rows):\n"
        f"    return [{{{', '.join(items)}}}\n"
        f"            for ({', '.join(names)},) in rows\n"
        f"            if ({check}) or _empty_key()]\n"
    )
    exec(compile(source, "<synctree CSVReader>", "exec"), env)  # names are only repr()'d
    build: Callable[..., Any] = env["build"]
    return build


# -- line numbers of the rows of one batch ----------------------------------------


class _Lines:
    """The physical line each row of a batch starts on, computed on demand."""

    __slots__ = ("_first", "_recount", "_starts")

    def __init__(
        self,
        first: int,
        starts: list[int] | None = None,
        recount: Callable[[], list[int]] | None = None,
    ) -> None:
        self._first = first
        self._starts = starts
        self._recount = recount

    def __getitem__(self, index: int) -> int:
        if self._starts is None and self._recount is not None:
            self._starts, self._recount = self._recount(), None
        if self._starts is None:
            return self._first + index
        return self._starts[index]


@dataclass(slots=True)
class _Split:
    """Rows of a text split one by one, with where each starts."""

    rows: list[list[str]]
    starts: list[int]
    consumed: int  # characters of complete rows
    lines: int  # physical lines of complete rows
    partial: bool  # the text ends inside a row


# -- the reader -------------------------------------------------------------------


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
    :meth:`batches` for lists of rows (faster). While iterating, :attr:`path`
    is the file and :attr:`line` the line the last row yielded starts on.

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
        self._open: _Opener = partial(_open_file, self.path, missing_ok)

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
        self._separator = separator
        self._key_separator = key_separator

        self._types: dict[str, _Conversion | None] = {}
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
            self._types[name] = _conversion(kind, separator)

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
        self._keep_key = keep_key
        self._allow_empty = allow_empty
        self._unquote = neutralised_formulas
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"'chunk_size' must be an int >= 1, not {chunk_size!r}")
        self._chunk_size = chunk_size

        self._batch_lines: _Lines | None = None
        self._index = -1

    @classmethod
    def _from_opener(
        cls, opener: _Opener, path: PurePath, *, key: str | Sequence[str], **options: Any
    ) -> CSVReader:
        """A reader whose bytes come from ``opener`` (a zip member, ...); ``path`` names it."""
        reader = cls(path, key=key, **options)
        reader.path = path
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

    # -- what the loader reads -------------------------------------------------------

    @property
    def line(self) -> int | None:
        """The physical line the row last yielded starts on (the last of a batch)."""
        if self._batch_lines is None or self._index < 0:
            return None
        return self._batch_lines[self._index]

    def line_of(self, index: int) -> int | None:
        """The physical line row ``index`` of the batch last yielded starts on."""
        if self._batch_lines is None:
            return None
        return self._batch_lines[index]

    def __aiter__(self) -> AsyncIterator[Row]:
        return _Rows(self.batches(), self)

    def batches(self) -> AsyncIterator[list[Row]]:
        """The rows in lists of about a thousand, read as they are needed.

        The iterator has ``aclose()``; the file is closed at the end, on an
        error, and even if the iteration is abandoned.
        """
        self._batch_lines, self._index = None, -1
        return _Batches(self)

    # -- parsing ------------------------------------------------------------------------

    def _parse(self) -> Generator[Any, bytes | None, None]:
        """Parse the file: yields ``_NEED`` to be sent the next chunk, or ``(batch, lines)``."""
        decoder = codecs.getincrementaldecoder(self._encoding)()
        plan = None if self._fieldnames is None else self._plan(self._fieldnames, None)
        pending = ""  # undecided text; it starts a row, on line `line`
        line = 1
        seen_bytes = False
        header_line: int | None = None
        rows = 0
        final = False
        # Text without a line end longer than this is parsed at once, so that a runaway
        # field (beyond csv.field_size_limit()) fails now, not after buffering the file.
        long_line = 2 * csv.field_size_limit()
        while not final:
            data = yield _NEED
            assert data is not None
            final = not data
            seen_bytes = seen_bytes or not final
            try:
                new = decoder.decode(data, final)
            except UnicodeDecodeError as exc:
                raise self._decode_error(exc, pending, line, plan) from None
            if _MARK in new:
                at = len(pending) + new.index(_MARK)
                text = pending + new
                raise self._error_at(text, at, line, plan, "NUL byte in the file (is it binary?)")
            text = pending + new
            if final:
                if text and text[-1] not in "\r\n":
                    text += "\n"
                block, pending = text, ""
            else:
                end = len(text) - 1 if text.endswith("\r") else len(text)
                cut = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
                block, pending = text[:cut], text[cut:]
                if not cut and len(text) > long_line:
                    self._split(text, line, final=False, limit=1)  # raises if a field is too big
                    long_line = 2 * len(text)  # a long row of many fields: look again later
            if not block:
                continue
            if plan is None:
                split = self._split(block, line, final=final, limit=1)
                if not split.rows:
                    if split.partial:
                        pending = block + pending
                    else:  # blank lines only so far
                        line += split.lines
                    continue
                header_line = split.starts[0]
                plan = self._plan(split.rows[0], header_line)
                line += split.lines
                block = block[split.consumed :]
                if not block:
                    continue
            batches = self._block(plan, block, line, final)
            while True:
                try:
                    batch, lines = next(batches)
                except StopIteration as done:
                    consumed, used_lines = done.value
                    break
                rows += len(batch)
                yield batch, lines
            pending = block[consumed:] + pending
            line += used_lines
        if rows == 0 and not self._allow_empty:
            if plan is None or not seen_bytes:
                problem = "the file is empty"
            elif self._fieldnames is None:
                problem = "the file has a header but no rows"
            else:
                problem = "the file has no rows"
            raise InputError(
                f"{problem}; an empty export must never look like everyone left "
                "(pass allow_empty=True to accept it)",
                path=self.path,
                line=header_line,
            )

    def _plan(self, raw: Sequence[str], line: int | None) -> _Plan:
        """Work out, from the header, what to do with each column."""
        labels = [name.strip() for name in raw]
        if self._fieldnames is None:
            missing = [old for old in self._rename if old not in labels]
            if missing:
                raise self._header_error(
                    f"no column {missing[0]!r} to rename", labels, line, missing[0]
                )
        names = [self._rename.get(label, label) for label in labels]

        keys: list[int] = []
        for key in self._keys:
            found = [i for i, name in enumerate(names) if name == key]
            if not found:
                raise self._header_error(f"the key column {key!r} is missing", labels, line, key)
            if len(found) > 1:
                raise self._header_error(f"the key column {key!r} appears twice", labels, line, key)
            keys.extend(found)
        for param, wanted in (("columns", self._columns or []), ("types", list(self._types))):
            for name in wanted:
                if name not in names:
                    raise self._header_error(
                        f"column {name!r} (named in {param!r}) is missing", labels, line, name
                    )

        attrs: list[_Attr] = []
        seen: set[str] = set()
        for index, name in enumerate(names):
            if index in keys:
                if not self._keep_key or name == _KEY:
                    continue
            elif not name or (self._columns is not None and name not in self._columns):
                continue
            if name == _KEY:
                raise self._header_error(
                    f"column {_KEY!r} clashes with the key; rename it", labels, line, labels[index]
                )
            if name in seen:
                raise self._header_error(
                    f"column {name!r} appears twice", labels, line, labels[index]
                )
            seen.add(name)
            attrs.append(_Attr(index, name, labels[index], self._types.get(name)))

        width = len(labels)
        marker_row = [_MARK] * width
        build = _compile(width, keys, attrs, self._key_separator, self._unquote)
        marker_line = self._dialect.delimiter.join(marker_row) + "\n"
        return _Plan(labels, keys, attrs, build, marker_line, marker_row)

    def _block(
        self, plan: _Plan, text: str, line: int, final: bool
    ) -> Generator[tuple[list[Row], _Lines], None, tuple[int, int]]:
        """Yield the rows of ``text`` (complete lines starting a row, on ``line``).

        Returns the characters and lines used; an unused rest (a row cut by the
        end of the text) is parsed again with the next chunk. Batches are small
        so that the loader reads each row while it is still in the CPU cache.
        """
        lines = _physical_lines(text)
        count = len(lines)
        lines += (plan.marker_line, plan.marker_line)
        reader = csv.reader(lines, self._dialect)
        rows = iter(reader.__next__, plan.marker_row)  # stops at the first marker
        build = plan.build
        held: tuple[list[Row], _Lines] | None = None  # yielded once the next batch is good
        held_at = retry_at = 0  # lines into text
        while True:
            at = reader.line_num
            try:
                batch = build(itertools.islice(rows, _BATCH_ROWS))
            except Exception:  # anything odd: the careful path explains or copes
                retry_at = at
                break
            if not batch:
                if reader.line_num == count + 1:  # the first marker read as a row
                    if held is not None:
                        yield held
                    return len(text), count
                retry_at = held_at  # a row ran into the marker: redo the last batch
                held = None
                break
            if held is not None:
                yield held
            now = min(reader.line_num, count)
            first = line + at
            if now - at == len(batch):
                where = _Lines(first)
            else:
                where = _Lines(first, recount=partial(self._starts, lines, at, now, first))
            held, held_at = (batch, where), at
        if held is not None:
            yield held
        skip = sum(map(len, lines[:retry_at]))
        batch, where, consumed, used = self._careful(plan, text[skip:], line + retry_at, final)
        if batch:
            yield batch, where
        return skip + consumed, retry_at + used

    def _starts(self, lines: list[str], start: int, stop: int, line: int) -> list[int]:
        """Where the rows of ``lines[start:stop]`` (the first on ``line``) start."""
        return self._split("".join(lines[start:stop]), line, final=True).starts

    def _careful(
        self, plan: _Plan, text: str, line: int, final: bool
    ) -> tuple[list[Row], _Lines, int, int]:
        split = self._split(text, line, final=final)
        width = plan.width
        for row, start in zip(split.rows, split.starts, strict=True):
            if len(row) != width:
                if len(row) < width:
                    problem = f"expected {width} fields, found {len(row)}"
                    raise InputError(
                        problem, path=self.path, line=start, field=plan.labels[len(row)]
                    )
                extra = ", ".join(repr(value) for value in row[width : width + 3])
                problem = f"expected {width} fields, found {len(row)} (extra: {extra})"
                raise InputError(problem, path=self.path, line=start)
            for k in plan.keys:
                if not row[k]:
                    raise InputError(
                        "the key is empty", path=self.path, line=start, field=plan.labels[k]
                    )
        try:
            batch = plan.build(split.rows)
        except Exception:  # a value the fast conversion refused: convert row by row
            batch = [
                self._careful_row(plan, row, start)
                for row, start in zip(split.rows, split.starts, strict=True)
            ]
        return batch, _Lines(line, starts=split.starts), split.consumed, split.lines

    def _careful_row(self, plan: _Plan, row: list[str], line: int) -> Row:
        try:
            return plan.build([row])[0]
        except Exception:
            pass
        if self._unquote:
            row = [unneutralised(cell) for cell in row]
        out: Row = {_KEY: self._key_separator.join(row[k] for k in plan.keys)}
        for attr in plan.attrs:
            value = row[attr.index]
            if attr.conversion is not None:
                try:
                    value = attr.conversion.careful(value)
                except ValueError as exc:
                    raise InputError(str(exc), path=self.path, line=line, field=attr.label) from exc
            out[attr.name] = value
        return out

    def _split(self, text: str, line: int, *, final: bool, limit: int | None = None) -> _Split:
        """Split ``text`` into rows one at a time, noting where each starts."""
        flag: list[int] = []
        stream = io.StringIO(text, newline="")
        reader = csv.reader(
            itertools.chain(stream, iter(partial(flag.append, 1), None)), self._dialect
        )
        split = _Split([], [], 0, 0, False)
        while limit is None or len(split.rows) < limit:
            start = line + split.lines
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if flag and not final:
                    split.partial = True
                    break
                raise InputError(f"malformed CSV: {exc}", path=self.path, line=start) from None
            if flag:  # the row ran into the end of the text
                if not final:
                    split.partial = True
                    break
                raise InputError(
                    "the file ends inside a row (a quote is never closed?)",
                    path=self.path,
                    line=start,
                )
            split.lines = reader.line_num
            split.consumed = stream.tell()
            if row:  # not a blank line
                split.rows.append(row)
                split.starts.append(start)
        return split

    # -- error messages -------------------------------------------------------------

    def _header_error(
        self, problem: str, labels: list[str], line: int | None, field: str
    ) -> InputError:
        shown = ", ".join(repr(label) for label in labels[:12])
        more = ", ..." if len(labels) > 12 else ""
        where = "the header" if self._fieldnames is None else "'fieldnames'"
        return InputError(
            f"{problem} ({where} has {shown}{more})", path=self.path, line=line, field=field
        )

    def _error_at(
        self, text: str, at: int, line: int, plan: _Plan | None, problem: str
    ) -> InputError:
        """An error about the character at ``text[at]``; ``text`` starts a row on ``line``.

        Parses up to the character (plus a stand-in for it) to tell its column;
        before the header is known, ``text`` starts the file and holds the header.
        """
        before = text[:at]
        try:
            parsed = list(csv.reader(io.StringIO(before + "?", newline=""), self._dialect))
        except csv.Error:
            parsed = []
        parsed = [row for row in parsed if row]
        labels = None if plan is None else plan.labels
        if labels is None and len(parsed) > 1:  # the header comes first
            labels = [name.strip() for name in parsed[0]]
        field = None
        if labels is not None and parsed and 0 < len(parsed[-1]) <= len(labels):
            field = labels[len(parsed[-1]) - 1]
        return InputError(problem, path=self.path, line=line + _count_lines(before), field=field)

    def _decode_error(
        self, exc: UnicodeDecodeError, pending: str, line: int, plan: _Plan | None
    ) -> InputError:
        good = exc.object[: exc.start]
        text = pending + codecs.decode(good, self._encoding, "replace")
        bad = exc.object[exc.start : exc.end].hex(" ")
        problem = (
            f"cannot decode byte(s) {bad} as {self._encoding} "
            "(is the file in another encoding? pass encoding=...)"
        )
        return self._error_at(text, len(text), line, plan, problem)


# -- iteration ----------------------------------------------------------------------


class _Batches:
    """One pass over a file: feeds chunks to :meth:`CSVReader._parse`.

    Not an async generator, so that abandoning it (``break``, an error in the
    loader) leaves nothing behind: the file is closed when the parse ends or
    fails, by :meth:`aclose`, or at the latest when the iterator is collected.
    """

    def __init__(self, reader: CSVReader) -> None:
        self._reader = reader
        self._parser = reader._parse()
        self._source: _ByteSource | None = None
        self._reply: bytes | None = None
        self._done = False

    def __aiter__(self) -> _Batches:
        return self

    async def __anext__(self) -> list[Row]:
        if self._done:
            raise StopAsyncIteration
        reader = self._reader
        try:
            while True:
                item = self._parser.send(self._reply)
                self._reply = None
                if item is _NEED:
                    if self._source is None:
                        self._source = await reader._open()
                        if self._source is None:  # missing, and missing_ok: no rows
                            raise StopAsyncIteration  # closed below
                    self._reply = await self._source.read(reader._chunk_size)
                    continue
                batch: list[Row]
                lines: _Lines
                batch, lines = item
                reader._batch_lines, reader._index = lines, len(batch) - 1
                return batch
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


class _Rows:
    """Rows one at a time, out of batches; keeps the owner's ``line`` on the current row."""

    def __init__(self, batches: AsyncIterator[list[Row]], owner: Any) -> None:
        self._batches = batches
        self._owner = owner
        self._batch: list[Row] = []
        self._next = 0

    def __aiter__(self) -> _Rows:
        return self

    async def __anext__(self) -> Row:
        while self._next >= len(self._batch):
            self._batch = await self._batches.__anext__()
            self._next = 0
        index = self._next
        self._next = index + 1
        self._owner._index = index
        return self._batch[index]

    async def aclose(self) -> None:
        aclose = getattr(self._batches, "aclose", None)
        if aclose is not None:
            await aclose()
