"""How the engine treats httpx errors: HTTP status, ``Retry-After``, Google's 403s."""

from __future__ import annotations

import calendar
import email.utils
import socket
import time
from typing import Any

import httpx
import pytest

from synctree.aio import Sent, Verdict, classify
from synctree.aio.http import classify_error, classify_response, parse_retry_after

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


class TestClassifyError:
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
        ],
        ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
    )
    def test_transient_errors(self, exc: BaseException, sent: Sent) -> None:
        """Connection errors and timeouts are retryable; ``sent``: may the server have acted.

        A server that cannot be reached at all is, once the retries are spent, ``fatal``.
        """
        fatal = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        verdict = Verdict(True, sent, None, False, type(exc).__name__, fatal)
        assert classify_error(exc) == verdict
        assert classify(exc) == verdict  # the engine asks this connector by name

    @pytest.mark.parametrize(
        "exc",
        [
            httpx.LocalProtocolError("bad request"),
            httpx.UnsupportedProtocol("ftp"),
            httpx.TooManyRedirects("loop"),
            httpx.DecodingError("gzip"),
            httpx.InvalidURL("::"),
        ],
        ids=lambda exc: type(exc).__name__,
    )
    def test_other_httpx_errors_are_permanent(self, exc: BaseException) -> None:
        """Bad requests are not retried: the connector has no verdict, the engine's is no."""
        assert classify_error(exc) is None
        assert classify(exc) == Verdict(False, "maybe", None, False, type(exc).__name__)

    def test_real_connection_refused(self) -> None:
        """A real refused connection surfaces as ``httpx.ConnectError``: not sent, retryable,
        and fatal for the destination once the retries are spent."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(httpx.ConnectError) as info:
            httpx.get(f"http://127.0.0.1:{port}/")
        assert classify(info.value) == Verdict(True, "no", None, False, "ConnectError", True)
