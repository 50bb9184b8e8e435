"""Sync into Google Workspace: :class:`GoogleTemplate`.

Users (Directory API), organisational units (created when a user needs one), groups,
their memberships, and Classroom courses with their teachers and students, as the
subbranches ``users``, ``groups``, ``members`` and ``courses`` that
:class:`~._source.GoogleRoster` and :class:`~._reader.GoogleReader` give.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

import anyio
import httpx

from synctree import Action, Report
from synctree._util.options import one_of, positive
from synctree.aio import AsyncTemplate, batch

from ._batch import Call
from ._client import Connection, GoogleClient
from ._errors import GoogleError
from ._reader import EMAIL_ID, KEY_ID, external_ids
from ._rules import EmailRule, PasswordFile, PasswordPolicy

__all__ = ["GoogleTemplate"]

_USERS = "/admin/directory/v1/users"
_GROUPS = "/admin/directory/v1/groups"
_ORGUNITS = "/admin/directory/v1/customer/my_customer/orgunits"
_COURSES = "/v1/courses"
_ROSTERS = ("teachers", "students")


class GoogleTemplate(AsyncTemplate):
    """Create, change and retire users, groups and Classroom courses in Google Workspace.

    - ``users``: insert with the address the pattern gave (``_email`` of the source row),
      a digit added on conflict with any address of the domain or of this run; a
      generated initial password (``password`` policy), ``changePasswordAtNextLogin``,
      written only to ``password_file`` (mode 0600); the OU created first if missing.
      Updates patch only the changed fields, one call per user.  Leavers are suspended
      (``on_old='suspend'``, the default) or deleted; a suspended user who comes back is
      reactivated, not created twice.  A rename (``update_users_email_base``, planned only
      when the source asks for it) is its own action.  An adoption
      (``update_users_external_id``, planned by the reader for an existing account that
      is not synctree's) writes the SIS key into the account's ``externalIds``, after
      checking that it is still no admin's and no one else's.
    - ``groups``: insert, patch, delete.
    - ``members`` (each membership its own object, as :class:`~._source.GoogleRoster`
      gives them): inserted and deleted in batches, never chained, so one refused
      member holds back no other; a changed ``role`` (``OWNER`` for a class's teachers)
      is a patch of the member (``update_members_role``), never a removal and an
      insert.  Declare ``members`` after ``groups``.  A source that gives a group's
      ``members`` (and ``owners``) as set attributes instead is served too.
    - ``courses``: create (owned by ``course_owner``, the admin by default), patch,
      archive; teachers and students added and removed.

    Calls are paced by each API's quota (``quotas``, per ``quota_window`` seconds; ``rate``
    is the share used) and, where it pays, sent as Google batches of up to
    ``batch_size`` calls (1,000 for the Directory API, 50 for Classroom).
    """

    concurrency = 10
    retries = 5

    def __init__(
        self,
        *,
        auth: httpx.Auth | None = None,
        client: httpx.AsyncClient | None = None,
        base_url: str | None = None,
        password_file: str | os.PathLike[str] | None = None,
        password: Mapping[str, Any] | None = None,
        on_old: Literal["suspend", "delete"] = "suspend",
        course_owner: str = "me",
        quotas: Mapping[str, int] | None = None,
        rate: str | float = "95%",
        quota_window: float = 60.0,
        batch_size: int = 1000,
        api_concurrency: int = 10,
    ) -> None:
        one_of(on_old, "on_old", ("suspend", "delete"))
        positive(batch_size, "batch_size")
        if not isinstance(course_owner, str) or not course_owner:
            raise ValueError(
                f"'course_owner' must be 'me' or a teacher's email, got {course_owner!r}"
            )
        self._connection = Connection.checked(
            auth=auth,
            client=client,
            base_url=base_url,
            quotas=quotas,
            rate=rate,
            window=quota_window,
            concurrency=api_concurrency,
        )
        self.quota = self._connection.quota
        self.passwords = PasswordPolicy.from_config(password)
        self.password_file = PasswordFile(password_file) if password_file is not None else None
        if self.password_file is not None:
            self.password_file.check()
        self.on_old = on_old
        self.course_owner = course_owner
        self.batch_size = batch_size
        self._google: GoogleClient | None = None
        self._reset()

    def __repr__(self) -> str:
        return f"<GoogleTemplate on_old={self.on_old!r} {self.quota!r}>"

    def _reset(self) -> None:
        self._emails: dict[str, str] = {}  # user key -> primary address
        self._taken: set[str] | None = None  # every address of the domain, and this run's
        self._suspended: dict[str, dict[str, Any]] = {}  # key -> a suspended managed user
        self._orgunits: set[str] | None = None
        self._domain_lock = anyio.Lock()
        self._ou_lock = anyio.Lock()
        self._file_lock = anyio.Lock()

    # -- run hooks -----------------------------------------------------------------------

    async def before_all(self) -> None:
        self._check_order()
        self._reset()
        if self.diff is not None and "users" in self.diff.right.subbranches:
            for leaf in self.diff.right["users"]:
                email = leaf.__dict__.get("_email")
                if isinstance(email, str):
                    self._emails[leaf.idnumber] = email
        self._google = self._connection.new_client()
        await self._google.__aenter__()

    def _check_order(self) -> None:
        names = self.diff.left.subbranches if self.diff is not None else []
        if "groups" in names and "members" not in names:
            raise ValueError(
                "GoogleTemplate: the sync has 'groups' but no 'members'; declare the "
                "subbranch 'members' after 'groups', or no group would get its members"
            )
        if "members" in names and "groups" in names:
            if names.index("members") < names.index("groups"):
                raise ValueError(
                    "GoogleTemplate: declare the subbranch 'members' after 'groups' (a group "
                    "is created before its members are added)"
                )

    async def after_all(self, report: Report) -> None:
        if self._google is not None:
            google, self._google = self._google, None
            await google.__aexit__(None, None, None)

    def already_exists(self, action: Action, error: Exception) -> bool:
        """A repeated create answered 409: the first attempt made it."""
        return isinstance(error, GoogleError) and error.duplicate

    @property
    def google(self) -> GoogleClient:
        if self._google is None:
            raise RuntimeError("the GoogleTemplate's client is open only during a run")
        return self._google

    # -- users ---------------------------------------------------------------------------

    async def _domain(self) -> tuple[set[str], dict[str, dict[str, Any]]]:
        """Every address in the domain (aliases too), and the suspended managed users."""
        async with self._domain_lock:
            if self._taken is None:
                taken: set[str] = set()
                suspended: dict[str, dict[str, Any]] = {}
                params = [
                    ("customer", "my_customer"),
                    ("projection", "full"),
                    ("maxResults", "500"),
                ]
                async for page in self.google.pages("directory", _USERS, params, "users"):
                    for user in page:
                        taken.add(str(user.get("primaryEmail", "")).lower())
                        taken.update(str(a).lower() for a in user.get("aliases") or ())
                        key = _key_of(user)
                        if key is not None and user.get("suspended") and not user.get("isAdmin"):
                            suspended[key] = user
                taken.update(self._emails.values())
                self._taken, self._suspended = taken, suspended
            return self._taken, self._suspended

    async def _ensure_ou(self, path: str) -> None:
        """Create ``path`` and its missing parents (once each)."""
        async with self._ou_lock:
            if self._orgunits is None:
                body = await self.google.call(
                    "directory", Call("GET", _ORGUNITS, (("type", "all"),))
                )
                units = (body or {}).get("organizationUnits") or ()
                self._orgunits = {"/"} | {str(u["orgUnitPath"]).lower() for u in units}
            parent = ""
            for name in [p for p in path.split("/") if p]:
                here = f"{parent}/{name}"
                if here.lower() not in self._orgunits:
                    unit = {"name": name, "parentOrgUnitPath": parent or "/"}
                    try:
                        await self.google.send("directory", Call("POST", _ORGUNITS, body=unit))
                    except GoogleError as exc:
                        if not exc.duplicate:
                            raise
                    self._orgunits.add(here.lower())
                parent = here

    def _user_body(self, action: Action) -> dict[str, Any]:
        source = action.source
        assert source is not None
        return {
            "name": {"givenName": source.first, "familyName": source.last},
            "orgUnitPath": source.ou,
        }

    @batch(size="batch_size")
    async def new_users(self, actions: list[Action]) -> list[Any]:
        """Insert users in batches; conflicts get the next digit; leavers who return are
        reactivated."""
        taken, suspended = await self._domain()
        for path in sorted({a.source.ou for a in actions if a.source is not None}):
            await self._ensure_ou(path)
        outcomes: list[Any] = [None] * len(actions)
        inserts: list[tuple[int, Action, str, str]] = []
        for index, action in enumerate(actions):
            if action.idnumber in suspended:
                outcomes[index] = await self._reactivate(action, suspended.pop(action.idnumber))
                continue
            base = _source_email(action)
            inserts.append((index, action, base, EmailRule.unique(base, taken)))
        calls = []
        passwords = []
        for _, action, base, address in inserts:
            password = self.passwords.generate()
            passwords.append(password)
            calls.append(
                Call("POST", _USERS, body=self._insert_body(action, base, address, password))
            )
        answers = await self.google.batch("directory", calls)
        for (index, action, base, address), password, answer in zip(
            inserts, passwords, answers, strict=True
        ):
            if isinstance(answer, GoogleError) and answer.duplicate:
                answer = await self._insert_alone(action, base, address)
            elif not isinstance(answer, Exception):
                await self._created(action, address, password)
            outcomes[index] = answer if isinstance(answer, Exception) else None
        return outcomes

    def _insert_body(
        self, action: Action, base: str, address: str, password: str
    ) -> dict[str, Any]:
        return {
            **self._user_body(action),
            "primaryEmail": address,
            "password": password,
            "changePasswordAtNextLogin": True,
            "externalIds": external_ids(action.idnumber, base),
        }

    async def _insert_alone(self, action: Action, base: str, address: str) -> Any:
        """After a 409: adopt our own user (an earlier attempt made it), or take the next
        free address."""
        taken, _ = await self._domain()
        for _ in range(50):
            existing = await self._get_user(address)
            if existing is not None and _key_of(existing) == action.idnumber:
                password = self.passwords.generate()
                reset = {"password": password, "changePasswordAtNextLogin": True}
                await self.google.send(
                    "directory", Call("PATCH", f"{_USERS}/{existing['id']}", body=reset)
                )
                await self._created(action, address, password)
                return None
            address = EmailRule.unique(base, taken)
            password = self.passwords.generate()
            body = self._insert_body(action, base, address, password)
            try:
                await self.google.send("directory", Call("POST", _USERS, body=body))
            except GoogleError as exc:
                if exc.duplicate:
                    continue
                return exc
            await self._created(action, address, password)
            return None
        return RuntimeError(f"no free address for {action.idnumber!r} after 50 tries ({base})")

    async def _get_user(self, address: str) -> dict[str, Any] | None:
        try:
            user = await self.google.send("directory", Call("GET", f"{_USERS}/{address}"))
        except GoogleError as exc:
            if exc.not_found:
                return None
            raise
        return user if isinstance(user, dict) else None

    async def _created(self, action: Action, address: str, password: str) -> None:
        self._emails[action.idnumber] = address
        if self.password_file is not None:
            async with self._file_lock:
                self.password_file.append(action.idnumber, address, password)

    async def _reactivate(self, action: Action, user: dict[str, Any]) -> Any:
        body = {**self._user_body(action), "suspended": False}
        try:
            await self.google.send("directory", Call("PATCH", f"{_USERS}/{user['id']}", body=body))
        except GoogleError as exc:
            return exc
        self._emails[action.idnumber] = str(user["primaryEmail"]).lower()
        return None

    async def update_users(self, action: Action) -> None:
        """One PATCH with only the changed fields."""
        changes: Mapping[str, Any] = action.changes or {}
        body: dict[str, Any] = {}
        if "first" in changes or "last" in changes:
            assert action.source is not None
            body["name"] = {"givenName": action.source.first, "familyName": action.source.last}
        if "ou" in changes:
            await self._ensure_ou(changes["ou"])
            body["orgUnitPath"] = changes["ou"]
        unknown = set(changes) - {"first", "last", "ou"}
        if unknown:
            raise ValueError(f"GoogleTemplate cannot change users' {', '.join(sorted(unknown))}")
        await self.google.send("directory", Call("PATCH", self._user_path(action), body=body))

    async def update_users_external_id(self, action: Action) -> None:
        """Adopt an existing account: its SIS key into ``externalIds`` (its other entries
        kept), once Google confirms it is no admin's and carries no other key."""
        dest = action.dest
        user_id = dest.__dict__.get("_id") if dest is not None else None
        if not user_id:
            raise ValueError(f"user {action.idnumber!r}: no Google account to adopt")
        path = f"{_USERS}/{user_id}"
        user = await self.google.send("directory", Call("GET", path, (("projection", "full"),)))
        user = user if isinstance(user, dict) else {}
        email = user.get("primaryEmail")
        if user.get("isAdmin") or user.get("isDelegatedAdmin"):
            raise PermissionError(f"{email} is an admin account: synctree never adopts one")
        key = _key_of(user)
        if key is not None and key != action.idnumber:
            raise ValueError(f"{email} carries the key {key!r} now: not adopted")
        kept = [
            entry
            for entry in user.get("externalIds") or ()
            if isinstance(entry, dict)
            and entry.get("type") != KEY_ID
            and not (entry.get("type") == "custom" and entry.get("customType") == EMAIL_ID)
        ]
        body = {"externalIds": kept + external_ids(action.idnumber, _source_email(action))}
        await self.google.send("directory", Call("PATCH", path, body=body))
        self._emails[action.idnumber] = str(email or self._email_of(action.idnumber)).lower()

    async def update_users_email_base(self, action: Action) -> None:
        """A rename: the new pattern address (with a digit if taken); the old stays an alias."""
        taken, _ = await self._domain()
        base = _source_email(action)
        address = EmailRule.unique(base, taken)
        body = {"primaryEmail": address, "externalIds": external_ids(action.idnumber, base)}
        await self.google.send("directory", Call("PATCH", self._user_path(action), body=body))
        self._emails[action.idnumber] = address

    @batch(size="batch_size")
    async def old_users(self, actions: list[Action]) -> list[Any]:
        """Suspend (or delete) leavers, in batches; they count against ``max_deletes``."""
        if self.on_old == "delete":
            calls = [Call("DELETE", self._user_path(a)) for a in actions]
        else:
            calls = [Call("PATCH", self._user_path(a), body={"suspended": True}) for a in actions]
        answers = await self.google.batch("directory", calls)
        return [_outcome(answer, gone_ok=self.on_old == "delete") for answer in answers]

    def _user_path(self, action: Action) -> str:
        dest = action.dest
        user_id = dest.__dict__.get("_id") if dest is not None else None
        return f"{_USERS}/{user_id or self._email_of(action.idnumber)}"

    def _email_of(self, key: str) -> str:
        try:
            return self._emails[key]
        except KeyError:
            raise LookupError(f"no Google user with key {key!r} (was it created?)") from None

    # -- groups --------------------------------------------------------------------------

    @batch(size="batch_size")
    async def new_groups(self, actions: list[Action]) -> list[Any]:
        """Insert groups, then all their members, in batches."""
        calls = [
            Call("POST", _GROUPS, body={"email": a.idnumber, "name": _attr(a, "name")})
            for a in actions
        ]
        answers = await self.google.batch("directory", calls)
        outcomes = []
        members: list[tuple[int, Call]] = []
        for index, (action, answer) in enumerate(zip(actions, answers, strict=True)):
            if isinstance(answer, GoogleError) and answer.duplicate:
                answer = None  # adopted: its missing members are added below
            outcomes.append(answer if isinstance(answer, Exception) else None)
            if outcomes[-1] is None:
                owners = _attr(action, "owners") or ()
                for key in sorted(_attr(action, "members") or ()):
                    if key in self._emails:
                        call = self._member_insert(action.idnumber, key, key in owners)
                        members.append((index, call))
        for (index, _), answer in zip(
            members, await self.google.batch("directory", [c for _, c in members]), strict=True
        ):
            problem = _outcome(answer, exists_ok=True)
            if problem is not None and outcomes[index] is None:
                outcomes[index] = problem
        return outcomes

    def _member_insert(self, group: str, key: str, owner: bool) -> Call:
        body = {"email": self._email_of(key), "role": "OWNER" if owner else "MEMBER"}
        return Call("POST", f"{_GROUPS}/{group}/members", body=body)

    def _member_role(self, group: str, key: str, owner: bool) -> Call:
        path = f"{_GROUPS}/{group}/members/{self._email_of(key)}"
        return Call("PATCH", path, body={"role": "OWNER" if owner else "MEMBER"})

    async def update_groups(self, action: Action) -> None:
        changes = dict(action.changes or {})
        body = {name: changes.pop(name) for name in ("name",) if name in changes}
        if changes:
            raise ValueError(f"GoogleTemplate cannot change groups' {', '.join(sorted(changes))}")
        await self.google.send(
            "directory", Call("PATCH", f"{_GROUPS}/{action.idnumber}", body=body)
        )

    @batch(size="batch_size")
    async def old_groups(self, actions: list[Action]) -> list[Any]:
        calls = [Call("DELETE", f"{_GROUPS}/{a.idnumber}") for a in actions]
        return [_outcome(a, gone_ok=True) for a in await self.google.batch("directory", calls)]

    @batch(size="batch_size")
    async def add_groups_members(self, actions: list[Action]) -> list[Any]:
        def make(action: Action) -> Call:
            key = str(action.value)
            return self._member_insert(action.idnumber, key, key in (_attr(action, "owners") or ()))

        return await self._each("directory", actions, make, add=True)

    @batch(size="batch_size")
    async def add_groups_owners(self, actions: list[Action]) -> list[Any]:
        """A member who becomes an owner (a class's new teacher): a patch of the role (a
        member added in this run was inserted as owner already, so it is a no-op)."""
        return await self._each(
            "directory", actions, lambda a: self._member_role(a.idnumber, str(a.value), True)
        )

    @batch(size="batch_size")
    async def remove_groups_owners(self, actions: list[Action]) -> list[Any]:
        """An owner who stays a member: a patch of the role; one who leaves the group is
        removed by ``remove_groups_members``, so there is nothing to call."""

        def make(action: Action) -> Call | None:
            key = str(action.value)
            if key not in (_attr(action, "members") or ()):
                return None
            return self._member_role(action.idnumber, key, False)

        return await self._each("directory", actions, make)

    @batch(size="batch_size")
    async def remove_groups_members(self, actions: list[Action]) -> list[Any]:
        return await self._each(
            "directory",
            actions,
            lambda a: Call(
                "DELETE", f"{_GROUPS}/{a.idnumber}/members/{self._email_of(str(a.value))}"
            ),
            add=False,
        )

    async def _each(
        self,
        api: str,
        actions: list[Action],
        make: Callable[[Action], Call | None],
        *,
        add: bool | None = None,
    ) -> list[Any]:
        """One call per action, batched; an action whose call cannot be made fails alone
        (``make`` gives ``None``: nothing to call, done).  ``add``: a 409 is done (True),
        a 404 is done (False), neither (None)."""
        outcomes: list[Any] = [None] * len(actions)
        calls: list[tuple[int, Call]] = []
        for index, action in enumerate(actions):
            try:
                call = make(action)
            except LookupError as exc:  # a member synctree has no address for
                outcomes[index] = exc
                continue
            if call is not None:
                calls.append((index, call))
        answers = await self.google.batch(api, [call for _, call in calls])
        for (index, _), answer in zip(calls, answers, strict=True):
            outcomes[index] = _outcome(answer, exists_ok=add is True, gone_ok=add is False)
        return outcomes

    # -- memberships as objects ----------------------------------------------------------

    def _membership(self, action: Action) -> tuple[str, str]:
        leaf = action.source if action.source is not None else action.dest
        group = leaf.__dict__.get("_group") if leaf is not None else None
        user = leaf.__dict__.get("_user") if leaf is not None else None
        if not isinstance(group, str) or not isinstance(user, str):
            raise ValueError(f"membership {action.idnumber!r} has no '_group' and '_user'")
        return group, user

    @batch(size="batch_size")
    async def new_members(self, actions: list[Action]) -> list[Any]:
        """Add members with their role, in batches (a 409 is done: the member is there)."""

        def make(action: Action) -> Call:
            group, user = self._membership(action)
            body = {"email": self._email_of(user), "role": _attr(action, "role") or "MEMBER"}
            return Call("POST", f"{_GROUPS}/{group}/members", body=body)

        return await self._each("directory", actions, make, add=True)

    @batch(size="batch_size")
    async def old_members(self, actions: list[Action]) -> list[Any]:
        """Remove members, in batches (a 404 is done: the member is gone); the members of
        a group this run deletes go with it (no call)."""
        kept = self.diff.left["groups"] if self.diff is not None else None

        def make(action: Action) -> Call | None:
            group, user = self._membership(action)
            if kept is not None and kept.coverage == "full" and group not in kept:
                return None  # old_groups deletes the group, and its members with it
            return Call("DELETE", f"{_GROUPS}/{group}/members/{self._email_of(user)}")

        return await self._each("directory", actions, make, add=False)

    async def update_members_role(self, action: Action) -> None:
        """A member whose role changes (a student made a teacher): one patch."""
        group, user = self._membership(action)
        path = f"{_GROUPS}/{group}/members/{self._email_of(user)}"
        await self.google.send("directory", Call("PATCH", path, body={"role": action.value}))

    # -- Classroom -----------------------------------------------------------------------

    @batch(size="batch_size")
    async def new_courses(self, actions: list[Action]) -> list[Any]:
        """Create courses (owned by ``course_owner``), then add their teachers and students."""
        calls = [
            Call(
                "POST",
                _COURSES,
                body={
                    "id": f"d:{a.idnumber}",
                    "name": _attr(a, "name"),
                    "section": _attr(a, "section") or "",
                    "ownerId": self.course_owner,
                    "courseState": "ACTIVE",
                },
            )
            for a in actions
        ]
        answers = await self.google.batch("classroom", calls)
        outcomes: list[Any] = []
        roster: list[tuple[int, Call]] = []
        for index, (action, answer) in enumerate(zip(actions, answers, strict=True)):
            if isinstance(answer, GoogleError) and answer.duplicate:
                answer = await self._unarchive(action)  # an archived course came back
            outcomes.append(answer if isinstance(answer, Exception) else None)
            if outcomes[-1] is None:
                for kind in _ROSTERS:
                    for key in sorted(_attr(action, kind) or ()):
                        if key in self._emails:
                            roster.append((index, self._roster_add(action.idnumber, kind, key)))
        for (index, _), answer in zip(
            roster, await self.google.batch("classroom", [c for _, c in roster]), strict=True
        ):
            problem = _outcome(answer, exists_ok=True)
            if problem is not None and outcomes[index] is None:
                outcomes[index] = problem
        return outcomes

    async def _unarchive(self, action: Action) -> Any:
        body = {
            "name": _attr(action, "name"),
            "section": _attr(action, "section") or "",
            "courseState": "ACTIVE",
        }
        call = Call(
            "PATCH",
            f"{_COURSES}/d:{action.idnumber}",
            (("updateMask", "name,section,courseState"),),
            body,
        )
        try:
            return await self.google.send("classroom", call)
        except GoogleError as exc:
            return exc

    def _roster_add(self, course: str, kind: str, key: str) -> Call:
        return Call("POST", f"{_COURSES}/d:{course}/{kind}", body={"userId": self._email_of(key)})

    async def update_courses(self, action: Action) -> None:
        changes = dict(action.changes or {})
        body = {name: changes.pop(name) for name in ("name", "section") if name in changes}
        if changes:
            raise ValueError(f"GoogleTemplate cannot change courses' {', '.join(sorted(changes))}")
        mask = (("updateMask", ",".join(body)),)
        await self.google.send(
            "classroom", Call("PATCH", f"{_COURSES}/d:{action.idnumber}", mask, body)
        )

    @batch(size="batch_size")
    async def old_courses(self, actions: list[Action]) -> list[Any]:
        """Archive courses that left the source (Classroom keeps their work)."""
        mask = (("updateMask", "courseState"),)
        calls = [
            Call("PATCH", f"{_COURSES}/d:{a.idnumber}", mask, {"courseState": "ARCHIVED"})
            for a in actions
        ]
        return [_outcome(a) for a in await self.google.batch("classroom", calls)]

    async def _roster(self, actions: list[Action], kind: str, add: bool) -> list[Any]:
        def remove(action: Action, what: str = kind) -> Call:
            key = self._email_of(str(action.value))
            return Call("DELETE", f"{_COURSES}/d:{action.idnumber}/{what}/{key}")

        if not add:
            return await self._each("classroom", actions, remove, add=False)
        # A student who becomes a teacher (or back) leaves the other list first: Classroom
        # holds a person once per course (the later remove then finds them gone: done).
        other = "students" if kind == "teachers" else "teachers"
        moving = [
            index
            for index, a in enumerate(actions)
            if str(a.value) in (getattr(a.dest, other, None) or ())
            and str(a.value) not in (_attr(a, other) or ())
        ]
        outcomes: list[Any] = [None] * len(actions)
        if moving:
            moved = [actions[i] for i in moving]
            left = await self._each("classroom", moved, lambda a: remove(a, other), add=False)
            for index, problem in zip(moving, left, strict=True):
                outcomes[index] = problem
        rest = [i for i in range(len(actions)) if outcomes[i] is None]
        added = await self._each(
            "classroom",
            [actions[i] for i in rest],
            lambda a: self._roster_add(a.idnumber, kind, str(a.value)),
            add=True,
        )
        for index, problem in zip(rest, added, strict=True):
            outcomes[index] = problem
        return outcomes

    @batch(size="batch_size")
    async def add_courses_teachers(self, actions: list[Action]) -> list[Any]:
        return await self._roster(actions, "teachers", True)

    @batch(size="batch_size")
    async def remove_courses_teachers(self, actions: list[Action]) -> list[Any]:
        return await self._roster(actions, "teachers", False)

    @batch(size="batch_size")
    async def add_courses_students(self, actions: list[Action]) -> list[Any]:
        return await self._roster(actions, "students", True)

    @batch(size="batch_size")
    async def remove_courses_students(self, actions: list[Action]) -> list[Any]:
        return await self._roster(actions, "students", False)


def _key_of(user: Mapping[str, Any]) -> str | None:
    for entry in user.get("externalIds") or ():
        if isinstance(entry, dict) and entry.get("type") == KEY_ID:
            value = entry.get("value")
            return str(value) if value is not None else None
    return None


def _attr(action: Action, name: str) -> Any:
    return getattr(action.source, name, None) if action.source is not None else None


def _source_email(action: Action) -> str:
    source = action.source
    address = source.__dict__.get("_email") if source is not None else None
    if not isinstance(address, str) or "@" not in address:
        raise ValueError(
            f"user {action.idnumber!r} has no '_email' (the pattern's address): read the "
            f"source with GoogleRoster, or give each row an '_email'"
        )
    return address.lower()


def _outcome(answer: Any, *, exists_ok: bool = False, gone_ok: bool = False) -> Any:
    """A batch answer as the runner's outcome: ``None`` (done) or the error."""
    if isinstance(answer, GoogleError):
        if (exists_ok and answer.duplicate) or (gone_ok and answer.not_found):
            return None
        return answer
    if isinstance(answer, Exception):
        return answer
    return None
