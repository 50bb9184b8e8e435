"""Secrets never appear in logs, reports, run logs, exceptions, reprs or CLI output.

Real syncs fail on purpose (HTTP 401, connection refused, a password the database
refuses) with secrets from ``${VAR}``s and arguments; every output is searched for them.
See ``leaks.py`` for what is collected, and for the httpx caveat.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from synctree import SyncTree
from synctree.aio import HTTPReader, NextLink, load
from tests.http_server import make_app, serve
from tests.reliability.leaks import (
    Secrets,
    api_outputs,
    capture_logs,
    cli_outputs,
    closed_port,
    findings,
    log_texts,
    scenarios,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def found(monkeypatch: pytest.MonkeyPatch) -> Secrets:
    """Fresh secrets, exported as the environment variables the configs name."""
    secrets = Secrets()
    for name, value in secrets.environ().items():
        monkeypatch.setenv(name, value)
    return secrets


@pytest.fixture
def server(found: Secrets) -> Iterator[str]:
    """The users API, demanding the right bearer token."""
    with serve(make_app(token=found.token)) as base_url:
        yield base_url


def outside_httpx(where: list[str]) -> list[str]:
    return [w for w in where if not w.startswith("log httpx:")]


def test_cli_outputs(tmp_path: Path, found: Secrets, server: str) -> None:
    """plan/run/show (--verbose, --json, --quiet), run logs, logs and reprs: no secret."""
    configs = scenarios(server, closed_port(), os.environ.get("SYNCTREE_TEST_POSTGRES_URL"))
    with capture_logs() as records:
        texts, codes = cli_outputs(tmp_path, configs)
    texts |= log_texts(records)
    assert findings(texts, found.named()) == []
    # A secret the user put in a URL: only in httpx's own log (the httpx caveat).
    assert outside_httpx(findings(texts, {"url_secret": found.url_secret})) == []

    # The syncs failed as intended, so the failure paths were searched.
    def code(name: str, command: str = "run --json") -> int:
        return codes[f"{name}: synctree {command}"]

    assert code("http reader 401 (wrong token)") == 2
    assert "HTTP 401 Unauthorized" in texts["http reader 401 (wrong token): synctree run --json"]
    assert code("http template 401 (wrong token)") == 1
    assert "401 Unauthorized" in texts["http template 401 (wrong token): synctree run --quiet"]
    assert code("http reader refused") == 2
    assert code("http template refused") == 1
    assert code("sql reader refused") == 2
    assert "Connect" in texts["sql reader refused: synctree plan"]
    assert code("sql template refused") == 1
    assert "access_token=REDACTED" in texts["http reader refused: synctree plan"]
    assert sum("run log" in where for where in texts) >= 3


async def test_api_outputs(found: Secrets, server: str) -> None:
    """Readers' and templates' reprs, reports and errors (with causes): no secret."""
    with capture_logs() as records:
        texts = await api_outputs(server, closed_port(), found)
    texts |= log_texts(records)
    assert findings(texts, found.named()) == []
    assert outside_httpx(findings(texts, {"url_secret": found.url_secret})) == []
    assert "HTTP 401" in texts["HTTPReader 401: error"]
    assert "401 Unauthorized" in texts["UsersTemplate 401: failures"]
    assert "REDACTED" in texts["HTTPReader 401: error"]  # the query token, in our message
    assert "401 Unauthorized" in texts["custom reader 401: error"]


async def test_headers_never_reach_a_url(found: Secrets, server: str) -> None:
    """A working sync: httpx logs every URL synctree built; none holds the header token."""
    reader = HTTPReader(
        server,
        "/users",
        items="users",
        headers={"Authorization": f"Bearer {found.token}"},
        params={"per_page": 2},
        pagination=NextLink(),
    )
    async with httpx.AsyncClient(base_url=server) as client:
        for i in range(5):
            headers = {"Authorization": f"Bearer {found.token}"}
            await client.post("/users", json={"id": f"u{i}"}, headers=headers)
    with capture_logs() as records:
        tree = SyncTree(["source", "destination"], ["users"])
        await load(tree, {"destination": {"users": reader}})
    assert len(tree.destination.users) == 5
    urls = [r.getMessage() for r in records if r.name == "httpx"]
    assert len(urls) == 3 and all("/users?" in url for url in urls)  # three pages
    assert findings(log_texts(records), found.named()) == []
