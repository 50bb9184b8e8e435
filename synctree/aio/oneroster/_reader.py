"""Read a OneRoster 1.0, 1.1 or 1.2 CSV export, from a folder or a .zip: :class:`OneRoster`.

One :class:`OneRoster` serves every subbranch (``readers()``); each reader
streams its file through a :class:`~synctree.aio.csv.CSVReader` (zip members
through ``CSVReader.from_opener``) and shapes each row with the pure functions
of ``_shape`` (shared with the REST reader).  What the manifest says of a file
becomes the subbranch's coverage: ``bulk`` is the whole truth, ``delta`` only
changes (``tobedeleted`` rows become the removed keys), ``absent`` leaves the
kind out of the sync.  Warnings (an enrollment naming a user not in the
export...) become notes naming file and line, for the plan.

The readers of one ``readers()`` call share one look at the export (manifest,
headers, the keys that references are checked against); call ``readers()``
again to look afresh.  The rows themselves are read anew on every pass.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from os import PathLike
from pathlib import Path, PurePath
from typing import Any, ClassVar, Literal, cast, get_args

import anyio
import anyio.to_thread

from synctree import InputError
from synctree._util.redact import MASK
from synctree.aio import Batch, Row, rows_of
from synctree.aio.csv import CSVReader

from . import _shape
from ._files import FileSource, Header, Opener, Trimmed, ZipMember, peek
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
_FILES = (
    "manifest.csv",
    "orgs.csv",
    "academicSessions.csv",
    "courses.csv",
    "classes.csv",
    "users.csv",
    "roles.csv",
    "enrollments.csv",
    "demographics.csv",
    "userProfiles.csv",
)
#: Columns a file must have (after renaming); a delta file also needs ``status``.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "manifest.csv": ("propertyName", "value"),
    "orgs.csv": ("sourcedId", "name", "type"),
    "academicSessions.csv": ("sourcedId", "title", "type", "startDate", "endDate"),
    "courses.csv": ("sourcedId", "title", "orgSourcedId"),
    "classes.csv": ("sourcedId", "title", "courseSourcedId", "schoolSourcedId"),
    "users.csv": ("sourcedId", "username", "givenName", "familyName"),
    "roles.csv": ("sourcedId", "userSourcedId", "roleType", "role", "orgSourcedId"),
    "enrollments.csv": ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
    "demographics.csv": ("sourcedId",),
    "userProfiles.csv": ("sourcedId", "userSourcedId"),
}
_REQUIRED_BEFORE_1_2 = {"users.csv": ("role", "orgSourcedIds")}
_MODES = ("bulk", "delta", "absent")
_VERSIONS: tuple[str, ...] = ("1.0", "1.1", "1.2")
_MAX_WARNINGS = 20  # per subbranch; the rest are counted in one more line


@dataclass(slots=True)
class _Export:
    """What the manifest (or, for 1.0, the files) says of the export."""

    version: Version
    modes: dict[str, str]  # file -> bulk / delta / absent
    why: dict[str, str]  # file -> how its mode was found, for notes
    manifest: dict[str, str]
    ignored: dict[str, str] = field(default_factory=dict)  # file there but not read -> note


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
        self._session: _Session | None = None
        self._prefix = ""  # the folder of the files inside a zip, once a reader found it

    def __repr__(self) -> str:
        return f"OneRoster({str(self.path)!r})"

    def readers(self) -> dict[str, OneRosterReader]:
        """A reader for each subbranch, in :attr:`subbranches` order, sharing one look."""
        session = _Session(self)
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

    def _own_session(self) -> _Session:
        if self._session is None:
            self._session = _Session(self)
        return self._session


class _Session:
    """One look at an export: its files, manifest, headers, and the keys references need."""

    def __init__(self, roster: OneRoster) -> None:
        self.roster = roster
        self.path = roster.path
        self.is_zip = self.path.suffix.lower() == ".zip"
        self._lock = anyio.Lock()
        self._names: dict[str, str] | None = None  # lower-case name -> name in the export
        self._prefix = ""  # the folder of the files inside a zip
        self._export: _Export | None = None
        self._headers: dict[str, Header] = {}
        self._keys: dict[str, frozenset[str] | None] = {}
        self._roles: dict[str, list[Record]] | None = None
        self._key_locks: dict[str, anyio.Lock] = {}

    # -- files -----------------------------------------------------------------------

    def name_of(self, file: str) -> str:
        """The name ``file`` has in the export (names match in any case)."""
        if self._names is None:
            return file
        return self._names.get(file.lower(), file)

    def has(self, file: str) -> bool:
        return self._names is not None and file.lower() in self._names

    def shown(self, file: str) -> PurePath:
        """The path to name in messages: the file, or the zip and the member."""
        prefix = self._prefix if self._names is not None else self.roster._prefix
        return self.path / f"{prefix}{self.name_of(file)}"

    def opener(self, file: str) -> Opener:
        if not self.is_zip:
            return partial(FileSource.opened, self.path / self.name_of(file))
        member = f"{self._prefix}{self.name_of(file)}"
        return partial(ZipMember.opened, self.path, member, self.shown(file))

    async def _list(self) -> dict[str, str]:
        if self._names is not None:
            return self._names
        if not self.is_zip:
            try:
                if not await anyio.Path(self.path).is_dir():
                    problem = "file not found" if not await anyio.Path(self.path).exists() else None
                    raise InputError(problem or "not a folder or a .zip file", path=self.path)
                found = [entry.name async for entry in anyio.Path(self.path).iterdir()]
            except OSError as exc:
                raise InputError(f"cannot read the folder: {exc}", path=self.path) from exc
        else:

            def names() -> list[str]:
                with zipfile.ZipFile(self.path) as archive:
                    return archive.namelist()

            try:
                members = await anyio.to_thread.run_sync(names)
            except FileNotFoundError:
                raise InputError("file not found", path=self.path) from None
            except (zipfile.BadZipFile, OSError) as exc:
                raise InputError(f"cannot read the zip archive: {exc}", path=self.path) from exc
            csvs = sorted(
                name for name in members if name.lower().endswith(".csv") and name.count("/") <= 1
            )
            manifests = sorted(
                (n for n in csvs if n.rsplit("/", 1)[-1].lower() == "manifest.csv"),
                key=lambda name: (name.count("/"), name),  # one at the top comes first
            )
            top = [n for n in csvs if "/" not in n]
            if manifests:
                self._prefix = manifests[0][: -len("manifest.csv")]
            elif not top and csvs:
                self._prefix = csvs[0].rsplit("/", 1)[0] + "/"
            found = [n.removeprefix(self._prefix) for n in members if n.startswith(self._prefix)]
        self._names = {name.lower(): name for name in found if "/" not in name}
        self.roster._prefix = self._prefix
        return self._names

    async def header(self, file: str) -> Header:
        if file not in self._headers:
            self._headers[file] = await peek(self.opener(file), self.shown(file))
        return self._headers[file]

    async def csv(self, file: str, mode: str) -> tuple[CSVReader, dict[str, str]]:
        """A reader of ``file`` giving records with the specification's column names.

        Also returns ``{name: label}``: how the file spells each renamed column.
        Checks the required columns first (an error naming line 1 and the column).
        """
        export = await self.export()
        header = await self.header(file)
        path = self.shown(file)
        if header.empty:
            raise InputError("the file is empty: a OneRoster file starts with a header", path=path)
        labels = header.labels[: header.trim_to] if header.trim_to else header.labels
        rename = _renames(file, labels)
        names = [rename.get(label, label) for label in labels]
        required = list(_REQUIRED.get(file, ()))
        if export.version != "1.2":
            required += _REQUIRED_BEFORE_1_2.get(file, ())
        if mode == "delta":
            required.append("status")
        key = "sourcedId"
        if file == "demographics.csv" and "sourcedId" not in names and "userSourcedId" in names:
            key = "userSourcedId"  # OneRoster 1.0 keys demographics by the user
            required.remove("sourcedId")
        for column in required:
            if column not in names:
                shown = ", ".join(repr(label) for label in labels[:12])
                more = ", ..." if len(labels) > 12 else ""
                raise InputError(
                    f"the required column {column!r} is missing (the header has {shown}{more})",
                    path=path,
                    line=1,
                    field=column,
                )
        options: dict[str, Any] = {
            "key": key,
            "keep_key": True,
            "rename": rename,
            "allow_empty": True,  # emptiness is judged per subbranch, after filtering
            "chunk_size": self.roster.chunk_size,
        }
        if header.trim_to is not None:
            opener = partial(Trimmed.opened, self.opener(file), header)
            reader = CSVReader.from_opener(opener, path=path, **options)
        elif self.is_zip:
            reader = CSVReader.from_opener(self.opener(file), path=path, **options)
        else:
            reader = CSVReader(self.path / self.name_of(file), **options)
        return reader, {new: old for old, new in rename.items()}

    # -- the manifest ------------------------------------------------------------------

    async def export(self) -> _Export:
        async with self._lock:
            if self._export is None:
                self._export = await self._read_export()
            return self._export

    async def _read_export(self) -> _Export:
        names = await self._list()
        if "manifest.csv" not in names:
            return await self._version_1_0()
        path = self.shown("manifest.csv")
        reader = await self._manifest_reader()
        values: dict[str, str] = {}
        lines: dict[str, int | None] = {}
        async for batch in reader.batches():
            assert batch.line_of is not None
            for index, row in enumerate(batch.rows):
                name = row["idnumber"].strip()
                values[name] = str(row.get("value", "")).strip()
                lines[name] = batch.line_of(index)

        def bad(name: str, problem: str) -> InputError:
            return InputError(problem, path=path, line=lines.get(name), field="value")

        if values.get("manifest.version", "1.0") != "1.0":
            found = values["manifest.version"]
            raise bad("manifest.version", f"unsupported manifest.version {found!r}: expected 1.0")
        if "oneroster.version" not in values:
            raise InputError(
                "manifest.csv has no 'oneroster.version' (expected 1.0, 1.1 or 1.2)", path=path
            )
        version = values["oneroster.version"]
        if version not in _VERSIONS:
            raise bad(
                "oneroster.version",
                f"unsupported oneroster.version {version!r}: 1.0, 1.1 and 1.2 are supported",
            )
        known = {file.removesuffix(".csv").lower(): file for file in _FILES}
        modes: dict[str, str] = {}
        why: dict[str, str] = {}
        ignored: dict[str, str] = {}
        for name, value in values.items():
            if not name.lower().startswith("file."):
                continue
            stem = name[len("file.") :]
            file = known.get(stem.lower(), stem + ".csv")
            mode = value.lower()
            if not mode:
                mode = "absent"
                why[file] = f"manifest.csv gives {name} no value, read as absent"
            elif mode not in _MODES:
                raise bad(name, f"{name} is {value!r}; expected bulk, delta or absent")
            else:
                why[file] = f"manifest.csv: {name}={mode}"
            if mode != "absent" and not self.has(file):
                raise bad(name, f"{name} is {value!r} but the export has no {file}")
            if mode == "absent" and self.has(file) and file in known.values():
                ignored[file] = f"{self.name_of(file)} is in the export but {why[file]}; not read"
            modes[file] = mode
        for file in _FILES[1:]:
            if file not in modes:
                modes[file] = "absent"
                why[file] = f"manifest.csv does not list file.{file.removesuffix('.csv')}"
                if file in ("roles.csv", "userProfiles.csv") and version != "1.2":
                    why[file] = f"OneRoster {version} has no {file}"
                if self.has(file):
                    ignored[file] = (
                        f"{self.name_of(file)} is in the export but {why[file]}; not read"
                    )
        return _Export(cast(Version, version), modes, why, values, ignored)

    async def _manifest_reader(self) -> CSVReader:
        header = await self.header("manifest.csv")
        path = self.shown("manifest.csv")
        for column in ("propertyName", "value"):
            if column not in header.labels:
                raise InputError(
                    f"the required column {column!r} is missing", path=path, line=1, field=column
                )
        options: dict[str, Any] = {
            "key": "propertyName",
            "columns": ("value",),
            "allow_empty": True,
            "chunk_size": self.roster.chunk_size,
        }
        if self.is_zip:
            return CSVReader.from_opener(self.opener("manifest.csv"), path=path, **options)
        return CSVReader(self.path / self.name_of("manifest.csv"), **options)

    async def _version_1_0(self) -> _Export:
        """No manifest: a OneRoster 1.0 export, if its headers say so."""
        path = self.shown("manifest.csv")
        present = [file for file in _FILES[1:] if self.has(file)]
        evidence = None
        for file in present:
            labels = set((await self.header(file)).labels)
            if file == "users.csv" and "enabledUser" not in labels:
                evidence = file
            elif file == "courses.csv" and "schoolYearId" in labels:
                evidence = file
            elif file == "demographics.csv" and "userSourcedId" in labels:
                evidence = file
        if not present or evidence is None:
            raise InputError(
                "manifest.csv not found: OneRoster 1.1 and 1.2 exports have one "
                + ("(and there are no OneRoster files here)" if not present else "")
                + ("(and these headers are not OneRoster 1.0's)" if present else ""),
                path=path,
            )
        modes = {file: "bulk" if file in present else "absent" for file in _FILES[1:]}
        why = {
            file: "a OneRoster 1.0 export (no manifest): every file there is bulk"
            if file in present
            else f"no {file} in this OneRoster 1.0 export"
            for file in _FILES[1:]
        }
        return _Export("1.0", modes, why, {})

    # -- what references are checked against ------------------------------------------

    async def keys(self, file: str, notes: _Notes | None = None) -> frozenset[str] | None:
        """The keys of the objects a bulk ``file`` gives; ``None`` if it is not bulk.

        For classes, those whose course is known (when courses are checked and
        dangling rows dropped): the enrollments' classes are checked against those.
        """
        lock = self._key_locks.setdefault(file, anyio.Lock())
        async with lock:
            if file not in self._keys:
                self._keys[file] = await self._read_keys(file)
            return self._keys[file]

    async def _read_keys(self, file: str) -> frozenset[str] | None:
        export = await self.export()
        if export.modes.get(file) != "bulk":
            return None
        courses = None
        if file == "classes.csv" and self.roster.dangling == "drop":
            courses = await self.keys("courses.csv")
        reader, _labels = await self.csv(file, "bulk")
        keys: set[str] = set()
        async for batch in reader.batches():
            for record in batch.rows:
                if _shape.is_deleted(record):
                    continue
                course = str(record.get("courseSourcedId", "")).strip()
                if courses is not None and course and course not in courses:
                    continue
                keys.add(record["idnumber"])
        return frozenset(keys)

    async def roles(self) -> dict[str, list[Record]]:
        """1.2: each user's active roles.csv records, in file order."""
        async with self._key_locks.setdefault("roles.csv", anyio.Lock()):
            if self._roles is None:
                export = await self.export()
                by_user: dict[str, list[Record]] = {}
                if export.modes.get("roles.csv") != "absent":
                    reader, _labels = await self.csv("roles.csv", export.modes["roles.csv"])
                    async for batch in reader.batches():
                        for record in batch.rows:
                            if not _shape.is_deleted(record):
                                user = str(record.get("userSourcedId", "")).strip()
                                by_user.setdefault(user, []).append(record)
                self._roles = by_user
            return self._roles


def _renames(file: str, labels: list[str]) -> dict[str, str]:
    """Header labels to the specification's names: other cases, 1.0 names, misspellings."""
    canonical = {
        name.lower(): name
        for name in (*_shape.mapped_columns(file), *_REQUIRED.get(file, ()), "status")
    }
    canonical["datelastmodified"] = "dateLastModified"
    aliases = {**_shape.ALIASES["*"], **_shape.ALIASES.get(file, {})}
    for old, new in aliases.items():
        canonical.setdefault(old.lower(), new)
    present = set(labels)
    rename: dict[str, str] = {}
    taken = set(present)
    for label in labels:
        found = canonical.get(label.lower())
        if found is None or found == label or found in taken:
            continue
        rename[label] = found
        taken.add(found)
    return rename


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
        self._session = _Session(roster)  # readers() gives its readers one to share

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
            return f"{name}: not in this export ({export.why.get(file, 'absent')}); left untouched"
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
        row = _shape.shape_user(record, self._shaping, roles)
        kind = _shape.user_subbranch(row)
        if kind != self._name:
            if kind is not None and self._coverage == "delta":
                self._removed.append(key)  # the user is one of the others now
            return None
        return row

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
