"""What every token grant shares: :class:`TokenAuth`, an :class:`httpx.Auth` that fetches an
access token, caches it, refreshes it before it expires and once after a 401.

The token request is yielded from the auth flow, so it goes out through the client that
sends the request it authorizes (its transport, proxies and timeouts; a test's
``ASGITransport``).  Concurrent requests share one token fetch: the flow holds a lock
(:class:`anyio.Lock` in async flows, so it works on asyncio and trio; a
:class:`threading.Lock` in sync ones) while it fetches, and whoever waited finds the new
token cached.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass

import anyio
import httpx

from synctree._util.redact import redact_url

from ._errors import AuthError

__all__ = ["TokenAuth"]


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float

    def __repr__(self) -> str:  # never the token
        return f"<token refreshed at {self.refresh_at}>"


class TokenAuth(httpx.Auth):
    """Base of the token grants: a subclass builds the token request (:meth:`token_request`).

    :param margin: seconds before ``expires_in`` runs out that the token is refreshed (at
        half its lifetime instead, for a token that lives less than twice this).
    :param clock: the current time in seconds (default :func:`time.time`), for tests.
    """

    def __init__(self, *, margin: float = 60.0, clock: Callable[[], float] | None = None) -> None:
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin >= 0:
            raise ValueError(f"'margin' must be a number of seconds >= 0, got {margin!r}")
        self._margin = float(margin)
        self._clock = time.time if clock is None else clock
        self._token: _Token | None = None
        self._thread_lock = threading.Lock()
        self._task_lock = anyio.Lock()

    # -- what a grant defines -------------------------------------------------------------

    @property
    def token_url(self) -> str:
        """The token endpoint's URL."""
        raise NotImplementedError

    def token_request(self) -> httpx.Request:
        """A new request for a token."""
        raise NotImplementedError

    # -- the flows ------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget the cached token: the next request fetches a new one."""
        self._token = None

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        with self._thread_lock:
            token = self._fresh()
            if token is None:
                answer = yield self.token_request()
                answer.read()
                token = self._accept(answer)
        response = yield self._authorized(request, token)
        if response.status_code != 401:
            return
        with self._thread_lock:
            renewed = self._renewed(token)
            if renewed is None:
                answer = yield self.token_request()
                answer.read()
                renewed = self._accept(answer)
        yield self._authorized(request, renewed)  # its answer stands, 401 or not

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._task_lock:
            token = self._fresh()
            if token is None:
                answer = yield self.token_request()
                await answer.aread()
                token = self._accept(answer)
        response = yield self._authorized(request, token)
        if response.status_code != 401:
            return
        async with self._task_lock:
            renewed = self._renewed(token)
            if renewed is None:
                answer = yield self.token_request()
                await answer.aread()
                renewed = self._accept(answer)
        yield self._authorized(request, renewed)

    # -- helpers --------------------------------------------------------------------------

    def _fresh(self) -> _Token | None:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token
        return None

    def _renewed(self, refused: _Token) -> _Token | None:
        """After ``refused`` got a 401: a token another request fetched since, if any."""
        if self._token is refused:
            self._token = None
        return self._fresh()

    @staticmethod
    def _authorized(request: httpx.Request, token: _Token) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {token.value}"
        return request

    def _accept(self, response: httpx.Response) -> _Token:
        """The token of a token response, cached; an :class:`AuthError` for anything else."""
        url = redact_url(self.token_url)
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status >= 400:
            problem = f"the token request was refused: HTTP {status}"
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                # RFC 6749 section 5.2: a code and a description, never a credential
                problem += f" {body['error']}"
                if isinstance(body.get("error_description"), str):
                    problem += f": {body['error_description'][:200]}"
            raise AuthError(problem, url=url, status=status)
        if not isinstance(body, dict):
            kind = response.headers.get("content-type", "no content type")
            raise AuthError(f"the token response is not a JSON object ({kind})", url=url)
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise AuthError("the token response has no 'access_token'", url=url)
        kind = body.get("token_type", "bearer")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise AuthError(f"the token type is {kind!r}, not 'bearer'", url=url)
        lifetime = body.get("expires_in")
        if isinstance(lifetime, str) and lifetime.strip().isdigit():
            lifetime = int(lifetime)  # some servers send it as a string
        if lifetime is None:
            refresh_at = math.inf  # no expiry given: used until a 401
        elif isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime < 0:
            raise AuthError(f"the token's 'expires_in' is not seconds: {lifetime!r}", url=url)
        else:
            refresh_at = self._clock() + lifetime - min(self._margin, lifetime / 2)
        token = _Token(value, refresh_at)
        self._token = token
        return token

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_url(self.token_url)!r}>"
