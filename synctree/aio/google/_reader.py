"""Read a Google Workspace as the destination: :class:`GoogleReader`.

- ``users``: ``users.list`` (``customer=my_customer``, ``projection=full``,
  ``maxResults=500``, page tokens, the optional ``query`` that scopes what synctree
  manages, e.g. ``orgUnitPath='/Students'``).  A user is managed when it carries the
  SIS key as an ``externalIds`` entry of type ``organization``; admins, delegated
  admins, suspended users and users without that key are left out, so never touched.
- ``groups``: ``groups.list`` and each group's ``members.list`` (calls in
  O(groups + pages)), members as the keys of managed users (others are left out).
- ``courses``: Classroom courses (active and provisioned) with a ``d:`` alias (the SIS
  key), each with its teachers and students as keys of managed users.
- ``orgunits``: ``orgunits.list`` with ``type=all``.

The subbranches of one :meth:`GoogleReader.readers` call share one users listing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anyio
import httpx

from synctree.aio import Batch, Row, rows_of

from ._batch import Call
from ._client import GoogleClient
from ._quota import Quota

__all__ = ["EMAIL_ID", "KEY_ID", "GoogleReader", "external_ids"]

#: The ``externalIds`` entry holding the SIS key of a user synctree manages.
KEY_ID = "organization"
#: The ``externalIds`` custom type holding the address the pattern gave at creation.
EMAIL_ID = "synctree-email"

_USERS = "/admin/directory/v1/users"
_GROUPS = "/admin/directory/v1/groups"
_ORGUNITS = "/admin/directory/v1/customer/my_customer/orgunits"
_COURSES = "/v1/courses"


def external_ids(key: str, address: str) -> list[dict[str, str]]:
    """The ``externalIds`` of a managed user: its SIS key and its pattern's address."""
    return [
        {"type": KEY_ID, "value": key},
        {"type": "custom", "customType": EMAIL_ID, "value": address},
    ]


def _ids_of(user: Mapping[str, Any]) -> tuple[str | None, str | None]:
    key = base = None
    for entry in user.get("externalIds") or ():
        if not isinstance(entry, dict):
            continue
        if entry.get("type") == KEY_ID and key is None:
            key = entry.get("value")
        elif entry.get("type") == "custom" and entry.get("customType") == EMAIL_ID:
            base = entry.get("value")
    return key, base


class GoogleReader:
    """A Google Workspace's users, groups, courses and OUs, as destination readers.

    :param auth: the credentials (``auth = { type = "google_service_account", ... }`` in
        a config), any :class:`httpx.Auth`.
    :param query: the users' search, scoping what synctree manages
        (``"orgUnitPath='/Students'"``).
    :param groups_domain: read only the groups of this domain (default: the customer's).
    :param base_url: one URL for every API (the emulator).
    :param rate: the share of each API's quota to use (``"90%"``).
    """

    subbranches = ("users", "groups", "courses", "orgunits")

    def __init__(
        self,
        *,
        auth: httpx.Auth | None = None,
        client: httpx.AsyncClient | None = None,
        base_url: str | None = None,
        query: str | None = None,
        groups_domain: str | None = None,
        course_states: Sequence[str] = ("ACTIVE", "PROVISIONED"),
        quotas: Mapping[str, int] | None = None,
        rate: str | float = "95%",
        quota_window: float = 60.0,
        concurrency: int = 10,
    ) -> None:
        if query is not None and not isinstance(query, str):
            raise ValueError(f"'query' must be a users search string, got {query!r}")
        self.quota = Quota(
            quotas,
            rate=rate,
            window=quota_window,
            key=base_url or "google",
            concurrency=concurrency,
        )
        self._client_options: dict[str, Any] = {
            "auth": auth,
            "client": client,
            "base_url": base_url,
        }
        GoogleClient(quota=self.quota, **self._client_options)  # checks the options now
        self.query = query
        self.groups_domain = groups_domain
        self.course_states = tuple(course_states)

    def __repr__(self) -> str:
        return f"<GoogleReader query={self.query!r}>"

    def client(self) -> GoogleClient:
        """A new client on this reader's quota (open it with ``async with``)."""
        return GoogleClient(quota=self.quota, **self._client_options)

    def readers(self) -> dict[str, _Part]:
        shared = _Shared(self)
        return {name: _Part(shared, name) for name in self.subbranches}


class _Shared:
    """What the subbranches of one load share: the users listing and its indexes."""

    def __init__(self, reader: GoogleReader) -> None:
        self.reader = reader
        self.lock = anyio.Lock()
        self.users: list[Row] | None = None
        self.key_of_email: dict[str, str] = {}
        self.key_of_id: dict[str, str] = {}

    async def user_rows(self, client: GoogleClient) -> list[Row]:
        async with self.lock:
            if self.users is None:
                self.users = await self._read_users(client)
            return self.users

    async def _read_users(self, client: GoogleClient) -> list[Row]:
        params = [("customer", "my_customer"), ("projection", "full"), ("maxResults", "500")]
        if self.reader.query:
            params.append(("query", self.reader.query))
        rows: list[Row] = []
        async for page in client.pages("directory", _USERS, params, "users"):
            for user in page:
                key, base = _ids_of(user)
                if key is None or user.get("isAdmin") or user.get("isDelegatedAdmin"):
                    continue  # not synctree's to manage
                email = str(user.get("primaryEmail", "")).lower()
                self.key_of_email[email] = key
                for alias in user.get("aliases") or ():
                    self.key_of_email.setdefault(str(alias).lower(), key)
                self.key_of_id[str(user.get("id"))] = key
                if user.get("suspended"):
                    continue  # a leaver: out of the tree, adopted again if they return
                name = user.get("name") or {}
                rows.append(
                    {
                        "idnumber": key,
                        "first": name.get("givenName", ""),
                        "last": name.get("familyName", ""),
                        "ou": user.get("orgUnitPath", "/"),
                        "email_base": base or email,
                        "_email": email,
                        "_id": user.get("id"),
                    }
                )
        return rows

    async def groups(self, client: GoogleClient) -> list[Row]:
        await self.user_rows(client)
        params = [("maxResults", "200")]
        if self.reader.groups_domain:
            params.append(("domain", self.reader.groups_domain))
        else:
            params.append(("customer", "my_customer"))
        found: list[dict[str, Any]] = []
        async for page in client.pages("directory", _GROUPS, params, "groups"):
            found += page
        rows: list[Row] = [{} for _ in found]

        async def one(index: int, group: dict[str, Any]) -> None:
            members: set[str] = set()
            path = f"{_GROUPS}/{group['id']}/members"
            async for page in client.pages("directory", path, [("maxResults", "200")], "members"):
                for member in page:
                    key = self.key_of_email.get(str(member.get("email", "")).lower())
                    if key is not None:
                        members.add(key)
            rows[index] = {
                "idnumber": str(group["email"]).lower(),
                "name": group.get("name", ""),
                "members": members,
                "_id": group["id"],
            }

        await _each(found, one, self.reader.quota.concurrency)
        return rows

    async def courses(self, client: GoogleClient) -> list[Row]:
        await self.user_rows(client)
        params = [("pageSize", "100")] + [("courseStates", s) for s in self.reader.course_states]
        found: list[dict[str, Any]] = []
        async for page in client.pages("classroom", _COURSES, params, "courses"):
            found += page
        rows: list[Row | None] = [None for _ in found]

        async def one(index: int, course: dict[str, Any]) -> None:
            course_id = course["id"]
            aliases = await client.call("classroom", Call("GET", f"{_COURSES}/{course_id}/aliases"))
            keys = [
                a["alias"][2:]
                for a in (aliases or {}).get("aliases") or ()
                if str(a.get("alias", "")).startswith("d:")
            ]
            if not keys:
                return  # a course synctree did not create: not its to manage
            roster: dict[str, set[str]] = {"teachers": set(), "students": set()}
            for kind in roster:
                path = f"{_COURSES}/{course_id}/{kind}"
                async for page in client.pages("classroom", path, [("pageSize", "100")], kind):
                    for person in page:
                        key = self.key_of_id.get(str(person.get("userId")))
                        if key is not None:
                            roster[kind].add(key)
            rows[index] = {
                "idnumber": keys[0],
                "name": course.get("name", ""),
                "section": course.get("section", ""),
                "teachers": roster["teachers"],
                "students": roster["students"],
                "_id": course_id,
            }

        await _each(found, one, self.reader.quota.concurrency)
        return [row for row in rows if row is not None]

    async def orgunits(self, client: GoogleClient) -> list[Row]:
        rows: list[Row] = []
        body = await client.call("directory", Call("GET", _ORGUNITS, (("type", "all"),)))
        for unit in (body or {}).get("organizationUnits") or ():
            rows.append(
                {
                    "idnumber": unit["orgUnitPath"],
                    "name": unit.get("name", ""),
                    "parent": unit.get("parentOrgUnitPath", ""),
                }
            )
        return rows


async def _each(items: list[Any], job: Any, concurrency: int) -> None:
    """``await job(index, item)`` for every item, ``concurrency`` at a time."""
    limit = anyio.Semaphore(max(1, concurrency))

    async def run(index: int, item: Any) -> None:
        async with limit:
            await job(index, item)

    async with anyio.create_task_group() as group:
        for index, item in enumerate(items):
            group.start_soon(run, index, item)


class _Part:
    """One subbranch of a :class:`GoogleReader`."""

    def __init__(self, shared: _Shared, name: str) -> None:
        self._shared = shared
        self.name = name

    def __repr__(self) -> str:
        return f"<GoogleReader {self.name}>"

    async def batches(self) -> AsyncIterator[Batch]:
        shared = self._shared
        async with shared.reader.client() as client:
            if self.name == "users":
                rows = await shared.user_rows(client)
            elif self.name == "groups":
                rows = await shared.groups(client)
            elif self.name == "courses":
                rows = await shared.courses(client)
            else:
                rows = await shared.orgunits(client)
        where = client.urls["classroom" if self.name == "courses" else "directory"]
        yield Batch([dict(row) for row in rows], path=where)

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())
