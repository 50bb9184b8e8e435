"""Credentials from a config's ``auth`` table: :func:`auth_from_config` and :data:`AUTH_TYPES`.

::

    auth = { type = "bearer", token = "${SCIM_TOKEN}" }
    auth = { type = "bearer", token_file = "token.txt" }
    auth = { type = "basic", username = "sync", password = "${PASSWORD}" }
    auth = { type = "headers", headers = { X-Api-Key = "${KEY}" } }
    auth = { type = "oauth2", token_url = "https://...", client_id = "...",
             client_secret = "${SECRET}", scopes = ["roster-core.readonly"] }
    auth = { type = "oauth1", consumer_key = "...", consumer_secret = "${SECRET}" }
    auth = { type = "google_service_account", key_file = "sa.json",
             subject = "admin@school.example", scopes = ["https://..."] }

Every secret may instead come from a file (``token_file``, ``password_file``,
``client_secret_file``, ``consumer_secret_file``; a Google key is always a file), relative
to the config's folder.  A file that its group or others may read is refused: a secret
kept there is not kept.  What is read from a file is handed to ``secret`` (the command
line's masking), as the values of ``${VAR}`` are.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from synctree import ConfigError
from synctree._util.options import OptionError

from ._auth import BearerAuth, HeaderAuth
from ._google import GoogleServiceAccount
from ._oauth1 import OAuth1Auth
from ._oauth2 import OAuth2ClientCredentials

__all__ = ["AUTH_TYPES", "auth_from_config", "read_secret_file"]


@dataclass(frozen=True, slots=True)
class _Type:
    """One ``type`` of ``auth`` table: its keys, and which may come from a file."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # each may be given as ``<name>_file`` instead

    @property
    def accepted(self) -> list[str]:
        files = [f"{name}_file" for name in self.secrets]
        return ["type", *self.required, *files, *self.optional]


#: The ``type``s an ``auth`` table may name, and their keys.
AUTH_TYPES: Mapping[str, _Type] = {
    "bearer": _Type(("token",), secrets=("token",)),
    "basic": _Type(("username", "password"), secrets=("password",)),
    "headers": _Type(("headers",)),
    "oauth2": _Type(
        ("token_url", "client_id", "client_secret"),
        ("scopes", "client_auth", "params", "margin"),
        secrets=("client_secret",),
    ),
    "oauth1": _Type(
        ("consumer_key", "consumer_secret"),
        ("signature_method", "realm"),
        secrets=("consumer_secret",),
    ),
    "google_service_account": _Type(("key_file", "scopes"), ("subject", "token_url", "margin")),
}


def read_secret_file(
    path: str | os.PathLike[str], *, key: str | None = None, one_line: bool = True
) -> str:
    """The secret kept in the file ``path`` (surrounding whitespace stripped).

    :param one_line: refuse a value with a line break inside (a token, a password).
    :raises ConfigError: naming ``key`` and the file when it is missing, empty, more
        than one line, or may be read by its group or others (``chmod 600`` is the fix
        the message gives).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"the secret file {str(path)!r} does not exist", key=key) from None
    except OSError as exc:
        problem = f"cannot read the secret file {str(path)!r}: {exc.strerror}"
        raise ConfigError(problem, key=key) from None
    if mode & 0o077:
        raise ConfigError(
            f"the secret file {str(path)!r} may be read by others "
            f"(mode {stat.filemode(mode)}): make it private with: chmod 600 {path}",
            key=key,
        )
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        problem = f"cannot read the secret file {str(path)!r}: {why}"
        raise ConfigError(problem, key=key) from None
    if not value:
        raise ConfigError(f"the secret file {str(path)!r} is empty", key=key)
    if one_line and ("\n" in value or "\r" in value):
        raise ConfigError(f"the secret file {str(path)!r} has more than one line", key=key)
    return value


def auth_from_config(
    table: object,
    base_dir: str | os.PathLike[str] = ".",
    *,
    secret: Callable[[str], object] | None = None,
) -> httpx.Auth:
    """The :class:`httpx.Auth` a config's ``auth`` table describes (see the module doc).

    :param base_dir: the folder ``*_file`` paths are relative to (the config's).
    :param secret: called with each secret read from a file, so that whoever prints
        (the command line's :class:`~synctree._util.redact.Redactor`) masks it.
    :raises ConfigError: naming the key within the table (``type``, ``token_file``...).
    """
    names = ", ".join(repr(name) for name in AUTH_TYPES)
    if not isinstance(table, Mapping):
        raise ConfigError(f"must be a table with a 'type' ({names}), got {type(table).__name__}")
    options = dict(table)
    kind = options.pop("type", None)
    if kind is None:
        raise ConfigError(f"missing key (the kind of credentials: {names})", key="type")
    spec = AUTH_TYPES.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise ConfigError(f"unknown auth type {kind!r} (known: {names})", key="type")
    accepted = spec.accepted
    for key in options:
        if key not in accepted:
            raise ConfigError(
                f"unknown key for auth type {kind!r} (accepted: {', '.join(accepted)})", key=key
            )
    base = Path(base_dir)

    def file_path(key: str) -> Path:
        value = options.pop(key)
        if not isinstance(value, str) or not value:
            raise ConfigError("must be a path (a string)", key=key)
        return (base / value).resolve()

    for name in spec.secrets:
        file_key = f"{name}_file"
        if file_key in options:
            if name in options:
                raise ConfigError(f"give {name!r} or {file_key!r}, not both", key=file_key)
            options[name] = read_secret_file(file_path(file_key), key=file_key)
            if secret is not None:
                secret(options[name])
    for name in spec.required:
        if name not in options:
            files = f" (or {name}_file)" if name in spec.secrets else ""
            raise ConfigError(f"missing key{files} for auth type {kind!r}", key=name)
    for name, value in options.items():
        if name in ("scopes", "params", "headers", "margin", "key_file"):
            continue
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, got {type(value).__name__}", key=name)
    if kind == "google_service_account":
        path = file_path("key_file")
        text = read_secret_file(path, key="key_file", one_line=False)
        try:
            info = json.loads(text)
        except ValueError:  # never quote the content
            raise ConfigError(f"the key file {str(path)!r} is not JSON", key="key_file") from None
        if isinstance(info, dict) and secret is not None:
            for field in ("private_key", "private_key_id"):
                if isinstance(info.get(field), str) and info[field]:
                    secret(info[field])
        options["key"] = info if isinstance(info, dict) else str(path)
    try:
        return _build(kind, options)
    except OptionError as exc:
        raise ConfigError(str(exc), key=exc.name) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _build(kind: str, options: dict[str, Any]) -> httpx.Auth:
    if kind == "bearer":
        return BearerAuth(options["token"])
    if kind == "basic":
        return httpx.BasicAuth(options["username"], options["password"])
    if kind == "headers":
        return HeaderAuth(options["headers"])
    if kind == "oauth2":
        return OAuth2ClientCredentials(**options)
    if kind == "oauth1":
        return OAuth1Auth(**options)
    return GoogleServiceAccount(**options)
