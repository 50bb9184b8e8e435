"""A local Google Workspace for tests and the example: Directory and Classroom on 127.0.0.1.

Not library code: it lives with the tests, and the example starts it the same way::

    python -m tests.google_emulator --port 8930 --key-out examples/google/emulator-key.json

It validates every request against the discovery documents that google-api-python-client
ships (a test dependency, read as data), answers in Google's error format, enforces a
quota per API (403 ``rateLimitExceeded``), and parses batch requests per part.  In Python::

    emulator = GoogleEmulator(domains=("example.org",))
    with serve(emulator.app) as url:
        ...   # point the connector at url; inspect emulator.users, emulator.stats
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._app import GoogleEmulator, Stats
from ._discovery import API, ApiError, load_api

__all__ = ["API", "ApiError", "GoogleEmulator", "Stats", "load_api", "make_key", "write_key"]


def make_key(
    token_uri: str, *, account: str = "synctree@emulator.iam.gserviceaccount.com"
) -> tuple[dict[str, Any], str]:
    """A new service account key (the JSON Google gives) for ``token_uri``, and its public PEM.

    A test key made on the spot: never a real credential.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    info = {
        "type": "service_account",
        "project_id": "synctree-emulator",
        "private_key_id": "emulator",
        "private_key": pem,
        "client_email": account,
        "client_id": "1",
        "token_uri": token_uri,
    }
    return info, public


def write_key(path: str | os.PathLike[str], info: dict[str, Any]) -> Path:
    """Write a key file readable by its owner only (mode 0600)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(info, handle)
    os.chmod(path, 0o600)
    return path
