"""One look at a OneRoster export: its files, manifest, version, headers and keys.

A :class:`Session` finds the files (in a folder, or in a zip with or without a
folder inside), reads the manifest (or recognises a 1.0 export by its headers),
peeks at headers to check and rename columns, and reads, once, what the
readers check references against (the keys of a bulk file, 1.2 roles per
user).  The readers of one ``OneRoster.readers()`` call share one session.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread

from synctree import InputError
from synctree.aio.csv import CSVReader, open_file

from . import _shape
from ._files import Header, Opener, Trimmed, ZipMember, peek
from ._shape import Record, Version

if TYPE_CHECKING:
    from ._reader import OneRoster

__all__ = ["Export", "Session"]

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


@dataclass(slots=True)
class Export:
    """What the manifest (or, for 1.0, the files) says of the export."""

    version: Version
    modes: dict[str, str]  # file -> bulk / delta / absent
    why: dict[str, str]  # file -> how its mode was found, for notes
    manifest: dict[str, str]
    ignored: dict[str, str] = field(default_factory=dict)  # file there but not read -> note


class Session:
    """One look at an export: its files, manifest, headers, and the keys references need."""

    def __init__(self, roster: OneRoster) -> None:
        self.roster = roster
        self.path = roster.path
        self.is_zip = self.path.suffix.lower() == ".zip"
        self._lock = anyio.Lock()
        self._names: dict[str, str] | None = None  # lower-case name -> name in the export
        self._prefix = ""  # the folder of the files inside a zip
        self._export: Export | None = None
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
            return partial(open_file, self.path / self.name_of(file))
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

    async def export(self) -> Export:
        async with self._lock:
            if self._export is None:
                self._export = await self._read_export()
            return self._export

    async def _read_export(self) -> Export:
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
        return Export(cast(Version, version), modes, why, values, ignored)

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

    async def _version_1_0(self) -> Export:
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
        return Export("1.0", modes, why, {})

    # -- what references are checked against ------------------------------------------

    async def keys(self, file: str) -> frozenset[str] | None:
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
