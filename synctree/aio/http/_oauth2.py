"""OAuth 2 client credentials (RFC 6749 section 4.4): :class:`OAuth2ClientCredentials`.

Written here rather than taken from Authlib: Authlib keeps token fetching and refreshing
in its ``AsyncOAuth2Client`` (a client subclass, not an :class:`httpx.Auth`), so it cannot
authorize a client the user made, and it has no "refresh once on a 401" rule; it also
brings ``cryptography`` for a grant that needs none.  The grant itself is one form POST.
"""

from __future__ import annotations

import urllib.parse
from base64 import b64encode
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import httpx

from synctree._util.options import one_of

from ._token import TokenAuth

__all__ = ["OAuth2ClientCredentials"]

ClientAuth = Literal["basic", "body"]


class OAuth2ClientCredentials(TokenAuth):
    """A bearer token from an OAuth 2 token endpoint by the client credentials grant.

    ``OAuth2ClientCredentials('https://sis.example/oauth/token', 'id', secret,
    scopes=['roster-core.readonly'])``.  The token is cached, refreshed ``margin`` seconds
    before its ``expires_in`` runs out, and refreshed once when a request gets a 401 (a
    token revoked early); if the new token gets a 401 too, that answer stands.

    :param client_auth: how the client authenticates to the token endpoint: ``'basic'``
        (HTTP Basic, RFC 6749 section 2.3.1, the default) or ``'body'`` (``client_id`` and
        ``client_secret`` in the form, for servers that need them there).
    :param scopes: the scopes asked for (sent space-separated; none: the server's default).
    :param params: more form fields for the token request (``audience``, ``resource``).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scopes: Sequence[str] = (),
        client_auth: ClientAuth = "basic",
        params: Mapping[str, str] | None = None,
        margin: float = 60.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(margin=margin, clock=clock)
        for name, value in (("token_url", token_url), ("client_id", client_id)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name!r} must be a non-empty string, got {value!r}")
        if not isinstance(client_secret, str) or not client_secret:
            raise ValueError("'client_secret' must be a non-empty string")
        if isinstance(scopes, str) or not all(isinstance(s, str) and s for s in scopes):
            raise ValueError(f"'scopes' must be a list of scope names, got {scopes!r}")
        one_of(client_auth, "client_auth", ("basic", "body"))
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scopes = list(scopes)
        self._client_auth = client_auth
        self._params = dict(params or {})

    @property
    def token_url(self) -> str:
        return self._token_url

    def token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials", **self._params}
        if self._scopes:
            form["scope"] = " ".join(self._scopes)
        headers = {"Accept": "application/json"}
        if self._client_auth == "body":
            form["client_id"] = self._client_id
            form["client_secret"] = self._client_secret
        else:
            # RFC 6749 section 2.3.1: each form-urlencoded, then Basic
            pair = f"{_form(self._client_id)}:{_form(self._client_secret)}"
            headers["Authorization"] = "Basic " + b64encode(pair.encode()).decode("ascii")
        return httpx.Request("POST", self._token_url, data=form, headers=headers)


def _form(value: str) -> str:
    return urllib.parse.quote_plus(value, safe="")
