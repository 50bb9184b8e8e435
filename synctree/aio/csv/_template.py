"""Write the actions into a CSV file: :class:`CSVTemplate`.

The file is read into memory before the first action, every action records
the change it makes (and fails if it cannot be made), and after the last
action the changes of the actions that *succeeded* are applied in the order
the report recorded them and the whole file is written anew, atomically: a
temporary file in the same folder, flushed and fsynced, then ``os.replace``.
So the file always matches the report, even when the run was cancelled.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.to_thread

from synctree import (
    Action,
    ConfigError,
    InputError,
    Kind,
    Missing,
    Outcome,
    Report,
    Skip,
    compared_values,
)
from synctree._util.atomic import atomic_write
from synctree.aio import AsyncTemplate, batch

from ._formulas import neutralised, unneutralised
from ._reader import CSVReader

__all__ = ["CSVTemplate"]

_COLLECTIONS = (set, frozenset, list, tuple)
#: Actions per call of a generic method: the runner's per-call cost is paid per
#: batch, and a batch of in-memory changes holds the event loop for milliseconds.
_BATCH_SIZE = 1000
_CRLF = "\r\n"


@dataclass(frozen=True, slots=True)
class _Change:
    """What one action does to the rows; applied only if the action succeeds."""

    action: Action
    cells: Mapping[str, str] = field(default_factory=dict)  # new, update: column -> text
    column: str = ""  # add, remove
    member: str = ""  # add, remove


@dataclass(slots=True)
class _Table:
    """The file in memory: header, rows by key in file order, and how it was written."""

    header: list[str] | None = None  # as written; None: not known yet (a new file)
    index: dict[str, int] = field(default_factory=dict)  # stripped column name -> position
    key_index: int = 0
    rows: dict[str, list[str]] = field(default_factory=dict)
    ending: str = _CRLF
    bom: bool = False


def _text(value: Any) -> str:
    """A scalar as cell text: None empty, bools true/false, dates ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    return str(value)


def _members(cell: str, separator: str) -> list[str]:
    """The members of a collection cell, split as ``CSVReader(types={...: set})`` does."""
    return [part for part in (item.strip() for item in cell.split(separator)) if part]


def _join(members: Iterable[str], separator: str) -> str:
    return separator.join(sorted(members))


class CSVTemplate(AsyncTemplate):
    """Make a CSV file mirror one subbranch of the source.

    - ``new`` appends a row: the key and the source object's compared
      attributes that have a column (others are not written).
    - ``update`` sets the changed cells of a row; ``old`` drops the row.
    - ``add`` / ``remove`` change one member of a set- or list-valued cell
      (members joined by ``separator``, sorted).

    Rows keep their order in the file; new rows go after them, sorted by key,
    so the output depends only on the inputs, not on the order in which
    concurrent actions finished.  Columns keep their order, unknown columns and
    cells no action touches are kept as they are, and so are the file's line
    endings and UTF-8 byte order mark.  Values are written as ``CSVReader``
    reads them back: None as an empty cell, bools as ``true``/``false``, dates
    in ISO 8601, collections joined with ``separator``.  A value that no CSV
    file gives back as written fails its action before the file changes: a NUL,
    a member that holds the separator or has surrounding spaces, a new column
    name with surrounding spaces, and an update whose cell text stays the same
    (None over ``''`` in a text column), which would otherwise repeat every run.

    The file is written once, after the last action, and only if an action
    succeeded (never on a dry run); see the module docstring.  The generic
    methods take batches of actions (:func:`~synctree.aio.batch`); a subclass
    may still define per-action methods such as ``new_students(action)``.

    :param path: the CSV file; it need not exist yet.
    :param key: the key column (its cells are the objects' ``idnumber``).
    :param columns: the columns to write, in order; the key must be one of
        them.  By default the existing file's header, or for a new file the
        key followed by the new objects' attributes in first-seen order (taking
        the objects by key).
        Given for an existing file, its rows are rearranged to these columns.
    :param delimiter: the field delimiter.
    :param encoding: the text encoding; a UTF-8 file with a byte order mark
        keeps it.
    :param separator: joins the members of set- and list-valued attributes.
    :param neutralise_formulas: prefix ``'`` to a written cell that starts
        with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return and is not a
        plain number, so that a spreadsheet shows it instead of running it
        (OWASP, "CSV Injection").  A value that is such text behind quotes
        (``'=x``) gets one more, so that the quote can be told apart.  Read the
        file with ``CSVReader(..., neutralised_formulas=True)`` to get the
        values back without the quote (else they differ on every run).
    :param subbranch: the subbranch this file holds.  By default the only one
        in the tree, or else the only one with actions in this run (found with
        one more pass over the diff; more than one is a
        :class:`~synctree.ConfigError`).  Actions of other subbranches are
        skipped.
    """

    path: Path

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        key: str = "idnumber",
        columns: Sequence[str] | None = None,
        delimiter: str = ",",
        encoding: str = "utf-8",
        separator: str = ";",
        neutralise_formulas: bool = True,
        subbranch: str | None = None,
    ) -> None:
        if not isinstance(path, str | PathLike):
            raise ValueError(f"'path' must be a str or path, not {path!r}")
        if not isinstance(key, str) or not key or key.strip() != key:
            raise ValueError(
                f"'key' must be a non-empty column name without surrounding spaces, not {key!r}"
            )
        if columns is not None:
            columns = _column_names(columns)
            if key not in columns:
                raise ValueError(f"'columns' must include the key column {key!r}: {columns!r}")
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n\x00':
            raise ValueError(
                f"'delimiter' must be one character other than a quote or line end, "
                f"not {delimiter!r}"
            )
        try:
            codec = codecs.lookup(encoding)
        except (LookupError, TypeError):
            raise ValueError(f"'encoding' is not a known text encoding: {encoding!r}") from None
        if not isinstance(separator, str) or not separator or separator.strip() != separator:
            raise ValueError(
                f"'separator' must be a non-empty string without surrounding spaces, "
                f"not {separator!r}"
            )
        if not isinstance(neutralise_formulas, bool):
            raise ValueError(f"'neutralise_formulas' must be a bool, not {neutralise_formulas!r}")
        if subbranch is not None and (not isinstance(subbranch, str) or not subbranch):
            raise ValueError(f"'subbranch' must be a subbranch name or None, not {subbranch!r}")
        self.path = Path(path)
        self._key = key
        self._columns = columns
        self._delimiter = delimiter
        self._encoding = encoding
        self._utf8 = codec.name == "utf-8"
        self._separator = separator
        self._neutralise = neutralise_formulas
        self._subbranch = subbranch
        self._target: str | None = subbranch
        self._table = _Table()
        self._staged: dict[int, _Change] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self.path)!r} key={self._key!r}>"

    # -- hooks ---------------------------------------------------------------------------

    async def before_all(self) -> None:
        """Work out the subbranch, then read the existing file into memory."""
        self._staged = {}
        self._target = await self._resolve_subbranch()
        self._table = await self._read()

    async def after_all(self, report: Report) -> None:
        """Apply the changes of the actions that succeeded and write the file."""
        staged, self._staged = self._staged, {}
        changes = []
        for result in report.results:
            change = staged.get(id(result.action))
            if (
                change is not None
                and change.action is result.action
                and result.outcome is Outcome.SUCCEEDED
            ):
                changes.append(change)
        table, self._table = self._table, _Table()  # hold no rows between runs
        if not changes:
            return
        try:
            # Shielded, even from the runner's grace deadline: the changes are in
            # memory and the report counts them, so the file must get them.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._apply_and_write, table, changes)
        except OSError as exc:
            exc.add_note(f"{self.path} was not written; it is unchanged")
            raise

    # -- the generic methods: batches, as the work is in memory ----------------------------

    @batch(_BATCH_SIZE)
    async def new(self, actions: list[Action]) -> list[object]:
        """Add a row for each source object."""
        return self._each(actions, self._new)

    @batch(_BATCH_SIZE)
    async def update(self, actions: list[Action]) -> list[object]:
        """Set the changed cells of each object's row."""
        return self._each(actions, self._update)

    @batch(_BATCH_SIZE)
    async def old(self, actions: list[Action]) -> list[object]:
        """Drop each object's row."""
        return self._each(actions, self._old)

    @batch(_BATCH_SIZE)
    async def add(self, actions: list[Action]) -> list[object]:
        """Add a member to a set- or list-valued cell."""
        return self._each(actions, self._member)

    @batch(_BATCH_SIZE)
    async def remove(self, actions: list[Action]) -> list[object]:
        """Remove a member from a set- or list-valued cell."""
        return self._each(actions, self._member)

    # -- checking and staging, one action at a time ---------------------------------------

    def _each(self, actions: list[Action], stage: Callable[[Action], None]) -> list[object]:
        """Stage each action's change: one outcome per action (an exception if it failed)."""
        outcomes: list[object] = []
        for action in actions:
            if self._target is None:  # run without a diff: the first action decides
                self._target = action.subbranch
            if action.subbranch != self._target:
                why = f"{self.path.name} holds {self._target}, not {action.subbranch}"
                outcomes.append(Skip(why))
                continue
            try:
                stage(action)
            except Exception as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    def _new(self, action: Action) -> None:
        key = action.idnumber
        if key in self._table.rows:
            raise LookupError(f"{self.path}: a row with key {key!r} already exists")
        self._check_text(action, self._key, key)
        if self._neutralise and neutralised(key) != key:
            raise ValueError(
                f"the key {key!r} would get a leading ' against spreadsheet formulas, "
                "which would change the key (neutralise_formulas=False allows it)"
            )
        if action.source is None:
            raise ValueError(f"{action.message} {key!r} has no source object")
        known = self._table.index if self._table.header is not None else None
        cells: dict[str, str] = {}
        for name, value in compared_values(action.source).items():
            if name == self._key or (known is not None and name not in known):
                continue
            if isinstance(value, Missing):
                raise ValueError(f"attribute {name!r}: {value.reason}")
            if known is None:
                _check_column_name(action, name)
            cells[name] = self._cell(action, name, value)
        self._check_encoding({self._key: key, **cells})
        self._stage(_Change(action, cells))

    def _update(self, action: Action) -> None:
        self._row(action)
        if action.changes is not None:
            changes: Mapping[str, Any] = action.changes
        elif action.attribute is not None:
            changes = {action.attribute: action.value}
        else:
            raise ValueError(f"{action.message} {action.idnumber!r} names no attribute")
        row = self._table.rows[action.idnumber]
        cells: dict[str, str] = {}
        for name, value in changes.items():
            self._column(name)
            text = self._cell(action, name, value)
            if text == row[self._table.index[name]]:
                raise ValueError(
                    f"{_where(action, name)}: {value!r} is written as {text!r}, the text the "
                    "cell already holds, which the destination reader read as "
                    f"{_old_value(action, name)!r}: this update would repeat on every run "
                    "(a CSV cell cannot tell None from '' in a text column; do the reader's "
                    "'types' and 'neutralised_formulas' match what is written?)"
                )
            cells[name] = text
        self._check_encoding(cells)
        self._stage(_Change(action, cells))

    def _old(self, action: Action) -> None:
        self._row(action)
        self._stage(_Change(action))

    def _row(self, action: Action) -> None:
        if action.idnumber not in self._table.rows:
            raise LookupError(f"{self.path}: no row with key {action.idnumber!r}")

    def _column(self, name: str) -> None:
        if name == self._key:
            raise ValueError(f"{self.path}: {name!r} is the key column; keys are not updated")
        if name not in self._table.index:
            raise LookupError(f"{self.path}: no column {name!r} (pass columns=... to add it)")

    def _member(self, action: Action) -> None:
        self._row(action)
        column = action.attribute or ""
        self._column(column)
        member = self._member_text(action, column, action.value)
        self._check_encoding({column: member})
        self._stage(_Change(action, column=column, member=member))

    def _stage(self, change: _Change) -> None:
        self._staged[id(change.action)] = change  # the change keeps its action alive

    def _cell(self, action: Action, name: str, value: Any) -> str:
        """The text of the cell for ``value``, neutralised if need be.

        Text that ``CSVReader`` could not read back as written is refused.
        """
        if type(value) is str:
            text = value
        elif isinstance(value, _COLLECTIONS):
            members = (self._member_text(action, name, member) for member in value)
            text = _join(members, self._separator)
        else:
            text = _text(value)
        self._check_text(action, name, text)
        return neutralised(text) if self._neutralise else text

    def _member_text(self, action: Action, name: str, member: Any) -> str:
        """A collection member's text; one that would not read back the same is refused."""
        text = _text(member)
        separator = self._separator
        # Also a separator made of the member's edge and a neighbouring separator
        # (members "a:" and "b" joined by "::" split as "a", ":b").
        if separator in separator[1:] + text + separator[:-1]:
            raise ValueError(
                f"{_where(action, name)}: member {text!r} holds the separator {separator!r} "
                "(or makes one with a neighbouring separator)"
            )
        if not text or text.strip() != text:
            raise ValueError(
                f"{_where(action, name)}: member {text!r} is empty or has surrounding spaces, "
                "which reading the file back would drop"
            )
        self._check_text(action, name, text)
        return text

    @staticmethod
    def _check_text(action: Action, name: str, text: str) -> None:
        """Refuse text no CSV file can hold for ``CSVReader``: a NUL, a cell too long."""
        if "\x00" in text:
            raise ValueError(
                f"{_where(action, name)}: the value holds a NUL character (\\x00), which a "
                "CSV file cannot hold (CSVReader refuses a file with one); nothing was written"
            )
        limit = csv.field_size_limit()
        if len(text) > limit:
            raise ValueError(
                f"{_where(action, name)}: the value is {len(text)} characters long, more than "
                f"a CSV field may be (csv.field_size_limit() is {limit})"
            )

    def _check_encoding(self, cells: Mapping[str, str]) -> None:
        try:
            "".join(cells.values()).encode(self._encoding)
        except UnicodeEncodeError:
            for name, text in cells.items():
                try:
                    text.encode(self._encoding)
                except UnicodeEncodeError as exc:
                    raise ValueError(
                        f"attribute {name!r}: {text!r} cannot be written in "
                        f"{self._encoding} ({exc.reason})"
                    ) from None
            raise  # pragma: no cover - one of the cells fails on its own

    # -- reading -----------------------------------------------------------------------------

    async def _resolve_subbranch(self) -> str | None:
        diff = self.diff
        if diff is None:
            return self._subbranch
        names = diff.left.subbranches
        if self._subbranch is not None:
            if self._subbranch not in names:
                raise ConfigError(
                    f"subbranch={self._subbranch!r} is not in the tree (it has {', '.join(names)})",
                    path=self.path,
                )
            return self._subbranch
        if len(names) == 1:
            return names[0]
        found: dict[str, None] = {}
        async for action in diff:
            found[action.subbranch] = None
        if len(found) > 1:
            raise ConfigError(
                f"one CSV file holds one subbranch, but this run has actions for "
                f"{', '.join(found)}: pass subbranch=... (nothing was changed)",
                path=self.path,
            )
        return next(iter(found), None)

    async def _read(self) -> _Table:
        """The existing file (header, rows in order), or an empty table if there is none."""
        found = await anyio.to_thread.run_sync(self._read_header)
        table = _Table()
        if self._columns is not None:
            table.header = list(self._columns)
        if found is None:
            return self._indexed(table)
        header, line, table.ending, table.bom = found
        names = [name.strip() for name in header]
        seen: set[str] = set()
        for name in names:
            if name and name in seen:
                raise InputError(
                    "the column appears twice in the header", path=self.path, line=line, field=name
                )
            seen.add(name)
        if self._key not in names:
            shown = ", ".join(map(repr, names[:12]))
            raise InputError(
                f"the key column {self._key!r} is missing (the header has {shown})",
                path=self.path,
                line=line,
                field=self._key,
            )
        key_index = names.index(self._key)
        if table.header is None:
            table.header = header
            layout = None
        else:  # rearrange the rows to the given columns
            old = {name: i for i, name in enumerate(names)}
            layout = [old.get(name) for name in table.header]
        fieldnames = _placeholders(names, key_index)
        reader = CSVReader(
            self.path,
            key=self._key,
            fieldnames=fieldnames,
            delimiter=self._delimiter,
            encoding="utf-8-sig" if self._utf8 else self._encoding,
            allow_empty=True,
        )
        rows = table.rows
        others = [(i, name) for i, name in enumerate(fieldnames) if i != key_index]
        first = True
        async for chunk in reader.batches():
            assert chunk.line_of is not None
            for index, row in enumerate(chunk.rows):
                if first:  # the header, read as a row
                    first = False
                    continue
                key = row["idnumber"]
                if key in rows:
                    raise InputError(
                        f"duplicate key {key!r}",
                        path=self.path,
                        line=chunk.line_of(index),
                        field=self._key,
                    )
                cells = [""] * len(fieldnames)
                cells[key_index] = key
                for i, name in others:
                    cells[i] = row[name]
                rows[key] = cells if layout is None else _rearranged(cells, layout)
        return self._indexed(table)

    def _indexed(self, table: _Table) -> _Table:
        if table.header is not None:
            table.index = {name.strip(): i for i, name in enumerate(table.header)}
            table.key_index = table.index[self._key]
        return table

    def _read_header(self) -> tuple[list[str], int, str, bool] | None:
        """``(header, its line, its line ending, BOM?)``, or None for no file or a blank one.

        Runs in a worker thread and reads only as far as the header.
        """
        try:
            raw = open(self.path, "rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(
                f"cannot open the file: {exc.strerror or exc}", path=self.path
            ) from exc
        encoding = "utf-8-sig" if self._utf8 else self._encoding
        with raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as file:
            bom = self._utf8 and raw.peek(3)[:3] == codecs.BOM_UTF8
            lines: list[str] = []
            reader = csv.reader(_tapped(file, lines), delimiter=self._delimiter)
            start = 1
            try:
                for row in reader:
                    if row:
                        return row, start, _ending(lines[-1]), bom
                    start = reader.line_num + 1
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"cannot decode the header as {self._encoding}: {exc.reason}",
                    path=self.path,
                    line=start,
                ) from None
            except csv.Error as exc:
                raise InputError(
                    f"malformed CSV header: {exc}", path=self.path, line=start
                ) from None
        return None

    # -- writing ------------------------------------------------------------------------------

    def _apply_and_write(self, table: _Table, changes: list[_Change]) -> None:
        """Apply the changes in order and replace the file (runs in a worker thread)."""
        rows = table.rows
        new: dict[str, Mapping[str, str]] = {}
        for change in changes:
            action = change.action
            kind, key = action.kind, action.idnumber
            if kind is Kind.NEW:
                new[key] = change.cells
            elif kind is Kind.OLD:
                rows.pop(key, None)
            elif kind is Kind.UPDATE:
                row = rows[key]
                for name, text in change.cells.items():
                    row[table.index[name]] = text
            else:
                row = rows[key]
                at = table.index[change.column]
                cell = unneutralised(row[at]) if self._neutralise else row[at]
                members = _members(cell, self._separator)
                if kind is Kind.ADD:
                    if change.member not in members:
                        members.append(change.member)
                else:
                    members = [m for m in members if m != change.member]
                text = _join(members, self._separator)
                row[at] = neutralised(text) if self._neutralise else text
        if table.header is None:  # a new file: the key, then attributes in first-seen order
            header = {self._key: None}
            for key in sorted(new):
                header.update(dict.fromkeys(new[key]))
            table.header = list(header)
            self._indexed(table)
        assert table.header is not None
        for key in sorted(new):
            cells = new[key]
            row = [cells.get(name.strip(), "") for name in table.header]
            row[table.key_index] = key
            rows[key] = row
        _replace(
            self.path,
            itertools.chain([table.header], rows.values()),
            encoding="utf-8-sig" if table.bom else self._encoding,
            delimiter=self._delimiter,
            ending=table.ending,
        )


def _where(action: Action, name: str) -> str:
    """Where a refused value is: subbranch, key and attribute."""
    return f"{action.subbranch} {action.idnumber!r}, attribute {name!r}"


def _old_value(action: Action, name: str) -> Any:
    if action.dest is None:
        return action.old_value
    return compared_values(action.dest).get(name, action.old_value)


def _check_column_name(action: Action, name: str) -> None:
    """A new file's column name must read back as itself (CSVReader strips header names)."""
    if not name or name.strip() != name or "\x00" in name:
        raise ValueError(
            f"{_where(action, name)}: a column named {name!r} would not read back as "
            "itself (empty, surrounding spaces or a NUL); pass columns=... to leave it out"
        )


def _column_names(columns: object) -> list[str]:
    if isinstance(columns, str) or not isinstance(columns, Sequence):
        raise ValueError(f"'columns' must be a sequence of column names, not {columns!r}")
    names = list(columns)
    if not all(isinstance(name, str) and name.strip() == name and name for name in names):
        raise ValueError(
            f"'columns' must hold non-empty names without surrounding spaces: {names!r}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"'columns' names a column twice: {names!r}")
    return names


def _placeholders(names: list[str], key_index: int) -> list[str]:
    """Field names for ``CSVReader``: the header's, with stand-ins for the ones it refuses.

    An empty name, or ``idnumber`` on a column other than the key, gets a
    unique stand-in, so that every column is read and kept.
    """
    taken = set(names)
    out = []
    for i, name in enumerate(names):
        if i != key_index and (not name or name == "idnumber"):
            stand_in, n = f"<column {i + 1}>", 1
            while stand_in in taken:
                n += 1
                stand_in = f"<column {i + 1}.{n}>"
            taken.add(stand_in)
            name = stand_in
        out.append(name)
    return out


def _rearranged(cells: list[str], layout: list[int | None]) -> list[str]:
    return ["" if i is None else cells[i] for i in layout]


def _tapped(file: Iterable[str], lines: list[str]) -> Iterable[str]:
    """The file's lines, each noted in ``lines`` as the csv reader takes it."""
    for line in file:
        lines.append(line)
        yield line


def _ending(line: str) -> str:
    """The line ending of ``line``; CRLF (RFC 4180) if it has none."""
    for ending in (_CRLF, "\n", "\r"):
        if line.endswith(ending):
            return ending
    return _CRLF


def _replace(
    path: Path, rows: Iterable[list[str]], *, encoding: str, delimiter: str, ending: str
) -> None:
    """Write ``rows`` to ``path`` atomically, each ending in ``ending``."""
    with atomic_write(path, encoding=encoding, newline="") as file:
        # The csv writer quotes only the line-end characters of its own
        # lineterminator; a lone CR (or LF) in a cell of an LF (or CR) file
        # would be written bare and end the row.  So it writes CRLF, which
        # quotes both, and each row's CRLF becomes the file's line ending.
        out: Any = file if ending == _CRLF else _Ending(file, ending)
        writer = csv.writer(out, delimiter=delimiter, lineterminator=_CRLF)
        writer.writerows(rows)


class _Ending:
    """A file for ``csv.writer``: each row it writes ends in ``ending`` instead of CRLF."""

    __slots__ = ("_ending", "_write")

    def __init__(self, file: TextIO, ending: str) -> None:
        self._write = file.write
        self._ending = ending

    def write(self, row: str) -> int:
        return self._write(row[:-2] + self._ending)  # csv.writer writes one row per call
