"""Faults: a 2,000-action sync through a server failing 10% of calls loses and repeats nothing."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import anyio
import httpx
import pytest

from synctree import Outcome, ReaderError, SyncTree
from synctree.aio import AsyncTemplate, Event, EventKind, HTTPReader, NextLink, load
from synctree.aio.http import parse_retry_after
from tests.http_server import ALL_FAULTS, FAULTS, NO_FAULT, make_app, serve
from tests.reliability.scenario import FAST_BACKOFF, UsersTemplate, fault_scenario, tree_for

pytestmark = pytest.mark.anyio


async def test_fault_scenario(anyio_backend: str) -> None:
    """Every planned action reported once and applied once; a second run has nothing to do."""
    run = await fault_scenario(backend=anyio_backend)
    assert run.planned == {"new": 1100, "update": 700, "old": 200}
    assert set(run.faults) == set(ALL_FAULTS), run.faults  # every kind really happened
    assert 0.07 * run.calls <= sum(run.faults.values()) <= 0.13 * run.calls
    assert run.missing == 0  # none missing from the report
    assert run.repeated == 0  # none reported twice
    assert run.unapplied == 0  # none reported succeeded that the server does not show
    assert run.double_creates == 0  # no create applied twice
    assert sum(run.outcomes.values()) == run.actions
    assert run.report.ok, str(run.report)
    assert run.converged


def one_user() -> SyncTree:
    tree = SyncTree(["source", "destination"], ["users"])
    tree.new("source", "users", "u1", name="Ann", grade=7)
    return tree


class TestRetryAfter:
    async def test_both_forms_are_honoured(self) -> None:
        """429 without Retry-After backs off; with one, as seconds or as an HTTP-date, waits it."""
        api = make_app(fault_retry_after=1)
        api.force_faults("429", "429_seconds", "429_date")
        throttles: list[float] = []

        def observe(event: Event) -> None:
            if event.kind is EventKind.THROTTLED:
                assert event.delay is not None
                throttles.append(event.delay)

        with serve(api) as base_url:
            tree = one_user()
            started = time.monotonic()
            report = await (tree.source > tree.destination).run(
                UsersTemplate(base_url), observer=observe, **FAST_BACKOFF
            )
            elapsed = time.monotonic() - started
        assert report.ok and report.results[0].attempts == 4
        assert api.stats()["creates"] == {"u1": 1}
        no_header, seconds, date = throttles
        assert no_header <= FAST_BACKOFF["backoff_cap"]  # the backoff, not a guess
        assert seconds == 1.0
        assert 0.0 < date <= 1.0  # an HTTP-date has whole seconds: up to 1 s ahead
        assert elapsed >= seconds + date - 0.05

    async def test_server_sends_the_forms_it_claims(self) -> None:
        """The test server's 429 faults carry no header, delay-seconds, and an HTTP-date."""
        api = make_app(fault_retry_after=3)
        api.force_faults("429", "429_seconds", "429_date")
        with serve(api) as base_url:
            async with httpx.AsyncClient(base_url=base_url) as client:
                answers = [await client.get("/users") for _ in range(3)]
        assert [a.status_code for a in answers] == [429, 429, 429]
        assert "Retry-After" not in answers[0].headers
        assert answers[1].headers["Retry-After"] == "3"
        when = email.utils.parsedate_to_datetime(answers[2].headers["Retry-After"])
        assert when.tzinfo is not None
        assert 2.0 <= (parse_retry_after(answers[2].headers["Retry-After"]) or 0) <= 3.0


class TestSlowAndMalformed:
    async def test_slow_create_past_the_timeout_is_applied_once(self) -> None:
        """A create past the per-attempt timeout is retried; 409 then means done, not twice."""
        api = make_app(slow=0.5)
        api.force_faults("slow")
        with serve(api) as base_url:
            tree = one_user()
            report = await (tree.source > tree.destination).run(
                UsersTemplate(base_url), **FAST_BACKOFF
            )
            await anyio.sleep(0.6)  # the slow call ends on the server
        assert report.ok and report.results[0].attempts >= 2
        assert api.stats()["creates"] == {"u1": 1}

    async def test_slow_create_without_conflict_check_is_failed_not_repeated(self) -> None:
        """Without already_exists(), a create that may have landed fails honestly, once."""

        class Blind(UsersTemplate):
            already_exists = AsyncTemplate.already_exists  # no conflict check

        api = make_app(slow=0.3)
        api.force_faults("slow")
        with serve(api) as base_url:
            tree = one_user()
            report = await (tree.source > tree.destination).run(Blind(base_url), **FAST_BACKOFF)
            await anyio.sleep(0.4)
            again = tree_for([{"idnumber": "u1", "name": "Ann", "grade": 7}], api)
            assert list(again.source > again.destination) == []  # it did land: converged
        (result,) = report.results
        assert result.outcome is Outcome.FAILED and result.attempts == 1
        assert result.reason is not None and "may have reached the server" in result.reason
        assert api.stats()["creates"] == {"u1": 1}

    async def test_malformed_body_is_retried_by_the_template(self) -> None:
        """A 2xx with a broken JSON body: Retry, then 409 from the retry means done."""
        api = make_app()
        api.force_faults("malformed")
        with serve(api) as base_url:
            tree = one_user()
            report = await (tree.source > tree.destination).run(
                UsersTemplate(base_url), **FAST_BACKOFF
            )
        assert report.ok and report.results[0].attempts == 2
        assert api.stats()["creates"] == {"u1": 1}


def fast_reader(base_url: str, **options: Any) -> HTTPReader:
    """The users listing, retrying in milliseconds (the waits are drawn near zero)."""
    client = httpx.AsyncClient(base_url=base_url, timeout=0.2)
    options = {"params": {"per_page": 50}, **options}
    return HTTPReader(
        client, "/users", items="users", pagination=NextLink(), random=lambda: 0.001, **options
    )


async def load_users(reader: HTTPReader) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["users"])
    try:
        await load(tree, {"destination": {"users": reader}})
    finally:
        client = reader._client
        assert client is not None
        await client.aclose()
    return tree


class TestReaderUnderFaults:
    async def test_every_retryable_fault_on_pages(self) -> None:
        """Each fault kind but a malformed body hits a page; the listing is still complete."""
        users = [{"id": f"u{i}", "name": f"User {i}", "grade": i % 12} for i in range(300)]
        api = make_app(users=users, slow=0.5, fault_retry_after=0)
        kinds = [kind for kind in ALL_FAULTS if kind != "malformed"]
        api.force_faults(*(step for kind in kinds for step in (kind, NO_FAULT)))
        with serve(api) as base_url:
            reader = fast_reader(base_url, retries=1, params={"per_page": 20})  # 15 pages
            tree = await load_users(reader)
        assert len(tree.destination.users) == 300
        assert sum(api.stats()["faults"].values()) == len(kinds)

    async def test_malformed_page_fails_clearly(self) -> None:
        """A page whose body is not JSON stops the load with one error naming page and URL."""
        users = [{"id": f"u{i}"} for i in range(120)]
        api = make_app(users=users)
        api.force_faults(NO_FAULT, "malformed")
        with serve(api) as base_url:
            with pytest.raises(ReaderError) as caught:
                await load_users(fast_reader(base_url))
        message = str(caught.value)
        assert "page 2: the body is not JSON" in message
        assert f"{base_url}/users?page=2&per_page=50" in message

    async def test_page_failing_past_its_retries(self) -> None:
        """HTTP 500 on a page past its retries: the error says so and how often it tried."""
        api = make_app(users=[{"id": f"u{i}"} for i in range(120)])
        api.force_faults(NO_FAULT, "500", "500", "500")
        with serve(api) as base_url:
            with pytest.raises(ReaderError, match=r"page 2: HTTP 500 .*\(after 3 attempts\)"):
                await load_users(fast_reader(base_url, retries=2))


class TestServerFaults:
    """The test server's fault kinds do what the scenario counts on."""

    def test_defaults_are_unchanged(self) -> None:
        """The original six kinds stay the default; the new ones only when named."""
        assert FAULTS == ("500", "502", "503", "504", "drop_before", "drop_after")
        assert set(ALL_FAULTS) - set(FAULTS) == {
            "429",
            "429_seconds",
            "429_date",
            "slow",
            "malformed",
        }
        with pytest.raises(ValueError, match="unknown"):
            make_app(faults=["teapot"])
        with pytest.raises(ValueError, match="fault_retry_after"):
            make_app(fault_retry_after=-1)

    async def test_slow_and_malformed_do_the_work(self) -> None:
        """slow answers late but applies; malformed applies and breaks the body."""
        api = make_app(slow=0.2)
        api.force_faults("slow", "malformed", "malformed")
        with serve(api) as base_url:
            async with httpx.AsyncClient(base_url=base_url) as client:
                started = time.monotonic()
                slow = await client.post("/users", json={"id": "1"})
                assert time.monotonic() - started >= 0.2 and slow.status_code == 201
                broken = await client.post("/users", json={"id": "2"})
                deleted = await client.delete("/users/1")
        assert broken.status_code == 201 and deleted.status_code == 200
        for response in (broken, deleted):
            with pytest.raises(ValueError):
                response.json()
        assert api.stats()["creates"] == {"1": 1, "2": 1} and api.stats()["deletes"] == 1

    async def test_token(self) -> None:
        """With a token, calls without the right bearer token get 401."""
        api = make_app(token="s3cret")
        with serve(api) as base_url:
            async with httpx.AsyncClient(base_url=base_url) as client:
                denied = await client.get("/users")
                wrong = await client.get("/users", headers={"Authorization": "Bearer nope"})
                good = await client.get("/users", headers={"Authorization": "Bearer s3cret"})
        assert (denied.status_code, wrong.status_code, good.status_code) == (401, 401, 200)
