"""Secrets never appear in logs, reports, run logs, exceptions, reprs or CLI output.

Real syncs fail on purpose (HTTP 401, connection refused, a password the database
refuses) with secrets from ``${VAR}``s and arguments; every output is searched for them.
See ``leaks.py`` for what is collected, and for the httpx caveat.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from synctree import SyncTree
from synctree.aio import HTTPReader, NextLink, load
from tests.http_server import make_app, serve
from tests.reliability.leaks import (
    EMPTY_DESTINATION,
    HTTP_DESTINATION,
    SQL_DESTINATION,
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


# -- ${VAR} values are secrets, whatever the error text that carries them ---------------------

LEAKY = '''
import os
from synctree.aio import AsyncTemplate


class EchoTemplate(AsyncTemplate):
    """A template whose errors quote its secret, raw and URL-encoded (as some clients do)."""

    def __init__(self, secret, path=None):
        self.secret = secret

    async def new_users(self, action):
        from urllib.parse import quote
        raise ValueError(f"refused {self.secret!r} (GET https://api.test/?key={quote(self.secret)})")


class EchoReader:
    def __init__(self, secret):
        self.secret = secret

    async def __aiter__(self):
        raise ValueError(f"login as {self.secret} refused")
        yield {}
'''
FAILS_AT_IMPORT = """
import os
raise RuntimeError(f"login with {os.environ['SYNCTREE_TEST_ECHO']}")
"""
USERS = """
[sync]
subbranches = ["users"]

[source.users]
reader = "csv"
path = "users.csv"
key = "idnumber"
types = { grade = "int" }
"""
ECHO_TEMPLATE = """
[template]
use = "leaky:EchoTemplate"
secret = "${SYNCTREE_TEST_ECHO}"
"""


def pieces(value: str) -> dict[str, str]:
    """A secret, its stripped and URL-encoded forms, and its fragments between URL
    delimiters (``@ / # ? : &``, whitespace) of 3 characters or more: none may be printed."""
    forms = {value, value.strip(), quote(value, safe=""), quote_plus(value)}
    forms |= {part for part in re.split(r"[@/#?:&\s]", value) if len(part) >= 3}
    return {f"{form!r} of {value!r}": form for form in forms}


@pytest.fixture
def leaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Secrets with URL-special characters and a stray CR, and a template module that
    quotes them in its errors."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "leaky.py").write_text(LEAKY)
    (modules / "fails_at_import.py").write_text(FAILS_AT_IMPORT)
    monkeypatch.syspath_prepend(str(modules))
    values = {
        "SYNCTREE_TEST_CRLF_TOKEN": f"tok-{secrets.token_hex(8)}\r",
        "SYNCTREE_TEST_ODD_PASSWORD": f"pw@{secrets.token_hex(4)}/{secrets.token_hex(4)}#x",
        "SYNCTREE_TEST_ECHO": "e{}@{}/{}".format(*(secrets.token_hex(4) for _ in range(3))),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_config_secrets_masked_in_every_output(
    tmp_path: Path, leaky: dict[str, str], server: str
) -> None:
    """A CRLF token, an unencoded password, secrets quoted by a user's template, reader and
    module: neither the values nor their fragments appear in any output."""
    closed = closed_port()
    configs = {
        "crlf token in a header": USERS
        + HTTP_DESTINATION.format(url=server, token="SYNCTREE_TEST_CRLF_TOKEN")
        + ECHO_TEMPLATE,
        "unencoded password in a database url": USERS
        + SQL_DESTINATION.format(
            url=f"postgresql+asyncpg://app:${{SYNCTREE_TEST_ODD_PASSWORD}}@127.0.0.1:{closed}/db"
        )
        + ECHO_TEMPLATE,
        "template error quotes the secret": USERS + EMPTY_DESTINATION + ECHO_TEMPLATE,
        "reader error quotes the secret": USERS
        + '[destination.users]\nreader = "leaky:EchoReader"\nsecret = "${SYNCTREE_TEST_ECHO}"\n'
        + ECHO_TEMPLATE,
        "module raises the secret at import": USERS
        + EMPTY_DESTINATION
        + ECHO_TEMPLATE.replace("leaky:EchoTemplate", "fails_at_import:Template"),
    }
    with capture_logs() as records:
        texts, codes = cli_outputs(tmp_path, configs)
    texts |= log_texts(records)
    values = {k: v for value in leaky.values() for k, v in pieces(value).items()}
    assert findings(texts, values) == []

    def text(name: str, command: str) -> str:
        return texts[f"{name}: synctree {command}"].replace("\n", "")

    def code(name: str, command: str) -> int:
        return codes[f"{name}: synctree {command}"]

    for command in ("plan", "run --json", "show"):
        name = "crlf token in a header"
        assert code(name, command) == 2
        assert "environment variable SYNCTREE_TEST_CRLF_TOKEN ends with a carriage return" in text(
            name, command
        )
        name = "unencoded password in a database url"
        assert code(name, command) == 2
        assert "SYNCTREE_TEST_ODD_PASSWORD" in text(name, command)
        assert "URL-encode" in text(name, command)
        name = "module raises the secret at import"
        assert code(name, command) == 2
        assert "[template], key 'use'" in text(name, command)
        assert "RuntimeError: login with ***" in text(name, command)
    name = "template error quotes the secret"
    assert code(name, "run --json") == 1 and code(name, "run --quiet") == 1
    assert "ValueError: refused '***'" in text(name, "run --quiet")
    assert "refused '***'" in texts[f"{name}: run log"]
    assert code("reader error quotes the secret", "plan") == 2
    assert "login as *** refused" in text("reader error quotes the secret", "plan")
