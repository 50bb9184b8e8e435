"""The rate limiter of the async runner: GCRA spacing plus a shared pause for throttling."""

from __future__ import annotations

import heapq
import math
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel

__all__ = ["RateLimiter"]


class RateLimiter:
    """Let calls through at most ``rate`` per second, ``burst`` at once; ``rate=None`` is unlimited.

    The algorithm is GCRA, the generic cell rate algorithm in its virtual scheduling form
    (ITU-T I.371; also aiometer ``meters.py``): ``tat`` is the theoretical arrival time of the
    next call, a call at ``t`` conforms from ``tat - tau`` on, with emission interval
    ``T = 1 / rate`` and tolerance ``tau = (burst - 1) * T``, and then ``tat = max(tat, t) + T``.

    Each waiter reserves its slot atomically (no await between reading the clock and
    moving ``tat``), then sleeps until it, so N concurrent acquirers get N distinct slots,
    in arrival order.

    Cancellation: a waiter cancelled before its slot hands the slot back, and the next
    acquirer that can still use it in time takes it instead of reserving a new one, so
    cancelled waiters never shift the schedule; a slot nobody takes in time is lost
    (never turned into a burst).

    :param clock: the clock in seconds; default :func:`anyio.current_time`.
    :param sleep: sleeps for a delay in seconds; default :func:`anyio.sleep`.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        burst: int = 1,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if rate is not None and not rate > 0:  # also rejects NaN
            raise ValueError(f"'rate' must be > 0, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int):
            raise TypeError(f"'burst' must be an int, got {burst!r}")
        if burst < 1:
            raise ValueError(f"'burst' must be >= 1, got {burst!r}")
        self._rate = rate
        self._burst = burst
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._tat = -math.inf  # theoretical arrival time of the next call
        self._sent = -math.inf  # the same for the calls really let through (see _emit)
        self._paused_until = -math.inf
        self._free: list[float] = []  # min-heap of slots handed back by cancelled waiters

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self._rate!r}, burst={self._burst!r})"

    @property
    def rate(self) -> float | None:
        """Calls per second, or ``None`` when unlimited."""
        return self._rate

    @property
    def burst(self) -> int:
        """How many calls may go at once after an idle spell."""
        return self._burst

    @property
    def paused_until(self) -> float:
        """The clock time before which no call goes through (``-inf`` if never paused)."""
        return self._paused_until

    def pause_until(self, deadline: float) -> None:
        """Hold every acquirer, waiting ones too, until ``deadline``; then resume at the rate.

        Meant for a throttle signal such as HTTP 429 with ``Retry-After``. A deadline
        earlier than the current pause is ignored; no burst is allowed right after a pause.
        """
        if math.isnan(deadline):
            raise ValueError("'deadline' must be a number, got nan")
        if deadline <= self._paused_until:
            return
        self._paused_until = deadline
        # The bucket is empty at the deadline: the first call goes then, the next T later.
        self._tat = max(self._tat, deadline + self._tolerance)
        self._sent = max(self._sent, deadline + self._tolerance)

    async def acquire(self) -> None:
        """Wait until a call is allowed."""
        clock = self._clock or anyio.current_time
        sleep = self._sleep or anyio.sleep
        while True:
            now = clock()
            slot = self._reserve(now)
            try:
                if slot > now:
                    await sleep(slot - now)
                else:
                    await anyio.lowlevel.checkpoint()
            except BaseException:  # cancelled (or the sleep failed): hand the slot back
                if self._rate is not None:
                    heapq.heappush(self._free, slot)
                raise
            if slot >= self._paused_until:
                if self._rate is not None:
                    await self._emit(clock, sleep)
                return
            # A pause came in while we slept: our slot is void, take a new one after it.

    async def _emit(
        self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        """Space the calls actually let through, as a second GCRA on real times.

        Reserved slots order the waiters; but when the event loop stalls, every
        waiter whose slot passed meanwhile wakes at once, and a server counting
        real arrivals would see a burst (and answer 429).  So a call also waits
        for the spacing after the calls really let through: no catch-up burst.
        """
        now = clock()
        send_at = max(now, self._sent - self._tolerance, self._paused_until)
        self._sent = max(self._sent, send_at) + self._interval
        if send_at > now:
            await sleep(send_at - now)

    def _reserve(self, now: float) -> float:
        """Book the earliest slot from ``now`` on and return it; never awaits."""
        start = max(now, self._paused_until)
        if self._rate is None:
            return start
        free = self._free
        while free and free[0] < start:  # expired, or voided by a pause
            heapq.heappop(free)
        slot = max(start, self._tat - self._tolerance)
        if free and free[0] <= slot:
            return heapq.heappop(free)
        self._tat = max(self._tat, slot) + self._interval
        return slot
