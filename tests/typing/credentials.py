"""Public usage of credentials and the OneRoster REST reader that must type-check under
``mypy --strict`` (see ``api.py``): never called, safe to import."""

from __future__ import annotations

from pathlib import Path

import httpx

from synctree import SyncTree
from synctree.aio.http import (
    AuthError,
    BearerAuth,
    GoogleServiceAccount,
    HeaderAuth,
    HTTPReader,
    OAuth1Auth,
    OAuth2ClientCredentials,
    TokenAuth,
    auth_from_config,
)
from synctree.aio.oneroster import OneRosterAPI, OneRosterAPIReader


def auth_usage(folder: Path) -> None:
    schemes: list[httpx.Auth] = [
        BearerAuth("token"),
        HeaderAuth({"X-Api-Key": "key"}),
        httpx.BasicAuth("user", "password"),
        OAuth2ClientCredentials(
            "https://x/token", "id", "secret", scopes=["a"], client_auth="body"
        ),
        OAuth1Auth("key", "secret", signature_method="HMAC-SHA256"),
        GoogleServiceAccount(folder / "sa.json", subject="admin@x", scopes=["s"]),
        auth_from_config({"type": "bearer", "token_file": "token.txt"}, folder, secret=print),
    ]
    token: TokenAuth = OAuth2ClientCredentials("https://x/token", "id", "secret")
    token.invalidate()
    HTTPReader("https://x", "/users", auth=schemes[0])
    OAuth1Auth("key", "secret", signature_method="PLAINTEXT")  # type: ignore[arg-type]
    try:
        pass
    except AuthError as error:
        status: int | None = error.status
        url: str = error.url
        del status, url


async def oneroster_api_usage() -> None:
    service = OneRosterAPI(
        "https://sis.x", version="1.2", auth=OAuth2ClientCredentials("https://x/t", "i", "s")
    )
    readers: dict[str, OneRosterAPIReader] = service.readers()
    tree = SyncTree(["source"], list(OneRosterAPI.subbranches))
    await tree.load(source=readers)
    OneRosterAPI("https://sis.x", version="1.0")  # type: ignore[arg-type]
