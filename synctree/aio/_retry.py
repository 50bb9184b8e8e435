"""Retry decisions for the async runner: backoff policy, ``Retry-After`` and error classification.

Nothing here sleeps or draws random numbers on its own: the runner passes ``random`` in
and does the waiting, so tests stay exact.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeAlias

import httpx

__all__ = [
    "Backoff",
    "Retry",
    "RetryPolicy",
    "Sent",
    "ThrottleBudget",
    "Verdict",
    "classify",
    "classify_response",
    "parse_retry_after",
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
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# Google APIs answer 403 (not 429) when a rate quota runs out; these mark that case.
_GOOGLE_THROTTLE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "RESOURCE_EXHAUSTED"}
)


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


# httpx transport errors by whether the request can have reached the server.
_NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_UNREACHABLE: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout)
_MAYBE_SENT: tuple[type[Exception], ...] = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


def classify(exc: BaseException) -> Verdict:
    """Judge whether the failure ``exc`` is worth another attempt.

    A :class:`Retry` is always retryable with ``sent='no'``: the method asked for another
    attempt itself, so it vouches that repeating is safe whatever the action's idempotency.
    Unknown errors (template bugs, cancellation) are permanent with ``sent='maybe'``.
    """
    name = type(exc).__name__
    if isinstance(exc, Retry):
        reason = f"Retry: {exc.reason}" if exc.reason else "Retry"
        return Verdict(True, "no", exc.after, exc.throttle, reason)
    if isinstance(exc, httpx.HTTPStatusError):
        verdict = classify_response(exc.response)
        return verdict or Verdict(False, "yes", reason=f"HTTP {exc.response.status_code}")
    if isinstance(exc, _UNREACHABLE):
        # Unreachable: worth retrying, but once the retries are spent the whole
        # destination is down, not this action.
        return Verdict(True, "no", reason=name, fatal=True)
    if isinstance(exc, _NOT_SENT):
        return Verdict(True, "no", reason=name)
    if isinstance(exc, _MAYBE_SENT):
        return Verdict(True, "maybe", reason=name)
    # anyio.fail_after (the per-attempt timeout) raises the built-in TimeoutError.
    if isinstance(exc, TimeoutError):
        return Verdict(True, "maybe", reason=name)
    if isinstance(exc, ConnectionRefusedError):
        return Verdict(True, "no", reason=name, fatal=True)
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe
        return Verdict(True, "maybe", reason=name)
    return Verdict(False, "maybe", reason=name)


def classify_response(response: httpx.Response) -> Verdict | None:
    """Judge an HTTP response without raising; ``None`` when it is not an error (< 400)."""
    status = response.status_code
    if status < 400:
        return None
    reason = f"HTTP {status}"
    if status in _RETRYABLE_STATUS:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        throttle = status == 429 or (status == 503 and retry_after is not None)
        # 429 and 503 refuse the request unprocessed (RFC 6585 section 4, RFC 9110 section
        # 15.6.4), so even a create can be repeated; after a 500, 502 or 504 it cannot.
        sent: Sent = "no" if status in (429, 503) else "yes"
        return Verdict(True, sent, retry_after, throttle, reason)
    if status == 403:
        google_reason = _google_throttle_reason(response)
        if google_reason is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return Verdict(True, "no", retry_after, True, f"{reason} {google_reason}")
    if status in (401, 403):
        # Bad or missing credentials: every other call would get the same answer.
        return Verdict(False, "yes", reason=reason, fatal=True)
    return Verdict(False, "yes", reason=reason)


def _google_throttle_reason(response: httpx.Response) -> str | None:
    """The rate-limit reason of a Google API error body, if it is one."""
    try:
        body: Any = json.loads(response.content)
    except (httpx.ResponseNotRead, ValueError):  # a stream not read, not JSON
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    details = error.get("errors")
    candidates = [error.get("status")]
    if isinstance(details, list):
        candidates += [item.get("reason") for item in details if isinstance(item, dict)]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate in _GOOGLE_THROTTLE_REASONS:
            return candidate
    return None


_DELAY_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 section 10.2.3), or ``None``.

    Both forms are read: delay-seconds (decimals tolerated) and an HTTP-date, measured
    from ``now`` (a unix timestamp; default :func:`time.time`). A date in the past gives
    ``0.0``; a negative or unreadable value gives ``None``.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" and obsolete zones: RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
