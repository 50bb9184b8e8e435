"""Sync into a SCIM 2.0 server: :class:`SCIMTemplate`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import httpx

from synctree import Action, Leaf, Report, Skip
from synctree._util.options import one_of
from synctree._util.redact import redact_url
from synctree.aio import AsyncTemplate, idempotent

from ._errors import SCIMError
from ._paths import GROUP_MAPPING, USER_MAPPING, AttributePath, ResourceMapping, scim_string
from ._protocol import HEADERS, PATCH_OP, SCHEMAS, Resource, list_of_resources, resource_kind

if TYPE_CHECKING:
    from synctree import Branch

__all__ = ["SCIMTemplate"]

OnOld: TypeAlias = Literal["deactivate", "delete", "keep"]


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
    :param auth: credentials for every request (an :class:`httpx.Auth`, such as
        :class:`~synctree.aio.http.BearerAuth`; a config's ``auth`` table makes one).
    :param headers: more headers for every request (their values are never shown).
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
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(client, httpx.AsyncClient | str) or not client:
            raise ValueError(f"'client' must be an httpx.AsyncClient or a URL, got {client!r}")
        if auth is not None and not isinstance(auth, httpx.Auth):
            raise ValueError(f"'auth' must be an httpx.Auth or None, got {type(auth).__name__}")
        self._auth = auth
        self._headers = {**(headers or {}), **HEADERS}
        self._given = client
        self._client = client if isinstance(client, httpx.AsyncClient) else None
        self._mappings = {
            "Users": ResourceMapping(USER_MAPPING if mapping is None else mapping, "Users"),
            "Groups": ResourceMapping(
                GROUP_MAPPING if group_mapping is None else group_mapping, "Groups"
            ),
        }
        given = {"users": "Users", "groups": "Groups"} if resources is None else resources
        self._resources: dict[str, Resource] = {
            name: resource_kind(kind) for name, kind in given.items()
        }
        one_of(on_old, "on_old", ("deactivate", "delete", "keep"))
        self._on_old = on_old
        self._patch = bool(patch)
        self._ids: dict[Resource, dict[str, str]] = {"Users": {}, "Groups": {}}
        self._tried: set[tuple[Resource, str]] = set()

    def __repr__(self) -> str:
        where = self._given if isinstance(self._given, str) else self._given.base_url
        return f"<SCIMTemplate {redact_url(str(where))!r} on_old={self._on_old!r}>"

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
            self._client = httpx.AsyncClient(base_url=self._given, timeout=30.0, auth=self._auth)

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
            path = self._mappings["Users"].paths.get("active") or AttributePath.parse("active")
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
    def _path(mapping: ResourceMapping, attribute: str) -> AttributePath:
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
            method,
            url,
            content=content,
            params=params,
            headers=self._headers,
            auth=httpx.USE_CLIENT_DEFAULT if self._auth is None else self._auth,
        )
        if response.status_code >= 400:
            raise SCIMError(response)
        return response

    async def _patch_ops(self, kind: Resource, scim_id: str, operations: list[Any]) -> None:
        body = {"schemas": [PATCH_OP], "Operations": operations}
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
        found = list_of_resources(body)
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
        body: dict[str, Any] = {"schemas": [SCHEMAS[kind]]}
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


def _apply(resource: dict[str, Any], paths: list[tuple[AttributePath, Any]]) -> None:
    for path, value in paths:
        path.set(resource, value)
