"""Retrying one async call at a time with the runner's rules, for readers that fetch pages.

The runner retries template methods; readers (an HTTP API's pages) need the same rules
for a single call: :func:`classify` decides what is worth another attempt,
:class:`Backoff` how long to wait (failures spend the retry budget, throttles back off
even at ``Retry-After: 0`` and are bounded by time), and a throttling answer (HTTP 429)
pauses the :class:`RateLimiter` instead of sleeping on the side.
"""

from __future__ import annotations

import random as _random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from ._limiter import RateLimiter
from ._retry import Backoff, RetryPolicy, classify

__all__ = ["retrying"]

T = TypeVar("T")


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    limiter: RateLimiter,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    random: Callable[[], float] = _random.random,
    backoff: Backoff | None = None,
) -> T:
    """Await ``call()`` until it succeeds; retry what :func:`classify` calls retryable.

    Every attempt first takes a token from ``limiter``.  The last error is raised as is
    when it is permanent, or when :class:`Backoff` gives up (retries used up, throttled
    longer than ``policy.max_throttle_time``).  Only for idempotent calls (reads): a failed
    attempt may have reached the server.  Pass your own ``backoff`` (with a shared
    :class:`ThrottleBudget`, say) to read its ``stopped_because`` after a failure.
    """
    now = clock or anyio.current_time
    pause = sleep or anyio.sleep
    if backoff is None:
        backoff = Backoff(policy, random)
    while True:
        await limiter.acquire()
        try:
            return await call()
        except Exception as exc:
            verdict = classify(exc)
            delay = backoff.after(verdict)
            if delay is None:
                raise
        if verdict.throttle:
            # The next acquire() waits out the pause, as the runner's workers do.
            budget = backoff.budget
            limiter.pause_until(now() + delay if budget is None else budget.pause(now(), delay))
        elif delay > 0:
            await pause(delay)
