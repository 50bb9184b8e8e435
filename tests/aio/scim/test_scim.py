"""SCIM reader and template against scim2-server: in-process (ASGI) and as a real process."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from scim2_models import ScimProvider, ServiceProviderConfig
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.service import ScimService
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_json_resource,
)

from synctree import Outcome, Report, SyncTree, SyncTreeError
from synctree.aio import ListingError, classify
from synctree.aio.http import BearerAuth
from synctree.aio.scim import (
    GROUP_MAPPING,
    USER_MAPPING,
    SCIMError,
    SCIMReader,
    SCIMTemplate,
    scim_string,
)
from tests.scim_server import scim_server

__all__ = ["scim_server"]  # the fixture, used by name

pytestmark = pytest.mark.anyio

ROOT = "http://scim.test/v2"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
Rows = list[dict[str, Any]]


def scim_app(max_results: int | None = None) -> Any:  # an ASGI app; its types are looser
    """A fresh in-memory scim2-server; ``max_results`` caps ``count`` like real servers do."""
    config = load_json_resource("default-service-provider-config.json")
    if max_results is not None:
        config["filter"]["maxResults"] = max_results
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=ServiceProviderConfig.model_validate(config),
    )
    return ASGIApplication(AsyncInMemoryStorage(), provider, ScimService(provider, secret="t"))


Fault = Callable[[httpx.Request, int], Awaitable[httpx.Response | None]]


class Recorder(httpx.AsyncBaseTransport):
    """Records requests to the wrapped transport; ``fault`` may answer one instead."""

    def __init__(self, inner: httpx.AsyncBaseTransport, fault: Fault | None = None) -> None:
        self.inner = inner
        self.fault = fault
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fault is not None:
            answer = await self.fault(request, len(self.requests))
            if answer is not None:
                return answer
        return await self.inner.handle_async_request(request)

    def calls(self, method: str | None = None) -> list[httpx.Request]:
        return [r for r in self.requests if method is None or r.method == method]

    def clear(self) -> None:
        self.requests.clear()


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with httpx.ASGITransport(app=scim_app()) as transport:
        yield Recorder(transport)


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=recorder, base_url=ROOT) as client:
        yield client


async def rows_of(rows: Rows) -> AsyncIterator[dict[str, Any]]:
    for row in rows:
        yield {k: set(v) if isinstance(v, set) else v for k, v in row.items()}


def user(key: str, first: str, last: str = "Doe", **extra: Any) -> dict[str, Any]:
    return {
        "idnumber": key,
        "username": f"{first.lower()}{key}",
        "first": first,
        "last": last,
        "email": f"{first.lower()}{key}@school.test",
        **extra,
    }


USERS = [user("1", "Ann"), user("2", "Bob"), user("3", "Cid"), user("4", "Dee")]
GROUPS = [
    {"idnumber": "7a", "display": "Class 7a", "members": {"1", "2"}},
    {"idnumber": "7b", "display": "Class 7b", "members": {"3"}},
]


async def sync(
    client: httpx.AsyncClient,
    users: Rows,
    groups: Rows | None = None,
    template: SCIMTemplate | None = None,
    **settings: Any,
) -> tuple[SyncTree, Report]:
    """Load the source rows and the SCIM server, then sync; returns the tree and report."""
    subbranches = ["users", "groups"] if groups is not None else ["users"]
    tree = SyncTree(["source", "destination"], subbranches)
    source: dict[str, Any] = {"users": rows_of(users)}
    destination: dict[str, Any] = {"users": SCIMReader(client, "Users")}
    if groups is not None:
        source["groups"] = rows_of(groups)
        destination["groups"] = SCIMReader(client, "Groups")
    await tree.load(source=source, destination=destination)
    settings.setdefault("max_deletes", None)
    report = await (tree.source > tree.destination).run(
        template or SCIMTemplate(client), **settings
    )
    return tree, report


async def plan(client: httpx.AsyncClient, users: Rows, groups: Rows | None = None) -> list[str]:
    """The messages a sync would run now."""
    _, report = await sync(client, users, groups, dry_run=True)
    return [result.action.message for result in report.results]


async def listing(client: httpx.AsyncClient, resource: str) -> list[dict[str, Any]]:
    response = await client.get(f"/{resource}", params={"count": 1000})
    response.raise_for_status()
    return list(response.json().get("Resources", []))


async def state(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server's users and groups by externalId, in synctree's terms, read raw."""
    users = await listing(client, "Users")
    ids = {u["id"]: u.get("externalId") for u in users}
    by_key = {
        u["externalId"]: {
            "username": u["userName"],
            "first": u.get("name", {}).get("givenName"),
            "last": u.get("name", {}).get("familyName"),
            "email": next(
                (e["value"] for e in u.get("emails", []) if e.get("type") == "work"), None
            ),
            "active": u.get("active"),
        }
        for u in users
        if u.get("externalId")
    }
    groups = {
        g["externalId"]: {
            "display": g["displayName"],
            "members": {ids.get(m["value"]) for m in g.get("members", [])},
        }
        for g in await listing(client, "Groups")
    }
    return by_key, groups


def expected_users(rows: Rows) -> dict[str, Any]:
    return {
        row["idnumber"]: {k: v for k, v in row.items() if k != "idnumber"} | {"active": True}
        for row in rows
    }


def expected_groups(rows: Rows) -> dict[str, Any]:
    return {row["idnumber"]: {k: v for k, v in row.items() if k != "idnumber"} for row in rows}


def messages(report: Report) -> dict[str, int]:
    return {m: sum(c.values()) for m, c in report.counts.items()}


def failures(report: Report) -> list[str]:
    return [f"{r.action.message} {r.action.idnumber}: {r.error}" for r in report.failures]


class TestReader:
    async def test_users_in_synctree_terms(self, client: httpx.AsyncClient) -> None:
        """Users come back with the mapping reversed, the SCIM id as ``_id``; users
        without an externalId (not synctree's) and inactive ones are left out."""
        await sync(client, USERS[:2])
        await client.post("/Users", json={"schemas": [USER], "userName": "admin"})
        await client.post(
            "/Users",
            json={"schemas": [USER], "userName": "gone", "externalId": "9", "active": False},
        )
        rows = [row async for row in SCIMReader(client, "Users")]
        rows.sort(key=lambda row: str(row["idnumber"]))
        ids = {
            u["externalId"]: u["id"] for u in await listing(client, "Users") if "externalId" in u
        }
        assert rows == [
            {
                "username": "ann1",
                "first": "Ann",
                "last": "Doe",
                "email": "ann1@school.test",
                "active": True,
                "display": None,
                "idnumber": "1",
                "_id": ids["1"],
            },
            {
                "username": "bob2",
                "first": "Bob",
                "last": "Doe",
                "email": "bob2@school.test",
                "active": True,
                "display": None,
                "idnumber": "2",
                "_id": ids["2"],
            },
        ]
        everyone = [row["idnumber"] async for row in SCIMReader(client, "Users", inactive=True)]
        assert sorted(everyone) == ["1", "2", "9"]

    async def test_server_cap_on_count(self) -> None:
        """A server capping ``count`` at 2: startIndex advances by what came, to the total."""
        async with httpx.ASGITransport(app=scim_app(max_results=2)) as inner:
            recorder = Recorder(inner)
            async with httpx.AsyncClient(transport=recorder, base_url=ROOT) as client:
                for i in range(5):
                    await client.post(
                        "/Users",
                        json={"schemas": [USER], "userName": f"u{i}", "externalId": str(i)},
                    )
                recorder.clear()
                reader = SCIMReader(client, "Users", count=100)
                batches = [batch async for batch in reader.batches()]
        assert [len(batch.rows) for batch in batches] == [2, 2, 1]
        # each batch says where it came from: the page's URL, each row's startIndex, the key
        assert [batch.line_of(0) for batch in batches if batch.line_of] == [1, 3, 5]
        assert [batch.path for batch in batches] == [
            f"{ROOT}/Users?startIndex={start}&count=100" for start in (1, 3, 5)
        ]
        assert {batch.key for batch in batches} == {"externalId"}
        starts = [r.url.params["startIndex"] for r in recorder.calls("GET")]
        assert starts == ["1", "3", "5"]

    async def test_two_reads_at_once_give_the_same_rows(self) -> None:
        """One reader read twice concurrently, pages interleaved, gives both passes every
        group with its members: a read keeps its state to itself."""
        async with httpx.ASGITransport(app=scim_app(max_results=2)) as transport:
            async with httpx.AsyncClient(transport=transport, base_url=ROOT) as client:
                eighth = {"idnumber": "8", "display": "Class 8", "members": {"4"}}
                await sync(client, USERS, [*GROUPS, eighth])
                reader = SCIMReader(client, "Groups")
                state = dict(vars(reader))
                passes: list[Rows] = [[], []]

                async def read_into(rows: Rows) -> None:
                    async for batch in reader.batches():
                        rows.extend(batch.rows)
                        await anyio.lowlevel.checkpoint()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(read_into, passes[0])
                    tg.start_soon(read_into, passes[1])
        assert passes[0] == passes[1]
        assert {row["idnumber"]: row["members"] for row in passes[0]} == {
            "7a": {"1", "2"},
            "7b": {"3"},
            "8": {"4"},
        }
        assert vars(reader) == state

    async def test_duplicate_key_names_the_page_and_index(self, client: httpx.AsyncClient) -> None:
        """Two users with one externalId: the loader's error names the page's URL, the
        second one's index in the listing and the key's SCIM attribute."""
        for name in ("a", "b", "c"):
            external = "2" if name == "c" else name
            body = {"schemas": [USER], "userName": name, "externalId": external}
            (await client.post("/Users", json=body)).raise_for_status()
        await client.post("/Users", json={"schemas": [USER], "userName": "d", "externalId": "a"})
        # the server lists in an order of its own: find the second "a" there
        order = [user["externalId"] for user in await listing(client, "Users")]
        second = order.index("a", order.index("a") + 1) + 1  # its 1-based index
        start = second - (second - 1) % 2  # the startIndex of its page of 2
        tree = SyncTree(["source", "destination"], ["users"])
        with pytest.raises(SyncTreeError) as info:
            await tree.load(destination={"users": SCIMReader(client, "Users", count=2)})
        error: Any = info.value
        assert (error.path, error.line, error.field) == (
            f"{ROOT}/Users?startIndex={start}&count=2",
            second,
            "externalId",
        )
        assert "duplicate key" in str(error)

    @pytest.mark.parametrize("resource", ["Users", "Groups"])
    async def test_listing_short_of_total_results_fails(self, resource: Any) -> None:
        """A page that comes back empty before ``totalResults`` fails the read, naming the
        URL and the counts (for Groups, through the member listing of the Users)."""

        async def empty_second_page(request: httpx.Request, calls: int) -> httpx.Response | None:
            if request.method == "GET" and request.url.params.get("startIndex") == "3":
                listing = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
                body = {"schemas": [listing], "totalResults": 5, "Resources": []}
                return httpx.Response(200, json=body)
            return None

        async with httpx.ASGITransport(app=scim_app(max_results=2)) as inner:
            recorder = Recorder(inner)
            async with httpx.AsyncClient(transport=recorder, base_url=ROOT) as client:
                for i in range(5):
                    await client.post(
                        "/Users",
                        json={"schemas": [USER], "userName": f"u{i}", "externalId": str(i)},
                    )
                recorder.fault = empty_second_page
                with pytest.raises(ListingError) as info:
                    [row async for row in SCIMReader(client, resource)]
        assert (info.value.expected, info.value.received, info.value.page) == (5, 2, 2)
        assert str(info.value).startswith(f"{ROOT}/Users?")
        assert "the listing ended with 2 items, but it announced 5" in str(info.value)

    async def test_users_deleted_while_listing_fail_the_read(self) -> None:
        """A user deleted between pages shifts ``startIndex`` past one that is still there:
        ``totalResults`` changes, and the read fails instead of losing that user."""
        async with httpx.ASGITransport(app=scim_app(max_results=2)) as inner:
            recorder = Recorder(inner)
            async with httpx.AsyncClient(transport=recorder, base_url=ROOT) as client:
                ids = [
                    (
                        await client.post(
                            "/Users",
                            json={"schemas": [USER], "userName": f"u{i}", "externalId": str(i)},
                        )
                    ).json()["id"]
                    for i in range(5)
                ]

                async def delete_first(request: httpx.Request, calls: int) -> None:
                    if request.url.params.get("startIndex") == "3":
                        gone = httpx.Request("DELETE", f"{ROOT}/Users/{ids[0]}")
                        await inner.handle_async_request(gone)

                recorder.fault = delete_first
                with pytest.raises(ListingError, match="the total changed from 5 to 4"):
                    [row async for row in SCIMReader(client, "Users")]

    async def test_filter_scopes_the_listing(self, client: httpx.AsyncClient) -> None:
        """``filter`` is passed to the server: only matching users are read."""
        await sync(client, USERS)
        reader = SCIMReader(client, "Users", filter=f"userName sw {scim_string('c')}")
        assert [row["idnumber"] async for row in reader] == ["3"]

    async def test_groups_members_are_user_keys(self, client: httpx.AsyncClient) -> None:
        """Group members read as the users' keys; unresolvable members are left out."""
        await sync(client, USERS, GROUPS)
        (group,) = [g for g in await listing(client, "Groups") if g["externalId"] == "7b"]
        admin = (await client.post("/Users", json={"schemas": [USER], "userName": "x"})).json()
        members = [*group["members"], {"value": admin["id"]}, {"value": "dangling"}]
        await client.put(f"/Groups/{group['id']}", json={**group, "members": members})
        rows = {row["idnumber"]: row async for row in SCIMReader(client, "Groups")}
        assert rows["7a"]["members"] == {"1", "2"}
        assert rows["7b"]["members"] == {"3"}
        assert rows["7b"]["display"] == "Class 7b"

    async def test_group_key_may_be_its_display_name(self, client: httpx.AsyncClient) -> None:
        """A mapping may key groups by displayName, for groups without externalId."""
        await client.post("/Groups", json={"schemas": [GROUP], "displayName": "Staff"})
        reader = SCIMReader(client, "Groups", mapping={"idnumber": "displayName"})
        assert [row["idnumber"] async for row in reader] == ["Staff"]

    async def test_list_response_without_resources(self) -> None:
        """``Resources`` may be absent when totalResults is 0 (RFC 7644 section 3.4.2)."""

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"totalResults": 0, "itemsPerPage": 0})

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=ROOT) as c:
            assert [row async for row in SCIMReader(c, "Users")] == []

    async def test_headers_and_auth_reach_the_server(
        self, client: httpx.AsyncClient, recorder: Recorder
    ) -> None:
        """``headers=`` and ``auth=`` are sent with every page, members' listing included
        (``headers`` once failed: "got multiple values for keyword argument 'headers'")."""
        for resource in ("Users", "Groups"):
            reader = SCIMReader(
                client, resource, headers={"X-Trace": "t1"}, auth=BearerAuth("tok-1"), count=1
            )
            assert [row async for row in reader] == []
        assert recorder.requests
        for request in recorder.requests:
            assert request.headers["x-trace"] == "t1"
            assert request.headers["authorization"] == "Bearer tok-1"
            assert request.headers["accept"].startswith("application/scim+json")

    def test_bad_options(self) -> None:
        """A wrong resource or mapping fails at once, naming it."""
        with pytest.raises(ValueError, match="'resource'"):
            SCIMReader(ROOT, "People")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="must map 'idnumber'"):
            SCIMReader(ROOT, "Users", mapping={"first": "name.givenName"})
        with pytest.raises(ValueError, match="'mapping' 'email'"):
            SCIMReader(ROOT, "Users", mapping={"idnumber": "externalId", "email": "emails[type]"})


class TestTemplateCredentials:
    async def test_auth_and_headers_on_every_call(
        self, client: httpx.AsyncClient, recorder: Recorder
    ) -> None:
        """The template's ``auth`` and ``headers`` go with each of its requests."""
        tree = SyncTree(["source", "destination"], ["users"])
        await tree.load(
            source={"users": rows_of([user("1", "Ann")])},
            destination={"users": SCIMReader(client, "Users")},
        )
        template = SCIMTemplate(client, auth=BearerAuth("tok-2"), headers={"X-Trace": "t2"})
        report = await (tree.source > tree.destination).run(template)
        assert report.ok, failures(report)
        posts = recorder.calls("POST")
        assert posts and all(r.headers["authorization"] == "Bearer tok-2" for r in posts)
        assert all(r.headers["x-trace"] == "t2" for r in posts)
        assert "tok-2" not in repr(template)

    def test_auth_must_be_an_httpx_auth(self) -> None:
        with pytest.raises(ValueError, match="'auth' must be an httpx.Auth"):
            SCIMTemplate(ROOT, auth="Bearer x")  # type: ignore[arg-type]


class TestCreate:
    async def test_creates_users_and_groups(
        self, client: httpx.AsyncClient, recorder: Recorder
    ) -> None:
        """New users and groups are POSTed, members by SCIM id; then nothing is left to do."""
        _, report = await sync(client, USERS, GROUPS)
        assert report.ok, failures(report)
        assert messages(report) == {"new_users": 4, "new_groups": 2}
        users, groups = await state(client)
        assert users == expected_users(USERS)
        assert groups == expected_groups(GROUPS)
        posts = recorder.calls("POST")
        assert len(posts) == 6
        assert posts[0].headers["Content-Type"] == "application/scim+json"
        assert await plan(client, USERS, GROUPS) == []

    async def test_retried_create_is_adopted(
        self, client: httpx.AsyncClient, recorder: Recorder
    ) -> None:
        """A POST that reached the server but lost its answer is retried; the repeat finds
        the object by externalId and counts it as done; nothing is created twice."""

        async def lose_first_answers(request: httpx.Request, count: int) -> None:
            if request.method == "POST":
                if request.url.path not in lost:
                    lost.add(request.url.path)
                    await recorder.inner.handle_async_request(request)  # it happens...
                    raise httpx.ReadError("connection reset")  # ...but the answer is lost

        lost: set[str] = set()
        recorder.fault = lose_first_answers
        _, report = await sync(client, USERS[:1], GROUPS[1:], sleep=no_sleep)
        assert report.ok, failures(report)
        assert [r.attempts for r in report.results] == [2, 2]
        users, groups = await state(client)
        assert list(users) == ["1"]
        assert list(groups) == ["7b"]  # groups have no unique attribute: looked up first

    async def test_returning_user_is_reactivated(self, client: httpx.AsyncClient) -> None:
        """A deactivated leaver back in the source: the create meets 409 uniqueness, finds
        the user by externalId, and brings it back in line (active again)."""
        await sync(client, USERS)
        _, report = await sync(client, USERS[:3])
        assert messages(report) == {"old_users": 1}
        assert (await state(client))[0]["4"]["active"] is False
        back = [*USERS[:3], user("4", "Dee", last="Smith")]
        _, report = await sync(client, back)
        assert report.ok, failures(report)
        assert messages(report) == {"new_users": 1}
        assert (await state(client))[0] == expected_users(back)
        assert await plan(client, back) == []

    async def test_conflict_is_reported_with_the_scim_error(
        self, client: httpx.AsyncClient
    ) -> None:
        """A userName taken by another user: the 409 body's scimType and detail are in the
        report."""
        await client.post("/Users", json={"schemas": [USER], "userName": "ann1"})
        _, report = await sync(client, USERS[:1])
        (failure,) = report.failures
        assert isinstance(failure.error, SCIMError)
        assert failure.error.scim_type == "uniqueness"
        assert str(failure.error) == (
            "HTTP 409 uniqueness One or more of the attribute values are already in use or "
            f"are reserved (POST {ROOT}/Users)"
        )
        assert "uniqueness" in report.to_json()

    async def test_quotes_in_keys_are_escaped_in_filters(self, client: httpx.AsyncClient) -> None:
        """A key with a quote and a backslash is found by filter (RFC 7644 section 3.4.2.2)."""
        key = 'x"y\\z'
        await client.post(
            "/Users",
            json={"schemas": [USER], "userName": "odd", "externalId": key, "active": False},
        )
        odd = user(key, "Odd", username="odd")
        _, report = await sync(client, [odd])  # POST: 409, found by externalId, adopted
        assert report.ok, failures(report)
        assert (await state(client))[0] == expected_users([odd])
        assert scim_string(key) == '"x\\"y\\\\z"'


class TestUpdate:
    async def test_one_patch_per_object(
        self, client: httpx.AsyncClient, recorder: Recorder
    ) -> None:
        """Every changed attribute of a user goes in one PATCH: replace, remove, and an add
        for a work email the user did not have (a replace would hit noTarget)."""
        no_email = user("2", "Bob", email=None)
        await sync(client, [USERS[0], no_email])
        recorder.clear()
        changed = [
            user("1", "Annie", last="Smith", email=None, username="ann1"),
            user("2", "Bob", email="bob@new.test"),
        ]
        _, report = await sync(client, changed)
        assert report.ok, failures(report)
        assert messages(report) == {"update_users": 2}
        patches = recorder.calls("PATCH")
        assert len(patches) == 2
        operations = [json.loads(p.content)["Operations"] for p in patches]
        assert sorted(operations, key=len) == [
            [
                {
                    "op": "add",
                    "path": "emails",
                    "value": [{"type": "work", "value": "bob@new.test"}],
                }
            ],
            [
                {"op": "replace", "path": "name.givenName", "value": "Annie"},
                {"op": "replace", "path": "name.familyName", "value": "Smith"},
                {"op": "remove", "path": 'emails[type eq "work"]'},
            ],
        ]
        assert (await state(client))[0] == expected_users(changed)
        assert await plan(client, changed) == []

    async def test_put_when_patch_is_off(
        self, client: httpx.AsyncClient, recorder: Recorder
    ) -> None:
        """``patch=False``: GET and PUT the whole resource; other attributes survive."""
        await sync(client, USERS[:2], [GROUPS[0]])
        (ann,) = [u for u in await listing(client, "Users") if u["externalId"] == "1"]
        await client.patch(
            f"/Users/{ann['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "title", "value": "Ms"}],
            },
        )
        recorder.clear()
        changed = [user("1", "Annie", email="a@new.test", username="ann1"), USERS[1]]
        groups = [{"idnumber": "7a", "display": "Seven A", "members": {"1"}}]
        template = SCIMTemplate(client, patch=False)
        _, report = await sync(client, changed, groups, template=template)
        assert report.ok, failures(report)
        assert not recorder.calls("PATCH")
        assert len(recorder.calls("PUT")) == 3  # Ann, the group's name, its member
        assert (await state(client)) == (expected_users(changed), expected_groups(groups))
        (ann,) = [u for u in await listing(client, "Users") if u["externalId"] == "1"]
        assert ann["title"] == "Ms"

    async def test_extension_attribute(self, client: httpx.AsyncClient) -> None:
        """An extension attribute maps by its URN; the schema is declared on create."""
        mapping = {
            "idnumber": "externalId",
            "username": "userName",
            "employee": f"{ENTERPRISE}:employeeNumber",
        }
        rows: Rows = [{"idnumber": "1", "username": "ann", "employee": "E1"}]
        tree = SyncTree(["source", "destination"], ["users"])
        await tree.load(
            source={"users": rows_of(rows)},
            destination={"users": SCIMReader(client, "Users", mapping=mapping)},
        )
        report = await ((tree.source > tree.destination) | SCIMTemplate(client, mapping=mapping))
        assert report.ok, failures(report)
        (created,) = await listing(client, "Users")
        assert created[ENTERPRISE] == {"employeeNumber": "E1"}
        assert ENTERPRISE in created["schemas"]
        read = [row async for row in SCIMReader(client, "Users", mapping=mapping)]
        assert read[0]["employee"] == "E1"

    async def test_invalid_value_error_body(self, client: httpx.AsyncClient) -> None:
        """A 400 invalidValue fails that action, its SCIM detail in the report."""
        await sync(client, USERS[:1])
        _, report = await sync(client, [USERS[0] | {"display": 123}])
        (failure,) = report.failures
        assert failure.action.message == "update_users"
        assert str(failure.error).startswith("HTTP 400 invalidValue 1 validation error")
        assert "display_name" in str(failure.error)


async def no_sleep(delay: float) -> None:
    await anyio.lowlevel.checkpoint()


class TestOld:
    @pytest.mark.parametrize("on_old", ["deactivate", "delete", "keep"])
    async def test_leavers(self, client: httpx.AsyncClient, on_old: Any) -> None:
        """A leaver is deactivated, deleted or kept (skipped); planning again is empty,
        except that a kept leaver stays planned."""
        await sync(client, USERS, GROUPS)
        template = SCIMTemplate(client, on_old=on_old)
        _, report = await sync(client, USERS[:3], GROUPS[1:], template=template)
        assert report.ok, failures(report)
        users, groups = await state(client)
        outcome = report.totals
        if on_old == "deactivate":
            assert users["4"]["active"] is False
            assert list(groups) == ["7b"]
            assert outcome == {Outcome.SUCCEEDED: 2}
        elif on_old == "delete":
            assert "4" not in users
            assert list(groups) == ["7b"]
        else:
            assert users["4"]["active"] is True
            assert sorted(groups) == ["7a", "7b"]
            assert outcome == {Outcome.SKIPPED: 2}
        left = await plan(client, USERS[:3], GROUPS[1:])
        assert left == ([] if on_old != "keep" else ["old_groups", "old_users"])

    async def test_delete_of_a_gone_user_is_done(self, client: httpx.AsyncClient) -> None:
        """A DELETE answered 404 (an earlier attempt did it) counts as done."""
        await sync(client, USERS[:2])
        (ann,) = [u for u in await listing(client, "Users") if u["externalId"] == "1"]
        await client.delete(f"/Users/{ann['id']}")
        tree = SyncTree(["source", "destination"], ["users"])
        tree.new("source", "users", "2", username="bob2")
        tree.new("destination", "users", "2", username="bob2")
        tree.new("destination", "users", "1", username="ann1", _id=ann["id"])
        template = SCIMTemplate(client, on_old="delete")
        report = await (tree.source > tree.destination).run(template, max_deletes=None)
        assert report.ok, failures(report)
        assert messages(report) == {"old_users": 1}


class TestMembers:
    async def test_add_and_remove_members(
        self, client: httpx.AsyncClient, recorder: Recorder
    ) -> None:
        """Membership changes are PATCH add/remove of ``members``, one per member."""
        await sync(client, USERS, GROUPS)
        recorder.clear()
        groups = [
            {"idnumber": "7a", "display": "Class 7a", "members": {"1", "4"}},
            GROUPS[1],
        ]
        _, report = await sync(client, USERS, groups)
        assert report.ok, failures(report)
        assert messages(report) == {"add_groups_members": 1, "remove_groups_members": 1}
        operations = [json.loads(p.content)["Operations"][0] for p in recorder.calls("PATCH")]
        assert [o["op"] for o in operations] == ["add", "remove"]
        assert operations[1]["path"].startswith("members[value eq ")
        assert (await state(client))[1] == expected_groups(groups)
        assert await plan(client, USERS, groups) == []

    async def test_unknown_member(self, client: httpx.AsyncClient) -> None:
        """A member who is no user: the group is created with the others; adding the
        missing one fails, naming it, until the user exists."""
        groups = [{"idnumber": "7a", "display": "Class 7a", "members": {"1", "99"}}]
        _, report = await sync(client, USERS[:1], groups)
        assert report.ok, failures(report)
        assert (await state(client))[1]["7a"]["members"] == {"1"}
        _, report = await sync(client, USERS[:1], groups)
        (failure,) = report.failures
        assert failure.action.message == "add_groups_members"
        assert "no user with key '99'" in str(failure.error)

    async def test_other_collections_are_refused(self, client: httpx.AsyncClient) -> None:
        """Only group members are added and removed; other sets fail with a clear error."""
        await sync(client, USERS[:1])
        template = SCIMTemplate(client, mapping={"idnumber": "externalId", "tags": "title"})
        tree = SyncTree(["source", "destination"], ["users"])
        tree.new("source", "users", "1", tags={"a"})
        tree.new("destination", "users", "1", tags=set())
        report = await ((tree.source > tree.destination) | template)
        (failure,) = report.failures
        assert "can only add to group members" in str(failure.error)


class TestRetries:
    async def test_throttled_patch_is_retried(
        self, client: httpx.AsyncClient, recorder: Recorder
    ) -> None:
        """A 429 with a SCIM error body and Retry-After is retried after the wait."""
        await sync(client, USERS[:1])
        delays: list[float] = []

        async def sleep(delay: float) -> None:
            delays.append(delay)
            await anyio.lowlevel.checkpoint()

        async def throttle_once(request: httpx.Request, count: int) -> httpx.Response | None:
            if request.method == "PATCH" and not delays:
                body: dict[str, Any] = {"status": "429", "detail": "slow down"}
                body["schemas"] = ["urn:ietf:params:scim:api:messages:2.0:Error"]
                return httpx.Response(429, json=body, headers={"Retry-After": "3"})
            return None

        recorder.fault = throttle_once
        _, report = await sync(
            client, [user("1", "Annie", username="ann1")], sleep=sleep, clock=lambda: 0.0
        )
        assert report.ok, failures(report)
        assert report.results[0].attempts == 2
        assert delays == [3.0]

    def test_scim_error_is_classified_by_status(self) -> None:
        """SCIMError is a SyncTreeError and an HTTPStatusError: 503 retryable, 409 not."""
        request = httpx.Request("POST", "https://u:p@scim.test/v2/Users?access_token=T")
        for status, retryable in ((503, True), (409, False)):
            body = {"status": str(status), "scimType": "uniqueness", "detail": "taken"}
            error = SCIMError(httpx.Response(status, json=body, request=request))
            assert isinstance(error, SyncTreeError)
            assert classify(error).retryable is retryable
            assert str(error).endswith("(POST https://scim.test/v2/Users?access_token=REDACTED)")


def listing_of(*resources: dict[str, Any]) -> httpx.AsyncClient:
    """A client of a fake SCIM server that lists ``resources`` (each gets an id)."""
    listed = [{"id": f"s{i}", "externalId": str(i), **r} for i, r in enumerate(resources)]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"totalResults": len(listed), "Resources": listed})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=ROOT)


class TestPath:
    @pytest.mark.parametrize(
        ("text", "resource", "value"),
        [
            ("userName", {"userName": "a"}, "a"),
            ("name.givenName", {"name": {"givenName": "A"}}, "A"),
            ('emails[type eq "work"].value', {"emails": [{"type": "home", "value": "h"}]}, None),
            (
                'emails[type eq "work"].value',
                {"emails": [{"type": "home", "value": "h"}, {"type": "work", "value": "w"}]},
                "w",
            ),
            (f"{ENTERPRISE}:manager.value", {ENTERPRISE: {"manager": {"value": "m"}}}, "m"),
        ],
    )
    async def test_get(self, text: str, resource: dict[str, Any], value: Any) -> None:
        """The supported path forms read the right value (None when absent)."""
        async with listing_of(resource) as client:
            reader = SCIMReader(client, "Users", mapping={"idnumber": "externalId", "x": text})
            rows = [row async for row in reader]
        assert [row["x"] for row in rows] == [value]

    async def test_set_and_remove(self) -> None:
        """Setting builds nested and multi-valued attributes; None removes them (a POST
        builds the resource, a PUT of an update with ``patch=False`` removes values)."""
        sent: list[tuple[str, Any]] = []
        stored: dict[str, Any] = {}

        def handler(request: httpx.Request) -> httpx.Response:
            if request.method in ("POST", "PUT"):
                stored.clear()
                stored.update(json.loads(request.content), id="s1")
                sent.append((request.method, json.loads(request.content)))
                return httpx.Response(201, json=stored)
            if request.url.path.endswith("/s1"):
                return httpx.Response(200, json=stored)
            listed = [stored] if stored else []
            return httpx.Response(200, json={"totalResults": len(listed), "Resources": listed})

        mapping = {
            "idnumber": "externalId",
            "email": 'emails[type eq "work"].value',
            "first": "name.givenName",
            "number": f"{ENTERPRISE}:employeeNumber",
        }
        row = {"idnumber": "1", "email": "w", "first": "A", "number": "7"}
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url=ROOT
        ) as client:
            for source in (row, {**row, "email": None, "first": None}):
                tree = SyncTree(["source", "destination"], ["users"])
                await tree.load(
                    source={"users": rows_of([source])},
                    destination={"users": SCIMReader(client, "Users", mapping=mapping)},
                )
                template = SCIMTemplate(client, mapping=mapping, patch=False)
                report = await (tree.source > tree.destination).run(template)
                assert report.ok, failures(report)
        assert sent[0] == (
            "POST",
            {
                "schemas": [USER, ENTERPRISE],
                "externalId": "1",
                "emails": [{"type": "work", "value": "w"}],
                "name": {"givenName": "A"},
                ENTERPRISE: {"employeeNumber": "7"},
            },
        )
        method, resource = sent[1]
        assert method == "PUT"
        assert resource["emails"] == [] and "name" not in resource

    def test_bad_paths(self) -> None:
        """Unsupported forms are refused with the path named."""
        for text in ('emails[type eq "work"]', "a..b", 'emails[type co "w"].value', ""):
            with pytest.raises(ValueError, match="path"):
                SCIMReader(ROOT, "Users", mapping={"idnumber": "externalId", "x": text})


# -- end to end: a real scim2-server process (tests.scim_server) ----------------------------


class CSVRows:
    """A tiny CSV reader for the test: ``members`` split on ``;`` into a set."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        text = await anyio.Path(self.path).read_text(encoding="utf-8")
        for row in csv.DictReader(text.splitlines()):
            out: dict[str, Any] = dict(row)
            if "members" in out:
                out["members"] = {m for m in out["members"].split(";") if m}
            yield out


def write_csv(path: Path, rows: Rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: ";".join(sorted(v)) if isinstance(v, set) else v for k, v in row.items()}
            )


async def test_end_to_end_with_a_real_scim_server(
    scim_server: tuple[str, str], tmp_path: Path
) -> None:
    """CSV -> a real scim2-server process: sync, check, change the CSV (a rename, a leaver,
    a group change), sync, check, and finally plan zero actions."""
    url, token = scim_server
    users_csv, groups_csv = tmp_path / "users.csv", tmp_path / "groups.csv"

    async def run(client: httpx.AsyncClient, **settings: Any) -> Report:
        tree = SyncTree(["source", "destination"], ["users", "groups"])
        await tree.load(
            source={"users": CSVRows(users_csv), "groups": CSVRows(groups_csv)},
            destination={
                "users": SCIMReader(client, "Users", count=2),
                "groups": SCIMReader(client, "Groups", count=2),
            },
        )
        template = SCIMTemplate(client, on_old="deactivate")
        diff = tree.source > tree.destination
        report: Report = await diff.run(template, max_deletes="50%", **settings)
        return report

    users = [*USERS, user("5", "Eve"), user("6", "Fay")]
    groups = [*GROUPS, {"idnumber": "staff", "display": "Staff", "members": {"5", "6"}}]
    write_csv(users_csv, users)
    write_csv(groups_csv, groups)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        unauthorized = await client.get("/Users", headers={"Authorization": "Bearer wrong"})
        assert unauthorized.status_code == 401

        report = await run(client)
        assert report.ok, failures(report)
        assert messages(report) == {"new_users": 6, "new_groups": 3}
        assert await state(client) == (expected_users(users), expected_groups(groups))

        users[0] = user("1", "Ann", last="Smith")  # a rename
        del users[3]  # Dee leaves
        groups[0] = {"idnumber": "7a", "display": "Class 7a", "members": {"1", "3"}}
        groups[1] = {"idnumber": "7b", "display": "Class 7b", "members": {"2"}}
        write_csv(users_csv, users)
        write_csv(groups_csv, groups)
        report = await run(client)
        assert report.ok, failures(report)
        assert messages(report) == {
            "update_users": 1,
            "add_groups_members": 2,
            "remove_groups_members": 2,
            "old_users": 1,
        }
        server_users, server_groups = await state(client)
        assert server_users.pop("4")["active"] is False
        assert (server_users, server_groups) == (expected_users(users), expected_groups(groups))

        report = await run(client, dry_run=True)
        assert len(report) == 0


def test_mapping_defaults_are_read_only() -> None:
    """The default mappings are shared: they cannot be changed by accident."""
    assert isinstance(USER_MAPPING, Mapping) and isinstance(GROUP_MAPPING, Mapping)
    with pytest.raises(TypeError):
        USER_MAPPING["x"] = "y"  # type: ignore[index]
