"""A Google service account with domain-wide delegation: :class:`GoogleServiceAccount`.

The JWT-bearer grant (RFC 7523): an assertion signed with the account's private key
(``google-auth`` signs it; it is imported when the first token is needed) names the admin
to act as (``sub``) and the scopes; Google's token endpoint answers with an access token,
which is cached and refreshed like any :class:`~synctree.aio.http.TokenAuth` token.  The
exchange itself goes over httpx, through the client that sends the requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import httpx

from ._token import TokenAuth

__all__ = ["GoogleServiceAccount"]

_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_REQUIRED = ("client_email", "private_key", "token_uri")
_LIFETIME = 3600  # seconds: the longest assertion Google accepts


class GoogleServiceAccount(TokenAuth):
    """Access tokens for a Google service account, acting as ``subject``.

    ``GoogleServiceAccount('sa.json', subject='admin@school.example',
    scopes=['https://www.googleapis.com/auth/admin.directory.user'])``.

    :param key: the key file (the JSON Google gives for the account), or its parsed content.
    :param subject: the user to act as (domain-wide delegation); ``None`` for the account
        itself.
    :param scopes: the OAuth scopes asked for.
    :param token_url: the token endpoint; by default the key file's ``token_uri``.
    """

    def __init__(
        self,
        key: str | PathLike[str] | Mapping[str, Any],
        *,
        subject: str | None = None,
        scopes: Sequence[str],
        token_url: str | None = None,
        margin: float = 60.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(margin=margin, clock=clock)
        if isinstance(key, Mapping):
            info, where = dict(key), "the service account key"
        elif isinstance(key, str | PathLike):
            info, where = _read_key(Path(key)), f"the key file {str(key)!r}"
        else:
            raise ValueError(f"'key' must be a key file's path or its content, not {key!r}")
        if info.get("type", "service_account") != "service_account":
            raise ValueError(f"{where} is not a service account key (type {info.get('type')!r})")
        missing = [name for name in _REQUIRED if not isinstance(info.get(name), str)]
        if missing:
            raise ValueError(f"{where} has no {missing[0]!r}: is it a service account key?")
        if subject is not None and (not isinstance(subject, str) or not subject):
            raise ValueError(f"'subject' must be a user's email or None, got {subject!r}")
        if isinstance(scopes, str) or not scopes or not all(isinstance(s, str) for s in scopes):
            raise ValueError(f"'scopes' must be a non-empty list of scopes, got {scopes!r}")
        self._info = info
        self._subject = subject
        self._scopes = list(scopes)
        self._token_url = token_url or info["token_uri"]
        self.account: str = info["client_email"]
        """The service account's email (not a secret)."""

    def __repr__(self) -> str:
        return f"<GoogleServiceAccount {self.account!r} subject={self._subject!r}>"

    @property
    def token_url(self) -> str:
        return self._token_url

    def assertion(self) -> str:
        """A newly signed JWT assertion (RFC 7523 section 2.1)."""
        try:
            from google.auth import crypt, jwt
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "a Google service account needs google-auth: pip install 'synctree[google]'"
            ) from None
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.account,
            "scope": " ".join(self._scopes),
            "aud": self._token_url,
            "iat": now,
            "exp": now + _LIFETIME,
        }
        if self._subject is not None:
            payload["sub"] = self._subject
        try:
            signer = crypt.RSASigner.from_service_account_info(self._info)  # type: ignore[no-untyped-call]  # google-auth is partly typed
        except ValueError:  # its message may quote the key: say what, not what it holds
            raise ValueError(
                f"the private key of the service account {self.account!r} cannot be read"
            ) from None
        encoded: bytes = jwt.encode(signer, payload)  # type: ignore[no-untyped-call]
        return encoded.decode("ascii")

    def token_request(self) -> httpx.Request:
        form = {"grant_type": _GRANT, "assertion": self.assertion()}
        return httpx.Request(
            "POST", self._token_url, data=form, headers={"Accept": "application/json"}
        )


def _read_key(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read the key file {str(path)!r}: {exc.strerror}") from None
    except ValueError:  # never quote the content
        raise ValueError(f"the key file {str(path)!r} is not JSON") from None
    if not isinstance(info, dict):
        raise ValueError(f"the key file {str(path)!r} is not a JSON object")
    return info
