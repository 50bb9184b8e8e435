"""End to end against a real HTTP server on 127.0.0.1 that throttles, fails and drops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from synctree import Action, Outcome, SyncTree
from synctree.aio import AsyncTemplate
from tests.http_server import FakeUsersAPI, make_app, serve

pytestmark = pytest.mark.anyio


class UsersTemplate(AsyncTemplate):
    """What a user would write for this API: plain httpx calls, errors raised."""

    concurrency = 8
    retries = 10
    max_deletes = None
    timeout = 10.0

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def before_all(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.base_url)

    async def after_all(self, report: Any) -> None:
        await self.client.aclose()

    async def new_users(self, action: Action) -> None:
        assert action.source is not None
        body = {"id": action.idnumber, **action.source.to_dict()}
        (await self.client.post("/users", json=body)).raise_for_status()

    def already_exists(self, action: Action, error: Exception) -> bool:
        return isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 409

    async def update_users(self, action: Action) -> None:
        assert action.changes is not None
        response = await self.client.patch(f"/users/{action.idnumber}", json=dict(action.changes))
        response.raise_for_status()

    async def old_users(self, action: Action) -> None:
        response = await self.client.delete(f"/users/{action.idnumber}")
        if response.status_code != 404:  # 404: an earlier attempt deleted it
            response.raise_for_status()


def source_rows(n: int, version: int = 0) -> list[dict[str, Any]]:
    return [
        {"idnumber": f"u{i}", "name": f"User {i}", "grade": (i + version) % 12}
        for i in range(n)
        if not (version and i % 17 == 0)  # leavers in later versions
    ]


def tree_for(rows: list[dict[str, Any]], api: FakeUsersAPI) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["users"])
    for row in rows:
        tree.new("source", "users", row["idnumber"], name=row["name"], grade=row["grade"])
    for user in list(api.users.values()):
        attrs = {k: v for k, v in user.items() if k != "id"}
        tree.new("destination", "users", user["id"], **attrs)
    return tree


@pytest.fixture
def api() -> Iterator[tuple[FakeUsersAPI, str]]:
    app = make_app(rate=400.0, fault_rate=0.1, seed=7, fractional_retry_after=True)
    with serve(app) as base_url:
        yield app, base_url


FAST_BACKOFF = {"backoff_base": 0.01, "backoff_cap": 0.2}


async def test_sync_through_faults_converges(api: tuple[FakeUsersAPI, str]) -> None:
    """Nothing lost or applied twice, concurrency kept, and a second run plans nothing."""
    app, base_url = api
    rows = source_rows(300)
    tree = tree_for(rows, app)
    plan = list(tree.source > tree.destination)
    report = await (tree.source > tree.destination).run(UsersTemplate(base_url), **FAST_BACKOFF)
    # every planned action is in the report, each exactly once
    assert sorted((r.action.message, r.action.idnumber) for r in report.results) == sorted(
        (a.message, a.idnumber) for a in plan
    )
    assert report.ok, str(report)
    stats = app.stats()
    assert sum(stats["faults"].values()) > 10  # the faults really happened
    assert all(count == 1 for count in stats["creates"].values())  # no create twice
    assert stats["max_in_flight"] <= UsersTemplate.concurrency

    # change the source: updates and leavers, under faults again
    changed = source_rows(300, version=1)
    tree = tree_for(changed, app)
    kinds = {str(a.kind) for a in tree.source > tree.destination}
    assert kinds == {"update", "old"}
    report = await (tree.source > tree.destination).run(UsersTemplate(base_url), **FAST_BACKOFF)
    assert report.ok, str(report)
    assert list(tree_for(changed, app).source > tree_for(changed, app).destination) == []
    assert {u["id"]: u["grade"] for u in app.users.values()} == {
        r["idnumber"]: r["grade"] for r in changed
    }


async def test_throttled_api_is_kept_at_its_limit() -> None:
    """With the template's rate at the server's limit, few calls are answered 429."""

    class Limited(UsersTemplate):
        rate = 350.0

    app = make_app(rate=400.0, fractional_retry_after=True)
    with serve(app) as base_url:
        tree = tree_for(source_rows(200), app)
        report = await (tree.source > tree.destination).run(Limited(base_url), **FAST_BACKOFF)
    assert report.ok
    stats = app.stats()
    assert len(stats["creates"]) == 200
    assert stats["throttled"] <= 0.05 * stats["calls"]
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
