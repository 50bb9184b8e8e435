from __future__ import annotations

import dataclasses
import math
import pickle
import random
import statistics
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synctree.aio import Backoff, Retry, RetryPolicy, Sent, Verdict, classify

pytestmark = pytest.mark.anyio


class TestRetryException:
    def test_fields(self) -> None:
        """``Retry`` carries the wait, the reason and whether to throttle everyone."""
        exc = Retry(2.5, "body said busy", throttle=True)
        assert (exc.after, exc.reason, exc.throttle) == (2.5, "body said busy", True)
        assert str(exc) == "body said busy"
        assert repr(exc) == "Retry(after=2.5, reason='body said busy', throttle=True)"

    def test_pickles(self) -> None:
        """A ``Retry`` survives pickling (e.g. crossing a process boundary)."""
        exc = pickle.loads(pickle.dumps(Retry(1.5, "busy", throttle=True)))
        assert (exc.after, exc.reason, exc.throttle, str(exc)) == (1.5, "busy", True, "busy")

    def test_defaults(self) -> None:
        """A bare ``Retry()`` leaves the wait to the backoff."""
        exc = Retry()
        assert (exc.after, exc.reason, exc.throttle) == (None, "", False)

    @pytest.mark.parametrize("after", [-1.0, math.nan])
    def test_after_must_not_be_negative(self, after: float) -> None:
        """A negative or NaN wait is refused, naming the parameter."""
        with pytest.raises(ValueError, match="'after' must be >= 0"):
            Retry(after)


class TestRetryPolicy:
    def test_defaults(self) -> None:
        """Five retries after the first attempt, 1 s base, 32 s cap, 300 s max Retry-After."""
        assert RetryPolicy() == RetryPolicy(retries=5, base=1.0, cap=32.0, max_retry_after=300.0)

    def test_frozen(self) -> None:
        """A policy is immutable."""
        with pytest.raises(dataclasses.FrozenInstanceError):
            RetryPolicy().retries = 3  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"retries": -1}, "retries"),
            ({"base": -0.1}, "base"),
            ({"cap": math.nan}, "cap"),
            ({"max_retry_after": -1}, "max_retry_after"),
        ],
    )
    def test_validation(self, kwargs: dict[str, Any], name: str) -> None:
        """Out-of-range settings are refused with a message naming the parameter."""
        with pytest.raises(ValueError, match=f"'{name}' must be >= 0"):
            RetryPolicy(**kwargs)

    @pytest.mark.parametrize("retries", [1.5, True])
    def test_retries_must_be_an_int(self, retries: object) -> None:
        """``retries`` counts attempts, so it must be an int."""
        with pytest.raises(TypeError, match="'retries' must be an int"):
            RetryPolicy(retries=retries)  # type: ignore[arg-type]

    def test_zero_is_allowed(self) -> None:
        """No retries and no waiting is a valid policy (handy in tests)."""
        policy = RetryPolicy(retries=0, base=0, cap=0)
        assert policy.backoff(1, lambda: 0.5) == 0.0

    def test_backoff_doubles_up_to_the_cap(self) -> None:
        """The ceiling is base * 2**(attempt-1), capped; ``random`` scales it."""
        policy = RetryPolicy(base=0.5, cap=10.0)
        top = 1 - 2**-53  # the largest value random.random() returns
        ceilings = [policy.backoff(attempt, lambda: top) for attempt in range(1, 8)]
        assert ceilings == pytest.approx([0.5, 1, 2, 4, 8, 10, 10])
        assert policy.backoff(3, lambda: 0.0) == 0.0
        assert policy.backoff(3, lambda: 0.25) == 0.5

    def test_backoff_huge_attempt(self) -> None:
        """A huge attempt number does not overflow; the cap holds."""
        assert RetryPolicy().backoff(10_000, lambda: 0.5) == 16.0

    def test_backoff_attempt_starts_at_one(self) -> None:
        """Attempt 0 is the first try, which has no backoff."""
        with pytest.raises(ValueError, match="'attempt' must be >= 1"):
            RetryPolicy().backoff(0, random.random)

    def test_backoff_distribution_is_full_jitter(self) -> None:
        """Seeded draws are uniform over [0, ceiling): mean, spread and bounds fit."""
        rng = random.Random(1234)
        policy = RetryPolicy(base=1.0, cap=32.0)
        for attempt, ceiling in [(3, 4.0), (10, 32.0)]:
            draws = [policy.backoff(attempt, rng.random) for _ in range(20_000)]
            assert 0 <= min(draws) and max(draws) < ceiling
            assert statistics.fmean(draws) == pytest.approx(ceiling / 2, rel=0.02)
            quartiles = statistics.quantiles(draws, n=4)
            assert quartiles == pytest.approx([ceiling / 4, ceiling / 2, 3 * ceiling / 4], rel=0.04)

    @given(
        attempt=st.integers(1, 2000),
        u=st.floats(0, 1, exclude_max=True),
        base=st.floats(0, 100),
        cap=st.floats(0, 1000),
    )
    def test_backoff_bounds(self, attempt: int, u: float, base: float, cap: float) -> None:
        """For any settings the backoff lies in [0, min(cap, base * 2**(attempt-1))]."""
        value = RetryPolicy(base=base, cap=cap).backoff(attempt, lambda: u)
        assert 0 <= value <= min(cap, base * 2.0 ** min(attempt - 1, 1000))

    def test_delay(self) -> None:
        """Retry-After wins within ``max_retry_after``; beyond it, or out of retries, give up."""
        policy = RetryPolicy(retries=2, base=1.0, max_retry_after=60)
        assert policy.delay(1, None, lambda: 0.5) == 0.5
        assert policy.delay(2, None, lambda: 0.5) == 1.0
        assert policy.delay(2, 42.0, lambda: 0.5) == 42.0
        assert policy.delay(1, 60.0, lambda: 0.5) == 60.0
        assert policy.delay(1, 61.0, lambda: 0.5) is None
        assert policy.delay(3, None, lambda: 0.5) is None
        assert RetryPolicy(retries=0).delay(1, 1.0, random.random) is None


class TestClassify:
    @pytest.mark.parametrize(
        ("exc", "sent"),
        [
            (TimeoutError(), "maybe"),
            (ConnectionRefusedError(111, "Connection refused"), "no"),
            (ConnectionResetError(104, "Connection reset by peer"), "maybe"),
            (ConnectionAbortedError(), "maybe"),
            (BrokenPipeError(), "maybe"),
        ],
        ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
    )
    def test_transient_errors(self, exc: BaseException, sent: Sent) -> None:
        """Connection errors and timeouts are retryable; ``sent``: may the server have acted.

        A server that cannot be reached at all is, once the retries are spent, ``fatal``.
        """
        fatal = isinstance(exc, ConnectionRefusedError)
        assert classify(exc) == Verdict(True, sent, None, False, type(exc).__name__, fatal)

    @pytest.mark.parametrize(
        "exc",
        [
            OSError(13, "Permission denied"),
            ValueError("template bug"),
            KeyError("id"),
            KeyboardInterrupt(),
        ],
        ids=lambda exc: type(exc).__name__,
    )
    def test_everything_else_is_permanent(self, exc: BaseException) -> None:
        """Bugs, bad requests and interrupts are not retried."""
        assert classify(exc) == Verdict(False, "maybe", None, False, type(exc).__name__)

    def test_retry(self) -> None:
        """A ``Retry`` is retryable whatever the action; it vouches that repeating is safe."""
        assert classify(Retry(3, "body: try later")) == Verdict(
            True, "no", 3, False, "Retry: body: try later"
        )
        assert classify(Retry()) == Verdict(True, "no", None, False, "Retry")
        assert classify(Retry(throttle=True)).throttle

    async def test_fail_after_timeout(self) -> None:
        """The per-attempt timeout of ``anyio.fail_after`` is retryable on both backends."""
        with pytest.raises(TimeoutError) as info:
            with anyio.fail_after(0):
                await anyio.sleep(1)
        assert classify(info.value) == Verdict(True, "maybe", None, False, "TimeoutError")

    def test_verdict_is_frozen(self) -> None:
        """A verdict is an immutable record."""
        with pytest.raises(dataclasses.FrozenInstanceError):
            Verdict(True, "no").retryable = False  # type: ignore[misc]


class TestBackoff:
    def test_failures_spend_the_budget(self) -> None:
        """Failures wait the backoff and stop after ``retries``, saying why."""
        backoff = Backoff(RetryPolicy(retries=2, base=1.0), lambda: 0.5)
        failure = Verdict(True, "yes", reason="HTTP 500")
        assert [backoff.after(failure), backoff.after(failure)] == [0.5, 1.0]
        assert backoff.after(failure) is None
        assert backoff.stopped_because == "gave up after 3 failed attempts"

    def test_throttles_do_not_spend_the_budget(self) -> None:
        """Throttles wait their Retry-After without using up the retries (until, deep in a
        streak, the throttle floor outgrows it)."""
        backoff = Backoff(RetryPolicy(retries=1, max_throttle_time=100), lambda: 0.5)
        throttle = Verdict(True, "no", retry_after=2.0, throttle=True, reason="HTTP 429")
        assert [backoff.after(throttle) for _ in range(6)] == [2.0] * 6
        assert backoff.after(Verdict(True, "yes", reason="HTTP 500")) == 0.5

    def test_throttled_time_is_bounded(self) -> None:
        """A call stops once it has waited ``max_throttle_time`` seconds on throttles."""
        backoff = Backoff(RetryPolicy(max_throttle_time=10), lambda: 0.5)
        throttle = Verdict(True, "no", retry_after=4.0, throttle=True)
        assert [backoff.after(throttle) for _ in range(3)] == [4.0, 4.0, 4.0]
        assert backoff.after(throttle) is None
        assert "throttled 3 times for 12.0s" in backoff.stopped_because
        assert "max_throttle_time=10" in backoff.stopped_because

    def test_zero_retry_after_still_backs_off(self) -> None:
        """``Retry-After: 0`` again and again: the waits double and the time budget runs out."""
        backoff = Backoff(RetryPolicy(max_throttle_time=300), lambda: 0.5)
        throttle = Verdict(True, "no", retry_after=0.0, throttle=True)
        waits = []
        while (delay := backoff.after(throttle)) is not None:
            waits.append(delay)
        assert waits[:6] == [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0]
        assert max(waits) == 32.0 and len(waits) < 20

    def test_retry_after_is_capped(self) -> None:
        """A Retry-After longer than ``max_retry_after`` is capped, not obeyed."""
        backoff = Backoff(RetryPolicy(max_retry_after=30), lambda: 0.5)
        assert backoff.after(Verdict(True, "yes", retry_after=3600.0, reason="HTTP 503")) == 30

    def test_permanent(self) -> None:
        """A permanent error stops at once."""
        backoff = Backoff(RetryPolicy(), lambda: 0.5)
        assert backoff.after(Verdict(False, "yes", reason="HTTP 400")) is None
        assert backoff.stopped_because == "not retryable"
