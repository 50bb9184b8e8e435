"""A real HTTP server with a small JSON users API, for end-to-end tests and the benchmark.

``make_app()`` builds the API (rate limit, latency, seeded faults); ``serve(app)`` runs it
with uvicorn on loopback in a background thread and yields its base URL::

    api = make_app(rate=20.0, fault_rate=0.1, seed=1)
    with serve(api) as base_url:
        httpx.post(f"{base_url}/users", json={"id": "1", "name": "Ann"})
        api.stats()["creates"]   # {"1": 1}

Endpoints: ``GET /users?page=&per_page=`` (``{"users", "page", "total", "next",
"next_cursor"}``, headers ``X-Total-Count`` and ``Link: <...>; rel="next"``), also as
``?offset=&limit=`` and ``?cursor=&per_page=`` (the cursor is an offset),
``GET|PATCH|DELETE /users/{id}``, ``POST /users`` (201; 409 if the id exists),
``GET /stats`` (see :meth:`FakeUsersAPI.stats`) and ``POST /faults`` (``{"faults": [...]}``
queues faults for the next API calls). Only ``/users`` calls count, are limited and fail.

Faults: ``"500"``, ``"502"``, ``"503"``, ``"504"`` answer that status; ``"drop_before"``
closes the connection without a response and without doing anything; ``"drop_after"`` does
the work (a create is applied), then closes the connection without a response. A client
sees a drop as ``httpx.RemoteProtocolError``.

More kinds (:data:`MORE_FAULTS`, not drawn unless named in ``faults``): ``"429"`` answers 429
without ``Retry-After``; ``"429_seconds"`` and ``"429_date"`` with ``Retry-After`` as
delay-seconds or as an HTTP-date, ``fault_retry_after`` seconds ahead; ``"slow"`` waits
``slow`` seconds, then does the work and answers (past a client's timeout, it is done
anyway); ``"malformed"`` does the work, then answers its status with a truncated JSON body
(200 in place of 204). The server can also demand ``Authorization: Bearer <token>``.

A short listing: with ``list_limit`` set, ``GET /users`` lists only the first that many
users (later pages come back empty) while ``total``, ``X-Total-Count`` and the next links
still count them all, as an API whose listing broke off would.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import math
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

__all__ = ["ALL_FAULTS", "FAULTS", "MORE_FAULTS", "NO_FAULT", "FakeUsersAPI", "make_app", "serve"]

FAULTS = ("500", "502", "503", "504", "drop_before", "drop_after")
MORE_FAULTS = ("429", "429_seconds", "429_date", "slow", "malformed")
ALL_FAULTS = FAULTS + MORE_FAULTS
#: For :meth:`FakeUsersAPI.force_faults`: let this call through.
NO_FAULT = "none"


class _Dropped:
    """Returned by the ASGI app to make uvicorn close the connection without a response."""

    def __repr__(self) -> str:
        return "<dropped connection>"


# uvicorn closes the transport, sending nothing, when an ASGI app returns something other
# than None (its "ASGI callable should return None" check); that is our dropped connection.
_DROPPED = _Dropped()


class _TokenBucket:
    """Server-side limit: ``rate`` tokens per second, holding at most ``capacity``."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class FakeUsersAPI:
    """The users API as a raw ASGI app: counting, limiting and faults wrap a Starlette app."""

    def __init__(
        self,
        *,
        rate: float | None = None,
        tolerance: float = 0.05,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        faults: Sequence[str] = FAULTS,
        seed: int = 0,
        users: Iterable[Mapping[str, Any]] = (),
        unique: bool = True,
        fractional_retry_after: bool = False,
        fault_retry_after: int = 1,
        slow: float = 1.0,
        token: str | None = None,
        list_limit: int | None = None,
    ) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"'rate' must be > 0, got {rate!r}")
        if not 0 <= fault_rate <= 1:
            raise ValueError(f"'fault_rate' must be between 0 and 1, got {fault_rate!r}")
        if unknown := set(faults) - set(ALL_FAULTS):
            raise ValueError(f"'faults' has unknown kinds {sorted(unknown)}; known: {ALL_FAULTS}")
        if not (isinstance(fault_retry_after, int) and fault_retry_after >= 0):
            raise ValueError(f"'fault_retry_after' must be an int >= 0, got {fault_retry_after!r}")
        if not slow >= 0:
            raise ValueError(f"'slow' must be >= 0, got {slow!r}")
        # The bucket holds one token plus ``tolerance`` seconds' worth: a client spacing its
        # calls exactly at ``rate`` gets through despite network jitter, a burst does not.
        self._bucket = None if rate is None else _TokenBucket(rate, 1 + rate * tolerance)
        self._latency = latency
        self._fault_rate = fault_rate
        self._faults = tuple(faults)
        self._random = random.Random(seed)
        self._unique = unique
        self._fractional_retry_after = fractional_retry_after
        self._fault_retry_after = fault_retry_after
        self._slow = slow
        self._token = token
        #: List only the first this many users (a short listing); may be set at any time.
        self.list_limit = list_limit
        self._lock = threading.Lock()  # the server thread writes, tests read
        self._forced: list[str] = []
        self.users: dict[str, dict[str, Any]] = {}
        for user in users:
            self.users[str(user["id"])] = dict(user)
        self._calls = 0
        self._throttled = 0
        self._fault_counts: Counter[str] = Counter()
        self._creates: Counter[str] = Counter()
        self._updates = 0
        self._deletes = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._app = Starlette(
            routes=[
                Route("/users", self._list_users, methods=["GET"]),
                Route("/users", self._create_user, methods=["POST"]),
                Route("/users/{id}", self._get_user, methods=["GET"]),
                Route("/users/{id}", self._update_user, methods=["PATCH"]),
                Route("/users/{id}", self._delete_user, methods=["DELETE"]),
                Route("/stats", self._stats, methods=["GET"]),
                Route("/faults", self._force_faults, methods=["POST"]),
            ]
        )

    def stats(self) -> dict[str, Any]:
        """Counters so far: what a test checks after a run."""
        with self._lock:
            return {
                "calls": self._calls,  # /users calls received, throttled and failed included
                "throttled": self._throttled,  # 429 answers
                "faults": dict(self._fault_counts),
                "creates": dict(self._creates),  # creates applied per id: 2 means applied twice
                "updates": self._updates,
                "deletes": self._deletes,
                "users": len(self.users),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }

    def force_faults(self, *kinds: str) -> None:
        """Make the next API calls fail with these faults, in order, whatever the fault rate.

        :data:`NO_FAULT` lets one call through, so a fault can be aimed at a later call.
        """
        if unknown := set(kinds) - {*ALL_FAULTS, NO_FAULT}:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {ALL_FAULTS}")
        with self._lock:
            self._forced.extend(kinds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Serve one request; returns ``_DROPPED`` to drop the connection (see above)."""
        if scope["type"] != "http" or not scope["path"].startswith("/users"):
            return await self._app(scope, receive, send)
        with self._lock:
            self._calls += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self._token is not None and not self._authorized(scope):
                await JSONResponse({"error": "unauthorized"}, 401)(scope, receive, send)
                return None
            wait = 0.0 if self._bucket is None else self._bucket.take()
            if wait:
                with self._lock:
                    self._throttled += 1
                response = JSONResponse(
                    {"error": "rate limit exceeded"},
                    status_code=429,
                    headers={"Retry-After": self._format_retry_after(wait)},
                )
                await response(scope, receive, send)
                return None
            fault = self._pick_fault()
            if self._latency:
                await anyio.sleep(self._latency)
            if fault == "drop_before":
                # Read the whole request first: closing with unread bytes (or before they
                # arrive) makes the kernel send a reset, which clients see as a ReadError.
                await _drain(receive)
                return _DROPPED
            if fault == "drop_after":
                await self._app(scope, receive, _discard)
                return _DROPPED
            if fault is not None and fault.startswith("429"):
                await self._throttle(fault)(scope, receive, send)
                return None
            if fault == "slow":
                # Read the request first: the work is done even if the client gives up.
                receive = await _buffered(receive)
                await anyio.sleep(self._slow)
                fault = None
            if fault == "malformed":
                await self._malformed(scope, receive, send)
                return None
            if fault is not None:
                await JSONResponse({"error": f"fault {fault}"}, int(fault))(scope, receive, send)
                return None
            await self._app(scope, receive, send)
            return None
        finally:
            with self._lock:
                self._in_flight -= 1

    def _authorized(self, scope: Scope) -> bool:
        expected = f"Bearer {self._token}".encode()
        return any(k == b"authorization" and v == expected for k, v in scope["headers"])

    def _throttle(self, fault: str) -> Response:
        headers = {}
        if fault == "429_seconds":
            headers["Retry-After"] = str(self._fault_retry_after)
        elif fault == "429_date":
            when = time.time() + self._fault_retry_after
            headers["Retry-After"] = email.utils.formatdate(when, usegmt=True)
        return JSONResponse({"error": "slow down"}, 429, headers=headers)

    async def _malformed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Do the work, then answer its status with the JSON body cut in half."""
        sent: list[Message] = []

        async def keep(message: Message) -> None:
            sent.append(message)

        await self._app(scope, receive, keep)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        broken = body[: len(body) // 2] if len(body) > 1 else b'{"error": '
        response = Response(broken, 200 if status == 204 else status, media_type="application/json")
        await response(scope, receive, send)

    def _pick_fault(self) -> str | None:
        with self._lock:
            if self._forced:
                fault: str | None = self._forced.pop(0)
                if fault == NO_FAULT:
                    return None
            elif self._fault_rate and self._random.random() < self._fault_rate:
                fault = self._random.choice(self._faults)
            else:
                fault = None
            if fault is not None:
                self._fault_counts[fault] += 1
            return fault

    def _format_retry_after(self, wait: float) -> str:
        if self._fractional_retry_after:
            return f"{wait:.3f}"
        return str(max(1, math.ceil(wait)))  # RFC 9110 delay-seconds are whole numbers

    async def _list_users(self, request: Request) -> Response:
        query = request.query_params
        try:
            per_page = int(query.get("per_page", query.get("limit", "50")))
            page = int(query.get("page", "1"))
            if "offset" in query or "cursor" in query:
                start = int(query.get("offset", query.get("cursor", "0")))
            else:
                start = (page - 1) * per_page
        except ValueError:
            return JSONResponse({"error": "page, per_page and offset must be integers"}, 400)
        if page < 1 or start < 0 or not 1 <= per_page <= 1000:
            return JSONResponse({"error": "page >= 1, offset >= 0, 1 <= per_page <= 1000"}, 400)
        with self._lock:
            users = list(self.users.values())
            listed = users if self.list_limit is None else users[: self.list_limit]
        chunk = listed[start : start + per_page]
        more = start + per_page < len(users)  # the total counts every user, listed or not
        if "offset" in query:
            following = {"offset": start + per_page, "limit": per_page}
        elif "cursor" in query:
            following = {"cursor": start + per_page, "per_page": per_page}
        else:
            following = {"page": page + 1, "per_page": per_page}
        next_url = str(request.url.include_query_params(**following))
        headers = {"X-Total-Count": str(len(users))}
        if more:
            headers["Link"] = f'<{next_url}>; rel="next"'
        body = {
            "users": chunk,
            "page": page,
            "total": len(users),
            "next": next_url if more else None,
            "next_cursor": str(start + per_page) if more else None,
        }
        return JSONResponse(body, headers=headers)

    async def _create_user(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None or not isinstance(body.get("id"), str) or not body["id"]:
            return JSONResponse({"error": "a JSON object with a string 'id' is required"}, 422)
        with self._lock:
            if self._unique and body["id"] in self.users:
                return JSONResponse({"error": f"user {body['id']!r} exists"}, 409)
            self.users[body["id"]] = body
            self._creates[body["id"]] += 1
        return JSONResponse(body, 201)

    async def _get_user(self, request: Request) -> Response:
        user = self.users.get(request.path_params["id"])
        if user is None:
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse(user)

    async def _update_user(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return JSONResponse({"error": "a JSON object is required"}, 422)
        with self._lock:
            user = self.users.get(request.path_params["id"])
            if user is None:
                return JSONResponse({"error": "not found"}, 404)
            user.update({k: v for k, v in body.items() if k != "id"})
            self._updates += 1
            return JSONResponse(dict(user))

    async def _delete_user(self, request: Request) -> Response:
        with self._lock:
            if self.users.pop(request.path_params["id"], None) is None:
                return JSONResponse({"error": "not found"}, 404)
            self._deletes += 1
        return Response(status_code=204)

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _force_faults(self, request: Request) -> Response:
        body = await _json_object(request)
        kinds = body.get("faults") if body is not None else None
        if not isinstance(kinds, list) or not all(isinstance(kind, str) for kind in kinds):
            return JSONResponse({"error": "expected {'faults': [kind, ...]}"}, 422)
        try:
            self.force_faults(*kinds)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 422)
        return Response(status_code=204)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _drain(receive: Receive) -> None:
    """Read the request body to its end."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request now; the returned ``receive`` replays it."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return replay


async def _discard(message: Message) -> None:
    """An ASGI ``send`` that throws the response away (for ``drop_after``)."""


def make_app(
    *,
    rate: float | None = None,
    latency: float = 0.0,
    fault_rate: float = 0.0,
    seed: int = 0,
    tolerance: float = 0.05,
    faults: Sequence[str] = FAULTS,
    users: Iterable[Mapping[str, Any]] = (),
    unique: bool = True,
    fractional_retry_after: bool = False,
    fault_retry_after: int = 1,
    slow: float = 1.0,
    token: str | None = None,
    list_limit: int | None = None,
) -> FakeUsersAPI:
    """Build the users API.

    :param rate: requests per second before answering 429 (``None``: no limit).
    :param tolerance: seconds of burst the server tolerates above ``rate``.
    :param latency: seconds each non-throttled call takes.
    :param fault_rate: the share of calls that fail with one of ``faults`` (seeded).
    :param users: the users present at the start.
    :param unique: answer 409 to a create of an existing id; if false, apply it again.
    :param fractional_retry_after: send ``Retry-After: 0.050`` rather than whole seconds.
    :param fault_retry_after: whole seconds the ``429_seconds`` and ``429_date`` faults ask for.
    :param slow: seconds a ``slow`` fault waits before answering.
    :param token: if given, ``/users`` calls without ``Authorization: Bearer <token>`` get 401.
    :param list_limit: list only the first this many users, totals counting all (see above).
    """
    return FakeUsersAPI(
        rate=rate,
        tolerance=tolerance,
        latency=latency,
        fault_rate=fault_rate,
        faults=faults,
        seed=seed,
        users=users,
        unique=unique,
        fractional_retry_after=fractional_retry_after,
        fault_retry_after=fault_retry_after,
        slow=slow,
        token=token,
        list_limit=list_limit,
    )


class _HideDrops(logging.Filter):
    """Hide uvicorn's error line for the connections we drop on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(arg is _DROPPED for arg in args)


@contextlib.contextmanager
def serve(app: Any, *, timeout: float = 10.0) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections; without it
    # Nagle's algorithm meets delayed ACKs and every keep-alive request takes 40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        lifespan="off",
        log_level="warning",
        log_config=None,  # do not reconfigure logging for the whole process
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    hide = _HideDrops()
    logger = logging.getLogger("uvicorn.error")
    logger.addFilter(hide)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test HTTP server on port {port} did not start")
            time.sleep(0.001)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        logger.removeFilter(hide)
