"""Read a OneRoster 1.0, 1.1 or 1.2 CSV export, from a folder or a .zip: :class:`OneRoster`.

One :class:`OneRoster` serves every subbranch (``readers()``); each reader
streams its file through a :class:`~synctree.aio.csv.CSVReader` (zip members
through ``CSVReader.from_opener``) and shapes each row with the pure functions
of ``_shape`` (shared with the REST reader).  What the manifest says of a file
becomes the subbranch's coverage: ``bulk`` is the whole truth, ``delta`` only
changes (``tobedeleted`` rows become the removed keys), ``absent`` leaves the
kind out of the sync.  Warnings (an enrollment naming a user not in the
export...) become notes naming file and line, for the plan.

The readers of one ``readers()`` call share one look at the export
(``_export.Session``: manifest, headers, the keys that references are checked
against); call ``readers()`` again to look afresh.  The rows themselves are
read anew on every pass.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from functools import partial
from os import PathLike
from pathlib import Path, PurePath
from typing import ClassVar, Literal, get_args

from synctree import InputError
from synctree._util.redact import MASK
from synctree.aio import Batch, Row, rows_of

from . import _shape
from ._export import Session
from ._shape import Record, Shaping, Version

__all__ = ["OneRoster", "OneRosterReader"]

Coverage = Literal["full", "delta", "absent"]
DateOrder = Literal["DMY", "MDY"]

#: The subbranches a OneRoster export gives, in dependency order, and their files.
SUBBRANCHES: dict[str, str] = {
    "orgs": "orgs.csv",
    "sessions": "academicSessions.csv",
    "courses": "courses.csv",
    "classes": "classes.csv",
    "students": "users.csv",
    "staff": "users.csv",
    "guardians": "users.csv",
    "enrollments": "enrollments.csv",
    "demographics": "demographics.csv",
    "user_profiles": "userProfiles.csv",
}
_MAX_WARNINGS = 20  # per subbranch; the rest are counted in one more line


class _Notes:
    """A subbranch's warnings: the first ones in full, then a count."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.more = 0

    def warn(self, text: str) -> None:
        if len(self.lines) < _MAX_WARNINGS:
            self.lines.append(text)
        else:
            self.more += 1

    def all(self) -> list[str]:
        more = [f"... and {self.more} more warnings like these"] if self.more else []
        return self.lines + more


class OneRoster:
    """A OneRoster 1.0, 1.1 or 1.2 CSV export (bulk or delta): a folder, or a ``.zip`` file.

    ``readers()`` gives a reader per subbranch for :meth:`SyncTree.load`; a sync
    uses those it names.  Nothing is read until a reader is iterated.  The
    version comes from ``manifest.csv`` (an export without one is read as
    OneRoster 1.0 if its headers are 1.0's).  Every subbranch has one shape
    whatever the version (``idnumber`` is the ``sourcedId``; sets are Python
    sets, dates :class:`datetime.date`):

    =============  ====================  ===============================================
    subbranch      file                  attributes
    =============  ====================  ===============================================
    orgs           orgs.csv              name, type, identifier, parent
    sessions       academicSessions.csv  title, type, start, end, parent, school_year
    courses        courses.csv           title, code, school_year, org, grades, subjects
    classes        classes.csv           title, code, type, course, school, terms,
                                         grades, subjects, periods, location
    students       users.csv (+ 1.2      username, first, last, middle, preferred_first,
    staff          roles.csv)            preferred_last, pronouns, email, sms, phone,
    guardians                            identifier, user_ids, master_id, enabled, role,
                                         roles, school, orgs, grades, grade, agents
    enrollments    enrollments.csv       user, class, school, role, primary, begin, end
    demographics   demographics.csv      birth_date, sex, races, hispanic,
                                         country_of_birth, state_of_birth,
                                         city_of_birth, residence_status
    user_profiles  userProfiles.csv      user, type, vendor, application, description,
                                         credential_type, username
    =============  ====================  ===============================================

    - Users go by their primary role (1.2: the role whose ``roleType`` is
      ``primary`` in roles.csv, else their first role): ``student`` to
      *students*; ``parent``, ``guardian`` and ``relative`` to *guardians*;
      every other role (teacher, aide, administrator, proctor, ...) to *staff*.
      ``role`` is that role in lower case, ``roles`` the set of
      ``"role@orgSourcedId"``, ``orgs`` all their orgs, ``school`` the primary
      org (1.2 ``primaryOrgSourcedId``; before, the first of ``orgSourcedIds``),
      ``grade`` the first of ``grades``, ``agents`` their guardian links.
    - Enrollments are one row per enrollment, keyed by its ``sourcedId``.
    - Other columns (``ext_*``, ``metadata.*``, ``subjectCodes``, vendor
      columns) are carried as ``_<column>`` attributes, never compared; a
      missing optional column reads as empty; a missing required one is an
      error naming file, line 1 and the column.  Password columns are dropped
      (``keep_passwords=True`` carries them as ``_password``: never compared,
      so never in a plan).

    The manifest's word on each file is the subbranch's coverage: ``bulk`` is
    the whole truth (``tobedeleted`` rows are left out); ``absent`` leaves the
    subbranch out of the sync (no creates, updates or removals; the plan says
    so); ``delta`` gives only changes: active rows create or update,
    ``tobedeleted`` rows remove (so does a new role that moves a user to
    another subbranch), and objects it does not list are left alone.
    A reference to a user, class or course that a bulk file does not have is a
    warning naming file and line, and the row is left out (``dangling="keep"``
    keeps it).

    :param path: the export's folder or zip file (files at its top level, or
        in one folder inside the zip).
    :param date_order: how to read slash dates such as ``1/05/2023``: ``"DMY"``
        or ``"MDY"``.  ISO dates and datetimes are always read; by default a
        slash date is an error naming file, line, field and this option.
    :param keep_passwords: carry password columns as ``_password`` (see above).
    :param dangling: ``"drop"`` (the default) or ``"keep"`` rows whose
        references a bulk file does not have (both warn).
    :param allow_empty: accept a subbranch with no rows (the default: a bulk
        file may well have none, and a sync refuses to empty a destination
        anyway); ``False`` makes it an error.
    :param chunk_size: bytes read at a time.
    """

    subbranches: ClassVar[tuple[str, ...]] = tuple(SUBBRANCHES)
    """The subbranch names, in dependency order (orgs before classes before enrollments)."""

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        date_order: DateOrder | None = None,
        keep_passwords: bool = False,
        dangling: Literal["drop", "keep"] = "drop",
        allow_empty: bool = True,
        chunk_size: int = 1 << 20,
    ) -> None:
        if not isinstance(path, str | PathLike):
            raise ValueError(f"'path' must be a str or path, not {path!r}")
        if date_order is not None and date_order not in get_args(DateOrder):
            raise ValueError(f"'date_order' must be 'DMY', 'MDY' or None, not {date_order!r}")
        if not isinstance(keep_passwords, bool):
            raise ValueError(f"'keep_passwords' must be a bool, not {keep_passwords!r}")
        if dangling not in ("drop", "keep"):
            raise ValueError(f"'dangling' must be 'drop' or 'keep', not {dangling!r}")
        if not isinstance(allow_empty, bool):
            raise ValueError(f"'allow_empty' must be a bool, not {allow_empty!r}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"'chunk_size' must be an int >= 1, not {chunk_size!r}")
        self.path = Path(path)
        self.date_order = date_order
        self.keep_passwords = keep_passwords
        self.dangling = dangling
        self.allow_empty = allow_empty
        self.chunk_size = chunk_size
        self._session: Session | None = None
        self._prefix = ""  # the folder of the files inside a zip, once a reader found it

    def __repr__(self) -> str:
        return f"OneRoster({str(self.path)!r})"

    def readers(self) -> dict[str, OneRosterReader]:
        """A reader for each subbranch, in :attr:`subbranches` order, sharing one look."""
        session = Session(self)
        readers = {name: OneRosterReader(self, name) for name in self.subbranches}
        for reader in readers.values():
            reader._session = session
        return readers

    async def manifest(self) -> dict[str, str]:
        """The checked ``manifest.csv``: property name to value (empty for a 1.0 export)."""
        return (await self._own_session().export()).manifest

    async def version(self) -> Version:
        """The export's OneRoster version: ``"1.0"``, ``"1.1"`` or ``"1.2"``."""
        return (await self._own_session().export()).version

    def _own_session(self) -> Session:
        if self._session is None:
            self._session = Session(self)
        return self._session


class OneRosterReader:
    """The rows of one subbranch of a :class:`OneRoster` export.

    A reader like :class:`~synctree.aio.csv.CSVReader`: iterate it, or call
    :meth:`batches` for :class:`~synctree.aio.Batch` records, which name the
    file and the line of each row; the last batch carries the subbranch's
    coverage, removed keys and notes.  Each pass reads the rows anew.
    """

    def __init__(self, roster: OneRoster, subbranch: str) -> None:
        if subbranch not in SUBBRANCHES:
            raise ValueError(f"'subbranch' must be one of {list(SUBBRANCHES)}, not {subbranch!r}")
        self.roster = roster
        self.subbranch = subbranch
        self._session = Session(roster)  # readers() gives its readers one to share

    def __repr__(self) -> str:
        return f"<OneRosterReader {self.subbranch} of {str(self.roster.path)!r}>"

    @property
    def path(self) -> PurePath:
        """The file this subbranch is read from."""
        return self._session.shown(SUBBRANCHES[self.subbranch])

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())

    def batches(self) -> AsyncIterator[Batch]:
        """A new pass: the rows in batches (with ``aclose()``, like ``CSVReader.batches``)."""
        return _Pass(self)


class _Pass:
    """One pass over a subbranch: the export's word on it, then its file's rows, shaped.

    Not an async generator, so that a loader that stops early leaves nothing behind.
    """

    def __init__(self, owner: OneRosterReader) -> None:
        self._session = owner._session
        self._roster = owner.roster
        self._name = owner.subbranch
        self._file = SUBBRANCHES[owner.subbranch]
        self._inner: AsyncIterator[Batch] | None = None
        self._started = False
        self._done = False
        self._coverage: Coverage = "full"
        self._removed: list[str] = []
        self._notes = _Notes()
        self._head: list[str] = []  # notes before the warnings
        self._labels: dict[str, str] = {}
        self._count = 0
        self._handle: Callable[[Record, int | None, str], Row | None] = self._plain
        self._shaping = Shaping()
        # references checked: (column, what, keys of the file it names)
        self._checks: list[tuple[str, str, frozenset[str]]] = []
        self._roles: dict[str, list[Record]] = {}
        self._role_column = True
        self._secrets = False  # the file has a password column: errors quote no values

    def __aiter__(self) -> _Pass:
        return self

    async def __anext__(self) -> Batch:
        if self._done:
            raise StopAsyncIteration
        try:
            if not self._started:
                self._started = True
                absent = await self._start()
                if absent is not None:
                    self._done = True
                    notes = (absent, *self._head)
                    return Batch([], line_of=_no_line, coverage="absent", notes=notes)
            assert self._inner is not None
            while True:
                try:
                    batch = await self._inner.__anext__()
                except StopAsyncIteration:
                    return await self._finish()
                except InputError as exc:
                    if not self._secrets:
                        raise
                    raise _without_values(exc) from None
                shaped = self._shape(batch)
                if shaped is not None:
                    return shaped
        except BaseException:
            await self.aclose()
            raise

    async def _start(self) -> str | None:
        """Look at the export; the note of an absent subbranch, or ``None`` once reading."""
        session, name, file = self._session, self._name, self._file
        export = await session.export()
        self._head = [
            f"{name}: {note}"
            for file_, note in export.ignored.items()
            if file_ == file or (file_ == "roles.csv" and name == "students")
        ]
        self._shaping = Shaping(
            version=export.version,
            date_order=self._roster.date_order,
            keep_passwords=self._roster.keep_passwords,
        )
        mode = export.modes.get(file, "absent")
        if mode == "absent":
            self._head = []  # one line says it all
            why = export.why.get(file, "absent")
            if file in export.ignored:
                why += f"; {session.name_of(file)} is there but not read"
            return f"{name}: not in this export ({why}); left untouched"
        coverage: Coverage = "full" if mode == "bulk" else "delta"
        if file == "users.csv":
            labels = (await session.header(file)).labels
            self._role_column = "role" in {label.lower() for label in labels}
            roles_mode = export.modes.get("roles.csv", "absent")
            if export.version == "1.2" and roles_mode != "absent":
                self._role_column = False  # roles.csv has the say, whatever users.csv adds
                if roles_mode == "delta":
                    coverage = "delta"
                self._roles = await session.roles()
            elif export.version == "1.2" and not self._role_column:
                why = export.why.get("roles.csv", "absent")
                return (
                    f"{name}: not in this export: OneRoster 1.2 users get their roles from "
                    f"roles.csv ({why}); left untouched"
                )
            self._handle = self._user
        elif file == "classes.csv":
            await self._check("courseSourcedId", "course", "courses.csv")
            self._handle = self._plain
        elif file == "enrollments.csv":
            await self._check("userSourcedId", "user", "users.csv")
            await self._check("classSourcedId", "class", "classes.csv")
        self._coverage = coverage
        reader, self._labels = await session.csv(file, mode)
        header = await session.header(file)
        self._secrets = any("password" in label.lower() for label in header.labels)
        self._inner = reader.batches()
        return None

    async def _check(self, column: str, what: str, target: str) -> None:
        """Check ``column`` against the keys of ``target`` if it is bulk; say so if absent."""
        export = await self._session.export()
        keys = await self._session.keys(target)
        if keys is not None:
            self._checks.append((column, what, keys))
        elif export.modes.get(target) == "absent":
            self._head.append(
                f"{self._name}: the {what} of each row is not checked "
                f"({export.why.get(target, target + ' absent')})"
            )

    def _shape(self, batch: Batch) -> Batch | None:
        line_of = batch.line_of
        assert line_of is not None
        rows: list[Row] = []
        kept: list[int] = []
        handle = self._handle
        for index, record in enumerate(batch.rows):
            key = record["idnumber"]
            if _shape.is_deleted(record):
                if self._coverage == "delta":
                    self._removed.append(key)
                continue
            try:
                row = (
                    handle(record, None, key)
                    if not self._checks
                    else self._checked(record, line_of(index), key)
                )
            except _shape.ShapeError as exc:
                raise InputError(
                    _masked(exc.problem, record) if self._secrets else exc.problem,
                    path=batch.path,
                    line=line_of(index),
                    field=self._labels.get(exc.column, exc.column),
                ) from None
            if row is None:
                if self._file == "users.csv" and self._name == "students":
                    self._note_unplaced(record, line_of(index))
                continue
            rows.append(row)
            kept.append(index)
        if not rows:
            return None
        self._count += len(rows)
        return Batch(
            rows, path=batch.path, line_of=partial(_kept_line, line_of, kept), key=batch.key
        )

    def _plain(self, record: Record, line: int | None, key: str) -> Row | None:
        return _shape.SHAPERS[self._file](record, self._shaping)

    def _checked(self, record: Record, line: int | None, key: str) -> Row | None:
        keep = self._roster.dangling == "keep"
        for column, what, keys in self._checks:
            value = str(record.get(column, "")).strip()
            if not value and self._file == "classes.csv":
                self._notes.warn(
                    f"{self._session.name_of(self._file)} line {line}: the class has no course"
                )
                continue
            if not value:
                raise InputError(
                    f"the {what} is empty",
                    path=self._session.shown(self._file),
                    line=line,
                    field=self._labels.get(column, column),
                )
            if value not in keys:
                kind = {"classes": "class"}.get(self._name, self._name.removesuffix("s"))
                left = "kept" if keep else "left out"
                self._notes.warn(
                    f"{self._session.name_of(self._file)} line {line}: {what} {value!r} "
                    f"is not in the export; {kind} {left}"
                )
                if not keep:
                    return None
        return self._handle(record, line, key)

    def _user(self, record: Record, line: int | None, key: str) -> Row | None:
        roles = self._roles.get(key, ()) if not self._role_column else ()
        kind = _shape.role_subbranch(_shape.primary_role(record, roles))
        if kind != self._name:  # decided before shaping: each user is shaped once
            if kind is not None and self._coverage == "delta":
                self._removed.append(key)  # the user is one of the others now
            return None
        return _shape.shape_user(record, self._shaping, roles)

    def _note_unplaced(self, record: Record, line: int | None) -> None:
        """A user with no role is in no subbranch: say so once, under students."""
        key = record["idnumber"]
        if self._role_column:
            if str(record.get("role", "")).strip():
                return
            where = "no role"
        else:
            if self._roles.get(key) or self._coverage == "delta":
                return
            where = "no role in roles.csv"
        self._notes.warn(
            f"{self._session.name_of(self._file)} line {line}: user {key!r} has {where}; "
            "left out of students, staff and guardians"
        )

    async def _finish(self) -> Batch:
        await self.aclose()
        if self._count == 0 and self._coverage == "full":
            if not self._roster.allow_empty:
                raise InputError(
                    f"no {self._name}; an empty export must never look like everyone left "
                    "(allow_empty=True accepts it)",
                    path=self._session.shown(self._file),
                )
            self._head.append(f"{self._name}: none in this export")
        return Batch(
            [],
            path=str(self._session.shown(self._file)),
            line_of=_no_line,
            key="sourcedId",
            coverage=self._coverage,
            removed=tuple(dict.fromkeys(self._removed)),
            notes=tuple(self._head + [f"{self._name}: {n}" for n in self._notes.all()]),
        )

    async def aclose(self) -> None:
        self._done = True
        inner, self._inner = self._inner, None
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()


def _masked(problem: str, record: Record) -> str:
    """``problem`` without the values of the record's password columns."""
    for column, value in record.items():
        text = str(value).strip()
        if "password" in column.lower() and text:
            problem = problem.replace(text, MASK)
    return problem


def _without_values(error: InputError) -> InputError:
    """A parse error of a file with passwords, without the cell values it quoted.

    (A row cut differently, a name with an unquoted comma, shifts the password
    into the "extra" fields the CSV reader quotes.)
    """
    problem = re.sub(
        r" \(extra: .*\)$", " (the values are not shown: the file has passwords)", error.problem
    )
    return InputError(problem, path=error.path, line=error.line, field=error.field)


def _no_line(index: int) -> None:
    """The line of a row of a batch without rows (there is none)."""
    return None


def _kept_line(line_of: Callable[[int], int | None], kept: list[int], index: int) -> int | None:
    """The line of row ``index`` of a filtered batch: of row ``kept[index]`` before."""
    return line_of(kept[index])
