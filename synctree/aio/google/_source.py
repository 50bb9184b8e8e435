"""A OneRoster export as the Google objects it implies: :class:`GoogleRoster`.

The source side of a OneRoster → Google sync: users (students and staff) with the OU
their rule gives, a group per class, each membership of a group as its own object
(``members``: key ``'group@domain user-key'``, a ``role``), a Classroom course per class
with its teachers and students.  Each user carries the address its pattern gives
(``_email``, not compared: an address is chosen once, at creation, and a user is never
renamed silently); with ``rename=True`` the pattern's address is compared too
(``email_base``), so a changed name plans a rename, visible as its own action.

Each user also carries its SIS key as ``external_id`` (what a managed Google account
holds in ``externalIds``), and its match values for adoption: ``_email`` and the
export's own ``email`` (``_sis_email``).  A :class:`~._reader.GoogleReader` made after
this roster's :meth:`GoogleRoster.readers` (as a config's ``[destination]`` is after its
``[source]``) reads them to adopt existing accounts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from os import PathLike
from typing import Any

import anyio

from synctree.aio import Batch, Row, rows_of
from synctree.aio.oneroster import OneRoster

from ._rules import EmailRule, OURule

__all__ = ["GoogleRoster", "latest_roster", "membership"]

_STAFF_ROLES = frozenset({"teacher", "administrator", "aide", "proctor"})


class GoogleRoster:
    """Read a OneRoster export as ``users``, ``groups`` and ``courses`` for Google.

    :param path: the export (a folder or zip, as :class:`synctree.aio.oneroster.OneRoster`).
    :param email: the students' address pattern: ``'{first}.{last}@students.example.org'``
        (any field of the student: ``first``, ``last``, ``username``, ``grade``...).
    :param staff_email: the staff's pattern (default: ``email``).
    :param ou: the students' OU rule; ``staff_ou`` the staff's.
    :param ou_lookup: ``{field: {value: name}}`` applied to fields of the OU rules.
    :param group_email: the class groups' address pattern over the class's fields
        (``'{code}@groups.example.org'``); ``None``: no groups.
    :param rename: plan a rename when a user's pattern address changes (off by default).
    :param teachers_own_groups: a class's teachers are ``OWNER`` of its group (its
        students ``MEMBER``), the ``role`` of their ``members`` rows; ``False``: all
        ``MEMBER``.
    """

    subbranches = ("users", "groups", "members", "courses")

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        email: str,
        staff_email: str | None = None,
        ou: str = "/Students/{grade}",
        staff_ou: str = "/Staff",
        ou_lookup: Mapping[str, Mapping[str, str]] | None = None,
        group_email: str | None = None,
        rename: bool = False,
        teachers_own_groups: bool = True,
        roster: Any = None,
    ) -> None:
        if not isinstance(rename, bool):
            raise ValueError(f"'rename' must be True or False, got {rename!r}")
        if not isinstance(teachers_own_groups, bool):
            raise ValueError(
                f"'teachers_own_groups' must be True or False, got {teachers_own_groups!r}"
            )
        self.export = roster if roster is not None else OneRoster(path)
        self.email = EmailRule(email)
        self.staff_email = EmailRule(staff_email) if staff_email else self.email
        self.ou = OURule(ou, ou_lookup)
        self.staff_ou = OURule(staff_ou, ou_lookup)
        self.group_email = EmailRule(group_email) if group_email else None
        self.rename = rename
        self.teachers_own_groups = teachers_own_groups

    def __repr__(self) -> str:
        return f"GoogleRoster({self.export!r}, email={self.email.pattern!r})"

    def readers(self) -> dict[str, _Part]:
        """A reader per subbranch; they share one read of the export (and so does the
        :class:`~._reader.GoogleReader` whose ``readers()`` are made next, to adopt)."""
        shared = _Shared(self)
        _LATEST.set(shared)
        return {name: _Part(shared, name) for name in self.subbranches}


class _Shared:
    """The export read once for all three subbranches of one load (and for adoption)."""

    def __init__(self, roster: GoogleRoster) -> None:
        self.roster = roster
        self.lock = anyio.Lock()
        self.rows: dict[str, list[Row]] | None = None

    async def get(self) -> dict[str, list[Row]]:
        async with self.lock:
            if self.rows is None:
                self.rows = await self._read()
            return self.rows

    async def _read(self) -> dict[str, list[Row]]:
        readers = self.roster.export.readers()
        data: dict[str, list[Row]] = {}
        for name in ("students", "staff", "classes", "enrollments"):
            reader = readers.get(name)
            data[name] = [] if reader is None else await _rows(reader, name)
        return self._shape(data)

    def _shape(self, data: dict[str, list[Row]]) -> dict[str, list[Row]]:
        roster = self.roster
        users: list[Row] = []
        staff = set()
        for kind, rows in (("student", data["students"]), ("staff", data["staff"])):
            rule = roster.email if kind == "student" else roster.staff_email
            ou = roster.ou if kind == "student" else roster.staff_ou
            for row in rows:
                if row.get("enabled") is False or str(row.get("enabled", "")).lower() == "false":
                    continue
                if kind == "staff":
                    staff.add(row["idnumber"])
                address = rule.address(row)
                user: Row = {
                    "idnumber": row["idnumber"],
                    "external_id": row["idnumber"],  # first: an adoption runs before updates
                    "first": str(row.get("first") or ""),
                    "last": str(row.get("last") or ""),
                    "ou": ou.path(row),
                    "_email": address,
                    "_kind": kind,
                }
                sis_email = row.get("email")
                if isinstance(sis_email, str) and "@" in sis_email:
                    user["_sis_email"] = sis_email.strip().lower()
                if roster.rename:
                    user["email_base"] = address
                users.append(user)
        known = {user["idnumber"] for user in users}
        teachers: dict[str, set[str]] = {}
        students: dict[str, set[str]] = {}
        for row in data["enrollments"]:
            if "classes" in row:  # one row per user, with the set of their classes
                pairs = [(row["idnumber"], c, None) for c in row["classes"]]
            else:  # one row per enrollment
                pairs = [(row.get("user"), row.get("class"), row.get("role"))]
            for user_key, class_key, role in pairs:
                if user_key not in known or not class_key:
                    continue
                is_teacher = str(role).lower() in _STAFF_ROLES if role else user_key in staff
                (teachers if is_teacher else students).setdefault(class_key, set()).add(user_key)
        groups: list[Row] = []
        members: list[Row] = []
        courses: list[Row] = []
        for row in data["classes"]:
            key = row["idnumber"]
            title = str(row.get("title") or key)
            class_teachers = teachers.get(key, set())
            class_students = students.get(key, set())
            if roster.group_email is not None:
                address = roster.group_email.address(row)
                groups.append({"idnumber": address, "name": title, "_class": key})
                for user_key in sorted(class_teachers | class_students):
                    owner = roster.teachers_own_groups and user_key in class_teachers
                    members.append(membership(address, user_key, "OWNER" if owner else "MEMBER"))
            courses.append(
                {
                    "idnumber": key,
                    "name": title,
                    "section": str(row.get("code") or ""),
                    "teachers": set(class_teachers),
                    "students": set(class_students),
                }
            )
        return {"users": users, "groups": groups, "members": members, "courses": courses}


def membership(group: str, user: str, role: str) -> Row:
    """A group membership as its own object: ``'group@domain user-key'``, its ``role``.

    Its own object, not a member of a set attribute of the group: creating and removing
    memberships are then runs the engine batches, never chained, so one refused member
    holds back no other (a group's members are independent calls in Google)."""
    return {"idnumber": f"{group} {user}", "role": role, "_group": group, "_user": user}


#: The roster whose readers were made last in this context: a GoogleReader made next
#: (a config's [destination] after its [source]) adopts accounts against its users.
_LATEST: ContextVar[_Shared | None] = ContextVar("synctree_google_roster", default=None)


def latest_roster() -> _Shared | None:
    """The shared read of the :class:`GoogleRoster` whose readers were made last here."""
    return _LATEST.get()


async def _rows(reader: Any, name: str) -> list[Row]:
    """Every row of one subbranch of the export; only a whole (bulk) export will do."""
    if not hasattr(reader, "batches"):
        return [dict(row) async for row in reader]
    rows: list[Row] = []
    async for batch in reader.batches():
        if isinstance(batch, Batch):
            if batch.coverage in ("delta", "absent"):
                raise ValueError(
                    f"GoogleRoster needs a bulk export, but its {name} are {batch.coverage} "
                    f"({batch.path or 'the manifest says so'}): accounts missing from it would "
                    "be suspended"
                )
            rows += batch.rows
        else:
            rows += batch
    return rows


class _Part:
    """One subbranch of a :class:`GoogleRoster`."""

    def __init__(self, shared: _Shared, name: str) -> None:
        self._shared = shared
        self.name = name

    def __repr__(self) -> str:
        return f"<GoogleRoster {self.name}>"

    async def batches(self) -> AsyncIterator[Batch]:
        rows = (await self._shared.get())[self.name]
        key = {
            "users": "sourcedId",
            "groups": "group_email",
            "members": "group_email + sourcedId",
            "courses": "class sourcedId",
        }
        yield Batch([dict(row) for row in rows], key=key[self.name])

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())
