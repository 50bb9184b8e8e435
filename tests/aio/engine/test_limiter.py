from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctree.aio import RateLimiter

pytestmark = pytest.mark.anyio

T0 = 100.0


class FakeTime:
    """Virtual time: ``sleep`` blocks until :meth:`run` moves the clock past its deadline."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        entry = (self.now + delay, next(self._order), anyio.Event())
        heapq.heappush(self._sleepers, entry)
        try:
            await entry[2].wait()
        finally:
            if entry in self._sleepers:  # cancelled: forget the deadline
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)

    async def run(self, until: float = math.inf) -> None:
        """Wake sleepers deadline by deadline until none is left (or the next is past ``until``)."""
        while True:
            await settle()
            if not self._sleepers or self._sleepers[0][0] > until:
                break
            deadline, _, event = heapq.heappop(self._sleepers)
            self.now = max(self.now, deadline)
            event.set()
        if until != math.inf:
            self.now = max(self.now, until)
        await settle()


async def settle() -> None:
    """Let every other task run until it blocks.

    On asyncio anyio's ``wait_all_tasks_blocked`` polls every 0.1 s of real time; a few
    checkpoints first usually make that poll succeed at once.
    """
    for _ in range(5):
        await anyio.lowlevel.checkpoint()
    await anyio.wait_all_tasks_blocked()


def limiter(time: FakeTime, rate: float | None, burst: int = 1) -> RateLimiter:
    return RateLimiter(rate, burst=burst, clock=time.clock, sleep=time.sleep)


def acquirer(
    lim: RateLimiter, time: FakeTime, times: list[float]
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A task that acquires once and records the (offset) time it got through."""

    async def task() -> None:
        await lim.acquire()
        times.append(time.now - T0)

    return task


async def acquire_times(lim: RateLimiter, time: FakeTime, count: int) -> list[float]:
    """Start ``count`` concurrent acquirers now; return when each got through, sorted."""
    times: list[float] = []
    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(acquirer(lim, time, times))
        await time.run()
    return sorted(times)


class TestValidation:
    @pytest.mark.parametrize("rate", [0, -1.0, math.nan])
    def test_rate_must_be_positive(self, rate: float) -> None:
        """A rate that is zero, negative or NaN is refused, naming the parameter."""
        with pytest.raises(ValueError, match="'rate' must be > 0"):
            RateLimiter(rate)

    def test_burst_must_be_at_least_one(self) -> None:
        """A burst below one is refused."""
        with pytest.raises(ValueError, match="'burst' must be >= 1"):
            RateLimiter(1.0, burst=0)

    @pytest.mark.parametrize("burst", [1.5, True, "2"])
    def test_burst_must_be_an_int(self, burst: object) -> None:
        """A burst that is not an int is refused."""
        with pytest.raises(TypeError, match="'burst' must be an int"):
            RateLimiter(1.0, burst=burst)  # type: ignore[arg-type]

    def test_pause_until_nan(self) -> None:
        """A NaN deadline is refused rather than silently ignored."""
        with pytest.raises(ValueError, match="'deadline'"):
            RateLimiter(1.0).pause_until(math.nan)

    def test_properties_and_repr(self) -> None:
        """The settings are readable; a fresh limiter is not paused."""
        lim = RateLimiter(2.5, burst=3)
        assert (lim.rate, lim.burst, lim.paused_until) == (2.5, 3, -math.inf)
        assert repr(lim) == "RateLimiter(rate=2.5, burst=3)"
        assert RateLimiter(None).rate is None

    def test_no_event_loop_needed_to_build(self) -> None:
        """The default clock is looked up at call time, so building needs no running loop."""
        RateLimiter(1.0).pause_until(5.0)


class TestSpacing:
    async def test_first_call_immediate_then_spaced(self) -> None:
        """With burst=1 calls go exactly 1/rate apart, the first at once."""
        time = FakeTime()
        lim = limiter(time, rate=4.0)
        times: list[float] = []

        async def sequential() -> None:
            for _ in range(5):
                await lim.acquire()
                times.append(time.now - T0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sequential)
            await time.run()
        assert times == [0.0, 0.25, 0.5, 0.75, 1.0]
        assert time.sleeps == [0.25] * 4

    async def test_idle_time_does_not_accumulate_beyond_burst(self) -> None:
        """After an idle spell, burst=1 still allows only one immediate call."""
        time = FakeTime()
        lim = limiter(time, rate=2.0)
        await lim.acquire()
        time.now += 60
        assert await acquire_times(lim, time, 3) == [60.0, 60.5, 61.0]

    async def test_burst(self) -> None:
        """``burst`` calls go at once, the rest follow at the rate."""
        time = FakeTime()
        lim = limiter(time, rate=2.0, burst=3)
        assert await acquire_times(lim, time, 5) == [0.0, 0.0, 0.0, 0.5, 1.0]

    async def test_burst_refills_at_the_rate(self) -> None:
        """A spent burst comes back one call per 1/rate, up to ``burst`` after a long idle."""
        time = FakeTime()
        lim = limiter(time, rate=1.0, burst=3)
        assert await acquire_times(lim, time, 3) == [0.0, 0.0, 0.0]
        time.now = T0 + 1.0
        assert await acquire_times(lim, time, 2) == [1.0, 2.0]
        time.now = T0 + 100.0
        assert await acquire_times(lim, time, 4) == [100.0, 100.0, 100.0, 101.0]

    async def test_unlimited(self) -> None:
        """``rate=None`` never waits."""
        time = FakeTime()
        lim = limiter(time, rate=None)
        assert await acquire_times(lim, time, 50) == [0.0] * 50
        assert time.sleeps == []

    async def test_default_clock_and_sleep(self) -> None:
        """Without injection the limiter uses anyio's clock and sleep (1 ms apart here)."""
        lim = RateLimiter(1000.0)
        start = anyio.current_time()
        for _ in range(3):
            await lim.acquire()
        assert anyio.current_time() - start >= 0.0019  # two gaps of 1 ms; never shorter


class TestConcurrency:
    async def test_concurrent_waiters_get_distinct_slots(self) -> None:
        """N acquirers at the same instant get N distinct slots, 1/rate apart."""
        time = FakeTime()
        lim = limiter(time, rate=4.0)
        assert await acquire_times(lim, time, 10) == [k * 0.25 for k in range(10)]
        assert sorted(time.sleeps) == [k * 0.25 for k in range(1, 10)]

    async def test_slots_are_reserved_before_sleeping(self) -> None:
        """Each acquirer asks to sleep exactly once, for its own slot: no thundering herd."""
        time = FakeTime()
        lim = limiter(time, rate=8.0, burst=2)
        assert await acquire_times(lim, time, 6) == [0.0, 0.0, 0.125, 0.25, 0.375, 0.5]
        assert len(time.sleeps) == 4

    async def test_late_arrival_queues_behind_waiters(self) -> None:
        """A call arriving while others wait takes the next free slot after theirs."""
        time = FakeTime()
        lim = limiter(time, rate=1.0)
        times: list[float] = []
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(acquirer(lim, time, times))
            await time.run(until=T0 + 0.5)
            tg.start_soon(acquirer(lim, time, times))
            await time.run()
        assert sorted(times) == [0.0, 1.0, 2.0, 3.0]


class TestPause:
    async def test_pause_before_any_call(self) -> None:
        """Calls wait for the deadline, then go at the rate from it, with no burst."""
        time = FakeTime()
        lim = limiter(time, rate=2.0, burst=3)
        lim.pause_until(T0 + 5)
        assert lim.paused_until == T0 + 5
        assert await acquire_times(lim, time, 3) == [5.0, 5.5, 6.0]

    async def test_pause_holds_waiters_already_sleeping(self) -> None:
        """A pause reaches acquirers that were already waiting for an earlier slot."""
        time = FakeTime()
        lim = limiter(time, rate=1.0)
        times: list[float] = []
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(acquirer(lim, time, times))
            await time.run(until=T0 + 0.5)  # one went through at 0; three wait for 1, 2, 3
            lim.pause_until(T0 + 10)
            await time.run()
        assert sorted(times) == [0.0, 10.0, 11.0, 12.0]

    async def test_slots_after_the_deadline_are_kept(self) -> None:
        """Only slots before the deadline move; later ones stay, so the schedule barely shifts."""
        time = FakeTime()
        lim = limiter(time, rate=1.0)
        times: list[float] = []
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(acquirer(lim, time, times))
            await time.run(until=T0 + 0.5)  # slots 0 (gone), 1, 2, 3, 4
            lim.pause_until(T0 + 2)
            await time.run()
        assert sorted(times) == [0.0, 2.0, 3.0, 4.0, 5.0]

    async def test_pause_extended_while_waiting(self) -> None:
        """A second, later deadline moves waiters again; an earlier one is ignored."""
        time = FakeTime()
        lim = limiter(time, rate=1.0)
        lim.pause_until(T0 + 5)
        times: list[float] = []
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(acquirer(lim, time, times))
            await time.run(until=T0 + 1)
            lim.pause_until(T0 + 8)
            lim.pause_until(T0 + 6)
            assert lim.paused_until == T0 + 8
            await time.run()
        assert sorted(times) == [8.0, 9.0]

    async def test_calls_after_the_pause_follow_the_rate(self) -> None:
        """After a pause ends the bucket refills from the deadline on: no burst has built up."""
        time = FakeTime()
        lim = limiter(time, rate=2.0)
        lim.pause_until(T0 + 3)
        time.now = T0 + 3.25
        assert await acquire_times(lim, time, 3) == [3.25, 3.75, 4.25]

    async def test_unlimited_limiter_honours_pause(self) -> None:
        """``rate=None`` still waits for a pause, waiting acquirers included."""
        time = FakeTime()
        lim = limiter(time, rate=None)
        lim.pause_until(T0 + 3)
        times: list[float] = []
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(acquirer(lim, time, times))
            await time.run(until=T0 + 1)
            lim.pause_until(T0 + 7)
            await time.run()
        assert times == [7.0, 7.0, 7.0]


class TestStall:
    async def test_no_catch_up_burst_after_a_stall(self) -> None:
        """Waiters whose slots passed during an event-loop stall go out spaced, not at once."""
        time = FakeTime()
        lim = limiter(time, 10.0)
        times: list[float] = []
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(acquirer(lim, time, times))
            await settle()  # the first went at once; four sleep until their slots
            time.now = T0 + 1.0  # the loop stalled for a second: every slot has passed
            await time.run()
        assert times == pytest.approx([0.0, 1.0, 1.1, 1.2, 1.3])

    async def test_burst_is_still_allowed_after_a_stall(self) -> None:
        """With burst=3, the bucket refilled during the stall: three go, no more."""
        time = FakeTime()
        lim = limiter(time, 10.0, burst=3)
        times: list[float] = []
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(acquirer(lim, time, times))
            await settle()
            time.now = T0 + 1.0
            await time.run()
            for _ in range(3):
                tg.start_soon(acquirer(lim, time, times))
            await time.run()
        assert sorted(times) == pytest.approx([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.3])


class TestCancellation:
    async def test_cancelled_waiter_slot_goes_to_next_acquirer(self) -> None:
        """A cancelled waiter hands its slot on; the others keep theirs."""
        time = FakeTime()
        lim = limiter(time, rate=1.0)
        times: list[float] = []
        cancelled: list[bool] = []

        async def cancellable(scope: anyio.CancelScope) -> None:
            with scope:
                await lim.acquire()
            cancelled.append(scope.cancelled_caught)

        async with anyio.create_task_group() as tg:
            await lim.acquire()  # slot 0
            scope = anyio.CancelScope()
            tg.start_soon(cancellable, scope)  # slot 1
            await settle()
            tg.start_soon(acquirer(lim, time, times))  # slot 2
            await time.run(until=T0 + 0.5)
            scope.cancel()
            await time.run(until=T0 + 0.5)
            tg.start_soon(acquirer(lim, time, times))  # takes slot 1
            await time.run(until=T0 + 0.5)
            tg.start_soon(acquirer(lim, time, times))  # slot 3
            await time.run()
        assert cancelled == [True]
        assert sorted(times) == [1.0, 2.0, 3.0]

    async def test_all_waiters_cancelled_leave_no_backlog(self) -> None:
        """Cancelling every waiter does not push later calls behind their slots."""
        time = FakeTime()
        lim = limiter(time, rate=1.0)
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(lim.acquire)
            await time.run(until=T0 + 0.5)
            tg.cancel_scope.cancel()
        assert await acquire_times(lim, time, 2) == [1.0, 2.0]

    async def test_unused_slot_is_lost_not_a_burst(self) -> None:
        """A handed-back slot nobody takes in time expires instead of allowing a burst."""
        time = FakeTime()
        lim = limiter(time, rate=1.0)
        times: list[float] = []
        async with anyio.create_task_group() as tg:
            await lim.acquire()  # slot 0
            scope = anyio.CancelScope()

            async def cancellable() -> None:
                with scope:
                    await lim.acquire()  # slot 1

            tg.start_soon(cancellable)
            await settle()
            tg.start_soon(acquirer(lim, time, times))  # slot 2
            await time.run(until=T0 + 0.5)
            scope.cancel()
            await time.run(until=T0 + 1.5)
            tg.start_soon(acquirer(lim, time, times))
            await time.run()
        assert sorted(times) == [2.0, 3.0]

    async def test_cancelled_before_an_immediate_slot(self) -> None:
        """An acquire cancelled at once still checkpoints, and its slot is reused."""
        time = FakeTime()
        lim = limiter(time, rate=1.0)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await lim.acquire()
        assert scope.cancelled_caught
        assert await acquire_times(lim, time, 2) == [0.0, 1.0]


class TestProperties:
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    @settings(max_examples=40, deadline=None)
    @given(
        rate=st.sampled_from([0.5, 1.0, 4.0, 10.0]),
        burst=st.integers(1, 4),
        events=st.lists(
            st.tuples(
                st.floats(0, 10, allow_nan=False),
                st.sampled_from(["arrive", "arrive", "arrive", "cancel", "pause"]),
                st.integers(0, 30),
            ),
            max_size=30,
        ),
    )
    def test_never_faster_than_rate_never_during_pause(
        self, backend: str, rate: float, burst: int, events: list[tuple[float, str, int]]
    ) -> None:
        """Under any mix of arrivals, cancellations and pauses the GCRA bound holds,
        no call goes through during a pause, and every waiter not cancelled gets through."""
        done: list[float] = []
        pauses: list[tuple[float, float]] = []
        outcome = {"arrived": 0, "cancelled": 0}

        async def scenario() -> None:
            time = FakeTime()
            lim = limiter(time, rate, burst)
            scopes: list[anyio.CancelScope] = []

            async def task(scope: anyio.CancelScope) -> None:
                with scope:
                    await lim.acquire()
                    done.append(time.now)
                outcome["cancelled"] += scope.cancelled_caught

            async with anyio.create_task_group() as tg:
                for at, kind, value in sorted(events):
                    await time.run(until=T0 + at)
                    if kind == "arrive":
                        outcome["arrived"] += 1
                        scopes.append(anyio.CancelScope())
                        tg.start_soon(task, scopes[-1])
                    elif kind == "cancel" and scopes:
                        scopes[value % len(scopes)].cancel()
                    elif kind == "pause":
                        lim.pause_until(time.now + value / 3)
                        pauses.append((time.now, time.now + value / 3))
                await time.run()

        anyio.run(scenario, backend=backend)
        assert len(done) + outcome["cancelled"] == outcome["arrived"]
        done.sort()
        interval = 1 / rate
        for i in range(len(done)):  # k + 1 calls span at least (k + 1 - burst) intervals
            for k in range(burst, len(done) - i):
                assert done[i + k] - done[i] >= (k + 1 - burst) * interval - 1e-9
        for set_at, deadline in pauses:
            assert not [t for t in done if set_at < t < deadline]
