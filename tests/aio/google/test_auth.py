"""A service account with domain-wide delegation: one token, cached, for a whole sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from synctree import ReaderError
from synctree.aio.http import GoogleServiceAccount
from tests.google_emulator import GoogleEmulator, make_key, write_key
from tests.http_server import serve

from .conftest import DOMAINS, sync

pytestmark = pytest.mark.anyio

SCOPES = ["https://www.googleapis.com/auth/admin.directory.user"]


async def test_tokens_are_cached(tmp_path: Path) -> None:
    """Hundreds of calls, one token for the reader and the template; no token, no read."""
    emulator = GoogleEmulator(domains=DOMAINS, window=1.0)
    with serve(emulator.app) as url:
        info, public = make_key(f"{url}/token")
        emulator.public_key = public
        key = write_key(tmp_path / "key.json", info)
        subject = "admin@maplevalley.example.org"
        auth = GoogleServiceAccount(key, subject=subject, scopes=SCOPES)
        report = await sync(url, auth=auth, reader={"auth": auth})
        assert report.ok, report
        assert emulator.stats.tokens == 1
        assert sum(emulator.stats.calls.values()) > 500
        assert info["private_key"] not in repr(auth)
        with pytest.raises(ReaderError, match="HTTP 401"):  # one clear error, nothing done
            await sync(url, "changed")
