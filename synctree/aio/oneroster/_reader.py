"""Read a OneRoster 1.1 bulk CSV export, from a folder or a .zip: :class:`OneRoster`.

Every subbranch is read by a :class:`~synctree.aio.csv.CSVReader` (one parser
for files and zip members alike, through ``CSVReader.from_opener``); rows with
status ``tobedeleted`` are left out and columns get friendly names:

============  ==================  ====================================================
subbranch     file                attributes (``idnumber`` is the sourcedId)
============  ==================  ====================================================
orgs          orgs.csv            name, type, identifier, parent
courses       courses.csv         title, code, school_year, org
classes       classes.csv         title, code, course, school, terms (set)
students      users.csv           first, last, email, username, grade, school
staff         users.csv           first, last, email, username, school, role
enrollments   enrollments.csv     classes (set); ``idnumber`` is the userSourcedId
============  ==================  ====================================================

``grade`` and ``school`` are the first of a user's ``grades`` and
``orgSourcedIds``; staff are users whose role is teacher or administrator.
Enrollments are merged in the reader, one row per user with the set of their
classes, so the subbranch needs no duplicate policy.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from os import PathLike
from pathlib import Path, PurePath
from typing import IO, Any, ClassVar

import anyio
import anyio.to_thread

from synctree import InputError
from synctree.aio import Batch, Row, rows_of
from synctree.aio.csv import ByteSource, CSVReader

__all__ = ["OneRoster", "OneRosterReader"]

_VERSIONS = {"manifest.version": "1.0", "oneroster.version": "1.1"}
_MODES = ("bulk", "delta", "absent")
_BATCH = 1024


def _first(value: str) -> str:
    """The first item of a OneRoster list field (``"09,10"`` gives ``"09"``)."""
    return value.split(",", 1)[0].strip()


def _deleted(row: Row) -> bool:
    return str(row.pop("status")).strip().lower() == "tobedeleted"


def _org(row: Row) -> Row | None:
    if _deleted(row):
        return None
    row["parent"] = row.pop("parentSourcedId")
    return row


def _course(row: Row) -> Row | None:
    if _deleted(row):
        return None
    return {
        "idnumber": row["idnumber"],
        "title": row["title"],
        "code": row["courseCode"],
        "school_year": row["schoolYearSourcedId"],
        "org": row["orgSourcedId"],
    }


def _class(row: Row) -> Row | None:
    if _deleted(row):
        return None
    return {
        "idnumber": row["idnumber"],
        "title": row["title"],
        "code": row["classCode"],
        "course": row["courseSourcedId"],
        "school": row["schoolSourcedId"],
        "terms": {term.strip() for term in row["termSourcedIds"].split(",") if term.strip()},
    }


def _person(row: Row) -> Row:
    return {
        "idnumber": row["idnumber"],
        "first": row["givenName"],
        "last": row["familyName"],
        "email": row["email"],
        "username": row["username"],
    }


def _student(row: Row) -> Row | None:
    if _deleted(row) or row["role"].strip().lower() != "student":
        return None
    person = _person(row)
    person["grade"] = _first(row["grades"])
    person["school"] = _first(row["orgSourcedIds"])
    return person


def _staff(row: Row) -> Row | None:
    role = row["role"].strip().lower()
    if _deleted(row) or role not in ("teacher", "administrator"):
        return None
    person = _person(row)
    person["school"] = _first(row["orgSourcedIds"])
    person["role"] = role
    return person


@dataclass(frozen=True, slots=True)
class _Spec:
    """Where a subbranch comes from and how its rows are shaped."""

    file: str
    key: str
    columns: tuple[str, ...]
    shape: Callable[[Row], Row | None] | None  # None: enrollments, merged by user
    what: str  # for "has no ..." messages

    @property
    def manifest_key(self) -> str:
        return "file." + self.file.removesuffix(".csv")


_PEOPLE = ("status", "role", "givenName", "familyName", "email", "username", "orgSourcedIds")
_SPECS = {
    "orgs": _Spec(
        file="orgs.csv",
        key="sourcedId",
        columns=("status", "name", "type", "identifier", "parentSourcedId"),
        shape=_org,
        what="orgs",
    ),
    "courses": _Spec(
        file="courses.csv",
        key="sourcedId",
        columns=("status", "title", "courseCode", "schoolYearSourcedId", "orgSourcedId"),
        shape=_course,
        what="courses",
    ),
    "classes": _Spec(
        file="classes.csv",
        key="sourcedId",
        columns=(
            "status",
            "title",
            "classCode",
            "courseSourcedId",
            "schoolSourcedId",
            "termSourcedIds",
        ),
        shape=_class,
        what="classes",
    ),
    "students": _Spec(
        file="users.csv",
        key="sourcedId",
        columns=(*_PEOPLE, "grades"),
        shape=_student,
        what="students",
    ),
    "staff": _Spec(
        file="users.csv",
        key="sourcedId",
        columns=_PEOPLE,
        shape=_staff,
        what="teachers or administrators",
    ),
    "enrollments": _Spec(
        file="enrollments.csv",
        key="userSourcedId",
        columns=("status", "classSourcedId"),
        shape=None,
        what="enrollments",
    ),
}


class _ZipMember:
    """One file of a zip archive, read in worker threads (a fresh one for each pass)."""

    def __init__(self, archive: Path, member: str, shown: PurePath) -> None:
        self._archive = archive
        self._member = member
        self._shown = shown
        self._zip: zipfile.ZipFile | None = None
        self._file: IO[bytes] | None = None

    async def open(self) -> _ZipMember:
        def open_member() -> tuple[zipfile.ZipFile, IO[bytes]]:
            archive = zipfile.ZipFile(self._archive)
            try:
                return archive, archive.open(self._member)
            except BaseException:
                archive.close()
                raise

        try:
            self._zip, self._file = await anyio.to_thread.run_sync(open_member)
        except KeyError:
            raise InputError("file not found in the zip archive", path=self._shown) from None
        except FileNotFoundError:
            raise InputError("file not found", path=self._archive) from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"cannot read the zip archive: {exc}", path=self._archive) from exc
        return self

    @classmethod
    async def opened(cls, archive: Path, member: str, shown: PurePath) -> ByteSource:
        """A new member, open: the opener of a :class:`CSVReader` over it."""
        return await cls(archive, member, shown).open()

    async def read(self, size: int) -> bytes:
        assert self._file is not None
        try:
            return await anyio.to_thread.run_sync(self._file.read, size)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise InputError(f"corrupt zip archive: {exc}", path=self._shown) from exc

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.close)

    def close(self) -> None:
        file, archive, self._file, self._zip = self._file, self._zip, None, None
        if file is not None:
            file.close()
        if archive is not None:
            archive.close()


class OneRoster:
    """A OneRoster 1.1 bulk CSV export: a folder, or a ``.zip`` file.

    ``readers()`` gives a reader per subbranch for :meth:`SyncTree.load`. Nothing
    is read until a reader is iterated; each first checks ``manifest.csv``: the
    version must be 1.1, every file marked ``bulk`` must be there, and the
    reader's own file must be marked ``bulk`` (a ``delta`` file lists changes
    only, so syncing from it would remove everyone it does not mention).

    :param path: the export's folder or zip file (files at its top level, or
        in one folder inside the zip).
    :param allow_empty: accept a subbranch with no rows; by default that is an
        error, so that an empty export never looks like everyone left.
    :param chunk_size: bytes read at a time.
    """

    subbranches: ClassVar[tuple[str, ...]] = tuple(_SPECS)
    """The subbranch names, in dependency order (orgs before classes before enrollments)."""

    def __init__(
        self, path: str | PathLike[str], *, allow_empty: bool = False, chunk_size: int = 1 << 20
    ) -> None:
        if not isinstance(path, str | PathLike):
            raise ValueError(f"'path' must be a str or path, not {path!r}")
        if not isinstance(allow_empty, bool):
            raise ValueError(f"'allow_empty' must be a bool, not {allow_empty!r}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"'chunk_size' must be an int >= 1, not {chunk_size!r}")
        self.path = Path(path)
        self._is_zip = self.path.suffix.lower() == ".zip"
        self._allow_empty = allow_empty
        self._chunk_size = chunk_size
        self._manifest: dict[str, str] | None = None
        self._prefix: str | None = None  # the folder of the files inside a zip

    def __repr__(self) -> str:
        return f"OneRoster({str(self.path)!r})"

    def readers(self) -> dict[str, OneRosterReader]:
        """A reader for each subbranch, in :attr:`subbranches` order."""
        return {name: OneRosterReader(self, name) for name in self.subbranches}

    async def manifest(self) -> dict[str, str]:
        """The checked ``manifest.csv``: property name to value."""
        if self._manifest is None:
            self._manifest = await self._read_manifest()
        return self._manifest

    # -- files -----------------------------------------------------------------------

    def _shown(self, file: str) -> PurePath:
        """The path to name in messages: the file, or the zip and the member."""
        return self.path / f"{self._prefix or ''}{file}"

    def _reader(self, file: str, *, key: str, columns: tuple[str, ...]) -> CSVReader:
        options: dict[str, Any] = {"key": key, "columns": columns, "chunk_size": self._chunk_size}
        options["allow_empty"] = True  # emptiness is judged per subbranch, after filtering
        if not self._is_zip:
            return CSVReader(self.path / file, **options)
        shown = self._shown(file)
        opener = partial(_ZipMember.opened, self.path, f"{self._prefix or ''}{file}", shown)
        return CSVReader.from_opener(opener, path=shown, **options)

    async def _names(self) -> set[str]:
        """The files of the export (zip members without the folder prefix)."""
        if not self._is_zip:
            try:
                if not await anyio.Path(self.path).is_dir():
                    problem = "file not found" if not await anyio.Path(self.path).exists() else None
                    raise InputError(problem or "not a folder or a .zip file", path=self.path)
                return {entry.name async for entry in anyio.Path(self.path).iterdir()}
            except OSError as exc:
                raise InputError(f"cannot read the folder: {exc}", path=self.path) from exc

        def names() -> list[str]:
            with zipfile.ZipFile(self.path) as archive:
                return archive.namelist()

        try:
            members = await anyio.to_thread.run_sync(names)
        except FileNotFoundError:
            raise InputError("file not found", path=self.path) from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"cannot read the zip archive: {exc}", path=self.path) from exc
        manifests = sorted(
            name
            for name in members
            if name.rsplit("/", 1)[-1] == "manifest.csv" and name.count("/") <= 1
        )
        self._prefix = manifests[0].removesuffix("manifest.csv") if manifests else ""
        return {
            name.removeprefix(self._prefix) for name in members if name.startswith(self._prefix)
        }

    async def _read_manifest(self) -> dict[str, str]:
        names = await self._names()
        path = self._shown("manifest.csv")
        if "manifest.csv" not in names:
            raise InputError("manifest.csv not found: is this a OneRoster 1.1 export?", path=path)
        reader = self._reader("manifest.csv", key="propertyName", columns=("value",))
        values: dict[str, str] = {}
        lines: dict[str, int | None] = {}
        async for batch in reader.batches():
            assert batch.line_of is not None
            for index, row in enumerate(batch.rows):
                name = row["idnumber"].strip()
                values[name] = row["value"].strip()
                lines[name] = batch.line_of(index)

        for name, wanted in _VERSIONS.items():
            if name not in values:
                raise InputError(f"manifest.csv has no {name!r} (expected {wanted})", path=path)
            if values[name] != wanted:
                raise InputError(
                    f"unsupported {name} {values[name]!r}: only {wanted} is supported",
                    path=path,
                    line=lines[name],
                    field="value",
                )
        for name, value in values.items():
            if not name.startswith("file."):
                continue
            file = name.removeprefix("file.") + ".csv"
            if value not in _MODES:
                raise InputError(
                    f"{name} is {value!r}; expected bulk, delta or absent",
                    path=path,
                    line=lines[name],
                    field="value",
                )
            if value == "bulk" and file not in names:
                raise InputError(
                    f"{name} is 'bulk' but the export has no {file}",
                    path=path,
                    line=lines[name],
                    field="value",
                )
        return values

    async def _check(self, spec: _Spec) -> None:
        """The reader's own file must be marked bulk in the manifest."""
        manifest = await self.manifest()
        mode = manifest.get(spec.manifest_key, "absent")
        path = self._shown("manifest.csv")
        if mode == "delta":
            raise InputError(
                f"{spec.file} is a delta file; a delta lists only changes, so syncing from it "
                "would remove everyone it does not mention: export bulk files",
                path=path,
                field="value",
            )
        if mode != "bulk":
            raise InputError(f"the export has no {spec.file} (manifest.csv: absent)", path=path)


class OneRosterReader:
    """The rows of one subbranch of a :class:`OneRoster` export.

    A reader like :class:`~synctree.aio.csv.CSVReader`: iterate it, or call
    :meth:`batches` for :class:`~synctree.aio.Batch` records, which name the file
    and the line of each row (for merged enrollments, a user's first
    enrollment row).  Each pass is independent.
    """

    def __init__(self, roster: OneRoster, subbranch: str) -> None:
        if subbranch not in _SPECS:
            raise ValueError(f"'subbranch' must be one of {list(_SPECS)}, not {subbranch!r}")
        self.roster = roster
        self.subbranch = subbranch
        self._spec = _SPECS[subbranch]

    def __repr__(self) -> str:
        return f"<OneRosterReader {self.subbranch} of {str(self.roster.path)!r}>"

    @property
    def path(self) -> PurePath:
        """The file this subbranch is read from."""
        return self.roster._shown(self._spec.file)

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())

    def batches(self) -> AsyncIterator[Batch]:
        """A new pass: the rows in batches (with ``aclose()``, like ``CSVReader.batches``)."""
        return _RosterBatches(self)


class _RosterBatches:
    """One pass over a subbranch's file: checks the manifest, then shapes or merges rows."""

    def __init__(self, owner: OneRosterReader) -> None:
        self._roster = owner.roster
        self._spec = owner._spec
        self._path = owner.path
        self._inner: AsyncIterator[Batch] | None = None
        self._merged: list[Row] | None = None  # enrollments: every user, once read
        self._lines: list[int | None] = []
        self._served = 0
        self._count = 0
        self._done = False

    def __aiter__(self) -> _RosterBatches:
        return self

    async def __anext__(self) -> Batch:
        if self._done:
            raise StopAsyncIteration
        roster, spec = self._roster, self._spec
        try:
            if self._inner is None:
                await roster._check(spec)
                self._path = roster._shown(spec.file)  # the zip's folder is known now
                reader = roster._reader(spec.file, key=spec.key, columns=spec.columns)
                self._inner = reader.batches()
            batch = await (self._next_merged() if spec.shape is None else self._next_shaped())
        except StopAsyncIteration:
            await self.aclose()
            if self._count == 0 and not roster._allow_empty:
                raise InputError(
                    f"no {spec.what}; an empty export must never look like everyone left "
                    "(pass allow_empty=True to OneRoster to accept it)",
                    path=self._path,
                ) from None
            raise
        except BaseException:
            await self.aclose()
            raise
        self._count += len(batch.rows)
        return batch

    async def _next_shaped(self) -> Batch:
        assert self._inner is not None and self._spec.shape
        shape = self._spec.shape
        while True:
            batch = await self._inner.__anext__()
            rows, kept = [], []
            for index, row in enumerate(batch.rows):
                shaped = shape(row)
                if shaped is not None:
                    rows.append(shaped)
                    kept.append(index)
            if rows:
                line_of = batch.line_of
                assert line_of is not None
                return Batch(
                    rows,
                    path=batch.path,
                    line_of=partial(_kept_line, line_of, kept),
                    key=self._spec.key,
                )

    async def _next_merged(self) -> Batch:
        """One row per user: ``classes`` is the set of their active enrollments."""
        assert self._inner is not None
        if self._merged is None:
            users: dict[str, Row] = {}
            lines: dict[str, int | None] = {}
            async for batch in self._inner:
                _merge(batch, users, lines)
            self._merged, self._lines = list(users.values()), list(lines.values())
        start = self._served
        if start >= len(self._merged):
            raise StopAsyncIteration
        self._served = start + _BATCH
        all_lines = self._lines
        return Batch(
            self._merged[start : start + _BATCH],
            path=str(self._path),
            line_of=lambda index: all_lines[start + index],
            key=self._spec.key,
        )

    async def aclose(self) -> None:
        self._done = True
        inner, self._inner = self._inner, None
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()


def _kept_line(line_of: Callable[[int], int | None], kept: list[int], index: int) -> int | None:
    """The line of row ``index`` of a filtered batch: of row ``kept[index]`` before."""
    return line_of(kept[index])


def _merge(batch: Batch, users: dict[str, Row], lines: dict[str, int | None]) -> None:
    """Add a batch of enrollment rows to ``users`` (user id to their row)."""
    line_of = batch.line_of
    assert line_of is not None
    for index, row in enumerate(batch.rows):
        if _deleted(row):
            continue
        klass = row["classSourcedId"]
        if not klass:
            raise InputError(
                "the enrollment has no class",
                path=batch.path,
                line=line_of(index),
                field="classSourcedId",
            )
        user = users.get(row["idnumber"])
        if user is None:
            users[row["idnumber"]] = {"idnumber": row["idnumber"], "classes": {klass}}
            lines[row["idnumber"]] = line_of(index)
        else:
            user["classes"].add(klass)
