"""Incremental CSV parsing: chunks of bytes in, batches of row dicts out.

How it stays fast and exact:

- Chunks are decoded with an incremental decoder, so a multibyte character
  split between two chunks is fine; a byte the encoding refuses is an error
  naming its line and field.
- Each chunk is cut after its last line ending and its lines go to the stdlib
  :mod:`csv` parser, then to the plan's generated ``build`` (see ``_columns``).
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
- Packed (what the loader reads): a block whose every line is one row of the
  header's field count (checked by a few passes in C: without quotes by
  counting delimiters, with quotes by parsing) keeps its lines as they are
  (``LinePacking``), parsed again only when a row's cells are needed.  Any
  other block is parsed into tuples as above.

The parser holds no state of its own: each :meth:`Parser.parse` is one pass.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from operator import itemgetter
from pathlib import PurePath
from typing import Any

from synctree import InputError

from ._columns import KEY, Columns, Plan

__all__ = ["NEED", "LinePacking", "Lines", "Packed", "Parser"]

Row = dict[str, Any]

#: What :meth:`Parser.parse` yields when it wants the next chunk.
NEED = object()
_MARK = "\x00"
_BATCH_ROWS = 4096  # rows per batch: fewer switches between readers loading at once


def _physical_lines(text: str) -> list[str]:
    """``text`` split after CR, LF and CRLF (what :class:`io.StringIO` does, faster)."""
    # str.splitlines also splits at others, which are data in a CSV file.
    if _odd_breaks(text):
        return list(io.StringIO(text, newline=""))
    return text.splitlines(keepends=True)


def _odd_breaks(text: str) -> bool:
    """Whether ``text`` holds a character other than CR and LF that str.splitlines breaks at."""
    breaks = "\x0b\x0c\x1c\x1d\x1e" if text.isascii() else "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    return any(char in text for char in breaks)


def _count_lines(text: str) -> int:
    """Line endings in ``text``, counted like :class:`io.StringIO` splits them."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class Lines:
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


_PARSED_LINES = 512  # lines of quoted fields parsed at once to check them

#: ``line[:n]`` for the first key column's usual widths, without a slice object a row.
_SLICES = [slice(0, n) for n in range(256)]


@dataclass(frozen=True, slots=True)
class LinePacking:
    """A file's rows packed as their lines (:class:`synctree.Packing`).

    Two files packed alike (equal :attr:`signature`: the same dialect, header
    and column plan) give equal rows for equal lines.  Only lines that are one
    row each, with no escape character, are packed, so :meth:`unpack` is exact.
    """

    signature: tuple[Any, ...]
    columns: tuple[str, ...] = field(compare=False)
    key_index: int = field(compare=False)
    delimiter: str = field(compare=False)
    dialect: Any = field(compare=False, repr=False)
    build: Callable[[Iterable[list[str]]], list[tuple[Any, ...]]] = field(compare=False, repr=False)
    unquote: bool = field(compare=False)
    #: The name of each field of a line, in the file's order; None if a field is
    #: not a cell of the row (a column left out), so rows cannot be packed back.
    fields: tuple[str, ...] | None = field(compare=False, default=None)

    @classmethod
    def of(cls, plan: Plan, dialect: Any) -> LinePacking | None:
        """The packing of a file with this plan, if its lines can be kept as they are."""
        if len(plan.keys) != 1 or plan.width < 2 or dialect.skipinitialspace:
            return None  # (a line of one short field may be a shared string, not a fresh one)
        for attr in plan.attrs:  # a typed cell's value must be checked on loading
            if attr.conversion is not None and attr.conversion.encoding is None:
                return None
        options = (
            dialect.delimiter,
            dialect.quotechar,
            dialect.escapechar,
            dialect.doublequote,
            dialect.quoting,
            dialect.strict,
        )
        shape = tuple((a.index, a.name, a.conversion and a.conversion.encoding) for a in plan.attrs)
        signature = (options, tuple(plan.labels), plan.keys[0], shape, plan.unquote)
        names = {a.index: a.name for a in plan.attrs} | {plan.keys[0]: KEY}
        fields = tuple(names[i] for i in range(plan.width)) if len(names) == plan.width else None
        return cls(
            signature,
            plan.names,
            plan.keys[0],
            dialect.delimiter,
            dialect,
            plan.build_tuples,
            plan.unquote,
            fields,
        )

    def pack_rows(
        self, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
    ) -> list[str | None] | None:
        """The lines of ``rows`` (tuples under ``columns``, from another reader) where
        that is exact, in C: None for a row that holds a quote character; None for
        all if a cell is not a string or a field of the file has no column.

        A line made so that equals a line of this packing is the same row: a cell
        holding the delimiter, a line break or the escape character makes a line no
        packed line can equal, and one holding a quote is left out (a quoted line
        parses otherwise).
        """
        if self.fields is None or self.unquote:
            return None
        try:
            pick = itemgetter(*map(columns.index, self.fields))
            texts: list[str | None] = list(map(self.delimiter.join, map(pick, rows)))
        except (ValueError, TypeError, KeyError):  # no such column; not a string; a dict
            return None
        quote = self.dialect.quotechar
        if quote and self.dialect.quoting != csv.QUOTE_NONE:
            quoted = list(map(str.__contains__, texts, repeat(quote)))  # type: ignore[arg-type]
            for at in itertools.compress(range(len(texts)), quoted):
                texts[at] = None
        return texts

    def unpack(self, texts: Iterable[str]) -> list[tuple[Any, ...]]:
        """The tuples of packed lines (in C when the row's cells are the line's fields)."""
        if self.fields == self.columns and not self.unquote:
            return list(map(tuple, csv.reader(texts, self.dialect)))
        return self.build(csv.reader(texts, self.dialect))

    def split(self, text: str, width: int) -> tuple[list[str], list[str]] | None:
        """``(keys, lines)`` of a block of complete lines, or None if it cannot be packed.

        Every check is a pass in C.  The block holds no line break that CSV does
        not break at, and no escape character.  With no quote character either,
        each line is one row whose fields split at the delimiter: it must have
        the header's field count (a blank line has too few).  With quotes, the
        block is parsed (in C) to check that each line is one row of that many
        fields (a quoted field holding a line break spans two).  Every row has
        a key (with no formula quote).
        """
        dialect = self.dialect
        escape = dialect.escapechar
        if (escape and escape in text) or _odd_breaks(text):
            return None
        lines = text.splitlines()
        delimiter = self.delimiter
        k = self.key_index
        quote = dialect.quotechar
        if quote and dialect.quoting != csv.QUOTE_NONE and quote in text:
            keys = self._quoted_keys(lines, width)
            if keys is None:
                return None
        elif set(map(str.count, lines, repeat(delimiter))) != {width - 1}:
            return None
        elif k == 0:  # each line up to its first delimiter (the slices made once)
            ends = list(map(str.find, lines, repeat(delimiter)))
            if max(ends, default=0) >= len(_SLICES):
                return None
            keys = list(map(str.__getitem__, lines, map(_SLICES.__getitem__, ends)))
        else:
            keys = list(map(itemgetter(k), map(str.split, lines, repeat(delimiter), repeat(k + 1))))
        if not all(keys) or (self.unquote and any(map(str.startswith, keys, repeat("'")))):
            return None
        return keys, lines

    def _quoted_keys(self, lines: list[str], width: int) -> list[str] | None:
        """The keys of lines with quotes in them, if each is one row of ``width`` fields.

        A marker line follows them (as in :meth:`Parser._block`): a quote left open
        at the end of the last line would swallow it, so a row cut by the block's
        end is never taken for a whole one.
        """
        marker = [_MARK] * width
        end = (self.delimiter.join(marker),)
        keys: list[str] = []
        for start in range(0, len(lines), _PARSED_LINES):  # a few at a time: in the cache
            part = lines[start : start + _PARSED_LINES]
            try:
                rows = list(csv.reader(itertools.chain(part, end), self.dialect))
            except csv.Error:  # the careful path says what is wrong
                return None
            if len(rows) != len(part) + 1 or rows.pop() != marker:
                return None
            if set(map(len, rows)) != {width}:
                return None
            keys += map(itemgetter(self.key_index), rows)
        return keys


@dataclass(frozen=True, slots=True)
class Packed:
    """A block's rows as packed lines: what :meth:`Parser.parse` yields for them."""

    keys: list[str]
    texts: list[str]
    packing: LinePacking


@dataclass(frozen=True, slots=True)
class _Marker:
    """The marker line appended after a block, and the row it parses as."""

    line: str
    row: list[str]


@dataclass(frozen=True, slots=True)
class Parser:
    """How to parse one file; :meth:`parse` is a pass over it.

    :param path: the file, to name in errors.
    :param dialect: a checked :mod:`csv` dialect.
    :param encoding: the text encoding.
    :param columns: what to make of the header.
    :param allow_empty: a file with no rows is fine.
    """

    path: PurePath
    dialect: Any
    encoding: str
    columns: Columns
    allow_empty: bool

    def parse(
        self, tuples: bool = False, packed: bool = False
    ) -> Generator[Any, bytes | None, None]:
        """Parse the file: yields :data:`NEED` to be sent the next chunk, or a batch.

        A batch is ``(rows, lines, names)``; the chunk ``b''`` ends the file.  Rows are
        dicts, or with ``tuples`` tuples of the cells ``names`` names (``Plan.names``);
        with ``packed`` too, a block that can be packed is one batch whose rows are
        a :class:`Packed`.
        """
        decoder = codecs.getincrementaldecoder(self.encoding)()
        fieldnames = self.columns.fieldnames
        plan = None if fieldnames is None else self.columns.plan(fieldnames, None, self.path)
        marker = None if plan is None else self._marker(plan)
        packing = None if plan is None or not packed else LinePacking.of(plan, self.dialect)
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
            data = yield NEED
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
                plan = self.columns.plan(split.rows[0], header_line, self.path)
                marker = self._marker(plan)
                packing = LinePacking.of(plan, self.dialect) if packed else None
                line += split.lines
                block = block[split.consumed :]
                if not block:
                    continue
            assert marker is not None
            if packing is not None and (got := packing.split(block, plan.width)) is not None:
                keys, texts = got
                rows += len(texts)
                yield Packed(keys, texts, packing), Lines(line), plan.names
                line += len(texts)
                continue
            batches = self._block(plan, marker, block, line, final, tuples)
            while True:
                try:
                    batch, lines = next(batches)
                except StopIteration as done:
                    consumed, used_lines = done.value
                    break
                rows += len(batch)
                yield batch, lines, plan.names
            pending = block[consumed:] + pending
            line += used_lines
        if rows == 0 and not self.allow_empty:
            if plan is None or not seen_bytes:
                problem = "the file is empty"
            elif fieldnames is None:
                problem = "the file has a header but no rows"
            else:
                problem = "the file has no rows"
            raise InputError(
                f"{problem}; an empty export must never look like everyone left "
                "(pass allow_empty=True to accept it)",
                path=self.path,
                line=header_line,
            )

    def _marker(self, plan: Plan) -> _Marker:
        row = [_MARK] * plan.width
        return _Marker(self.dialect.delimiter.join(row) + "\n", row)

    def _block(
        self, plan: Plan, marker: _Marker, text: str, line: int, final: bool, tuples: bool
    ) -> Generator[tuple[list[Any], Lines], None, tuple[int, int]]:
        """Yield the rows of ``text`` (complete lines starting a row, on ``line``).

        Returns the characters and lines used; an unused rest (a row cut by the
        end of the text) is parsed again with the next chunk. Batches are small
        so that the loader reads each row while it is still in the CPU cache.
        """
        lines = _physical_lines(text)
        count = len(lines)
        lines += (marker.line, marker.line)
        reader = csv.reader(lines, self.dialect)
        rows = iter(reader.__next__, marker.row)  # stops at the first marker
        build = plan.build_tuples if tuples else plan.build
        held: tuple[list[Any], Lines] | None = None  # yielded once the next batch is good
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
                where = Lines(first)
            else:
                where = Lines(first, recount=partial(self._starts, lines, at, now, first))
            held, held_at = (batch, where), at
        if held is not None:
            yield held
        skip = sum(map(len, lines[:retry_at]))
        batch, where, consumed, used = self._careful(plan, text[skip:], line + retry_at, final)
        if batch:
            yield ([tuple(row.values()) for row in batch] if tuples else batch), where
        return skip + consumed, retry_at + used

    def _starts(self, lines: list[str], start: int, stop: int, line: int) -> list[int]:
        """Where the rows of ``lines[start:stop]`` (the first on ``line``) start."""
        return self._split("".join(lines[start:stop]), line, final=True).starts

    def _careful(
        self, plan: Plan, text: str, line: int, final: bool
    ) -> tuple[list[Row], Lines, int, int]:
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
                plan.careful_row(row, start, self.path)
                for row, start in zip(split.rows, split.starts, strict=True)
            ]
        return batch, Lines(line, starts=split.starts), split.consumed, split.lines

    def _split(self, text: str, line: int, *, final: bool, limit: int | None = None) -> _Split:
        """Split ``text`` into rows one at a time, noting where each starts."""
        flag: list[int] = []
        stream = io.StringIO(text, newline="")
        reader = csv.reader(
            itertools.chain(stream, iter(partial(flag.append, 1), None)), self.dialect
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

    def _error_at(
        self, text: str, at: int, line: int, plan: Plan | None, problem: str
    ) -> InputError:
        """An error about the character at ``text[at]``; ``text`` starts a row on ``line``.

        Parses up to the character (plus a stand-in for it) to tell its column;
        before the header is known, ``text`` starts the file and holds the header.
        """
        before = text[:at]
        try:
            parsed = list(csv.reader(io.StringIO(before + "?", newline=""), self.dialect))
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
        self, exc: UnicodeDecodeError, pending: str, line: int, plan: Plan | None
    ) -> InputError:
        good = exc.object[: exc.start]
        text = pending + codecs.decode(good, self.encoding, "replace")
        bad = exc.object[exc.start : exc.end].hex(" ")
        problem = (
            f"cannot decode byte(s) {bad} as {self.encoding} "
            "(is the file in another encoding? pass encoding=...)"
        )
        return self._error_at(text, len(text), line, plan, problem)
