"""The fault scenario: a 2,000-action sync against a real HTTP server that misbehaves.

Shared by ``test_faults.py`` (which asserts) and ``bench/reliability.py`` (which reports).
The server (``tests/http_server.py``) fails a seeded 10% of calls with every fault kind it
knows; the template is what a user would write with httpx, plus two habits the README
recommends: ``already_exists()`` for HTTP 409, and ``Retry`` for an error hidden in a 2xx
body (here: a malformed JSON body).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any

import httpx

from synctree import Action, Outcome, Report, SyncTree
from synctree.aio import AsyncTemplate, Retry
from tests.http_server import ALL_FAULTS, FakeUsersAPI, make_app, serve

__all__ = ["FAST_BACKOFF", "FaultRun", "UsersTemplate", "fault_scenario", "tree_for"]

#: Backoff fast enough for a test: the waits still happen, in milliseconds.
FAST_BACKOFF: dict[str, Any] = {"backoff_base": 0.005, "backoff_cap": 0.05}


def checked(response: httpx.Response) -> httpx.Response:
    """Raise for an HTTP error; ask for another attempt when a body is not JSON."""
    response.raise_for_status()
    if response.content:
        try:
            response.json()
        except ValueError:
            raise Retry(reason="malformed JSON body") from None
    return response


class UsersTemplate(AsyncTemplate):
    """Creates, updates and deletes users with plain httpx calls."""

    concurrency = 8
    retries = 10
    timeout = 0.2  # per attempt: the server's "slow" fault takes longer
    max_deletes = "20%"

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url
        self.headers = headers or {}
        #: Calls that returned, by message: what the runner's report must account for.
        self.returned: Counter[str] = Counter()

    async def before_all(self) -> None:  # type: ignore[override]  # async, as AsyncTemplate's
        self.client = httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=5.0)

    async def after_all(self, report: Report) -> None:  # type: ignore[override]
        await self.client.aclose()

    async def new_users(self, action: Action) -> None:
        assert action.source is not None
        body = {"id": action.idnumber, **action.source.to_dict()}
        checked(await self.client.post("/users", json=body))

    def already_exists(self, action: Action, error: Exception) -> bool:
        return isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 409

    async def update_users(self, action: Action) -> None:
        assert action.changes is not None
        checked(await self.client.patch(f"/users/{action.idnumber}", json=dict(action.changes)))

    async def old_users(self, action: Action) -> None:
        response = await self.client.delete(f"/users/{action.idnumber}")
        if response.status_code != 404:  # 404: an earlier attempt deleted it
            checked(response)


def tree_for(rows: list[dict[str, Any]], api: FakeUsersAPI) -> SyncTree:
    """The source ``rows`` against what the server holds now."""
    tree = SyncTree(["source", "destination"], ["users"])
    for row in rows:
        tree.new("source", "users", row["idnumber"], name=row["name"], grade=row["grade"])
    for user in list(api.users.values()):
        attrs = {k: v for k, v in user.items() if k != "id"}
        tree.new("destination", "users", user["id"], **attrs)
    return tree


def scenario_rows(
    *, existing: int, creates: int, updates: int, deletes: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(server users, source rows)`` whose diff has exactly these actions."""
    users: list[dict[str, Any]] = [
        {"id": f"u{i}", "name": f"User {i}", "grade": i % 12} for i in range(existing)
    ]
    source = [
        {"idnumber": u["id"], "name": u["name"], "grade": u["grade"] + (1 if i < updates else 0)}
        for i, u in enumerate(users[: existing - deletes])
    ]
    source += [{"idnumber": f"n{i}", "name": f"New {i}", "grade": i % 12} for i in range(creates)]
    return users, source


@dataclasses.dataclass(frozen=True, slots=True)
class FaultRun:
    """What the scenario measured."""

    backend: str
    planned: dict[str, int]  # actions planned, by kind
    outcomes: dict[str, int]  # reported, by outcome
    faults: dict[str, int]  # injected, by kind
    calls: int  # API calls the server received
    missing: int  # planned actions absent from the report
    repeated: int  # actions in the report more than once
    unapplied: int  # reported succeeded, yet not so on the server
    double_creates: int  # creates the server applied twice or more
    second_plan: int  # actions planned by a second run
    second_report: int  # actions the second run executed
    seconds: float
    report: Report

    @property
    def actions(self) -> int:
        return sum(self.planned.values())

    @property
    def lost(self) -> int:
        return self.missing + self.unapplied

    @property
    def duplicated(self) -> int:
        return self.repeated + self.double_creates

    @property
    def converged(self) -> bool:
        return self.second_plan == 0 and self.second_report == 0


def _unapplied(report: Report, source: list[dict[str, Any]], api: FakeUsersAPI) -> int:
    """Succeeded actions whose effect the server does not show."""
    wanted = {row["idnumber"]: row for row in source}
    users = dict(api.users)
    bad = 0
    for result in report.results:
        if result.outcome is not Outcome.SUCCEEDED:
            continue
        key = result.action.idnumber
        user = users.get(key)
        if result.action.kind == "old":
            bad += user is not None
        else:
            row = wanted[key]
            bad += user is None or (user["name"], user["grade"]) != (row["name"], row["grade"])
    return bad


async def fault_scenario(
    *,
    backend: str,
    seed: int = 7,
    fault_rate: float = 0.1,
    existing: int = 1500,
    creates: int = 1100,
    updates: int = 700,
    deletes: int = 200,
) -> FaultRun:
    """Run the sync once under faults, then plan and run it again; measure everything."""
    users, source = scenario_rows(
        existing=existing, creates=creates, updates=updates, deletes=deletes
    )
    api = make_app(
        fault_rate=fault_rate,
        faults=ALL_FAULTS,
        seed=seed,
        users=users,
        fault_retry_after=0,  # "Retry-After: 0" and a date of this very second: no long waits
        slow=0.5,
    )
    started = time.perf_counter()
    with serve(api) as base_url:
        tree = tree_for(source, api)
        plan = [action async for action in tree.source > tree.destination]
        report = await (tree.source > tree.destination).run(UsersTemplate(base_url), **FAST_BACKOFF)
        seconds = time.perf_counter() - started
        stats = api.stats()
        again = tree_for(source, api)
        second_plan = [action async for action in again.source > again.destination]
        second = await (again.source > again.destination).run(
            UsersTemplate(base_url), **FAST_BACKOFF
        )

    def key(action: Action) -> tuple[str, str]:
        # By kind: the runner hands update_users one grouped action per object.
        return str(action.kind), action.idnumber

    reported = Counter(key(result.action) for result in report.results)
    planned_keys = Counter(map(key, plan))
    return FaultRun(
        backend=backend,
        planned=dict(Counter(str(action.kind) for action in plan)),
        outcomes={str(o): n for o, n in report.totals.items()},
        faults=dict(stats["faults"]),
        calls=stats["calls"],
        missing=sum((planned_keys - reported).values()),
        repeated=sum(n - 1 for n in reported.values() if n > 1),
        unapplied=_unapplied(report, source, api),
        double_creates=sum(n - 1 for n in stats["creates"].values() if n > 1),
        second_plan=len(second_plan),
        second_report=len(second.results),
        seconds=seconds,
        report=report,
    )
