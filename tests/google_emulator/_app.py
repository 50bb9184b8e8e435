"""The emulator itself: in-memory Directory and Classroom state behind Starlette.

``GoogleEmulator(...).app`` is an ASGI app.  Every request is matched to a method of the
discovery documents and validated (:mod:`._discovery`) before a handler sees it; each
counts against its API's quota (a rolling window), and over the quota the answer is
Google's 403 ``rateLimitExceeded``; more requests in flight than ``max_concurrent``
answer 403 ``quotaExceeded``.  ``POST /batch/admin/directory_v1`` and
``/batch/classroom/v1`` take Google's multipart/mixed batches (1,000 and 50 parts at
most), each part validated, counted and answered on its own.  ``POST /token`` is the
OAuth token endpoint of the JWT-bearer grant: with ``public_key`` set, it verifies the
assertion's signature and every API call must carry a token it issued.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._batch import encode_responses, parse_batch
from ._discovery import ApiError, Method, load_api

__all__ = ["GoogleEmulator"]

_DIRECTORY_PREFIX = "/admin/directory/v1/"
_BATCH_LIMITS = {"directory": 1000, "classroom": 50}
_LOCAL_PART = re.compile(r"[a-z0-9](?:[a-z0-9._'-]*[a-z0-9_'-])?")
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class _Call:
    api: str
    method: Method
    params: dict[str, str]
    query: dict[str, Any]
    body: Any


@dataclass
class Stats:
    """What the emulator saw: per API, calls answered, throttled, their times."""

    calls: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    concurrency_refused: Counter[str] = field(default_factory=Counter)
    batches: Counter[str] = field(default_factory=Counter)
    parts: Counter[str] = field(default_factory=Counter)
    times: dict[str, list[float]] = field(
        default_factory=lambda: {"directory": [], "classroom": []}
    )
    tokens: int = 0
    max_in_flight: Counter[str] = field(default_factory=Counter)
    throttle_times: dict[str, list[float]] = field(
        default_factory=lambda: {"directory": [], "classroom": []}
    )


class GoogleEmulator:
    """An in-memory Google Workspace (Directory and Classroom APIs) for tests.

    :param domains: the domains users and groups may have.
    :param quota: requests per ``window`` seconds, per API (``directory``, ``classroom``).
    :param max_concurrent: requests in flight per API before 403 ``quotaExceeded``.
    :param public_key: PEM of the service account's key; ``None`` accepts any caller.
    """

    def __init__(
        self,
        *,
        domains: tuple[str, ...] = ("example.org",),
        admin: str | None = None,
        quota: dict[str, int] | None = None,
        window: float = 60.0,
        max_concurrent: dict[str, int] | None = None,
        public_key: str | None = None,
        latency: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.apis = {
            "directory": load_api("admin.directory_v1"),
            "classroom": load_api("classroom.v1"),
        }
        self.domains = tuple(d.lower() for d in domains)
        self.quota = {"directory": 2400, "classroom": 1200} if quota is None else dict(quota)
        self.window = window
        self.max_concurrent = dict(max_concurrent or {})
        self.public_key = public_key
        self.latency = latency
        self.clock = clock
        self.stats = Stats()
        self._recent: dict[str, deque[float]] = {"directory": deque(), "classroom": deque()}
        self._throttles: dict[str, list[tuple[int, str | None, float | None]]] = {
            "directory": [],
            "classroom": [],
        }
        self._throttle_after: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._tokens: set[str] = set()
        self._ids = itertools.count(100000000000000000001)
        self.users: dict[str, dict[str, Any]] = {}
        self.orgunits: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, dict[str, Any]]] = {}
        self.courses: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, str] = {}
        self.teachers: dict[str, set[str]] = {}
        self.students: dict[str, set[str]] = {}
        self._add_orgunit("/", "")
        admin = admin or f"admin@{self.domains[0]}"
        self._new_user(
            {
                "primaryEmail": admin,
                "name": {"givenName": "Admin", "familyName": "Istrator"},
                "orgUnitPath": "/",
            },
            is_admin=True,
        )
        self.admin = admin

    # -- ASGI ----------------------------------------------------------------------------

    @property
    def app(self) -> GoogleEmulator:
        """The ASGI app (the emulator itself)."""
        return self

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan and the like
            return
        request = Request(scope, receive)
        response = await self._respond(request)
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        path = request.url.path
        body = await request.body()
        if path == "/token" and request.method == "POST":
            return self._token(body)
        if path == "/_emulator/stats" and request.method == "GET":  # for the benchmark
            stats = self.stats
            return JSONResponse(
                {
                    "calls": stats.calls,
                    "throttled": stats.throttled,
                    "batches": stats.batches,
                    "parts": stats.parts,
                    "times": stats.times,
                    "quota": self.quota,
                    "window": self.window,
                }
            )
        try:
            self._authorise(request.headers.get("authorization"))
            if path.startswith("/batch"):
                return await self._batch(path, request.headers.get("content-type", ""), body)
            api = self._api_of(path)
            async with self._slot(api):
                status, answer = self._one(
                    api, request.method, path, list(parse_qsl(request.url.query, True)), body
                )
        except ApiError as exc:
            return JSONResponse(exc.body(), exc.code, headers=exc.headers)
        if answer is None:
            return Response(status_code=status)
        return JSONResponse(answer, status)

    def _api_of(self, path: str) -> str:
        if path.startswith(_DIRECTORY_PREFIX):
            return "directory"
        if path.startswith("/v1/"):
            return "classroom"
        raise ApiError(404, f"The requested URL {path} was not found on this server.", "notFound")

    def _authorise(self, header: str | None) -> None:
        if self.public_key is None:
            return
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or token not in self._tokens:
            raise ApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                "authError",
                "UNAUTHENTICATED",
            )

    def _token(self, body: bytes) -> Response:
        form = dict(parse_qsl(body.decode("utf-8"), True))
        if form.get("grant_type") != _JWT_BEARER or "assertion" not in form:
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if self.public_key is not None:
            from google.auth import jwt

            try:
                claims = jwt.decode(form["assertion"], certs=self.public_key, verify=True)
            except ValueError:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                    400,
                )
            if not claims.get("scope") or not claims.get("iss"):
                return JSONResponse({"error": "invalid_scope"}, 400)
        token = "ya29.emulator-" + secrets.token_urlsafe(24)
        self._tokens.add(token)
        self.stats.tokens += 1
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # -- one call, alone or as a batch part ----------------------------------------------

    def _one(
        self, api: str, http_method: str, path: str, query: list[tuple[str, str]], body: bytes
    ) -> tuple[int, Any]:
        spec = self.apis[api]
        method, params = spec.match(http_method, path)
        params = {k: unquote(v) for k, v in params.items()}
        typed = spec.check_query(method, query)
        payload: Any = None
        if body.strip():
            try:
                payload = json.loads(body)
            except ValueError:
                raise ApiError(400, "Invalid JSON payload received.", "parseError") from None
        if method.spec.get("request") is not None:
            spec.check_body(method, payload if payload is not None else {})
        self._count(api)
        self.stats.methods[f"{api}:{method.id}"] += 1
        handler = getattr(self, "_" + method.id.replace(".", "_"), None)
        if handler is None:
            raise ApiError(501, f"The emulator does not implement {method.id}.", "notImplemented")
        return handler(_Call(api, method, params, typed, payload))  # type: ignore[no-any-return]

    def throttle(
        self,
        api: str = "directory",
        *,
        times: int = 1,
        status: int = 403,
        reason: str | None = "userRateLimitExceeded",
        retry_after: float | None = None,
        after: int = 0,
    ) -> None:
        """Answer ``times`` calls of ``api`` (alone or batch parts), from the one after the
        next ``after``, with a rate limit: ``403 userRateLimitExceeded`` (or
        ``rateLimitExceeded``), or ``429``, with ``Retry-After`` when given (a whole
        answer's header; batch parts carry none)."""
        self._throttles[api] += [(status, reason, retry_after)] * times
        self._throttle_after[api] = after

    def _switched(self, api: str) -> None:
        if not self._throttles[api]:
            return
        if self._throttle_after.get(api, 0) > 0:
            self._throttle_after[api] -= 1
            return
        status, reason, retry_after = self._throttles[api].pop(0)
        self.stats.throttled[api] += 1
        self.stats.throttle_times[api].append(self.clock())
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        if status == 429:
            raise ApiError(
                429,
                "Resource has been exhausted (e.g. check quota).",
                reason or "rateLimitExceeded",
                "RESOURCE_EXHAUSTED",
                headers=headers,
            )
        raise ApiError(
            status,
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per "
            f"user' of service '{api}'.",
            reason,
            "PERMISSION_DENIED",
            headers=headers,
        )

    def _count(self, api: str) -> None:
        self._switched(api)
        now = self.clock()
        recent = self._recent[api]
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.quota[api]:
            self.stats.throttled[api] += 1
            reason = "rateLimitExceeded"
            raise ApiError(
                403,
                f"Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per "
                f"user' of service '{api}'.",
                reason,
                "PERMISSION_DENIED",
            )
        recent.append(now)
        self.stats.calls[api] += 1
        self.stats.times[api].append(now)

    @contextlib.asynccontextmanager
    async def _slot(self, api: str) -> AsyncIterator[None]:
        """One request in flight (``latency`` long): 403 quotaExceeded past ``max_concurrent``."""
        limit = self.max_concurrent.get(api)
        if limit is not None and self._in_flight[api] >= limit:
            self.stats.concurrency_refused[api] += 1
            raise ApiError(403, "Quota exceeded for concurrent requests.", "quotaExceeded")
        self._in_flight[api] += 1
        self.stats.max_in_flight[api] = max(self.stats.max_in_flight[api], self._in_flight[api])
        try:
            if self.latency:
                await anyio.sleep(self.latency)
            yield
        finally:
            self._in_flight[api] -= 1

    async def _batch(self, path: str, content_type: str, body: bytes) -> Response:
        if path in ("/batch/admin/directory_v1", "/batch/admin/directory/v1"):
            api = "directory"
        elif path in ("/batch/classroom/v1",):
            api = "classroom"
        else:
            raise ApiError(
                404, f"The requested URL {path} was not found on this server.", "notFound"
            )
        parts = parse_batch(content_type, body)
        if not parts:
            raise ApiError(400, "A batch request needs at least one part.", "badContent")
        if len(parts) > _BATCH_LIMITS[api]:
            raise ApiError(
                400,
                f"A batch request may hold at most {_BATCH_LIMITS[api]} calls.",
                "batchSizeTooLarge",
            )
        self.stats.batches[api] += 1
        self.stats.parts[api] += len(parts)
        answers = []
        for part in parts:
            target = urlsplit(part.target)
            try:
                if self._api_of(target.path) != api:
                    raise ApiError(400, "Batch parts must call the API of the batch.", "badRequest")
                status, answer = self._one(
                    api, part.method, target.path, list(parse_qsl(target.query, True)), part.body
                )
            except ApiError as exc:
                status, answer = exc.code, exc.body()
            answers.append((part.content_id, status, answer))
        async with self._slot(api):
            pass
        content, payload = encode_responses(answers)
        return Response(payload, 200, media_type=content)

    # -- helpers -------------------------------------------------------------------------

    def _id(self) -> str:
        return str(next(self._ids))

    @staticmethod
    def _page(
        items: list[Any], query: dict[str, Any], size_param: str, default: int, top: int
    ) -> tuple[list[Any], str | None]:
        size = query.get(size_param, default) or default
        if size < 1 or size > top:
            size = top if size > top else default
        token = query.get("pageToken")
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode())
            except ValueError:
                raise ApiError(400, "Invalid page token.", "invalid") from None
        end = start + size
        next_token = (
            base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
        )
        return items[start:end], next_token

    def _check_email(self, email: Any, what: str) -> str:
        if not isinstance(email, str) or "@" not in email:
            raise ApiError(400, f"Invalid Input: {what}", "invalid")
        local, _, domain = email.lower().rpartition("@")
        if domain not in self.domains or not _LOCAL_PART.fullmatch(local) or ".." in local:
            raise ApiError(400, f"Invalid Input: {what}", "invalid")
        return email.lower()

    def _email_taken(self, email: str) -> bool:
        email = email.lower()
        for user in self.users.values():
            if user["primaryEmail"] == email or email in user.get("aliases", ()):
                return True
        return any(group["email"] == email for group in self.groups.values())

    def _find_user(self, key: str) -> dict[str, Any]:
        key = key.lower()
        user = self.users.get(key)
        if user is not None:
            return user
        for user in self.users.values():
            if user["primaryEmail"] == key or key in user.get("aliases", ()):
                return user
        raise ApiError(404, "Resource Not Found: userKey", "notFound")

    def _add_orgunit(self, path: str, name: str) -> dict[str, Any]:
        parent = path.rsplit("/", 1)[0] or "/"
        unit = {
            "kind": "admin#directory#orgUnit",
            "name": name,
            "orgUnitPath": path,
            "orgUnitId": "id:" + self._id(),
            "parentOrgUnitPath": parent if path != "/" else "",
        }
        self.orgunits[path.lower()] = unit
        return unit

    def _new_user(self, body: dict[str, Any], *, is_admin: bool = False) -> dict[str, Any]:
        user = json.loads(json.dumps(body))
        user.pop("password", None)
        user.pop("hashFunction", None)
        user["primaryEmail"] = user["primaryEmail"].lower()
        user.setdefault("orgUnitPath", "/")
        user.setdefault("suspended", False)
        user.update(
            kind="admin#directory#user",
            id=self._id(),
            isAdmin=is_admin,
            isDelegatedAdmin=False,
            customerId="C0emulator",
            creationTime="2026-01-01T00:00:00.000Z",
            aliases=[],
        )
        user["name"]["fullName"] = f"{user['name']['givenName']} {user['name']['familyName']}"
        self.users[user["id"]] = user
        return user

    # -- Directory: users ----------------------------------------------------------------

    def _users_list(self, call: _Call) -> tuple[int, Any]:
        q = call.query
        if q.get("customer") != "my_customer" and q.get("domain") not in self.domains:
            raise ApiError(400, "Bad Request", "badRequest")
        users = sorted(self.users.values(), key=lambda u: u["primaryEmail"])
        for term in _query_terms(q.get("query", "")):
            users = [u for u in users if _matches(u, term)]
        page, token = self._page(users, q, "maxResults", 100, 500)
        out: dict[str, Any] = {"kind": "admin#directory#users", "users": page}
        if token:
            out["nextPageToken"] = token
        return 200, out

    def _users_get(self, call: _Call) -> tuple[int, Any]:
        return 200, self._find_user(call.params["userKey"])

    def _users_insert(self, call: _Call) -> tuple[int, Any]:
        body = call.body
        name = body.get("name") or {}
        for field_name, present in (
            ("primary_user_email", body.get("primaryEmail")),
            ("given_name", name.get("givenName")),
            ("family_name", name.get("familyName")),
            ("password", body.get("password")),
        ):
            if not present:
                raise ApiError(400, f"Invalid Input: {field_name}", "invalid")
        email = self._check_email(body["primaryEmail"], "primary_user_email")
        if len(body["password"]) < 8:
            raise ApiError(400, "Invalid Password", "invalid")
        if self._email_taken(email):
            raise ApiError(409, "Entity already exists.", "duplicate")
        if body.get("orgUnitPath", "/").lower() not in self.orgunits:
            raise ApiError(400, "Invalid Input: INVALID_OU_ID", "invalid")
        return 200, self._new_user(body)

    def _users_patch(self, call: _Call) -> tuple[int, Any]:
        user = self._find_user(call.params["userKey"])
        body = dict(call.body)
        if "orgUnitPath" in body and body["orgUnitPath"].lower() not in self.orgunits:
            raise ApiError(400, "Invalid Input: INVALID_OU_ID", "invalid")
        if "primaryEmail" in body:
            email = self._check_email(body["primaryEmail"], "primary_user_email")
            if email != user["primaryEmail"]:
                if self._email_taken(email):
                    raise ApiError(409, "Entity already exists.", "duplicate")
                user["aliases"].append(user["primaryEmail"])  # Google keeps the old address
                user["primaryEmail"] = email
            body.pop("primaryEmail")
        body.pop("password", None)
        body.pop("hashFunction", None)
        if "name" in body:
            user["name"].update(body.pop("name"))
            user["name"]["fullName"] = f"{user['name']['givenName']} {user['name']['familyName']}"
        user.update(body)
        return 200, user

    def _users_delete(self, call: _Call) -> tuple[int, Any]:
        user = self._find_user(call.params["userKey"])
        if user["isAdmin"]:
            raise ApiError(412, "Cannot delete the last admin", "conditionNotMet")
        del self.users[user["id"]]
        return 204, None

    # -- Directory: organisational units -------------------------------------------------

    def _orgunits_list(self, call: _Call) -> tuple[int, Any]:
        if call.params["customerId"] != "my_customer":
            raise ApiError(400, "Bad Request", "badRequest")
        under = (call.query.get("orgUnitPath") or "/").rstrip("/") or "/"
        kind = call.query.get("type", "children")
        units = []
        for unit in self.orgunits.values():
            path = unit["orgUnitPath"]
            if path == "/":
                continue
            parent = unit["parentOrgUnitPath"]
            inside = under == "/" or path.startswith(under + "/")
            if kind == "children" and parent != under:
                continue
            if kind in ("all", "allIncludingParent") and not inside:
                continue
            units.append(unit)
        return 200, {"kind": "admin#directory#orgUnits", "organizationUnits": units}

    def _orgunits_get(self, call: _Call) -> tuple[int, Any]:
        path = "/" + call.params["orgUnitPath"].strip("/")
        unit = self.orgunits.get(path.lower())
        if unit is None:
            raise ApiError(404, "Org unit not found", "notFound")
        return 200, unit

    def _orgunits_insert(self, call: _Call) -> tuple[int, Any]:
        body = call.body
        name, parent = body.get("name"), body.get("parentOrgUnitPath")
        if not name or "/" in name:
            raise ApiError(400, "Invalid Input: name", "invalid")
        if not parent or parent.lower() not in self.orgunits:
            raise ApiError(400, "Invalid Ou Id", "invalid")
        path = parent.rstrip("/") + "/" + name
        if path.lower() in self.orgunits:
            raise ApiError(409, "Entity already exists.", "duplicate")
        return 200, self._add_orgunit(path, name)

    # -- Directory: groups and members ---------------------------------------------------

    def _find_group(self, key: str) -> dict[str, Any]:
        key = key.lower()
        if key in self.groups:
            return self.groups[key]
        for group in self.groups.values():
            if group["email"] == key:
                return group
        raise ApiError(404, "Resource Not Found: groupKey", "notFound")

    def _groups_list(self, call: _Call) -> tuple[int, Any]:
        q = call.query
        if q.get("customer") != "my_customer" and q.get("domain") not in self.domains:
            raise ApiError(400, "Bad Request", "badRequest")
        groups = sorted(self.groups.values(), key=lambda g: g["email"])
        page, token = self._page(groups, q, "maxResults", 200, 200)
        out: dict[str, Any] = {"kind": "admin#directory#groups", "groups": page}
        if token:
            out["nextPageToken"] = token
        return 200, out

    def _groups_get(self, call: _Call) -> tuple[int, Any]:
        return 200, self._find_group(call.params["groupKey"])

    def _groups_insert(self, call: _Call) -> tuple[int, Any]:
        email = self._check_email(call.body.get("email"), "email")
        if self._email_taken(email):
            raise ApiError(409, "Entity already exists.", "duplicate")
        group = {
            "kind": "admin#directory#group",
            "id": self._id(),
            "email": email,
            "name": call.body.get("name") or email,
            "description": call.body.get("description", ""),
            "directMembersCount": "0",
        }
        self.groups[group["id"]] = group
        self.members[group["id"]] = {}
        return 200, group

    def _groups_patch(self, call: _Call) -> tuple[int, Any]:
        group = self._find_group(call.params["groupKey"])
        for name in ("name", "description"):
            if name in call.body:
                group[name] = call.body[name]
        return 200, group

    def _groups_delete(self, call: _Call) -> tuple[int, Any]:
        group = self._find_group(call.params["groupKey"])
        del self.groups[group["id"]]
        del self.members[group["id"]]
        return 204, None

    def _members_list(self, call: _Call) -> tuple[int, Any]:
        group = self._find_group(call.params["groupKey"])
        members = sorted(self.members[group["id"]].values(), key=lambda m: m["email"])
        page, token = self._page(members, call.query, "maxResults", 200, 200)
        out: dict[str, Any] = {"kind": "admin#directory#members", "members": page}
        if token:
            out["nextPageToken"] = token
        return 200, out

    def _members_insert(self, call: _Call) -> tuple[int, Any]:
        group = self._find_group(call.params["groupKey"])
        key = call.body.get("email") or call.body.get("id")
        if not key:
            raise ApiError(400, "Missing required field: memberKey", "required")
        user = self._find_user(str(key))
        members = self.members[group["id"]]
        if user["primaryEmail"] in members:
            raise ApiError(409, "Member already exists.", "duplicate")
        member = {
            "kind": "admin#directory#member",
            "id": user["id"],
            "email": user["primaryEmail"],
            "role": call.body.get("role", "MEMBER"),
            "type": "USER",
            "status": "ACTIVE",
        }
        members[user["primaryEmail"]] = member
        group["directMembersCount"] = str(len(members))
        return 200, member

    def _members_patch(self, call: _Call) -> tuple[int, Any]:
        group = self._find_group(call.params["groupKey"])
        key = call.params["memberKey"].lower()
        for email, member in self.members[group["id"]].items():
            if key in (email, member["id"]):
                if "role" in call.body:
                    if call.body["role"] not in ("OWNER", "MANAGER", "MEMBER"):
                        raise ApiError(400, "Invalid Input: role", "invalid")
                    member["role"] = call.body["role"]
                return 200, member
        raise ApiError(404, "Resource Not Found: memberKey", "notFound")

    def _members_delete(self, call: _Call) -> tuple[int, Any]:
        group = self._find_group(call.params["groupKey"])
        members = self.members[group["id"]]
        key = call.params["memberKey"].lower()
        for email, member in list(members.items()):
            if key in (email, member["id"]):
                del members[email]
                group["directMembersCount"] = str(len(members))
                return 204, None
        raise ApiError(404, "Resource Not Found: memberKey", "notFound")

    # -- Classroom -----------------------------------------------------------------------

    def _find_course(self, key: str) -> dict[str, Any]:
        course_id = self.aliases.get(key, key)
        course = self.courses.get(course_id)
        if course is None:
            raise ApiError(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
        return course

    def _classroom_user(self, key: str) -> dict[str, Any]:
        if key == "me":
            key = self.admin
        try:
            return self._find_user(key)
        except ApiError:
            raise ApiError(
                404, "Requested entity was not found.", "notFound", "NOT_FOUND"
            ) from None

    def _courses_list(self, call: _Call) -> tuple[int, Any]:
        states = call.query.get("courseStates")
        courses = sorted(self.courses.values(), key=lambda c: int(c["id"]))
        if states:
            courses = [c for c in courses if c["courseState"] in states]
        page, token = self._page(courses, call.query, "pageSize", 100, 1000)
        out: dict[str, Any] = {"courses": page}
        if token:
            out["nextPageToken"] = token
        return 200, out

    def _courses_get(self, call: _Call) -> tuple[int, Any]:
        return 200, self._find_course(call.params["id"])

    def _courses_create(self, call: _Call) -> tuple[int, Any]:
        body = call.body
        if not body.get("name"):
            raise ApiError(400, "Invalid argument: name", "invalid", "INVALID_ARGUMENT")
        if not body.get("ownerId"):
            raise ApiError(400, "Invalid argument: ownerId", "invalid", "INVALID_ARGUMENT")
        owner = self._classroom_user(body["ownerId"])
        alias = body.get("id")
        if alias is not None:
            if not re.fullmatch(r"[dp]:[\w.-]+", alias):
                raise ApiError(400, "Invalid argument: id", "invalid", "INVALID_ARGUMENT")
            if alias in self.aliases:
                raise ApiError(
                    409, "Requested entity already exists", "duplicate", "ALREADY_EXISTS"
                )
        course = {k: v for k, v in body.items() if k != "id"}
        course.update(
            id=self._id(),
            ownerId=owner["id"],
            courseState=body.get("courseState", "PROVISIONED"),
            creationTime="2026-01-01T00:00:00Z",
        )
        self.courses[course["id"]] = course
        self.teachers[course["id"]] = {owner["id"]}
        self.students[course["id"]] = set()
        if alias is not None:
            self.aliases[alias] = course["id"]
        return 200, course

    def _courses_patch(self, call: _Call) -> tuple[int, Any]:
        course = self._find_course(call.params["id"])
        mask = call.query.get("updateMask")
        if not mask:
            raise ApiError(400, "Invalid argument: updateMask", "invalid", "INVALID_ARGUMENT")
        allowed = {
            "name",
            "section",
            "descriptionHeading",
            "description",
            "room",
            "courseState",
            "ownerId",
            "subject",
        }
        for name in mask.split(","):
            name = name.strip()
            if name not in allowed:
                raise ApiError(
                    400, f"Invalid argument: updateMask {name}", "invalid", "INVALID_ARGUMENT"
                )
            if name in call.body:
                course[name] = call.body[name]
        return 200, course

    def _courses_aliases_list(self, call: _Call) -> tuple[int, Any]:
        course = self._find_course(call.params["courseId"])
        found = [
            {"courseId": course["id"], "alias": a}
            for a, c in self.aliases.items()
            if c == course["id"]
        ]
        return 200, {"aliases": found}

    def _roster_list(self, call: _Call, roster: dict[str, set[str]]) -> tuple[int, Any]:
        course = self._find_course(call.params["courseId"])
        people = []
        for user_id in sorted(roster[course["id"]]):
            user = self.users.get(user_id)
            if user is None:
                continue
            profile = {
                "id": user_id,
                "emailAddress": user["primaryEmail"],
                "name": {"fullName": user["name"]["fullName"]},
            }
            people.append({"courseId": course["id"], "userId": user_id, "profile": profile})
        page, token = self._page(people, call.query, "pageSize", 30, 1000)
        name = "teachers" if roster is self.teachers else "students"
        out: dict[str, Any] = {name: page}
        if token:
            out["nextPageToken"] = token
        return 200, out

    def _roster_create(self, call: _Call, roster: dict[str, set[str]]) -> tuple[int, Any]:
        course = self._find_course(call.params["courseId"])
        key = call.body.get("userId")
        if not key:
            raise ApiError(400, "Invalid argument: userId", "invalid", "INVALID_ARGUMENT")
        user = self._classroom_user(key)
        if user["id"] in self.teachers[course["id"]] or user["id"] in self.students[course["id"]]:
            raise ApiError(409, "Requested entity already exists", "duplicate", "ALREADY_EXISTS")
        roster[course["id"]].add(user["id"])
        return 200, {
            "courseId": course["id"],
            "userId": user["id"],
            "profile": {"id": user["id"], "emailAddress": user["primaryEmail"]},
        }

    def _roster_delete(self, call: _Call, roster: dict[str, set[str]]) -> tuple[int, Any]:
        course = self._find_course(call.params["courseId"])
        user = self._classroom_user(call.params["userId"])
        if user["id"] not in roster[course["id"]]:
            raise ApiError(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
        if roster is self.teachers and user["id"] == course["ownerId"]:
            raise ApiError(
                400,
                "The course owner cannot be removed.",
                "failedPrecondition",
                "FAILED_PRECONDITION",
            )
        roster[course["id"]].discard(user["id"])
        return 200, {}

    def _courses_teachers_list(self, call: _Call) -> tuple[int, Any]:
        return self._roster_list(call, self.teachers)

    def _courses_students_list(self, call: _Call) -> tuple[int, Any]:
        return self._roster_list(call, self.students)

    def _courses_teachers_create(self, call: _Call) -> tuple[int, Any]:
        return self._roster_create(call, self.teachers)

    def _courses_students_create(self, call: _Call) -> tuple[int, Any]:
        return self._roster_create(call, self.students)

    def _courses_teachers_delete(self, call: _Call) -> tuple[int, Any]:
        return self._roster_delete(call, self.teachers)

    def _courses_students_delete(self, call: _Call) -> tuple[int, Any]:
        return self._roster_delete(call, self.students)

    # -- seeding and inspection for tests ------------------------------------------------

    def add_user(self, email: str, first: str, last: str, **fields: Any) -> dict[str, Any]:
        """A user made behind synctree's back (by a person, another tool)."""
        body = {"primaryEmail": email, "name": {"givenName": first, "familyName": last}}
        return self._new_user({**body, **fields}, is_admin=bool(fields.pop("isAdmin", False)))

    def add_orgunit(self, path: str) -> dict[str, Any]:
        """An OU made behind synctree's back (its parent must exist)."""
        return self._add_orgunit(path, path.rsplit("/", 1)[1])

    def user(self, email: str) -> dict[str, Any]:
        """The user with this primary email (or alias)."""
        return self._find_user(email)

    def course(self, alias: str) -> dict[str, Any]:
        """The course with this alias (``d:...``) or id."""
        return self._find_course(alias)

    def roster(self, alias: str) -> tuple[set[str], set[str]]:
        """The emails of a course's teachers and students."""
        course = self._find_course(alias)
        emails = lambda ids: {self.users[i]["primaryEmail"] for i in ids if i in self.users}  # noqa: E731
        return emails(self.teachers[course["id"]]), emails(self.students[course["id"]])

    def group_members(self, email: str) -> set[str]:
        group = self._find_group(email)
        return set(self.members[group["id"]])


_TERM = re.compile(r"(\w+)\s*([=:])\s*('(?:[^']*)'|\S+)")


def _query_terms(query: str) -> list[tuple[str, str]]:
    terms = []
    at = 0
    query = query.strip()
    while at < len(query):
        match = _TERM.match(query, at)
        if match is None:
            raise ApiError(400, "Invalid Input", "invalid")
        value = match[3].strip("'")
        if match[1] not in ("orgUnitPath", "isSuspended", "isAdmin", "email"):
            raise ApiError(400, "Invalid Input", "invalid")
        terms.append((match[1], value))
        at = match.end()
        while at < len(query) and query[at] == " ":
            at += 1
    return terms


def _matches(user: dict[str, Any], term: tuple[str, str]) -> bool:
    name, value = term
    if name == "orgUnitPath":
        path = user["orgUnitPath"].lower()
        value = value.lower().rstrip("/") or "/"
        return value == "/" or path == value or path.startswith(value + "/")
    if name == "isSuspended":
        return bool(user.get("suspended")) is (value.lower() == "true")
    if name == "isAdmin":
        return bool(user.get("isAdmin")) is (value.lower() == "true")
    return bool(user["primaryEmail"].startswith(value.lower().rstrip("*")))
