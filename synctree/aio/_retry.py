"""Retry decisions for the async runner: the backoff policy and error classification.

Nothing here sleeps or draws random numbers on its own: the runner passes ``random`` in
and does the waiting, so tests stay exact.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = [
    "Backoff",
    "Retry",
    "RetryPolicy",
    "Sent",
    "ThrottleBudget",
    "Verdict",
    "classify",
]

Sent: TypeAlias = Literal["no", "maybe", "yes"]
"""Whether a failed request may have taken effect on the server, which decides whether a
non-idempotent call (a create) can be repeated safely.

``"no"``: surely not; it never reached the server (connect errors, pool timeouts) or the
server refused it unprocessed (429, 503, Google's rate-limit 403, a :class:`Retry`).
``"maybe"``: unknown; the connection broke or timed out mid-request.
``"yes"``: the server got it and answered; behind a 500, 502 or 504 the change may be done.
"""

#: The shortest wait a throttle gets, so even ``base=0`` cannot make a busy loop.
_MIN_THROTTLE_WAIT = 0.001


class Retry(Exception):
    """Raised by a template method to ask for another attempt, e.g. for an error in a JSON body.

    :param after: seconds to wait before the next attempt; ``None`` uses the backoff.
    :param throttle: also pause every worker (the API said "slow down").
    """

    def __init__(
        self, after: float | None = None, reason: str = "", *, throttle: bool = False
    ) -> None:
        if after is not None and not after >= 0:  # also rejects NaN
            raise ValueError(f"'after' must be >= 0, got {after!r}")
        super().__init__(*([reason] if reason else []))
        self.after = after
        self.reason = reason
        self.throttle = throttle

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.after, self.reason), self.__dict__

    def __repr__(self) -> str:
        return f"Retry(after={self.after!r}, reason={self.reason!r}, throttle={self.throttle!r})"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry: ``retries`` attempts after the first, full-jitter backoff.

    :param max_retry_after: the longest wait a server's ``Retry-After`` gets (longer
        requests are capped).
    :param max_throttle_time: the most seconds one call spends waiting out throttles
        (429 and kin) in all; it gives up once it has waited that long.
    """

    retries: int = 5
    base: float = 1.0
    cap: float = 32.0
    max_retry_after: float = 300.0
    max_throttle_time: float = 300.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError(f"'retries' must be an int, got {self.retries!r}")
        if self.retries < 0:
            raise ValueError(f"'retries' must be >= 0, got {self.retries!r}")
        for name in ("base", "cap", "max_retry_after", "max_throttle_time"):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"{name!r} must be >= 0, got {value!r}")

    def backoff(self, attempt: int, random: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry).

        Full jitter: ``uniform(0, min(cap, base * 2 ** (attempt - 1)))``, from the AWS
        Architecture Blog post "Exponential Backoff And Jitter" (Marc Brooker, 2015).
        ``random`` returns a float in ``[0, 1)``, like :func:`random.random`.
        """
        if attempt < 1:
            raise ValueError(f"'attempt' must be >= 1, got {attempt!r}")
        # 2.0 ** 1024 overflows; far before that the cap has won anyway.
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt - 1, 1000))
        return random() * ceiling

    def throttle_floor(self, streak: int) -> float:
        """The least wait for the ``streak``-th throttle in a row of one call, whatever the
        server's ``Retry-After`` says (``0`` included): ``base * 2 ** (streak - 5)``,
        a sixteenth of ``base`` at first, doubling up to ``cap``, never under 1 ms.

        An honest ``Retry-After`` wins for the first few throttles; a server repeating
        "retry now" gets an exponential backoff, so a call runs out of
        ``max_throttle_time`` after a few dozen requests rather than thousands.
        """
        if streak < 1:
            raise ValueError(f"'streak' must be >= 1, got {streak!r}")
        return max(_MIN_THROTTLE_WAIT, min(self.cap, self.base * 2.0 ** min(streak - 5, 1000)))

    def delay(
        self, attempt: int, retry_after: float | None, random: Callable[[], float]
    ) -> float | None:
        """Seconds to wait before retry ``attempt``, or ``None`` to give up.

        The server's ``retry_after`` wins over the backoff; ``None`` comes back when the
        retries are used up or the server asks for more than ``max_retry_after``.
        """
        if attempt > self.retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(attempt, random)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a failure means for the runner.

    ``sent`` tells whether the request may have taken effect (see :data:`Sent`); ``throttle``
    asks to pause every worker, not just this one; ``reason`` is a short text for reports.
    ``fatal``: once the failure is final (at once, or after the retries), it is a failure
    of the destination as a whole (bad credentials, a table it cannot create, a server
    that refuses connections), not of this action: the runner stops the run.
    """

    retryable: bool
    sent: Sent
    retry_after: float | None = None
    throttle: bool = False
    reason: str = ""
    fatal: bool = False


class ThrottleBudget:
    """The throttle time of a whole run (or of a reader): how often, how long, how much allowed.

    Calls share one; each throttle pauses every worker, so the time counted is the
    wall-clock time the pauses add (overlapping pauses count once), not their sum.
    """

    __slots__ = ("count", "limit", "paused_until", "waited")

    def __init__(self, limit: float | None = None) -> None:
        if limit is not None and not limit >= 0:  # also rejects NaN
            raise ValueError(f"'limit' must be >= 0 or None, got {limit!r}")
        self.limit = limit
        self.count = 0
        self.waited = 0.0
        self.paused_until = -math.inf

    @property
    def exhausted(self) -> bool:
        """Whether the run has waited on throttles as long as it may."""
        return self.limit is not None and self.waited >= self.limit

    def pause(self, now: float, delay: float) -> float:
        """Count a throttle whose pause lasts ``delay`` seconds from ``now``; its deadline."""
        until = now + delay
        self.count += 1
        start = max(now, self.paused_until)
        if until > start:
            self.waited += until - start
            self.paused_until = until
        return until


class Backoff:
    """The retry state of one call: how long to wait after each failure, or when to stop.

    Failures spend the ``retries`` budget and wait the full-jitter backoff (or the
    server's ``Retry-After``, capped at ``max_retry_after``).  Throttles (HTTP 429
    and kin) are flow control, not failures: they do not spend the budget, but each
    waits at least :meth:`RetryPolicy.throttle_floor` (growing with the streak, even
    when the server says ``Retry-After: 0``), and a call gives up once it has waited
    ``max_throttle_time`` seconds on throttles, or once the run's ``budget`` is spent
    (``run_exhausted`` then tells the caller to stop the whole run).
    """

    __slots__ = (
        "budget",
        "failures",
        "policy",
        "random",
        "run_exhausted",
        "stopped_because",
        "throttled",
        "throttles",
    )

    def __init__(
        self,
        policy: RetryPolicy,
        random: Callable[[], float],
        budget: ThrottleBudget | None = None,
    ) -> None:
        self.policy = policy
        self.random = random
        self.budget = budget
        self.failures = 0
        self.throttles = 0
        self.throttled = 0.0
        self.stopped_because = ""
        self.run_exhausted = False

    def after(self, verdict: Verdict) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` (see ``stopped_because``)."""
        policy = self.policy
        if not verdict.retryable:
            self.stopped_because = "not retryable"
            return None
        if verdict.throttle:
            budget = self.budget
            if budget is not None and budget.exhausted:
                self.run_exhausted = True
                self.stopped_because = (
                    f"the run was throttled {budget.count} times for {budget.waited:.1f}s "
                    f"in all, past max_run_throttle_time={budget.limit:g}"
                )
                return None
            if self.throttled >= policy.max_throttle_time:
                self.stopped_because = (
                    f"throttled {self.throttles} times for {self.throttled:.1f}s, past "
                    f"max_throttle_time={policy.max_throttle_time:g}"
                )
                return None
            self.throttles += 1
            delay = verdict.retry_after
            if delay is None:
                delay = policy.backoff(min(self.throttles, 64), self.random)
            delay = min(max(delay, policy.throttle_floor(self.throttles)), policy.max_retry_after)
            self.throttled += delay
            return delay
        self.failures += 1
        if self.failures > policy.retries:
            self.stopped_because = f"gave up after {self.failures} failed attempts"
            return None
        if verdict.retry_after is not None:
            return min(verdict.retry_after, policy.max_retry_after)
        return policy.backoff(self.failures, self.random)


#: Connectors that judge the errors of their library, by the top-level package the
#: error's class comes from.  The engine names them and never imports them: one is
#: loaded only when an error of its library is met (so the library is loaded
#: already), as anyio loads its backends by name (anyio/_core/_eventloop.py).
_CONNECTORS = {"httpx": "synctree.aio.http"}


def classify(exc: BaseException) -> Verdict:
    """Judge whether the failure ``exc`` is worth another attempt.

    A :class:`Retry` is always retryable with ``sent='no'``: the method asked for another
    attempt itself, so it vouches that repeating is safe whatever the action's idempotency.
    An error of a connector's library (httpx) is judged by that connector
    (:func:`synctree.aio.http.classify_error`); the built-in timeouts and connection errors
    here.  Unknown errors (template bugs, cancellation) are permanent with ``sent='maybe'``.
    """
    if isinstance(exc, Retry):
        reason = f"Retry: {exc.reason}" if exc.reason else "Retry"
        return Verdict(True, "no", exc.after, exc.throttle, reason)
    for cls in type(exc).__mro__:
        connector = _CONNECTORS.get(cls.__module__.partition(".")[0])
        if connector is not None:
            verdict: Verdict | None = importlib.import_module(connector).classify_error(exc)
            if verdict is not None:
                return verdict
            break
    name = type(exc).__name__
    # anyio.fail_after (the per-attempt timeout) raises the built-in TimeoutError.
    if isinstance(exc, TimeoutError):
        return Verdict(True, "maybe", reason=name)
    if isinstance(exc, ConnectionRefusedError):
        return Verdict(True, "no", reason=name, fatal=True)
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe
        return Verdict(True, "maybe", reason=name)
    return Verdict(False, "maybe", reason=name)
