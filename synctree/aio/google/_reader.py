"""Read a Google Workspace as the destination: :class:`GoogleReader`.

- ``users``: ``users.list`` (``customer=my_customer``, ``projection=full``,
  ``maxResults=500``, page tokens, the optional ``query`` that scopes what synctree
  manages, e.g. ``orgUnitPath='/Students'``).  A user is managed when it carries the
  SIS key as an ``externalIds`` entry of type ``organization``; admins, delegated
  admins, suspended users and users without that key are left out, so never touched.
  *Adoption* (``adopt="email"``, the default): an active account without the key whose
  address (primary or alias) is the match value of exactly one new user of the
  :class:`~._source.GoogleRoster` read beside it is read under that user's key with
  ``external_id`` empty, so the plan shows ``update_users_external_id`` (the template
  writes the key) instead of a second account.  Admins are never adopted: a match is
  a note of the plan.
- ``groups``: ``groups.list`` and each group's ``members.list`` (calls in
  O(groups + pages)), members as the keys of managed users (others are left out),
  ``owners`` those whose role is ``OWNER``.
- ``members``: the same listings, each membership of a managed user as its own object
  (``'group@domain user-key'``, its ``role``), as :class:`~._source.GoogleRoster` gives.
- ``courses``: Classroom courses (active and provisioned) with a ``d:`` alias (the SIS
  key), each with its teachers and students as keys of managed users.
- ``orgunits``: ``orgunits.list`` with ``type=all``.

The subbranches of one :meth:`GoogleReader.readers` call share one users listing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

import anyio
import httpx

from synctree.aio import Batch, Row, rows_of

from ._batch import Call
from ._client import Connection, GoogleClient
from ._source import latest_roster, membership

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
    :param adopt: take over an existing account that is not synctree's when its address
        equals a new user's match value: ``"email"`` (the pattern's address, the
        default), ``"sis_email"`` (the export's ``email``), or ``False``.
    """

    subbranches = ("users", "groups", "members", "courses", "orgunits")

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
        adopt: Literal["email", "sis_email", False] = "email",
    ) -> None:
        if query is not None and not isinstance(query, str):
            raise ValueError(f"'query' must be a users search string, got {query!r}")
        if not (adopt is False or adopt in ("email", "sis_email")):
            raise ValueError(f"'adopt' must be 'email', 'sis_email' or false, got {adopt!r}")
        self.adopt = adopt
        self._connection = Connection.checked(
            auth=auth,
            client=client,
            base_url=base_url,
            quotas=quotas,
            rate=rate,
            window=quota_window,
            concurrency=concurrency,
        )
        self.quota = self._connection.quota
        self.query = query
        self.groups_domain = groups_domain
        self.course_states = tuple(course_states)

    def __repr__(self) -> str:
        return f"<GoogleReader query={self.query!r}>"

    def client(self) -> GoogleClient:
        """A new client on this reader's quota (open it with ``async with``)."""
        return self._connection.new_client()

    def readers(self, *, source: Mapping[str, Any] | None = None) -> dict[str, _Part]:
        """A reader per subbranch, sharing one users listing.

        :param source: the :meth:`GoogleRoster.readers` to adopt accounts against
            (default: the roster whose readers were made last in this context).
        """
        roster = latest_roster()
        if source is not None:
            part = source.get("users")
            roster = getattr(part, "_shared", None)
            if roster is None:
                raise ValueError("'source' must be the readers() of a GoogleRoster")
        shared = _Shared(self, roster if self.adopt else None)
        return {name: _Part(shared, name) for name in self.subbranches}


class _Shared:
    """What the subbranches of one load share: the users listing and its indexes."""

    def __init__(self, reader: GoogleReader, roster: Any = None) -> None:
        self.reader = reader
        self.roster = roster  # a GoogleRoster's shared read, to adopt against
        self.lock = anyio.Lock()
        self.users: list[Row] | None = None
        self.group_rows: tuple[list[Row], list[Row]] | None = None
        self.groups_lock = anyio.Lock()
        self.notes: list[str] = []
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
        others: list[dict[str, Any]] = []  # accounts that are not synctree's
        async for page in client.pages("directory", _USERS, params, "users"):
            for user in page:
                key, base = _ids_of(user)
                if key is None or user.get("isAdmin") or user.get("isDelegatedAdmin"):
                    others.append(user)
                    continue  # not synctree's to manage
                email = str(user.get("primaryEmail", "")).lower()
                self._index(user, key)
                if user.get("suspended"):
                    continue  # a leaver: out of the tree, adopted again if they return
                rows.append(_row(user, key, base or email, adopted=False))
        if self.roster is not None and others:
            rows += await self._adoptions(others)
        return rows

    def _index(self, user: Mapping[str, Any], key: str) -> None:
        email = str(user.get("primaryEmail", "")).lower()
        self.key_of_email[email] = key
        for alias in user.get("aliases") or ():
            self.key_of_email.setdefault(str(alias).lower(), key)
        self.key_of_id[str(user.get("id"))] = key

    async def _adoptions(self, others: list[dict[str, Any]]) -> list[Row]:
        """The accounts to adopt: each the only match of one new user, and no admin."""
        attribute = "_email" if self.reader.adopt == "email" else "_sis_email"
        managed = set(self.key_of_id.values())
        wanted: dict[str, list[str]] = {}  # match value -> the new users' keys
        for user in (await self.roster.get())["users"]:
            value = user.get(attribute)
            if isinstance(value, str) and user["idnumber"] not in managed:
                wanted.setdefault(value.lower(), []).append(user["idnumber"])
        adopted: dict[str, tuple[dict[str, Any], str]] = {}  # key -> (account, address)
        refused: set[str] = set()
        for user in others:
            addresses = [str(user.get("primaryEmail", "")).lower()]
            addresses += [str(a).lower() for a in user.get("aliases") or ()]
            keys = {key for address in addresses for key in wanted.get(address, ())}
            if not keys:
                continue
            email = addresses[0]
            who = ", ".join(sorted(keys))
            if user.get("isAdmin") or user.get("isDelegatedAdmin"):
                role = "an admin" if user.get("isAdmin") else "a delegated admin"
                self.notes.append(
                    f"users: {email} is {role}: never adopted nor changed; {who} "
                    "will get a new address (with a digit)"
                )
            elif user.get("suspended"):
                self.notes.append(
                    f"users: {email} is suspended and not synctree's: not adopted; {who} will "
                    "get a new address (with a digit)"
                )
            elif len(keys) > 1:
                self.notes.append(
                    f"users: {email} matches {len(keys)} new users ({who}): not adopted; "
                    "each will get a new address"
                )
            else:
                (key,) = keys
                if key in adopted:
                    refused.add(key)
                adopted[key] = (user, email)
        rows = []
        for key, (user, email) in sorted(adopted.items()):
            if key in refused:
                self.notes.append(
                    f"users: {key} matches more than one account: none adopted; it will get "
                    "a new address"
                )
                continue
            self._index(user, key)
            rows.append(_row(user, key, email, adopted=True))
        return rows

    async def groups(self, client: GoogleClient) -> tuple[list[Row], list[Row]]:
        """The groups, and their memberships as objects (one listing for both)."""
        async with self.groups_lock:
            if self.group_rows is None:
                self.group_rows = await self._read_groups(client)
            return self.group_rows

    async def _read_groups(self, client: GoogleClient) -> tuple[list[Row], list[Row]]:
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
        each: list[list[Row]] = [[] for _ in found]

        async def one(index: int, group: dict[str, Any]) -> None:
            members: set[str] = set()
            owners: set[str] = set()
            address = str(group["email"]).lower()
            path = f"{_GROUPS}/{group['id']}/members"
            async for page in client.pages("directory", path, [("maxResults", "200")], "members"):
                for member in page:
                    key = self.key_of_email.get(str(member.get("email", "")).lower())
                    if key is not None:
                        members.add(key)
                        role = str(member.get("role") or "MEMBER")
                        if role == "OWNER":
                            owners.add(key)
                        each[index].append(membership(address, key, role))
            rows[index] = {
                "idnumber": address,
                "name": group.get("name", ""),
                "members": members,
                "owners": owners,
                "_id": group["id"],
            }

        await _each(found, one, self.reader.quota.concurrency)
        return rows, [row for rows_of_group in each for row in rows_of_group]

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


def _row(user: Mapping[str, Any], key: str, base: str, *, adopted: bool) -> Row:
    """A user as the tree holds it; an account to adopt has no ``external_id`` yet."""
    name = user.get("name") or {}
    return {
        "idnumber": key,
        "external_id": "" if adopted else key,
        "first": name.get("givenName", ""),
        "last": name.get("familyName", ""),
        "ou": user.get("orgUnitPath", "/"),
        "email_base": base,
        "_email": str(user.get("primaryEmail", "")).lower(),
        "_id": user.get("id"),
        "_external_ids": list(user.get("externalIds") or ()),
    }


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
                rows = (await shared.groups(client))[0]
            elif self.name == "members":
                rows = (await shared.groups(client))[1]
            elif self.name == "courses":
                rows = await shared.courses(client)
            else:
                rows = await shared.orgunits(client)
        where = client.urls["classroom" if self.name == "courses" else "directory"]
        notes = tuple(shared.notes) if self.name == "users" else ()
        yield Batch([dict(row) for row in rows], path=where, notes=notes)

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())
