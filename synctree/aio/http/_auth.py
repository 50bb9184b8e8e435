"""Static credentials as :class:`httpx.Auth`: :class:`BearerAuth` and :class:`HeaderAuth`.

(Basic auth is :class:`httpx.BasicAuth`.)  Neither shows its secret in ``repr``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping

import httpx

__all__ = ["BearerAuth", "HeaderAuth"]


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request (a static API token)."""

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("'token' must be a non-empty string")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "<BearerAuth>"


class HeaderAuth(httpx.Auth):
    """Static headers on every request (``{'X-Api-Key': key}``); their values are secret."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        if not isinstance(headers, Mapping) or not headers:
            raise ValueError("'headers' must be a non-empty mapping of header names to values")
        for name, value in headers.items():
            if not (isinstance(name, str) and name and isinstance(value, str)):
                raise ValueError(f"'headers' must map names to strings (header {name!r})")
        self._headers = dict(headers)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self._headers)
        yield request

    def __repr__(self) -> str:  # the names, never the values
        return f"<HeaderAuth {sorted(self._headers)}>"
