"""SCIM 2.0 (RFC 7643/7644) users and groups: :class:`SCIMReader` and :class:`SCIMTemplate`.

A *mapping* names, per synctree attribute, the SCIM attribute path it lives at:
``'first': 'name.givenName'``, ``'email': 'emails[type eq "work"].value'``, extension
attributes by their URN (``'urn:...:enterprise:2.0:User:employeeNumber'``).  The key
``'idnumber'`` maps synctree's key (``externalId`` by default); the server's own ``id``
is carried as ``_id``, never compared.

Group members are synctree keys of users: the reader resolves each member's SCIM id to
that user's ``idnumber`` (its ``externalId``, or whatever ``member_key`` says) through
a listing of the Users; members it cannot resolve (users synctree does not manage,
dangling ids) are left out, so synctree neither adds nor removes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import httpx

from synctree._action import Action
from synctree._exceptions import SyncTreeError
from synctree._leaf import Leaf
from synctree._report import Report
from synctree._template import Skip
from synctree.aio._template import AsyncTemplate, idempotent
from synctree.aio.http._reader import HTTPReader, Offset, redact_url, rows_of

if TYPE_CHECKING:
    from synctree._tree import Branch

__all__ = [
    "GROUP_MAPPING",
    "USER_MAPPING",
    "SCIMError",
    "SCIMReader",
    "SCIMTemplate",
    "scim_string",
]

Resource: TypeAlias = Literal["Users", "Groups"]
OnOld: TypeAlias = Literal["deactivate", "delete", "keep"]
Row: TypeAlias = dict[str, Any]

#: The default mapping of users: synctree attribute -> SCIM attribute path.
USER_MAPPING: Mapping[str, str] = MappingProxyType(
    {
        "idnumber": "externalId",
        "username": "userName",
        "first": "name.givenName",
        "last": "name.familyName",
        "email": 'emails[type eq "work"].value',
        "active": "active",
        "display": "displayName",
    }
)
#: The default mapping of groups; ``members`` is the set of member users' keys.
GROUP_MAPPING: Mapping[str, str] = MappingProxyType(
    {
        "idnumber": "externalId",
        "display": "displayName",
        "members": "members",
    }
)

_SCHEMAS = {
    "Users": "urn:ietf:params:scim:schemas:core:2.0:User",
    "Groups": "urn:ietf:params:scim:schemas:core:2.0:Group",
}
_PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_MEDIA = "application/scim+json"
_HEADERS = {"Content-Type": _MEDIA, "Accept": f"{_MEDIA}, application/json"}


def scim_string(value: str) -> str:
    """``value`` as a SCIM filter string literal: a JSON string, so ``"`` and ``\\`` are
    escaped (RFC 7644 section 3.4.2.2)."""
    return json.dumps(value, ensure_ascii=False)


class SCIMError(SyncTreeError, httpx.HTTPStatusError):
    """A SCIM server answered with an error; the message carries its ``scimType`` and
    ``detail``.  It is an :class:`httpx.HTTPStatusError`, so the runner retries 429/5xx."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.scim_type: str | None = None
        self.detail: str | None = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            scim_type, detail = body.get("scimType"), body.get("detail")
            self.scim_type = scim_type if isinstance(scim_type, str) else None
            self.detail = detail if isinstance(detail, str) else None
        request = response.request
        what = " ".join(p for p in (self.scim_type, self.detail) if p) or response.reason_phrase
        message = f"HTTP {self.status} {what} ({request.method} {redact_url(request.url)})"
        super().__init__(message, request=request, response=response)


# -- attribute paths -----------------------------------------------------------------------

_NAME = r"[A-Za-z$][\w$-]*"
_PATH = re.compile(
    rf'(?:(?P<urn>urn:[^\[\]"]+):)?(?P<attr>{_NAME})'
    rf'(?:\[\s*(?P<fattr>{_NAME})\s+eq\s+(?P<fvalue>"(?:[^"\\]|\\.)*")\s*\])?'
    rf"(?:\.(?P<sub>{_NAME}))?"
)


@dataclass(frozen=True, slots=True)
class _Path:
    """A SCIM attribute path of the forms a mapping may use (see the module docstring)."""

    text: str
    urn: str | None
    attr: str
    select: tuple[str, str] | None  # the value filter ``[type eq "work"]``
    sub: str | None

    @classmethod
    def parse(cls, text: str) -> _Path:
        match = _PATH.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"not a SCIM attribute path this mapping supports: {text!r}")
        select = None
        if match["fattr"] is not None:
            if match["sub"] is None:
                raise ValueError(f"a filtered path needs a sub-attribute: {text!r}")
            select = (match["fattr"], json.loads(match["fvalue"]))
        return cls(text, match["urn"], match["attr"], select, match["sub"])

    @property
    def top(self) -> str:
        """The attribute a PATCH ``add`` of a new multi-valued element targets."""
        return f"{self.urn}:{self.attr}" if self.urn else self.attr

    def equals(self, value: str) -> str:
        """A filter matching resources whose value at this path is ``value``."""
        if self.select is None:
            return f"{self.text} eq {scim_string(value)}"
        name, selected = self.select
        return (
            f"{self.top}[{name} eq {scim_string(selected)} and {self.sub} eq {scim_string(value)}]"
        )

    def get(self, resource: Mapping[str, Any]) -> Any:
        """The value at this path in ``resource``, or None."""
        container: Any = resource.get(self.urn) if self.urn else resource
        if not isinstance(container, Mapping):
            return None
        value = container.get(self.attr)
        if self.select is not None:
            value = self._element(value)
        if self.sub is not None:
            return value.get(self.sub) if isinstance(value, Mapping) else None
        return value

    def _element(self, values: Any) -> dict[str, Any] | None:
        assert self.select is not None
        name, selected = self.select
        if isinstance(values, list):
            for element in values:
                if isinstance(element, dict) and element.get(name) == selected:
                    return element
        return None

    def set(self, resource: dict[str, Any], value: Any) -> None:
        """Set (or with None, remove) the value at this path in ``resource``, in place."""
        container = resource
        if self.urn:
            container = resource.setdefault(self.urn, {})
            schemas = resource.setdefault("schemas", [])
            if self.urn not in schemas:
                schemas.append(self.urn)
        if self.select is not None:
            assert self.sub is not None
            element = self._element(container.get(self.attr))
            if value is None:
                if element is not None:
                    container[self.attr].remove(element)
            elif element is not None:
                element[self.sub] = value
            else:
                name, selected = self.select
                container.setdefault(self.attr, []).append({name: selected, self.sub: value})
        elif self.sub is not None:
            parent = container.setdefault(self.attr, {})
            if value is None:
                parent.pop(self.sub, None)
                if not parent:
                    del container[self.attr]
            else:
                parent[self.sub] = value
        elif value is None:
            container.pop(self.attr, None)
        else:
            container[self.attr] = value

    def operation(self, value: Any, old: Any) -> dict[str, Any]:
        """The PATCH operation that changes this path from ``old`` to ``value``.

        A filtered path with no matching element cannot be replaced (RFC 7644 section
        3.5.2.3 answers ``noTarget``), so a first value is added as a new element.
        """
        if value is None:
            if self.select is not None:
                name, selected = self.select
                return {"op": "remove", "path": f"{self.top}[{name} eq {scim_string(selected)}]"}
            return {"op": "remove", "path": self.text}
        if self.select is not None and old is None:
            name, selected = self.select
            return {"op": "add", "path": self.top, "value": [{name: selected, self.sub: value}]}
        return {"op": "replace", "path": self.text, "value": value}


class _Mapping:
    """A mapping parsed: the key path, the member attribute, and the other paths."""

    def __init__(self, mapping: Mapping[str, str], resource: Resource) -> None:
        if "idnumber" not in mapping:
            raise ValueError("'mapping' must map 'idnumber' (to 'externalId', say)")
        self.paths: dict[str, _Path] = {}
        self.members: str | None = None
        for attribute, text in mapping.items():
            if not isinstance(attribute, str) or not attribute or attribute.startswith("_"):
                raise ValueError(f"'mapping': {attribute!r} is not an attribute name")
            try:
                path = _Path.parse(text)
            except ValueError as exc:
                raise ValueError(f"'mapping' {attribute!r}: {exc}") from None
            if resource == "Groups" and text == "members":
                self.members = attribute
            else:
                self.paths[attribute] = path
        self.key = self.paths.pop("idnumber")

    def row(self, resource: Mapping[str, Any]) -> Row | None:
        """The synctree row of a resource, or None when it has no key (not ours)."""
        key = self.key.get(resource)
        if key is None or key == "" or isinstance(key, bool | dict | list):
            return None
        row: Row = {name: path.get(resource) for name, path in self.paths.items()}
        row["idnumber"] = str(key)
        row["_id"] = resource.get("id")
        return row


def _resource(resource: str) -> Resource:
    if resource not in _SCHEMAS:
        raise ValueError(f"'resource' must be 'Users' or 'Groups', got {resource!r}")
    return resource  # type: ignore[return-value]  # checked just above


def _list_of_resources(body: Any) -> Any:
    """The ``Resources`` of a ListResponse (absent when ``totalResults`` is 0)."""
    if not isinstance(body, dict):
        raise ValueError(f"not a SCIM ListResponse: a {type(body).__name__}")
    if "Resources" not in body:
        if body.get("totalResults") == 0:
            return []
        raise ValueError("no 'Resources' in the ListResponse")
    return body["Resources"]


def _listing(
    client: httpx.AsyncClient | str,
    resource: Resource,
    *,
    count: int,
    filter: str | None = None,
    attributes: Sequence[str] | None = None,
    **options: Any,
) -> HTTPReader:
    """An index-paginated listing: ``startIndex`` advances by the resources returned,
    since servers cap ``count``, up to ``totalResults`` (RFC 7644 section 3.4.2.4).  A
    listing that ends short of it, or whose ``totalResults`` changes between pages (a
    resource created or deleted meanwhile shifts the indexes), fails: a ListingError."""
    params: dict[str, str] = {}
    if filter is not None:
        params["filter"] = filter
    if attributes is not None:
        params["attributes"] = ",".join(attributes)
    return HTTPReader(
        client,
        f"/{resource}",
        key="id",
        items=_list_of_resources,
        pagination=Offset("startIndex", "count", limit=count, start=1, total="totalResults"),
        params=params,
        headers={"Accept": _HEADERS["Accept"]},
        **options,
    )


class SCIMReader:
    """Read SCIM Users or Groups as synctree rows (the mapping reversed).

    ``SCIMReader(client, 'Users', filter='userType eq "Student"')``.  A resource without
    a value at the ``idnumber`` path is not synctree's and is left out.

    :param client: an :class:`httpx.AsyncClient` whose base URL is the SCIM root (your
        auth and transport), or that URL.
    :param filter: a SCIM filter scoping what synctree manages (see :func:`scim_string`).
    :param count: resources asked per page; the server may return fewer.
    :param attributes: SCIM attributes to ask for (default: all).
    :param mapping: synctree attribute -> SCIM path; :data:`USER_MAPPING` or
        :data:`GROUP_MAPPING` by default.
    :param member_key: for Groups, the Users' attribute path holding a member's key.
    :param inactive: for Users, also read users with ``active`` false; by default they
        are left out, so a deactivated leaver is not deactivated again, and one who
        comes back is re-created (reactivated) by :class:`SCIMTemplate`.
    :param options: passed on to :class:`HTTPReader` (``rate``, ``retries``, ``sleep``...).
    """

    def __init__(
        self,
        client: httpx.AsyncClient | str,
        resource: Resource,
        *,
        filter: str | None = None,
        count: int = 100,
        attributes: Sequence[str] | None = None,
        mapping: Mapping[str, str] | None = None,
        member_key: str = "externalId",
        inactive: bool = False,
        **options: Any,
    ) -> None:
        self.resource = _resource(resource)
        default = USER_MAPPING if self.resource == "Users" else GROUP_MAPPING
        self._mapping = _Mapping(default if mapping is None else mapping, self.resource)
        self._member_key = _Path.parse(member_key)
        self._inactive = bool(inactive)
        self._client = client
        self._options = options
        self._count = count
        self._reader = _listing(
            client, self.resource, count=count, filter=filter, attributes=attributes, **options
        )
        self._start = self._reader.path

    def __repr__(self) -> str:
        return f"<SCIMReader {self._start!r}>"

    @property
    def path(self) -> str:
        """The URL (secrets redacted) of the page being read."""
        return self._reader.path

    line = None  # rows have no line; the page URL says where

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())

    async def batches(self) -> AsyncGenerator[list[Row], None]:
        """Yield the rows one list per page."""
        members = await self._member_keys() if self._mapping.members is not None else {}
        async with aclosing(self._reader.pages()) as pages:
            async for page in pages:
                yield [
                    row
                    for resource in page.items
                    if (row := self._row(resource, members)) is not None
                ]

    def _row(self, resource: Any, members: Mapping[str, str]) -> Row | None:
        if not isinstance(resource, dict):
            return None
        if self.resource == "Users" and not self._inactive and resource.get("active") is False:
            return None
        row = self._mapping.row(resource)
        if row is not None and self._mapping.members is not None:
            row[self._mapping.members] = {
                members[member["value"]]
                for member in resource.get("members") or ()
                if isinstance(member, dict) and member.get("value") in members
            }
        return row

    async def _member_keys(self) -> dict[str, str]:
        """SCIM user id -> the user's key, for every user that has one."""
        attributes = None if self._member_key.select else ["id", self._member_key.text]
        users = _listing(
            self._client, "Users", count=self._count, attributes=attributes, **self._options
        )
        keys = {}
        async with aclosing(users.pages()) as pages:
            async for page in pages:
                for user in page.items:
                    key = self._member_key.get(user) if isinstance(user, dict) else None
                    if isinstance(key, str | int) and key != "" and "id" in user:
                        keys[user["id"]] = str(key)
        return keys


# -- the template --------------------------------------------------------------------------


class SCIMTemplate(AsyncTemplate):
    """Sync into a SCIM 2.0 server: creates, updates, leavers and group members.

    - ``new``: POST; a 409 ``uniqueness`` (or a repeated attempt) looks the object up by
      its key and adopts it (bringing it in line with the source, reactivating a user),
      so creates are safe to retry.
    - ``update``: one PATCH per object with a ``replace`` (or ``add``/``remove``) per
      changed attribute; with ``patch=False``, GET and PUT the whole resource.
    - ``old``: for users, ``on_old='deactivate'`` (PATCH ``active`` false), ``'delete'``
      or ``'keep'`` (a skip); groups have no ``active``, so anything but ``'keep'``
      deletes them.
    - ``add``/``remove`` of the members attribute: PATCH ``members``.

    :param client: an :class:`httpx.AsyncClient` whose base URL is the SCIM root, or
        that URL (a client is made for each run, and closed).
    :param mapping: the users' mapping (default :data:`USER_MAPPING`).
    :param group_mapping: the groups' mapping (default :data:`GROUP_MAPPING`).
    :param resources: subbranch -> ``'Users'`` or ``'Groups'``; by default ``users``
        and ``groups``.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | str,
        *,
        mapping: Mapping[str, str] | None = None,
        group_mapping: Mapping[str, str] | None = None,
        resources: Mapping[str, Resource] | None = None,
        on_old: OnOld = "deactivate",
        patch: bool = True,
    ) -> None:
        if not isinstance(client, httpx.AsyncClient | str) or not client:
            raise ValueError(f"'client' must be an httpx.AsyncClient or a URL, got {client!r}")
        self._given = client
        self._client = client if isinstance(client, httpx.AsyncClient) else None
        self._mappings = {
            "Users": _Mapping(USER_MAPPING if mapping is None else mapping, "Users"),
            "Groups": _Mapping(GROUP_MAPPING if group_mapping is None else group_mapping, "Groups"),
        }
        given = {"users": "Users", "groups": "Groups"} if resources is None else resources
        self._resources: dict[str, Resource] = {
            name: _resource(kind) for name, kind in given.items()
        }
        if on_old not in ("deactivate", "delete", "keep"):
            raise ValueError(f"'on_old' must be 'deactivate', 'delete' or 'keep', got {on_old!r}")
        self._on_old = on_old
        self._patch = bool(patch)
        self._ids: dict[Resource, dict[str, str]] = {"Users": {}, "Groups": {}}
        self._tried: set[tuple[Resource, str]] = set()

    def __repr__(self) -> str:
        where = self._given if isinstance(self._given, str) else self._given.base_url
        return f"<SCIMTemplate {redact_url(where)!r} on_old={self._on_old!r}>"

    # -- run hooks --------------------------------------------------------------------------

    def _remember(self, branch: Branch) -> None:
        """Index the SCIM ids the reader carried (``_id``) on the destination's leaves."""
        for name, kind in self._resources.items():
            if name in branch.subbranches:
                ids = self._ids[kind]
                for leaf in branch[name]:
                    scim_id = leaf.__dict__.get("_id")
                    if isinstance(scim_id, str):
                        ids[leaf.idnumber] = scim_id

    async def before_all(self) -> None:  # async, as AsyncTemplate's
        """Open the client; index the SCIM ids on the destination's leaves."""
        self._ids = {"Users": {}, "Groups": {}}
        self._tried = set()
        if self.diff is not None:
            self._remember(self.diff.right)
        if self._client is None:
            assert isinstance(self._given, str)
            self._client = httpx.AsyncClient(base_url=self._given, timeout=30.0)

    async def after_all(self, report: Report) -> None:  # likewise
        if isinstance(self._given, str) and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- the action methods -----------------------------------------------------------------

    @idempotent
    async def new(self, action: Action) -> None:
        """POST the object; adopt an existing one with the same key instead of failing."""
        kind = self._kind(action)
        key = (kind, action.idnumber)
        if key in self._tried:  # a retry: the first POST may have created it
            existing = await self._find(kind, action.idnumber)
            if existing is not None:
                return await self._adopt(kind, action, existing)
        self._tried.add(key)
        body = await self._body(kind, action)
        try:
            response = await self._send("POST", f"/{kind}", body)
        except SCIMError as exc:
            if exc.status != 409:
                raise
            existing = await self._find(kind, action.idnumber)
            if existing is None:
                raise
            return await self._adopt(kind, action, existing)
        created = response.json()
        self._ids[kind][action.idnumber] = created["id"]

    async def update(self, action: Action) -> None:
        """Change every changed attribute of one object in one request."""
        kind = self._kind(action)
        mapping = self._mappings[kind]
        changes = action.changes
        if changes is None:  # the runner groups updates for an ``update`` method
            raise TypeError("SCIMTemplate.update expects a grouped action (with changes)")
        paths = [(self._path(mapping, name), value) for name, value in changes.items()]
        scim_id = await self._id_of(kind, action.idnumber, action.dest)
        if self._patch:
            operations = [
                path.operation(value, _old(action.dest, name))
                for (path, value), name in zip(paths, changes, strict=True)
            ]
            await self._patch_ops(kind, scim_id, operations)
        else:
            await self._put(kind, scim_id, lambda resource: _apply(resource, paths))

    async def old(self, action: Action) -> Skip | None:
        """Deactivate, delete or keep a user who left; delete (or keep) a group."""
        kind = self._kind(action)
        if self._on_old == "keep":
            return Skip("on_old='keep'")
        scim_id = await self._id_of(kind, action.idnumber, action.dest)
        if kind == "Users" and self._on_old == "deactivate":
            path = self._mappings["Users"].paths.get("active") or _Path.parse("active")
            if action.dest is not None and action.dest.__dict__.get("active") is False:
                return Skip("already inactive")
            if self._patch:
                await self._patch_ops(kind, scim_id, [path.operation(False, True)])
            else:
                await self._put(kind, scim_id, lambda resource: path.set(resource, False))
            return None
        try:
            await self._send("DELETE", f"/{kind}/{scim_id}")
        except SCIMError as exc:
            if exc.status != 404:  # gone already: an earlier attempt did it
                raise
        self._ids[kind].pop(action.idnumber, None)
        return None

    async def add(self, action: Action) -> None:
        """Add one member to a group."""
        await self._member(action, add=True)

    async def remove(self, action: Action) -> None:
        """Remove one member from a group."""
        await self._member(action, add=False)

    # -- helpers -----------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client (made by :meth:`before_all` when the template was given a URL)."""
        if self._client is None:
            raise RuntimeError("the SCIMTemplate's client is open only during a run")
        return self._client

    def _kind(self, action: Action) -> Resource:
        try:
            return self._resources[action.subbranch]
        except KeyError:
            raise ValueError(
                f"SCIMTemplate does not know subbranch {action.subbranch!r}: name its SCIM "
                f"resource in resources= (it knows {', '.join(self._resources)})"
            ) from None

    @staticmethod
    def _path(mapping: _Mapping, attribute: str) -> _Path:
        try:
            return mapping.paths[attribute]
        except KeyError:
            raise ValueError(
                f"attribute {attribute!r} has no SCIM path; add it to the mapping"
            ) from None

    async def _send(
        self, method: str, url: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        content = None if body is None else json.dumps(body).encode()
        response = await self.client.request(
            method, url, content=content, params=params, headers=_HEADERS
        )
        if response.status_code >= 400:
            raise SCIMError(response)
        return response

    async def _patch_ops(self, kind: Resource, scim_id: str, operations: list[Any]) -> None:
        body = {"schemas": [_PATCH_OP], "Operations": operations}
        await self._send("PATCH", f"/{kind}/{scim_id}", body)

    async def _put(
        self, kind: Resource, scim_id: str, change: Callable[[dict[str, Any]], None]
    ) -> None:
        resource = (await self._send("GET", f"/{kind}/{scim_id}")).json()
        change(resource)
        await self._send("PUT", f"/{kind}/{scim_id}", resource)

    async def _find(self, kind: Resource, idnumber: str) -> dict[str, Any] | None:
        """The resource whose key is ``idnumber``, looked up by filter, or None."""
        flt = self._mappings[kind].key.equals(idnumber)
        body = (await self._send("GET", f"/{kind}", params={"filter": flt, "count": 2})).json()
        found = _list_of_resources(body)
        if len(found) > 1 or (body.get("totalResults") or 0) > 1:
            raise LookupError(f"more than one of the {kind} match {flt}")
        if not found:
            return None
        self._ids[kind][idnumber] = found[0]["id"]
        return dict(found[0])

    async def _id_of(self, kind: Resource, idnumber: str, leaf: Leaf | None = None) -> str:
        """The SCIM id of an object: carried by its leaf, remembered, or looked up."""
        if leaf is not None and isinstance(leaf.__dict__.get("_id"), str):
            return str(leaf.__dict__["_id"])
        known = self._ids[kind].get(idnumber)
        if known is not None:
            return known
        found = await self._find(kind, idnumber)
        if found is None:
            raise LookupError(f"no {kind[:-1].lower()} with key {idnumber!r} on the server")
        return str(found["id"])

    async def _body(self, kind: Resource, action: Action) -> dict[str, Any]:
        """The resource to POST: the source's mapped attributes, members as SCIM ids."""
        mapping = self._mappings[kind]
        values = action.source.to_dict() if action.source is not None else {}
        body: dict[str, Any] = {"schemas": [_SCHEMAS[kind]]}
        mapping.key.set(body, action.idnumber)
        for name, path in mapping.paths.items():
            if values.get(name) is not None:
                path.set(body, values[name])
        if kind == "Users" and "active" in mapping.paths and "active" not in values:
            mapping.paths["active"].set(body, True)  # a new user is an active one
        if mapping.members is not None:
            members = values.get(mapping.members) or ()
            body["members"] = [{"value": scim_id} for scim_id in await self._known(members)]
        return body

    async def _known(self, members: Iterable[Any]) -> list[str]:
        """The SCIM ids of the member keys that resolve (the others are added later)."""
        ids = []
        for member in sorted(members, key=str):
            try:
                ids.append(await self._id_of("Users", str(member)))
            except LookupError:
                pass
        return ids

    async def _adopt(self, kind: Resource, action: Action, existing: dict[str, Any]) -> None:
        """Bring an existing object with the action's key in line with the source."""
        wanted = await self._body(kind, action)
        mapping = self._mappings[kind]
        operations = []
        for path in mapping.paths.values():
            value, old = path.get(wanted), path.get(existing)
            if value is not None and value != old:
                operations.append(path.operation(value, old))
        if "members" in wanted:
            have = {m.get("value") for m in existing.get("members") or () if isinstance(m, dict)}
            if {m["value"] for m in wanted["members"]} - have:
                missing = [m for m in wanted["members"] if m["value"] not in have]
                operations.append({"op": "add", "path": "members", "value": missing})
        if not operations:
            return
        if self._patch:
            await self._patch_ops(kind, existing["id"], operations)
            return

        def change(resource: dict[str, Any]) -> None:
            for path in mapping.paths.values():
                if path.get(wanted) is not None:
                    path.set(resource, path.get(wanted))
            if "members" in wanted:
                have = {m.get("value") for m in resource.get("members") or ()}
                extra = [m for m in wanted["members"] if m["value"] not in have]
                resource["members"] = [*(resource.get("members") or ()), *extra]

        await self._put(kind, existing["id"], change)

    async def _member(self, action: Action, *, add: bool) -> None:
        kind = self._kind(action)
        mapping = self._mappings[kind]
        if kind != "Groups" or action.attribute != mapping.members:
            verb = "add to" if add else "remove from"
            raise ValueError(
                f"SCIMTemplate can only {verb} group members, not {action.subbranch} "
                f"{action.attribute!r}"
            )
        group_id = await self._id_of(kind, action.idnumber, action.dest)
        user_id = await self._id_of("Users", str(action.value))
        if self._patch:
            if add:
                operation = {"op": "add", "path": "members", "value": [{"value": user_id}]}
            else:
                operation = {"op": "remove", "path": f"members[value eq {scim_string(user_id)}]"}
            await self._patch_ops(kind, group_id, [operation])
            return

        def change(resource: dict[str, Any]) -> None:
            kept = [m for m in resource.get("members") or () if m.get("value") != user_id]
            resource["members"] = [*kept, {"value": user_id}] if add else kept

        await self._put(kind, group_id, change)


def _old(leaf: Leaf | None, name: str) -> Any:
    return None if leaf is None else getattr(leaf, name, None)


def _apply(resource: dict[str, Any], paths: list[tuple[_Path, Any]]) -> None:
    for path, value in paths:
        path.set(resource, value)
