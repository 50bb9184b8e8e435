"""The async runner: concurrency, rate, retries, ordering, safety, cancellation."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
import trio.testing

from synctree import (
    Action,
    NotAwaitedError,
    Outcome,
    SafetyLimitExceeded,
    Skip,
    SyncTree,
)
from synctree.aio import AsyncTemplate, Event, EventKind, Retry, batch, idempotent

pytestmark = pytest.mark.anyio


def make_tree(
    source: dict[str, dict[str, Any]],
    destination: dict[str, dict[str, Any]],
    subbranches: tuple[str, ...] = ("students",),
) -> SyncTree:
    """A tree whose first subbranch holds the given rows on each side."""
    tree = SyncTree(["source", "destination"], list(subbranches))
    for key, attrs in source.items():
        tree.new("source", subbranches[0], key, **attrs)
    for key, attrs in destination.items():
        tree.new("destination", subbranches[0], key, **attrs)
    return tree


def students(n: int, **extra: Any) -> dict[str, dict[str, Any]]:
    return {str(i): {"first": f"F{i}", **extra} for i in range(n)}


def status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    """An ``HTTPStatusError`` as ``raise_for_status`` raises it."""
    request = httpx.Request("POST", "https://api.test/users")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


class Recorder:
    """A fake ``sleep`` that records delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await anyio.lowlevel.checkpoint()


class MemoryAPI(AsyncTemplate):
    """A destination held in a dict, to prove convergence."""

    max_deletes = None

    def __init__(self, tree: SyncTree) -> None:
        self.store = {leaf.idnumber: leaf.to_dict() for leaf in tree.destination.students}
        self.calls: list[tuple[str, str]] = []

    async def new_students(self, action: Action) -> None:
        self.calls.append((action.message, action.idnumber))
        assert action.source is not None
        self.store[action.idnumber] = action.source.to_dict()

    async def update_students(self, action: Action) -> None:
        self.calls.append((action.message, action.idnumber))
        assert action.changes is not None
        self.store[action.idnumber].update(action.changes)

    async def old_students(self, action: Action) -> None:
        self.calls.append((action.message, action.idnumber))
        del self.store[action.idnumber]


class TestBasics:
    async def test_await_pipe_returns_report(self) -> None:
        """``await (diff | Template())`` runs every action and returns the report."""
        tree = make_tree(students(5), {"0": {"first": "old"}, "9": {"first": "x"}})
        template = MemoryAPI(tree)
        report = await ((tree.source > tree.destination) | template)
        assert report.ok
        assert report.totals[Outcome.SUCCEEDED] == 6
        assert template.store == {k: v for k, v in students(5).items()}

    async def test_run_with_overrides(self) -> None:
        """``diff.run(template, **overrides)`` overrides class settings for one run."""
        tree = make_tree(students(3), {})
        template = MemoryAPI(tree)
        report = await (tree.source > tree.destination).run(template, dry_run=True)
        assert report.totals == {Outcome.PLANNED: 3}
        assert template.store == {}

    async def test_converges(self) -> None:
        """After a successful run, planning again gives no actions."""
        tree = make_tree(students(20), students(10, first="stale"))
        template = MemoryAPI(tree)
        await ((tree.source > tree.destination) | template)
        again = SyncTree(["source", "destination"], ["students"])
        for key, attrs in students(20).items():
            again.new("source", "students", key, **attrs)
        for key, attrs in template.store.items():
            again.new("destination", "students", key, **attrs)
        assert list(again.source > again.destination) == []

    async def test_not_awaited_is_a_clear_error(self) -> None:
        """Using an async run without ``await`` raises NotAwaitedError saying what to do."""
        tree = make_tree(students(1), {})
        pending = (tree.source > tree.destination) | MemoryAPI(tree)
        with pytest.raises(NotAwaitedError, match="must be awaited"):
            _ = pending.counts
        await pending  # and awaiting it still works

    async def test_unknown_setting(self) -> None:
        """An unknown override is a TypeError naming it."""
        tree = make_tree(students(1), {})
        with pytest.raises(TypeError, match="'concurency'"):
            await (tree.source > tree.destination).run(MemoryAPI(tree), concurency=2)

    @pytest.mark.parametrize(
        ("name", "value"),
        [("concurrency", 0), ("rate", -1.0), ("burst", 0), ("retries", -1), ("timeout", 0),
         ("max_deletes", "ten"), ("max_deletes", -3)],
    )  # fmt: skip
    async def test_invalid_settings(self, name: str, value: object) -> None:
        """Bad settings are a ValueError naming the setting."""
        tree = make_tree(students(1), {})
        with pytest.raises(ValueError, match=repr(name)):
            await (tree.source > tree.destination).run(MemoryAPI(tree), **{name: value})

    async def test_skip_and_not_implemented(self) -> None:
        """``Skip`` records a skip with its reason; a missing method is not implemented."""

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> Skip:
                return Skip("not yet")

        tree = make_tree(students(2), {"x": {"first": "y"}})
        report = await (tree.source > tree.destination).run(T(), max_deletes=None)
        assert report.totals == {Outcome.SKIPPED: 2, Outcome.NOT_IMPLEMENTED: 1}
        assert {r.reason for r in report.results if r.outcome is Outcome.SKIPPED} == {"not yet"}

    async def test_error_actions_fail_without_dispatch(self) -> None:
        """A type mismatch is recorded as failed and never reaches the template."""
        called = []

        class T(AsyncTemplate):
            async def update_students_grade(self, action: Action) -> None:
                called.append(action)

        tree = make_tree({"1": {"grade": 7}}, {"1": {"grade": "7"}})
        report = await ((tree.source > tree.destination) | T())
        assert not called
        assert [type(f.error).__name__ for f in report.failures] == ["UncomparableError"]

    async def test_sync_methods_are_accepted(self) -> None:
        """A plain ``def`` method on an AsyncTemplate is called too."""
        seen = []

        class T(AsyncTemplate):
            def new_students(self, action: Action) -> None:
                seen.append(action.idnumber)

        tree = make_tree(students(3), {})
        report = await ((tree.source > tree.destination) | T())
        assert report.ok and sorted(seen) == ["0", "1", "2"]

    async def test_hooks_around_the_run(self) -> None:
        """before_all runs before the first action, after_all after the last with the report."""
        log: list[str] = []

        class T(AsyncTemplate):
            async def before_all(self) -> None:
                log.append("before")

            async def new_students(self, action: Action) -> None:
                log.append("new")

            async def after_all(self, report: Any) -> None:
                log.append(f"after {len(report)}")

        tree = make_tree(students(2), {})
        await ((tree.source > tree.destination) | T())
        assert log == ["before", "new", "new", "after 2"]

    async def test_the_template_sees_the_diff(self) -> None:
        """``self.diff`` is the diff being run, from before_all on (and after the run)."""
        seen: list[str] = []

        class T(AsyncTemplate):
            max_deletes = None

            async def before_all(self) -> None:
                assert self.diff is not None
                seen.extend(leaf.idnumber for leaf in self.diff.right.students)

            async def old_students(self, action: Action) -> None:
                assert self.diff is not None and action.idnumber in self.diff.right.students

        tree = make_tree(students(1), students(3))
        diff = tree.source > tree.destination
        template = T()
        report = await (diff | template)
        assert report.ok and len(report) == 2
        assert seen == ["0", "1", "2"] and template.diff is diff and template.report is report


class TestConcurrency:
    async def test_never_above_the_limit(self) -> None:
        """No more than ``concurrency`` calls are in flight at once, and the limit is reached."""
        in_flight = peak = 0

        class T(AsyncTemplate):
            concurrency = 5

            async def new_students(self, action: Action) -> None:
                nonlocal in_flight, peak
                in_flight += 1
                peak = max(peak, in_flight)
                await anyio.sleep(0.002)
                in_flight -= 1

        tree = make_tree(students(60), {})
        report = await ((tree.source > tree.destination) | T())
        assert report.ok and len(report) == 60
        assert peak == 5

    async def test_backoff_holds_no_slot(self) -> None:
        """A call sleeping in backoff does not hold a concurrency slot."""
        other_ran = anyio.Event()
        retried = False

        async def sleep(delay: float) -> None:
            # If "0" kept its only slot while sleeping, "1" could never run.
            with anyio.fail_after(5):
                await other_ran.wait()

        class T(AsyncTemplate):
            concurrency = 1

            async def update_students_first(self, action: Action) -> None:
                nonlocal retried
                if action.idnumber == "0" and not retried:
                    retried = True
                    raise Retry()
                if action.idnumber == "1":
                    other_ran.set()

        tree = make_tree(students(2), students(2, first="x"))
        report = await (tree.source > tree.destination).run(T(), sleep=sleep)
        assert report.ok and retried and other_ran.is_set()


def run_virtual(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run on trio with a virtual clock that jumps when every task sleeps."""
    return anyio.run(
        fn, backend="trio", backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)}
    )


class TestRate:
    def test_spacing_in_virtual_time(self) -> None:
        """With rate R and burst 1, attempts start exactly 1/R apart."""
        starts: list[float] = []

        class T(AsyncTemplate):
            concurrency = 8
            rate = 50.0

            async def new_students(self, action: Action) -> None:
                starts.append(anyio.current_time())
                await anyio.sleep(0.1)  # latency: many calls in flight at once

        async def main() -> None:
            tree = make_tree(students(100), {})
            report = await ((tree.source > tree.destination) | T())
            assert report.ok

        run_virtual(main)
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert len(starts) == 100
        assert min(gaps) == pytest.approx(0.02, abs=1e-9)
        assert starts[-1] - starts[0] == pytest.approx(99 * 0.02, rel=1e-6)

    async def test_rate_bounds_real_time(self) -> None:
        """On either backend, N calls at rate R take at least (N-1)/R seconds."""

        class T(AsyncTemplate):
            rate = 400.0

            async def new_students(self, action: Action) -> None:
                pass

        tree = make_tree(students(41), {})
        start = anyio.current_time()
        await ((tree.source > tree.destination) | T())
        assert anyio.current_time() - start >= 40 / 400.0 - 1e-3

    def test_throttle_pauses_every_worker(self) -> None:
        """A 429 with Retry-After pauses all workers until the deadline, not only the one hit."""
        starts: list[tuple[str, float]] = []
        events: list[Event] = []
        throttled: list[tuple[str, float]] = []

        class T(AsyncTemplate):
            concurrency = 4

            async def new_students(self, action: Action) -> None:
                now = anyio.current_time()
                starts.append((action.idnumber, now))
                if not throttled:
                    throttled.append((action.idnumber, now))
                    raise status_error(429, {"Retry-After": "5"})
                await anyio.sleep(1)

        async def main() -> None:
            tree = make_tree(students(12), {})
            report = await (tree.source > tree.destination).run(T(), observer=events.append)
            assert report.ok

        run_virtual(main)
        ((hit, at),) = throttled
        assert [t for key, t in starts if key == hit] == [at, at + 5]
        # nobody started during the pause (calls in flight before it just finish)
        assert all(t <= at or t >= at + 5 for _, t in starts)
        assert sum(1 for _, t in starts if t >= at + 5) > 4
        kinds = [(e.delay, e.reason) for e in events if e.kind is EventKind.THROTTLED]
        assert kinds == [(5.0, "HTTP 429")]


class TestRetry:
    async def test_retryable_status_then_success(self) -> None:
        """503 twice, then success: three attempts, backoff delays from the full-jitter policy."""
        attempts = 0

        class T(AsyncTemplate):
            async def update_students_first(self, action: Action) -> None:
                nonlocal attempts
                attempts += 1
                if attempts < 3:
                    raise status_error(503)

        sleep = Recorder()
        tree = make_tree({"1": {"first": "a"}}, {"1": {"first": "b"}})
        report = await (tree.source > tree.destination).run(T(), sleep=sleep, random=lambda: 0.5)
        assert report.ok and report.results[0].attempts == 3
        assert sleep.delays == [0.5, 1.0]  # 0.5 * min(32, 1 * 2**(n-1))

    async def test_gives_up_after_retries(self) -> None:
        """After ``retries`` retries the action fails with the last error."""

        class T(AsyncTemplate):
            retries = 2

            async def update_students_first(self, action: Action) -> None:
                raise status_error(500)

        tree = make_tree({"1": {"first": "a"}}, {"1": {"first": "b"}})
        report = await (tree.source > tree.destination).run(T(), sleep=Recorder())
        (failure,) = report.failures
        assert failure.attempts == 3 and "gave up" in (failure.reason or "")
        assert isinstance(failure.error, httpx.HTTPStatusError)

    async def test_permanent_4xx_is_not_retried(self) -> None:
        """A 400 fails at once."""

        class T(AsyncTemplate):
            async def update_students_first(self, action: Action) -> None:
                raise status_error(400)

        tree = make_tree({"1": {"first": "a"}}, {"1": {"first": "b"}})
        report = await (tree.source > tree.destination).run(T(), sleep=Recorder())
        assert report.failures[0].attempts == 1

    async def test_retry_after_is_honoured(self) -> None:
        """A 503 with Retry-After waits that long instead of the backoff."""
        attempts = 0

        class T(AsyncTemplate):
            async def update_students_first(self, action: Action) -> None:
                nonlocal attempts
                attempts += 1
                if attempts == 1:
                    raise status_error(502, {"Retry-After": "7"})

        sleep = Recorder()
        tree = make_tree({"1": {"first": "a"}}, {"1": {"first": "b"}})
        await (tree.source > tree.destination).run(T(), sleep=sleep)
        assert sleep.delays == [7.0]

    async def test_template_can_ask_for_retry(self) -> None:
        """``raise Retry(after=...)`` from a method retries, even a create."""
        attempts = 0

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> None:
                nonlocal attempts
                attempts += 1
                if attempts == 1:
                    raise Retry(after=0.25, reason="errorcode=dbbusy")

        sleep = Recorder()
        tree = make_tree(students(1), {})
        report = await (tree.source > tree.destination).run(T(), sleep=sleep)
        assert report.ok and sleep.delays == [0.25]

    @pytest.mark.parametrize("error", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")])
    async def test_create_that_may_have_landed_is_not_retried(self, error: Exception) -> None:
        """A create whose request may have reached the server is not blindly repeated."""
        attempts = 0

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> None:
                nonlocal attempts
                attempts += 1
                raise error

        tree = make_tree(students(1), {})
        report = await (tree.source > tree.destination).run(T(), sleep=Recorder())
        assert attempts == 1
        assert "may have reached the server" in (report.failures[0].reason or "")

    async def test_create_never_sent_is_retried(self) -> None:
        """A connect error means the request never left: a create is retried."""
        attempts = 0

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> None:
                nonlocal attempts
                attempts += 1
                if attempts == 1:
                    raise httpx.ConnectError("refused")

        tree = make_tree(students(1), {})
        report = await (tree.source > tree.destination).run(T(), sleep=Recorder())
        assert report.ok and attempts == 2

    async def test_idempotent_create_is_retried(self) -> None:
        """``@idempotent`` allows retrying a create after an ambiguous failure."""
        attempts = 0

        class T(AsyncTemplate):
            @idempotent
            async def new_students(self, action: Action) -> None:
                nonlocal attempts
                attempts += 1
                if attempts == 1:
                    raise httpx.ReadTimeout("slow")

        tree = make_tree(students(1), {})
        report = await (tree.source > tree.destination).run(T(), sleep=Recorder())
        assert report.ok and attempts == 2

    async def test_already_exists_counts_as_done(self) -> None:
        """With already_exists() mapping 409, a repeated create that conflicts succeeds."""
        created: set[str] = set()

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> None:
                if action.idnumber in created:
                    raise status_error(409)
                created.add(action.idnumber)
                raise httpx.RemoteProtocolError("dropped after the create was applied")

            def already_exists(self, action: Action, error: Exception) -> bool:
                return (
                    isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 409
                )

        tree = make_tree(students(1), {})
        report = await (tree.source > tree.destination).run(T(), sleep=Recorder())
        (result,) = report.results
        assert result.outcome is Outcome.SUCCEEDED and result.attempts == 2
        assert "already existed" in (result.reason or "")

    async def test_timeout_per_attempt(self) -> None:
        """An attempt longer than ``timeout`` fails with TimeoutError and is retried."""
        attempts = 0

        class T(AsyncTemplate):
            timeout = 0.05

            async def update_students_first(self, action: Action) -> None:
                nonlocal attempts
                attempts += 1
                if attempts == 1:
                    await anyio.sleep(10)

        tree = make_tree({"1": {"first": "a"}}, {"1": {"first": "b"}})
        report = await (tree.source > tree.destination).run(T(), sleep=Recorder())
        assert report.ok and attempts == 2


class TestOrder:
    async def test_phases_and_chains(self) -> None:
        """Creates run by subbranch in declared order, removals in reverse, one object in order."""
        log: list[tuple[str, str]] = []

        class T(AsyncTemplate):
            concurrency = 4
            max_deletes = None

            async def _any(self, action: Action) -> None:
                await anyio.sleep(random.random() / 1000)
                log.append((action.message, action.idnumber))

            new_students = new_classes = new_enrollments = _any
            add_enrollments_classes = remove_enrollments_classes = _any
            old_students = old_classes = old_enrollments = _any

        tree = SyncTree(["source", "destination"], ["students", "classes", "enrollments"])
        for i in range(6):
            tree.new("source", "students", f"s{i}")
            tree.new("source", "classes", f"c{i}")
            tree.new("source", "enrollments", f"s{i}", classes={"c1", "c2"})
            tree.new("destination", "students", f"x{i}")
            tree.new("destination", "classes", f"y{i}")
            tree.new("destination", "enrollments", f"x{i}", classes={"y1"})
        tree.new("destination", "enrollments", "s0", classes={"c1", "y2"})
        report = await ((tree.source > tree.destination) | T())
        assert report.ok
        messages = [m for m, _ in log]
        order = [
            "new_students", "new_classes", "new_enrollments", "add_enrollments_classes",
            "remove_enrollments_classes", "old_enrollments", "old_classes", "old_students",
        ]  # fmt: skip
        # One subbranch's new_ and add_ share a phase, so do its remove_ and old_.
        rank = {m: i for i, m in enumerate(order)}
        rank["add_enrollments_classes"] = rank["new_enrollments"]
        rank["remove_enrollments_classes"] = rank["old_enrollments"]
        ranks = [rank[m] for m in messages]
        assert ranks == sorted(ranks)
        # within the enrollments phase, one object's actions stay in order
        s0 = [m for m, key in log if key == "s0" and "enrollments" in m]
        assert s0 == ["add_enrollments_classes", "remove_enrollments_classes"]

    async def test_dependency_failed(self) -> None:
        """When a create fails, that object's later actions are skipped; others go on."""

        class T(AsyncTemplate):
            async def new_enrollments(self, action: Action) -> None:
                if action.idnumber == "bad":
                    raise ValueError("rejected")

            async def update_enrollments_first(self, action: Action) -> None:
                pass

            async def add_enrollments_classes(self, action: Action) -> None:
                pass

        tree = SyncTree(["source", "destination"], ["enrollments"])
        tree.new("source", "enrollments", "bad", first="a", classes={"c1"})
        tree.new("source", "enrollments", "ok", first="a", classes={"c1"})
        tree.new("destination", "enrollments", "ok", first="b", classes=set())
        report = await ((tree.source > tree.destination) | T())
        outcomes = {(r.action.message, r.action.idnumber): r.outcome for r in report.results}
        assert outcomes[("new_enrollments", "bad")] is Outcome.FAILED
        assert outcomes[("update_enrollments_first", "ok")] is Outcome.SUCCEEDED
        assert outcomes[("add_enrollments_classes", "ok")] is Outcome.SUCCEEDED

    async def test_dependency_failed_is_skipped(self) -> None:
        """A failed update makes the same object's add skipped with 'dependency failed'."""

        class T(AsyncTemplate):
            async def update_students_first(self, action: Action) -> None:
                raise ValueError("nope")

            async def add_students_tags(self, action: Action) -> None:
                pass

        tree = make_tree({"1": {"first": "a", "tags": {"x"}}}, {"1": {"first": "b", "tags": set()}})
        report = await ((tree.source > tree.destination) | T())
        skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
        assert [(r.action.message, r.reason) for r in skipped] == [
            ("add_students_tags", "dependency failed")
        ]

    async def test_fail_fast(self) -> None:
        """fail_fast starts nothing after the first failure; the rest are recorded skipped."""
        called: list[str] = []

        class T(AsyncTemplate):
            concurrency = 1
            fail_fast = True

            async def new_students(self, action: Action) -> None:
                called.append(action.idnumber)
                if action.idnumber == "2":
                    raise ValueError("boom")

        tree = make_tree(students(10), {})
        report = await ((tree.source > tree.destination) | T())
        assert len(report) == 10
        assert called[-1] == "2"  # nothing was called after the failure
        assert report.totals[Outcome.FAILED] == 1
        assert report.totals[Outcome.SUCCEEDED] == len(called) - 1
        assert report.totals[Outcome.SKIPPED] == 10 - len(called)
        assert {r.reason for r in report.results if r.outcome is Outcome.SKIPPED} == {"fail_fast"}


class TestSafety:
    async def test_max_deletes_count(self) -> None:
        """Removing more than max_deletes stops before any call, naming the counts."""
        calls: list[str] = []

        class T(AsyncTemplate):
            max_deletes = 2

            async def new_students(self, action: Action) -> None:
                calls.append("new")

            async def old_students(self, action: Action) -> None:
                calls.append("old")

        tree = make_tree(students(10), students(10) | {"x": {}, "y": {}, "z": {}})
        for key in ("x", "y", "z"):
            tree.destination.students[key].first = "q"
        with pytest.raises(SafetyLimitExceeded, match="removes 3 of 13 students") as info:
            await ((tree.source > tree.destination) | T())
        assert calls == []
        assert (info.value.deletes, info.value.total) == (3, 13)
        report = await (tree.source > tree.destination).run(T(), force=True)
        assert report.totals[Outcome.SUCCEEDED] == 3

    async def test_max_deletes_percentage(self) -> None:
        """'10%' of 50 allows 5 removals and refuses 6."""

        class T(AsyncTemplate):
            async def old_students(self, action: Action) -> None:
                pass

        tree = make_tree(students(45), students(50))
        report = await ((tree.source > tree.destination) | T())
        assert report.totals[Outcome.SUCCEEDED] == 5
        tree = make_tree(students(44), students(50))
        with pytest.raises(SafetyLimitExceeded):
            await ((tree.source > tree.destination) | T())

    async def test_empty_source_never_wipes(self) -> None:
        """An empty source subbranch with a non-empty destination exceeds any limit."""

        class T(AsyncTemplate):
            max_deletes = None

            async def old_students(self, action: Action) -> None:
                raise AssertionError("must not be called")

        tree = make_tree({}, students(3))
        with pytest.raises(SafetyLimitExceeded, match="is empty"):
            await ((tree.source > tree.destination) | T())

    async def test_dry_run_changes_nothing(self) -> None:
        """A dry run reports the plan and calls no method."""
        template = None

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> None:
                raise AssertionError("must not be called")

        tree = make_tree(students(3), {"9": {}})
        template = T()
        report = await (tree.source > tree.destination).run(template, dry_run=True)
        assert report.totals == {Outcome.PLANNED: 3, Outcome.NOT_IMPLEMENTED: 1}


class TestCancellation:
    @pytest.mark.parametrize("seed", range(8))
    async def test_cancel_records_what_finished(self, seed: int) -> None:
        """Cancelling mid-run records every finished action; running again converges."""
        rng = random.Random(seed)
        tree = make_tree(students(40), students(10, first="stale"))
        template = MemoryAPI(tree)
        template.concurrency = 4  # type: ignore[misc]

        async def slow_new(action: Action) -> None:
            await anyio.sleep(rng.random() / 200)
            await MemoryAPI.new_students(template, action)

        template.new_students = slow_new  # type: ignore[method-assign]
        with anyio.move_on_after(rng.random() / 20):
            await ((tree.source > tree.destination) | template)
        report = template.report
        assert report is not None
        finished = {(r.action.message, r.action.idnumber) for r in report.results}
        applied = set(template.calls)
        # every call that changed the store is in the report, and nothing more
        assert {c for c in applied if c in finished} == applied
        assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)

        # The second run starts from what the destination now holds and converges.
        again = make_tree(students(40), template.store)
        second = MemoryAPI(again)
        await ((again.source > again.destination) | second)
        final = make_tree(students(40), second.store)
        assert list(final.source > final.destination) == []

    async def test_in_flight_calls_get_grace(self) -> None:
        """An attempt in flight when the run is cancelled finishes and is recorded."""
        started = anyio.Event()

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> None:
                started.set()
                await anyio.sleep(0.05)

        template = T()
        tree = make_tree(students(1), {})
        async with anyio.create_task_group() as group:

            async def runner() -> None:
                await ((tree.source > tree.destination) | template)

            group.start_soon(runner)
            await started.wait()
            group.cancel_scope.cancel()
        assert template.report is not None
        assert [r.outcome for r in template.report.results] == [Outcome.SUCCEEDED]

    async def test_grace_runs_out(self) -> None:
        """An attempt still running after the grace period is recorded as interrupted."""
        started = anyio.Event()

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> None:
                started.set()
                await anyio.sleep(10)

        template = T()
        tree = make_tree(students(1), {})
        async with anyio.create_task_group() as group:

            async def runner() -> None:
                await (tree.source > tree.destination).run(template, grace=0.05)

            group.start_soon(runner)
            await started.wait()
            group.cancel_scope.cancel()
        assert template.report is not None
        (result,) = template.report.results
        assert result.outcome is Outcome.FAILED and "interrupted" in (result.reason or "")


class TestEvents:
    async def test_observer_sees_the_run(self) -> None:
        """The observer gets planned, started, retrying and finished events."""
        events: list[Event] = []
        attempts = 0

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> None:
                nonlocal attempts
                attempts += 1
                if attempts == 1:
                    raise Retry(after=0, reason="busy")

        tree = make_tree(students(1), {})
        await (tree.source > tree.destination).run(T(), observer=events.append, sleep=Recorder())
        kinds = [e.kind for e in events]
        assert kinds == [EventKind.PLANNED, EventKind.STARTED, EventKind.RETRYING,
                         EventKind.STARTED, EventKind.FINISHED]  # fmt: skip
        assert events[0].total == 1
        assert events[2].reason == "Retry: busy" and events[2].delay == 0
        assert events[-1].result is not None and events[-1].result.outcome is Outcome.SUCCEEDED


class TestBatch:
    async def test_batches_of_one_message(self) -> None:
        """A @batch method gets lists of at most ``size`` actions; outcomes are per action."""
        calls: list[list[str]] = []

        class T(AsyncTemplate):
            @batch(size=4)
            async def new_students(self, actions: list[Action]) -> list[object]:
                calls.append([a.idnumber for a in actions])
                outcomes: dict[str, object] = {"3": ValueError("bad"), "5": Skip("later")}
                return [outcomes.get(a.idnumber) for a in actions]

        tree = make_tree(students(10), {})
        report = await ((tree.source > tree.destination) | T())
        assert sorted(len(c) for c in calls) == [2, 4, 4]
        assert sorted(i for c in calls for i in c) == sorted(str(i) for i in range(10))
        assert report.totals == {Outcome.SUCCEEDED: 8, Outcome.FAILED: 1, Outcome.SKIPPED: 1}
        assert str(report.failures[0].error) == "bad"

    async def test_generic_batch_method_serves_every_subbranch(self) -> None:
        """A generic ``new`` batch method is batched per message (so per subbranch)."""
        calls: list[set[str]] = []

        class T(AsyncTemplate):
            @batch(size=100)
            async def new(self, actions: list[Action]) -> None:
                calls.append({a.message for a in actions})

        tree = SyncTree(["source", "destination"], ["students", "staff"])
        for i in range(3):
            tree.new("source", "students", str(i))
            tree.new("source", "staff", str(i))
        report = await ((tree.source > tree.destination) | T())
        assert report.ok and calls == [{"new_students"}, {"new_staff"}]

    async def test_whole_batch_is_retried(self) -> None:
        """A retryable error raised by a batch call retries the whole batch."""
        attempts = 0

        class T(AsyncTemplate):
            @batch(size=10)
            async def old_students(self, actions: list[Action]) -> None:
                nonlocal attempts
                attempts += 1
                if attempts == 1:
                    raise status_error(503)

        tree = make_tree(students(10), students(12))
        report = await (tree.source > tree.destination).run(T(), sleep=Recorder(), max_deletes=None)
        assert report.ok and [r.attempts for r in report.results] == [2, 2]

    async def test_wrong_number_of_outcomes(self) -> None:
        """A batch method returning the wrong number of outcomes fails its actions clearly."""

        class T(AsyncTemplate):
            @batch(size=10)
            async def new_students(self, actions: list[Action]) -> list[None]:
                return [None]

        tree = make_tree(students(3), {})
        report = await ((tree.source > tree.destination) | T())
        assert len(report.failures) == 3
        assert "one outcome per action" in str(report.failures[0].error)

    async def test_batches_fill_across_the_phase(self) -> None:
        """Creates separated by other objects' updates still share full batches."""
        calls: list[list[str]] = []

        class T(AsyncTemplate):
            @batch(size=3)
            async def new_students(self, actions: list[Action]) -> None:
                calls.append([a.idnumber for a in actions])

            async def update_students(self, action: Action) -> None:
                calls.append([action.message])

        source = students(6)
        destination = {key: {"first": "old"} for key in ("1", "4")}
        tree = make_tree(source, destination)
        report = await ((tree.source > tree.destination) | T())
        assert report.ok and len(report) == 6
        creates = [c for c in calls if c != ["update_students"]]
        assert sorted(len(c) for c in creates) == [1, 3]

    async def test_a_big_batch_is_reported_per_action(self) -> None:
        """Every action of a batch that succeeded whole has its Result, in order."""

        class T(AsyncTemplate):
            @batch(size=1000)
            async def new_students(self, actions: list[Action]) -> list[None]:
                return [None] * len(actions)

            @batch(size=1000)
            async def old_students(self, actions: list[Action]) -> None:
                pass

        gone = {str(i): {"first": "x"} for i in range(2500, 2600)}
        tree = make_tree(students(2500), gone)
        report = await (tree.source > tree.destination).run(T(), max_deletes=None)
        assert len(report) == 2600 == len(report.results)
        assert report.totals == {Outcome.SUCCEEDED: 2600} and report.ok and not report.failures
        assert report.counts == {"new_students": {Outcome.SUCCEEDED: 2500},
                                 "old_students": {Outcome.SUCCEEDED: 100}}  # fmt: skip
        olds = [r for r in report.results if r.action.message == "old_students"]
        assert [r.action.idnumber for r in olds] == [str(i) for i in range(2500, 2600)]
        assert all(r.attempts == 1 and r.error is None and r.elapsed >= 0 for r in olds)

    async def test_creates_without_a_method(self) -> None:
        """Creates no method handles are not implemented, in a run and in a dry run."""
        events: list[Event] = []
        tree = make_tree(students(5), {})
        for dry_run in (False, True):
            report = await (tree.source > tree.destination).run(
                AsyncTemplate(), dry_run=dry_run, observer=events.append
            )
            assert report.totals == {Outcome.NOT_IMPLEMENTED: 5}
            assert len(report.results) == 5
        finished = [e for e in events if e.kind is EventKind.FINISHED]
        assert len(finished) == 10

    async def test_dry_run_plans_creates(self) -> None:
        """A dry run records every create as planned, with an event each."""
        events: list[Event] = []

        class T(AsyncTemplate):
            @batch(size=2)
            async def new_students(self, actions: list[Action]) -> None:
                raise AssertionError("a dry run calls nothing")

        tree = make_tree(students(5), {})
        report = await (tree.source > tree.destination).run(
            T(), dry_run=True, observer=events.append
        )
        assert report.totals == {Outcome.PLANNED: 5}
        assert [e.kind for e in events].count(EventKind.FINISHED) == 5
        assert events[0].kind is EventKind.PLANNED and events[0].total == 5

    def test_batch_size_is_validated(self) -> None:
        """@batch(size=0) is a ValueError naming 'size'."""
        with pytest.raises(ValueError, match="'size'"):
            batch(size=0)
        with pytest.raises(ValueError, match="'size'"):
            batch(size="not a name")

    async def test_batch_size_named_by_attribute(self) -> None:
        """@batch(size="name") reads each instance's attribute: two sizes, one class."""
        calls: list[tuple[int, int]] = []

        class T(AsyncTemplate):
            def __init__(self, size: int) -> None:
                self.size = size

            @batch(size="size")
            async def new_students(self, actions: list[Action]) -> None:
                calls.append((self.size, len(actions)))
                await anyio.sleep(0.001)

        async def run(size: int) -> None:
            tree = make_tree(students(10), {})
            await ((tree.source > tree.destination) | T(size))

        async with anyio.create_task_group() as group:
            group.start_soon(run, 4)
            group.start_soon(run, 3)
        assert sorted(n for size, n in calls if size == 4) == [2, 4, 4]
        assert sorted(n for size, n in calls if size == 3) == [1, 3, 3, 3]

    async def test_batch_size_attribute_is_checked(self) -> None:
        """An attribute that holds no valid size is a ValueError naming it."""

        class T(AsyncTemplate):
            size = 0

            @batch(size="size")
            async def new_students(self, actions: list[Action]) -> None:
                pass

        tree = make_tree(students(2), {})
        with pytest.raises(ValueError, match=r"T\.size must be an int >= 1"):
            await ((tree.source > tree.destination) | T())
