"""How the engine should treat an httpx error: HTTP status, ``Retry-After``, Google's 403s."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from synctree.aio import Verdict

from ._errors import AuthError

__all__ = ["classify_error", "classify_response", "parse_retry_after"]

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# Google APIs answer 403 (not 429) when a rate quota runs out; these mark that case.
_GOOGLE_THROTTLE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "RESOURCE_EXHAUSTED"}
)

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


def classify_error(exc: BaseException) -> Verdict | None:
    """The engine's verdict on an httpx error (``None``: not one this module knows).

    The engine calls it for every error raised from httpx (``synctree.aio``'s
    ``classify``), so a template written with plain httpx is retried alike.
    """
    name = type(exc).__name__
    if isinstance(exc, AuthError):
        # A token endpoint's 429/5xx is worth another attempt; anything else means the
        # credentials (or the endpoint) are wrong, and every other call would fail alike.
        reason = f"{name} HTTP {exc.status}" if exc.status is not None else name
        if exc.status in _RETRYABLE_STATUS:
            return Verdict(True, "no", throttle=exc.status == 429, reason=reason)
        return Verdict(False, "no", reason=reason, fatal=True)
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
    return None


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
        sent: Literal["no", "yes"] = "no" if status in (429, 503) else "yes"
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
