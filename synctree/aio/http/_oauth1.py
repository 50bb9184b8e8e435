"""OAuth 1.0a two-legged request signing (RFC 5849): :class:`OAuth1Auth`.

OneRoster 1.1 REST servers (ClassLink and kin) authenticate each request by a signature
made with a consumer key and secret, and no token.  Written here (some sixty lines of
RFC 5849 section 3.4) rather than taken from oauthlib or Authlib: it needs no I/O, so one
generator serves httpx's sync and async flows on any event loop, and the tests check it
against oauthlib's independent implementation on the server side.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import urllib.parse
from base64 import b64encode
from collections.abc import Callable, Generator
from typing import Literal

import httpx

from synctree._util.options import one_of

__all__ = ["OAuth1Auth"]

SignatureMethod = Literal["HMAC-SHA1", "HMAC-SHA256"]
_HASHES = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}
_FORM = "application/x-www-form-urlencoded"


def _encode(text: str) -> str:
    """RFC 5849 section 3.6: UTF-8, then every byte but ALPHA, DIGIT, ``-._~`` as ``%XX``."""
    return urllib.parse.quote(text, safe="-._~")  # quote never encodes ALPHA / DIGIT


def _nonce() -> str:
    return secrets.token_hex(16)


class OAuth1Auth(httpx.Auth):
    """Sign every request with OAuth 1.0a, two-legged: consumer key and secret, no token.

    ``OAuth1Auth(key, secret)`` adds ``Authorization: OAuth oauth_consumer_key=...,
    oauth_nonce=..., oauth_signature=...``; the signature covers the method, the URL, its
    query parameters and a form body (RFC 5849 section 3.4.1).

    :param signature_method: ``'HMAC-SHA1'`` (RFC 5849) or ``'HMAC-SHA256'`` (which the
        IMS security framework of OneRoster 1.1 also names).
    :param realm: a ``realm`` to send in the header (not signed), if the server wants one.
    :param clock: the current time (default :func:`time.time`), for the timestamp.
    :param nonce: makes the nonce (default: 32 random hex digits), for tests.
    """

    requires_request_body = True  # a form body is part of the signature

    def __init__(
        self,
        consumer_key: str,
        consumer_secret: str,
        *,
        signature_method: SignatureMethod = "HMAC-SHA1",
        realm: str | None = None,
        clock: Callable[[], float] | None = None,
        nonce: Callable[[], str] | None = None,
    ) -> None:
        if not isinstance(consumer_key, str) or not consumer_key:
            raise ValueError(f"'consumer_key' must be a non-empty string, got {consumer_key!r}")
        if not isinstance(consumer_secret, str) or not consumer_secret:
            raise ValueError("'consumer_secret' must be a non-empty string")
        one_of(signature_method, "signature_method", tuple(_HASHES))
        if realm is not None and not isinstance(realm, str):
            raise ValueError(f"'realm' must be a string or None, got {realm!r}")
        self._key = consumer_key
        self._secret = consumer_secret
        self._method: SignatureMethod = signature_method
        self._realm = realm
        self._clock = time.time if clock is None else clock
        self._nonce = _nonce if nonce is None else nonce

    def __repr__(self) -> str:  # the key names the client; the secret is never shown
        return f"<OAuth1Auth {self._method} consumer_key={self._key!r}>"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.authorization(request)
        yield request

    def authorization(self, request: httpx.Request) -> str:
        """The ``Authorization`` header value that signs ``request`` (a new nonce each time)."""
        oauth = {
            "oauth_consumer_key": self._key,
            "oauth_nonce": self._nonce(),
            "oauth_signature_method": self._method,
            "oauth_timestamp": str(int(self._clock())),
            "oauth_version": "1.0",
        }
        oauth["oauth_signature"] = self.signature(request, oauth)
        fields = [f'realm="{_encode(self._realm)}"'] if self._realm is not None else []
        fields += [f'{name}="{_encode(value)}"' for name, value in oauth.items()]
        return "OAuth " + ", ".join(fields)

    def signature(self, request: httpx.Request, oauth: dict[str, str]) -> str:
        """The base64 HMAC of the signature base string (RFC 5849 sections 3.4.1, 3.4.2)."""
        url = request.url
        # 3.4.1.2: scheme and host in lower case, the port only when not the default
        port = f":{url.port}" if url.port is not None else ""
        path = url.raw_path.split(b"?", 1)[0].decode("ascii") or "/"
        host = url.raw_host.decode("ascii").lower()
        base_uri = f"{url.scheme.lower()}://{host}{port}{path}"
        # 3.4.1.3: the query, a form body and the protocol parameters, decoded
        pairs = urllib.parse.parse_qsl(url.query.decode("ascii"), keep_blank_values=True)
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind == _FORM and request.content:
            body = request.content.decode("utf-8")
            pairs += urllib.parse.parse_qsl(body, keep_blank_values=True)
        pairs += list(oauth.items())
        # 3.4.1.3.2: encoded, sorted by name then value, joined with '=' and '&'
        normalized = "&".join(
            f"{name}={value}" for name, value in sorted((_encode(n), _encode(v)) for n, v in pairs)
        )
        base = "&".join([request.method.upper(), _encode(base_uri), _encode(normalized)])
        key = f"{_encode(self._secret)}&"  # 3.4.2: no token secret
        digest = hmac.new(key.encode(), base.encode(), _HASHES[self._method]).digest()
        return b64encode(digest).decode("ascii")
