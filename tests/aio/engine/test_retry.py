from __future__ import annotations

import calendar
import dataclasses
import email.utils
import math
import pickle
import random
import socket
import statistics
import time
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synctree.aio import Backoff, Retry, RetryPolicy, Sent, Verdict, classify
from synctree.aio.http import classify_response, parse_retry_after

pytestmark = pytest.mark.anyio

URL = "https://api.example.test/users"


def respond(
    status: int,
    *,
    headers: dict[str, str] | None = None,
    json: Any = None,
    content: bytes | None = None,
) -> httpx.Response:
    """A response as a client really receives it, through ``httpx.MockTransport``."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, json=json, content=content)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return client.get(URL)


def status_error(response: httpx.Response) -> httpx.HTTPStatusError:
    """The error ``raise_for_status()`` raises for ``response``."""
    with pytest.raises(httpx.HTTPStatusError) as info:
        response.raise_for_status()
    return info.value


def google_403(reason: str | None = None, status: str | None = None) -> httpx.Response:
    """A Google API error body, as the Admin SDK and Classroom APIs send it."""
    error: dict[str, Any] = {"code": 403, "message": "Rate Limit Exceeded"}
    if reason is not None:
        error["errors"] = [{"domain": "usageLimits", "reason": reason, "message": "..."}]
    if status is not None:
        error["status"] = status
    return respond(403, json={"error": error})


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


NOW = float(calendar.timegm((2015, 10, 21, 7, 28, 0)))


class TestParseRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("120", 120.0),
            ("0", 0.0),
            ("  7 ", 7.0),
            ("1.5", 1.5),  # not RFC, but servers send it
            ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # IMF-fixdate
            ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),  # obsolete RFC 850
            ("Wed Oct 21 07:30:00 2015", 120.0),  # obsolete asctime
            ("Wed, 21 Oct 2015 07:28:30 -0000", 30.0),
            ("Wed, 21 Oct 2015 09:28:30 +0200", 30.0),
            ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # in the past: go now
        ],
    )
    def test_valid(self, value: str, expected: float) -> None:
        """Both RFC 9110 forms give seconds from ``now``."""
        assert parse_retry_after(value, now=NOW) == expected

    @pytest.mark.parametrize(
        "value",
        [None, "", "-5", "soon", "1e3", "inf", "nan", "0x10", "1_000", "9" * 400, "Wed, 99 Oct"],
    )
    def test_invalid(self, value: str | None) -> None:
        """Missing, negative or unreadable values give ``None``."""
        assert parse_retry_after(value, now=NOW) is None

    def test_date_from_the_real_clock(self) -> None:
        """Without ``now`` a date is measured from the current time."""
        header = email.utils.formatdate(time.time() + 3600, usegmt=True)
        seconds = parse_retry_after(header)
        assert seconds is not None and 3500 < seconds <= 3600


class TestClassifyResponse:
    @pytest.mark.parametrize("status", [200, 201, 204, 301, 304])
    def test_success_is_none(self, status: int) -> None:
        """A 2xx or 3xx response is not an error."""
        assert classify_response(respond(status)) is None

    @pytest.mark.parametrize("status", [500, 502, 504])
    def test_server_errors_are_retryable(self, status: int) -> None:
        """500, 502 and 504 are worth retrying, but the change may be done (``sent='yes'``)."""
        assert classify_response(respond(status)) == Verdict(
            True, "yes", None, False, f"HTTP {status}"
        )

    @pytest.mark.parametrize("status", [400, 404, 409, 410, 422, 501, 505])
    def test_other_errors_are_permanent(self, status: int) -> None:
        """Other 4xx and 5xx answers will not change on a retry."""
        verdict = classify_response(respond(status, headers={"Retry-After": "5"}))
        assert verdict == Verdict(False, "yes", None, False, f"HTTP {status}")

    @pytest.mark.parametrize("status", [401, 403])
    def test_auth_errors_are_fatal(self, status: int) -> None:
        """401 and 403 are permanent and fail the destination as a whole (bad credentials)."""
        verdict = classify_response(respond(status, headers={"Retry-After": "5"}))
        assert verdict == Verdict(False, "yes", None, False, f"HTTP {status}", fatal=True)

    def test_429_throttles(self) -> None:
        """429 pauses every worker (Retry-After seconds if given); it was refused unprocessed."""
        assert classify_response(respond(429, headers={"Retry-After": "7"})) == Verdict(
            True, "no", 7.0, True, "HTTP 429"
        )
        assert classify_response(respond(429)) == Verdict(True, "no", None, True, "HTTP 429")

    def test_429_with_date(self) -> None:
        """An HTTP-date Retry-After becomes seconds from now."""
        header = email.utils.formatdate(time.time() + 100, usegmt=True)
        verdict = classify_response(respond(429, headers={"Retry-After": header}))
        assert verdict is not None and verdict.retry_after is not None
        assert 90 < verdict.retry_after <= 100

    def test_503_throttles_only_with_retry_after(self) -> None:
        """503 is a throttle signal when it says how long to wait, else a plain failure."""
        assert classify_response(respond(503, headers={"Retry-After": "3"})) == Verdict(
            True, "no", 3.0, True, "HTTP 503"
        )
        assert classify_response(respond(503)) == Verdict(True, "no", None, False, "HTTP 503")
        assert classify_response(respond(503, headers={"Retry-After": "later"})) == Verdict(
            True, "no", None, False, "HTTP 503"
        )

    def test_500_honours_retry_after(self) -> None:
        """A Retry-After on another retryable status is kept, without throttling."""
        verdict = classify_response(respond(502, headers={"Retry-After": "4"}))
        assert verdict == Verdict(True, "yes", 4.0, False, "HTTP 502")

    @pytest.mark.parametrize(
        ("response", "reason"),
        [
            (lambda: google_403(reason="rateLimitExceeded"), "rateLimitExceeded"),
            (lambda: google_403(reason="userRateLimitExceeded"), "userRateLimitExceeded"),
            (lambda: google_403(status="RESOURCE_EXHAUSTED"), "RESOURCE_EXHAUSTED"),
            (
                lambda: google_403(reason="forbidden", status="RESOURCE_EXHAUSTED"),
                "RESOURCE_EXHAUSTED",
            ),
        ],
    )
    def test_google_403_rate_limit_throttles(self, response: Any, reason: str) -> None:
        """Google's 403 with a rate-limit reason is a throttle, not a permission error."""
        assert classify_response(response()) == Verdict(
            True, "no", None, True, f"HTTP 403 {reason}"
        )

    @pytest.mark.parametrize(
        "response",
        [
            lambda: google_403(reason="forbidden"),
            lambda: google_403(reason="dailyLimitExceeded"),  # a daily quota: waiting won't help
            lambda: google_403(status="PERMISSION_DENIED"),
            lambda: respond(403, json={"error": "rateLimitExceeded"}),
            lambda: respond(403, json={"error": {"errors": "rateLimitExceeded"}}),
            lambda: respond(403, json={"error": {"errors": [{"reason": 5}, "x"]}}),
            lambda: respond(403, json=["rateLimitExceeded"]),
            lambda: respond(403, content=b"<html>rateLimitExceeded</html>"),
            lambda: respond(403, content=b"\xff\xfe"),
        ],
    )
    def test_other_403_is_permanent(self, response: Any) -> None:
        """Any other 403 body, JSON or not, is a permanent failure of the whole destination."""
        assert classify_response(response()) == Verdict(
            False, "yes", None, False, "HTTP 403", fatal=True
        )

    def test_unread_stream_is_not_read(self) -> None:
        """A streamed 403 whose body was not read is judged by status alone, without raising."""

        def handler(request: httpx.Request) -> httpx.Response:
            body = b'{"error": {"status": "RESOURCE_EXHAUSTED"}}'
            return httpx.Response(403, stream=httpx.ByteStream(body))

        with (
            httpx.Client(transport=httpx.MockTransport(handler)) as client,
            client.stream("GET", URL) as response,
        ):
            assert classify_response(response) == Verdict(
                False, "yes", None, False, "HTTP 403", fatal=True
            )
            response.read()
            assert classify_response(response) == Verdict(
                True, "no", None, True, "HTTP 403 RESOURCE_EXHAUSTED"
            )


class TestClassify:
    def test_status_error_uses_the_response(self) -> None:
        """``HTTPStatusError`` is judged by its response."""
        error = status_error(respond(429, headers={"Retry-After": "2"}))
        assert classify(error) == Verdict(True, "no", 2.0, True, "HTTP 429")
        assert classify(status_error(google_403(reason="rateLimitExceeded"))).throttle
        assert classify(status_error(respond(404))) == Verdict(
            False, "yes", None, False, "HTTP 404"
        )

    def test_status_error_on_a_redirect(self) -> None:
        """``raise_for_status`` also raises for 3xx: that is permanent, not a crash."""
        error = status_error(respond(302, headers={"Location": "/elsewhere"}))
        assert classify(error) == Verdict(False, "yes", None, False, "HTTP 302")

    @pytest.mark.parametrize(
        ("exc", "sent"),
        [
            (httpx.ConnectError("refused"), "no"),
            (httpx.ConnectTimeout("slow"), "no"),
            (httpx.PoolTimeout("busy"), "no"),
            (httpx.ReadTimeout("slow"), "maybe"),
            (httpx.WriteTimeout("slow"), "maybe"),
            (httpx.ReadError("reset"), "maybe"),
            (httpx.WriteError("broken"), "maybe"),
            (httpx.RemoteProtocolError("Server disconnected"), "maybe"),
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
        fatal = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | ConnectionRefusedError)
        assert classify(exc) == Verdict(True, sent, None, False, type(exc).__name__, fatal)

    @pytest.mark.parametrize(
        "exc",
        [
            httpx.LocalProtocolError("bad request"),
            httpx.UnsupportedProtocol("ftp"),
            httpx.TooManyRedirects("loop"),
            httpx.DecodingError("gzip"),
            httpx.InvalidURL("::"),
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

    def test_real_connection_refused(self) -> None:
        """A real refused connection surfaces as ``httpx.ConnectError``: not sent, retryable,
        and fatal for the destination once the retries are spent."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(httpx.ConnectError) as info:
            httpx.get(f"http://127.0.0.1:{port}/")
        assert classify(info.value) == Verdict(True, "no", None, False, "ConnectError", True)

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
