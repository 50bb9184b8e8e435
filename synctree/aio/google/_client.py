"""Calls to Google's APIs over httpx: one at a time, a page listing, or a batch.

Each call first takes a token of its API's quota (:class:`~._quota.Quota`; a batch of
n calls takes n) and a slot of its concurrency.  An error answer is a
:class:`~._errors.GoogleError` (the runner judges it: 429, 5xx and Google's rate-limit
403s are retried); a rate-limit answer also pauses the API's limiter; ``quotaExceeded``
(too many requests at once) lowers the API's concurrency and asks for another attempt.
In a batch, each failed part that is worth another attempt is retried alone.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anyio
import httpx

from synctree.aio import Retry, RetryPolicy, retrying
from synctree.aio.http import parse_retry_after

from ._batch import Call, decode_batch, encode_batch
from ._errors import GoogleError
from ._quota import Quota

__all__ = ["API_URLS", "BATCH_LIMITS", "GoogleClient"]

#: Where each API lives, and its batch endpoint (Google's per-API batch paths).
API_URLS = {
    "directory": "https://admin.googleapis.com",
    "classroom": "https://classroom.googleapis.com",
}
_BATCH_PATHS = {"directory": "/batch/admin/directory_v1", "classroom": "/batch/classroom/v1"}
#: The most calls one batch may hold, per API (Google's documented limits).
BATCH_LIMITS = {"directory": 1000, "classroom": 50}

_THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RESOURCE_EXHAUSTED"})
_RETRY_ALONE = frozenset({429, 500, 502, 503, 504})


class GoogleClient:
    """The HTTP side of the connector: URLs, credentials, quota, batches.

    :param auth: the credentials (a ``synctree.aio.http.GoogleServiceAccount``, any
        :class:`httpx.Auth`), or ``None`` when ``client`` carries them.
    :param client: an :class:`httpx.AsyncClient` to use (tests inject one); otherwise
        one is made per run and closed after.
    :param base_url: one URL for every API (an emulator); else each API's own.
    """

    def __init__(
        self,
        *,
        auth: httpx.Auth | None = None,
        client: httpx.AsyncClient | None = None,
        base_url: str | None = None,
        quota: Quota,
        timeout: float = 60.0,
        retries: int = 5,
    ) -> None:
        if auth is not None and not isinstance(auth, httpx.Auth):
            raise ValueError(f"'auth' must be an httpx.Auth (credentials), got {auth!r}")
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise ValueError(f"'client' must be an httpx.AsyncClient, got {client!r}")
        if base_url is not None and not (isinstance(base_url, str) and "://" in base_url):
            raise ValueError(f"'base_url' must be a URL, got {base_url!r}")
        self.auth = auth
        self.quota = quota
        self.urls = {api: (base_url or url).rstrip("/") for api, url in API_URLS.items()}
        self._given = client
        self._http = client
        self._timeout = timeout
        self.policy = RetryPolicy(retries=retries)

    def __repr__(self) -> str:
        return f"<GoogleClient {self.urls['directory']!r}>"

    async def __aenter__(self) -> GoogleClient:
        if self._http is None:
            self._http = httpx.AsyncClient(auth=self.auth, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._given is None and self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("the Google client is open only inside 'async with'")
        return self._http

    # -- one call --------------------------------------------------------------------

    async def send(self, api: str, call: Call, *, acquire: bool = True) -> Any:
        """One call: its JSON answer (``None`` when empty), or a :class:`GoogleError`."""
        if acquire:
            await self.quota.acquire(api)
        async with self.quota.slots(api):
            response = await self.http.request(
                call.method,
                self.urls[api] + call.path,
                params=list(call.params),
                content=None if call.body is None else json.dumps(call.body).encode(),
                headers={"Content-Type": "application/json"} if call.body is not None else None,
                auth=self.auth
                if self._given is not None and self.auth is not None
                else httpx.USE_CLIENT_DEFAULT,
            )
        return self._answer(api, response)

    def _answer(self, api: str, response: httpx.Response) -> Any:
        if response.status_code < 400:
            return response.json() if response.content.strip() else None
        raise self._error(api, GoogleError(response))

    def _error(self, api: str, error: GoogleError) -> Exception:
        """The error to raise for ``error``; pauses or narrows the API on Google's signals."""
        if error.status == 403 and error.reason == "quotaExceeded":
            now = self.quota.crowded(api)
            retry = Retry(after=1.0, reason=f"{api} quotaExceeded: concurrency lowered to {now}")
            retry.__cause__ = error
            return retry
        if error.status == 429 or (error.status == 403 and error.reason in _THROTTLE_REASONS):
            wait = parse_retry_after(error.response.headers.get("Retry-After"))
            self.quota.pause(api, 1.0 if wait is None else wait)
        return error

    async def call(self, api: str, call: Call) -> Any:
        """One call retried by the runner's rules (for reads and for a batch's failed parts)."""

        async def once() -> Any:
            return await self.send(api, call, acquire=False)

        return await retrying(once, policy=self.policy, limiter=self.quota.limiter(api))

    async def pages(
        self, api: str, path: str, params: Sequence[tuple[str, str]], items: str
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The items of a listing, a page at a time, following ``nextPageToken``."""
        token: str | None = None
        while True:
            query = tuple(params) + ((("pageToken", token),) if token else ())
            body = await self.call(api, Call("GET", path, query))
            found = body.get(items) if isinstance(body, dict) else None
            if found is not None and not isinstance(found, list):
                raise ValueError(f"the listing {path} gave {items!r} that is not a list")
            yield list(found or ())
            token = body.get("nextPageToken") if isinstance(body, dict) else None
            if not token:
                return

    # -- batches ---------------------------------------------------------------------

    async def batch(self, api: str, calls: Sequence[Call]) -> list[Any]:
        """Every call's JSON answer or its :class:`GoogleError`, in order.

        The calls go as Google batches (at most :data:`BATCH_LIMITS` each, and at most
        the quota's headroom, :meth:`Quota.headroom`); a part that
        failed for a reason worth another attempt (rate limit, 5xx) is retried alone.
        One call goes as a plain request.
        """
        limit = min(BATCH_LIMITS[api], self.quota.headroom(api))
        chunks = [list(calls[at : at + limit]) for at in range(0, len(calls), limit)]
        if len(chunks) <= 1:
            return await self._one_batch(api, chunks[0]) if chunks else []
        # Several batches go concurrently (within the API's concurrency), so the quota's
        # tokens for the next are taken while the last is in flight: no idle round trips.
        answers: list[list[Any]] = [[] for _ in chunks]

        async def one(index: int) -> None:
            answers[index] = await self._one_batch(api, chunks[index])

        async with anyio.create_task_group() as group:
            for index in range(len(chunks)):
                group.start_soon(one, index)
        return [answer for chunk in answers for answer in chunk]

    async def _one_batch(self, api: str, calls: list[Call]) -> list[Any]:
        if len(calls) == 1:
            return [await self._alone(api, calls[0])]
        await self.quota.acquire(api, len(calls))
        content_type, body = encode_batch(calls)
        url = self.urls[api] + _BATCH_PATHS[api]
        async with self.quota.slots(api):
            response = await self.http.post(
                url, content=body, headers={"Content-Type": content_type}
            )
        if response.status_code >= 400:
            raise self._error(api, GoogleError(response))
        answers = decode_batch(
            response.headers.get("content-type", ""), response.content, len(calls)
        )
        out: list[Any] = []
        for call, answer in zip(calls, answers, strict=True):
            if answer is None:
                out.append(await self._alone(api, call))
                continue
            status, payload = answer
            if status < 400:
                out.append(json.loads(payload) if payload.strip() else None)
                continue
            request = httpx.Request(call.method, self.urls[api] + call.target())
            error = GoogleError(httpx.Response(status, content=payload, request=request))
            raised = self._error(api, error)
            if raised is not error or status in _RETRY_ALONE or error.reason in _THROTTLE_REASONS:
                out.append(await self._alone(api, call))  # worth another attempt, alone
            else:
                out.append(error)
        return out

    async def _alone(self, api: str, call: Call) -> Any:
        """One call, retried by the runner's rules; its answer or its final error."""
        try:
            return await self.call(api, call)
        except GoogleError as exc:
            return exc


@dataclasses.dataclass(frozen=True, slots=True)
class Connection:
    """What a reader or a template makes its clients from: one quota, checked options."""

    quota: Quota
    auth: httpx.Auth | None
    client: httpx.AsyncClient | None
    base_url: str | None

    @classmethod
    def checked(
        cls,
        *,
        auth: httpx.Auth | None,
        client: httpx.AsyncClient | None,
        base_url: str | None,
        quotas: Mapping[str, int] | None,
        rate: str | float,
        window: float,
        concurrency: int,
    ) -> Connection:
        """The connection, its options checked now (not at the first call)."""
        quota = Quota(
            quotas, rate=rate, window=window, key=base_url or "google", concurrency=concurrency
        )
        connection = cls(quota, auth, client, base_url)
        connection.new_client()
        return connection

    def new_client(self) -> GoogleClient:
        """A new client on this connection's quota (open it with ``async with``)."""
        return GoogleClient(
            auth=self.auth, client=self.client, base_url=self.base_url, quota=self.quota
        )
