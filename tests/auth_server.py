"""A real HTTP server that checks credentials, for the auth tests (run it with
``tests.http_server.serve``).

``AuthServer`` is a Starlette app with a token endpoint per grant and one listing per scheme;
it counts what it was asked and checks each request *independently* of synctree's code:
OAuth 1 signatures with oauthlib's ``signature`` module, Google assertions with
``cryptography``.  ``GET /<scheme>/items?offset=&limit=`` answers
``{"items": [...]}`` with ``X-Total-Count``, or 401.

- ``POST /oauth2/token``: client credentials, by HTTP Basic or in the form; answers
  ``access_token`` ``t1``, ``t2``... with ``expires_in``; ``token_delay`` slows it down.
- ``POST /google/token``: the JWT-bearer grant; the assertion's signature, ``iss``,
  ``aud``, ``sub`` and ``scope`` are checked.
- ``/bearer``, ``/basic``, ``/headers``, ``/oauth1``, ``/oauth2`` (a token not revoked),
  ``/google``: the listings.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections import Counter
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["AuthServer", "verify_oauth1"]


def verify_oauth1(
    method: str, url: str, headers: Any, body: bytes, consumers: dict[str, str]
) -> str | None:
    """Why the request's OAuth 1 signature is bad (None if it is good), by oauthlib."""
    from oauthlib.common import Request as OAuthRequest
    from oauthlib.oauth1.rfc5849 import signature, utils

    header = headers.get("authorization", "")
    if not header.startswith("OAuth "):
        return "no OAuth Authorization header"
    oauth = dict(utils.parse_authorization_header(header))
    secret = consumers.get(oauth.get("oauth_consumer_key", ""))
    if secret is None:
        return "unknown consumer key"
    for name in ("oauth_nonce", "oauth_timestamp", "oauth_signature", "oauth_version"):
        if name not in oauth:
            return f"no {name}"
    if abs(int(oauth["oauth_timestamp"]) - time.time()) > 300:
        return "stale timestamp"
    form = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    text = body.decode() if form and body else None
    request = OAuthRequest(url, http_method=method, body=text, headers={"Authorization": header})
    query = urllib.parse.urlsplit(url).query
    every = signature.collect_parameters(
        uri_query=query, body=text, headers={"Authorization": header}, exclude_oauth_signature=False
    )
    request.params = [(name, value) for name, value in every if name != "oauth_signature"]
    request.signature = dict(every)["oauth_signature"]  # decoded, as oauthlib's endpoints do
    verify = {
        "HMAC-SHA1": signature.verify_hmac_sha1,
        "HMAC-SHA256": signature.verify_hmac_sha256,
    }.get(oauth.get("oauth_signature_method", ""))
    if verify is None:
        return "unknown signature method"
    return None if verify(request, secret, None) else "bad signature"


class AuthServer:
    """The app and what it saw; the ``items`` it lists are ``{"id": i}`` for i < ``count``."""

    def __init__(
        self,
        *,
        count: int = 25,
        token: str = "static-token",
        username: str = "sync",
        password: str = "p@ss:word",
        api_key: str = "key-123",
        client_id: str = "client",
        client_secret: str = "s3cret/+=",
        consumers: dict[str, str] | None = None,
        expires_in: int | None = 3600,
        google_key: Any = None,
        google_account: str = "sync@project.iam.gserviceaccount.com",
    ) -> None:
        self.count = count
        self.token = token
        self.username = username
        self.password = password
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.consumers = consumers or {"consumer-key": "consumer secret&/~"}
        self.expires_in = expires_in
        self.google_key = google_key  # a cryptography RSA public key
        self.google_account = google_account
        self.token_delay = 0.0
        self.calls: Counter[str] = Counter()
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.token_forms: list[dict[str, str]] = []
        self.token_auth: list[str] = []  # "basic" or "body", per token call
        self.oauth1_failures: list[str] = []
        self.base_url = ""  # set by the test once served (the audience of assertions)
        self.app = Starlette(
            routes=[
                Route("/oauth2/token", self.oauth2_token, methods=["POST"]),
                Route("/google/token", self.google_token, methods=["POST"]),
                Route("/oauth1/echo", self.oauth1_echo, methods=["POST"]),
                Route("/{scheme}/items", self.items, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    # -- token endpoints ------------------------------------------------------------------

    def _issue(self) -> JSONResponse:
        value = f"t{len(self.issued) + 1}"
        self.issued.append(value)
        body: dict[str, Any] = {"access_token": value, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return JSONResponse(body)

    async def oauth2_token(self, request: Request) -> Response:
        self.calls["oauth2_token"] += 1
        if self.token_delay:
            await anyio.sleep(self.token_delay)
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        self.token_forms.append(form)
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            pair = base64.b64decode(header[6:]).decode()
            client_id, _, secret = pair.partition(":")
            client_id, secret = (
                urllib.parse.unquote_plus(client_id),
                urllib.parse.unquote_plus(secret),
            )
            self.token_auth.append("basic")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            self.token_auth.append("body")
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if (client_id, secret) != (self.client_id, self.client_secret):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "unknown client"},
                status_code=401,
            )
        return self._issue()

    async def google_token(self, request: Request) -> Response:
        self.calls["google_token"] += 1
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        self.token_forms.append(form)
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        problem = self._bad_assertion(form.get("assertion", ""))
        if problem is not None:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": problem}, status_code=400
            )
        return self._issue()

    def _bad_assertion(self, assertion: str) -> str | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def part(text: str) -> bytes:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

        try:
            head, payload, sig = assertion.split(".")
        except ValueError:
            return "not a JWT"
        if json.loads(part(head)).get("alg") != "RS256":
            return "not RS256"
        try:
            self.google_key.verify(
                part(sig), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return "bad signature"
        claims = json.loads(part(payload))
        self.claims = claims
        if claims.get("iss") != self.google_account:
            return "wrong iss"
        if claims.get("aud") != f"{self.base_url}/google/token":
            return f"wrong aud {claims.get('aud')!r}"
        if not claims["iat"] <= time.time() + 5 < claims["exp"] + 5:
            return "expired"
        return None

    # -- listings -------------------------------------------------------------------------

    async def oauth1_echo(self, request: Request) -> Response:
        """A signed form POST: 200 with the form if the signature is good."""
        body = await request.body()
        problem = verify_oauth1("POST", str(request.url), request.headers, body, self.consumers)
        if problem is not None:
            self.oauth1_failures.append(problem)
            return JSONResponse({"error": problem}, status_code=401)
        return JSONResponse(dict(urllib.parse.parse_qsl(body.decode())))

    def _authorized(self, scheme: str, request: Request, body: bytes) -> str | None:
        header = request.headers.get("authorization", "")
        if scheme == "bearer":
            return None if header == f"Bearer {self.token}" else "bad token"
        if scheme == "basic":
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return None if header == f"Basic {expected}" else "bad basic"
        if scheme == "headers":
            return None if request.headers.get("x-api-key") == self.api_key else "bad key"
        if scheme in ("oauth2", "google"):
            value = header.removeprefix("Bearer ")
            ok = header.startswith("Bearer ") and value in self.issued
            return None if ok and value not in self.revoked else "bad token"
        if scheme == "oauth1":
            problem = verify_oauth1("GET", str(request.url), request.headers, body, self.consumers)
            if problem is not None:
                self.oauth1_failures.append(problem)
            return problem
        return "unknown scheme"

    async def items(self, request: Request) -> Response:
        scheme = request.path_params["scheme"]
        self.calls[scheme] += 1
        problem = self._authorized(scheme, request, await request.body())
        if problem is not None:
            self.calls[f"{scheme}_401"] += 1
            return JSONResponse({"error": problem}, status_code=401)
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", "10"))
        items = [{"id": i} for i in range(offset, min(offset + limit, self.count))]
        return JSONResponse({"items": items}, headers={"X-Total-Count": str(self.count)})
