"""Runaway: a server that throttles with ``Retry-After: 0`` forever, a destination failing whole.

A zero wait must still back off and run out of time; a failure that is about the destination
(401, a table it cannot create) stops the run once and is printed once, not once per row.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trio.testing
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from synctree import Action, Outcome, SyncTree
from synctree.aio import AsyncTemplate, HTTPReader, PageError, load
from tests.cli_runner import invoke
from tests.http_server import make_app, serve
from tests.reliability.scenario import FAST_BACKOFF, UsersTemplate

pytestmark = pytest.mark.anyio

FOREVER = 100_000  # forced faults: more than any bounded client can use up


def users(n: int) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["users"])
    for i in range(n):
        tree.new("source", "users", str(i), name=f"U{i}")
    return tree


def status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "https://api.test/users")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


class TestZeroRetryAfter:
    async def test_runner_is_bounded(self) -> None:
        """429 + ``Retry-After: 0`` forever: a few requests, then a clear failure of the action."""
        api = make_app(fault_retry_after=0)
        api.force_faults(*["429_seconds"] * FOREVER)
        with serve(api) as base_url:
            tree = users(1)
            with anyio.fail_after(30):  # before the fix: thousands of calls a second, forever
                report = await (tree.source > tree.destination).run(
                    UsersTemplate(base_url), max_throttle_time=0.5, **FAST_BACKOFF
                )
        calls = api.stats()["calls"]
        assert 3 <= calls <= 60, calls
        (failure,) = report.failures
        assert failure.reason is not None and "max_throttle_time=0.5" in failure.reason
        assert report.throttles == calls - 1 or report.throttles == calls
        assert report.throttle_wait >= 0.5

    async def test_reader_is_bounded(self) -> None:
        """The HTTP reader's page retries obey the same rule: bounded requests, a PageError."""
        api = make_app(fault_retry_after=0)
        api.force_faults(*["429_seconds"] * FOREVER)
        with serve(api) as base_url:
            tree = SyncTree(["source", "destination"], ["users"])
            reader = HTTPReader(base_url, "/users", items="users", max_throttle_time=0.5)
            with anyio.fail_after(30), pytest.raises(Exception) as info:
                await load(tree, {"source": {"users": reader}})
        calls = api.stats()["calls"]
        assert 2 <= calls <= 30, calls
        error = info.value
        while not isinstance(error, PageError) and error.__cause__ is not None:
            error = error.__cause__
        assert "429" in str(error) and "max_throttle_time" in str(error)

    def test_waits_grow_in_a_streak(self) -> None:
        """Each throttle of one call waits longer than the last, though the server says 0."""
        waits: list[float] = []

        class T(AsyncTemplate):
            max_throttle_time = 100.0

            async def new_users(self, action: Action) -> None:
                raise status_error(429, {"Retry-After": "0"})

        async def main_() -> None:
            tree = users(1)
            report = await (tree.source > tree.destination).run(
                T(), observer=lambda e: waits.append(e.delay) if e.kind == "throttled" else None
            )
            assert not report.ok

        anyio.run(
            main_,
            backend="trio",
            backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)},
        )
        assert all(w > 0 for w in waits)
        assert waits[:8] == sorted(waits[:8]) and waits[7] >= 8 * waits[0]
        assert 100.0 <= sum(waits) <= 100.0 + max(waits)

    def test_run_budget_stops_the_run(self) -> None:
        """Past ``max_run_throttle_time`` the run stops: one message, the rest not run."""

        class T(AsyncTemplate):
            concurrency = 2
            max_throttle_time = 10_000.0
            max_run_throttle_time = 60.0

            async def new_users(self, action: Action) -> None:
                raise status_error(429, {"Retry-After": "0"})

        async def main_() -> Any:
            tree = users(50)
            return await ((tree.source > tree.destination) | T())

        report = anyio.run(
            main_,
            backend="trio",
            backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)},
        )
        assert report.stopped is not None and "max_run_throttle_time=60" in report.stopped
        assert 60.0 <= report.throttle_wait <= 60.0 + 32.0
        totals = report.totals
        assert totals[Outcome.FAILED] <= 2 and totals[Outcome.SKIPPED] >= 48
        assert "throttled" in str(report)


# -- a destination that fails as a whole ---------------------------------------------------------


def unauthorized_app() -> Any:
    """Every request: 401, counted."""
    calls = {"n": 0}

    async def deny(request: Request) -> Response:
        calls["n"] += 1
        return JSONResponse({"detail": "bad token", "status": "401"}, 401)

    app = Starlette(routes=[Route("/{path:path}", deny, methods=["GET", "POST", "PATCH", "PUT"])])
    app.state.calls = calls
    return app


@pytest.fixture
def denied() -> Iterator[tuple[str, dict[str, int]]]:
    app = unauthorized_app()
    with serve(app) as base_url:
        yield base_url, app.state.calls


def scim_project(folder: Path, url: str, rows: int) -> Path:
    lines = ["id,userName"] + [f"{i},user{i}" for i in range(rows)]
    (folder / "users.csv").write_text("\n".join(lines) + "\n")
    (folder / "empty.csv").write_text("id,userName\n")
    config = folder / "sync.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [sync]
            subbranches = ["users"]

            [source.users]
            reader = "csv"
            path = "users.csv"
            key = "id"

            [destination.users]
            reader = "csv"
            path = "empty.csv"
            key = "id"
            allow_empty = true

            [template]
            use = "scim"
            client = "{url}"
            mapping = {{ idnumber = "externalId", userName = "userName" }}

            [run]
            concurrency = 4
            """
        )
    )
    return config


class TestDestinationFailure:
    def test_401_stops_the_run_once(
        self, tmp_path: Path, denied: tuple[str, dict[str, int]]
    ) -> None:
        """300 SCIM creates against a 401 server: a handful of calls, one 401 line, exit 1."""
        url, calls = denied
        code, out = invoke("run", str(scim_project(tmp_path, url, 300)))
        assert code == 1, out
        assert calls["n"] <= 8, calls  # the calls in flight when the first 401 came back
        assert out.count("401") <= 2, out  # the stop message and one grouped failure line
        assert "stopped" in out
        assert "skipped" in out

    def test_401_stop_in_the_report(self, denied: tuple[str, dict[str, int]]) -> None:
        """The library's report says why it stopped; the others are skipped, not failed."""
        from synctree.aio import SCIMTemplate

        url, _ = denied
        tree = SyncTree(["source", "destination"], ["users"])
        for i in range(300):
            tree.new("source", "users", str(i), userName=f"user{i}")

        async def main_() -> Any:
            template = SCIMTemplate(url, mapping={"idnumber": "externalId", "userName": "userName"})
            return await (tree.source > tree.destination).run(template, concurrency=4)

        report = anyio.run(main_)
        assert report.stopped is not None and "401" in report.stopped
        assert report.totals[Outcome.FAILED] <= 4
        assert report.totals[Outcome.SKIPPED] >= 296
        text = str(report)
        assert text.count("401") <= 2, text
        assert " × " in text or report.totals[Outcome.FAILED] == 1

    def test_sqlite_ddl_failure_prints_once(self, tmp_path: Path) -> None:
        """A table SQLite cannot create (2,500 columns): the error once, truncated; exit 1 or 2."""
        columns = [f"c{i}" for i in range(2500)]
        rows = [",".join([str(r)] + [str(r)] * len(columns)) for r in range(10)]
        (tmp_path / "wide.csv").write_text("\n".join([",".join(["id", *columns]), *rows]) + "\n")
        (tmp_path / "empty.csv").write_text("id\n")
        config = tmp_path / "sync.toml"
        config.write_text(
            textwrap.dedent(
                f"""\
                [sync]
                subbranches = ["wide"]

                [source.wide]
                reader = "csv"
                path = "wide.csv"
                key = "id"

                [destination.wide]
                reader = "csv"
                path = "empty.csv"
                key = "id"
                allow_empty = true

                [template]
                use = "sql"
                url = "sqlite:///{tmp_path / "out.db"}"
                key = "id"
                create_tables = true
                """
            )
        )
        code, out = invoke("run", str(config))
        assert code in (1, 2), out
        assert out.count("CREATE TABLE") <= 1, out[:2000]
        assert len(out) < 5_000, len(out)
        assert "too many columns" in out


class TestGrouping:
    async def test_identical_row_errors_grouped(self) -> None:
        """300 rows failing alike print one line with a count, not 300."""

        class T(AsyncTemplate):
            async def new_users(self, action: Action) -> None:
                raise ValueError("the name is too long for this API " + "x" * 2_000)

        tree = users(300)
        report = await ((tree.source > tree.destination) | T())
        assert len(report.failures) == 300
        text = str(report)
        assert text.count("the name is too long") == 1, text[:3000]
        assert "300 × new_users" in text
        assert len(text) < 3_000
