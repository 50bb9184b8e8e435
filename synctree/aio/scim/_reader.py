"""Read SCIM Users or Groups as synctree rows: :class:`SCIMReader`.

Group members are synctree keys of users: the reader resolves each member's SCIM id to
that user's ``idnumber`` (its ``externalId``, or whatever ``member_key`` says) through
a listing of the Users; members it cannot resolve (users synctree does not manage,
dangling ids) are left out, so synctree neither adds nor removes them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from synctree._util.options import positive
from synctree._util.redact import redact_url
from synctree.aio import Batch, Row, rows_of
from synctree.aio.http import HTTPReader, Offset

from ._paths import GROUP_MAPPING, USER_MAPPING, AttributePath, ResourceMapping
from ._protocol import HEADERS, Resource, list_of_resources, resource_kind

__all__ = ["SCIMReader"]


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
        items=list_of_resources,
        pagination=Offset("startIndex", "count", limit=count, start=1, total="totalResults"),
        params=params,
        # the caller's headers (and auth) too: HTTPReader takes one ``headers``
        headers={**(options.pop("headers", None) or {}), "Accept": HEADERS["Accept"]},
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
    :param options: passed on to :class:`HTTPReader` (``auth``, ``headers``, ``rate``,
        ``retries``, ``sleep``...).
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
        self.resource = resource_kind(resource)
        default = USER_MAPPING if self.resource == "Users" else GROUP_MAPPING
        self._mapping = ResourceMapping(default if mapping is None else mapping, self.resource)
        self._member_key = AttributePath.parse(member_key)
        self._inactive = bool(inactive)
        self._client = client
        self._options = options
        positive(count, "count")
        self._count = count
        self._reader = _listing(
            client, self.resource, count=count, filter=filter, attributes=attributes, **options
        )
        self._start = self._reader.path

    def __repr__(self) -> str:
        return f"<SCIMReader {self._start!r}>"

    @property
    def path(self) -> str:
        """The listing's (first page's) URL, secrets redacted."""
        return self._start

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())

    async def batches(self) -> AsyncGenerator[Batch, None]:
        """Yield the rows one :class:`~synctree.aio.Batch` per page: the page's URL
        (secrets redacted), each row's index in the listing (``startIndex``, 1-based) as
        its line, and the key's SCIM path.  Each call is a pass of its own."""
        members = await self._member_keys() if self._mapping.members is not None else {}
        key = self._mapping.key.text
        async with aclosing(self._reader.pages()) as pages:
            async for page in pages:
                rows: list[Row] = []
                numbers: list[int] = []
                first = page.seen - len(page.items) + 1
                for number, resource in enumerate(page.items, first):
                    row = self._row(resource, members)
                    if row is not None:
                        rows.append(row)
                        numbers.append(number)
                yield Batch(
                    rows, path=redact_url(str(page.url)), line_of=numbers.__getitem__, key=key
                )

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
