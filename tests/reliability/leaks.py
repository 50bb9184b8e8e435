"""Secrets against every output: syncs that fail in various ways, and everything they print.

A bearer token (in headers), a wrong token, a token in a query string, and a database
password reach synctree only through ``${VAR}`` in configs or as arguments; then the CLI
(plan, run, show, with ``--verbose`` and ``--json``), the run log, the logs of every
logger at DEBUG, reports, exceptions (with their chained causes) and reprs are collected
as text, to be searched for the secrets.  Shared by ``test_secrets.py`` and
``bench/reliability.py``.

The httpx caveat: httpx logs each request's URL at INFO (``HTTP Request: GET ...``).  A
secret that a user puts into a *URL* (``params = { access_token = ... }``, or
``https://user:password@host``) is therefore in httpx's log records, outside synctree's
control; synctree's own messages, reports and run logs redact it.
Tokens in headers and passwords in database URLs never reach a URL synctree builds, so no
log record at any level holds them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import socket
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from synctree import SyncTree, SyncTreeError
from synctree._cli import main
from synctree._cli._config import Config
from synctree.aio import HTTPReader, SQLReader, SQLTemplate, load
from tests.reliability.scenario import UsersTemplate

__all__ = ["Secrets", "api_outputs", "capture_logs", "cli_outputs", "closed_port", "findings"]


@dataclasses.dataclass(frozen=True, slots=True)
class Secrets:
    """Fresh random secrets, and the environment variables a config reads them from."""

    token: str = dataclasses.field(default_factory=lambda: "tok-" + secrets.token_hex(12))
    wrong_token: str = dataclasses.field(default_factory=lambda: "bad-" + secrets.token_hex(12))
    url_secret: str = dataclasses.field(default_factory=lambda: "url-" + secrets.token_hex(12))
    password: str = dataclasses.field(default_factory=lambda: "pw-" + secrets.token_hex(12))

    def environ(self) -> dict[str, str]:
        return {
            "SYNCTREE_TEST_TOKEN": self.token,
            "SYNCTREE_TEST_WRONG_TOKEN": self.wrong_token,
            "SYNCTREE_TEST_URL_SECRET": self.url_secret,
            "SYNCTREE_TEST_DB_PASSWORD": self.password,
        }

    def named(self) -> dict[str, str]:
        """The secrets that must be nowhere (``url_secret``: nowhere but httpx's log)."""
        return {name: getattr(self, name) for name in ("token", "wrong_token", "password")}


def findings(texts: dict[str, str], values: dict[str, str]) -> list[str]:
    """``'where: which secret'`` for every secret found in every text."""
    return [
        f"{where}: {name}" for where, text in texts.items() for name, value in values.items()
        if value in text
    ]  # fmt: skip


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def capture_logs() -> Iterator[list[logging.LogRecord]]:
    """Every log record of every logger, at DEBUG, while the block runs."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler, level = Keep(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def log_texts(records: list[logging.LogRecord]) -> dict[str, str]:
    """The formatted records (exceptions included), by logger name."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    out: dict[str, list[str]] = {}
    for record in records:
        out.setdefault(f"log {record.name}", []).append(formatter.format(record))
    return {name: "\n".join(lines) for name, lines in out.items()}


# -- the CLI ---------------------------------------------------------------------------------

HEAD = """\
[sync]
subbranches = ["users"]

[source.users]
reader = "csv"
path = "users.csv"
key = "idnumber"
types = { grade = "int" }

[run]
retries = 2
backoff_base = 0.001
backoff_cap = 0.01
"""
EMPTY_DESTINATION = """
[destination.users]
reader = "csv"
path = "empty.csv"
key = "idnumber"
allow_empty = true
"""
HTTP_DESTINATION = """
[destination.users]
reader = "http"
client_or_url = "{url}"
path = "/users"
items = "users"
retries = 1
params = {{ per_page = 1000, access_token = "${{SYNCTREE_TEST_URL_SECRET}}" }}
headers = {{ Authorization = "Bearer ${{{token}}}" }}
"""
HTTP_TEMPLATE = """
[template]
use = "tests.reliability.scenario:UsersTemplate"
base_url = "{url}"
headers = {{ Authorization = "Bearer ${{{token}}}" }}
"""
SQL_DESTINATION = """
[destination.users]
reader = "sql"
url = "{url}"
key = "idnumber"
"""
SQL_TEMPLATE = """
[template]
use = "sql"
url = "{url}"
"""
GOOD, WRONG = "SYNCTREE_TEST_TOKEN", "SYNCTREE_TEST_WRONG_TOKEN"
PASSWORD = "${SYNCTREE_TEST_DB_PASSWORD}"
URL_SECRET = "${SYNCTREE_TEST_URL_SECRET}"


def scenarios(base_url: str, closed: int, postgres: str | None) -> dict[str, str]:
    """Config texts by name: each sync fails in its own way."""
    refused = f"http://admin:{URL_SECRET}@127.0.0.1:{closed}"
    with_credentials = base_url.replace("http://", f"http://admin:{URL_SECRET}@")
    pg_refused = f"postgresql+asyncpg://app:{PASSWORD}@127.0.0.1:{closed}/school"
    out = {
        "http reader 401 (wrong token)": HTTP_DESTINATION.format(url=base_url, token=WRONG)
        + HTTP_TEMPLATE.format(url=base_url, token=GOOD),
        "http template 401 (wrong token)": HTTP_DESTINATION.format(url=base_url, token=GOOD)
        + HTTP_TEMPLATE.format(url=base_url, token=WRONG),
        "http reader refused": HTTP_DESTINATION.format(url=refused, token=GOOD)
        + HTTP_TEMPLATE.format(url=base_url, token=GOOD),
        "http template refused": EMPTY_DESTINATION + HTTP_TEMPLATE.format(url=refused, token=GOOD),
        "http template 401 (credentials in its URL)": EMPTY_DESTINATION
        + HTTP_TEMPLATE.format(url=with_credentials, token=WRONG),
        "sql reader refused": SQL_DESTINATION.format(url=pg_refused)
        + SQL_TEMPLATE.format(url=pg_refused),
        "sql template refused": EMPTY_DESTINATION + SQL_TEMPLATE.format(url=pg_refused),
        "sqlite url with a password": EMPTY_DESTINATION
        + SQL_TEMPLATE.format(url=f"sqlite+aiosqlite://admin:{PASSWORD}@/school.db"),
    }
    if postgres:  # a real server: the wrong password is sent, and refused (or trusted)
        import sqlalchemy as sa

        pg = sa.make_url(postgres)
        url = (
            f"{pg.drivername}://{pg.username}:{PASSWORD}@{pg.host}:{pg.port or 5432}/{pg.database}"
        )
        out["postgres wrong password"] = SQL_DESTINATION.format(url=url) + SQL_TEMPLATE.format(
            url=url
        )
    return {name: HEAD + body for name, body in out.items()}


COMMANDS = [
    ["plan"],
    ["plan", "--verbose"],
    ["plan", "--json"],
    ["run", "--verbose", "--log", "{log}"],
    ["run", "--json"],
    ["run", "--quiet"],
    ["show"],
    ["show", "--json"],
    ["show", "users", "u1", "--verbose"],
]


def cli_outputs(folder: Path, configs: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    """``({where: text}, {where: exit code})`` for every command on every config."""
    texts: dict[str, str] = {}
    codes: dict[str, int] = {}
    for n, (name, text) in enumerate(configs.items()):
        project = folder / f"config{n}"
        project.mkdir(parents=True)
        rows = "".join(f"u{i},User {i},{i}\n" for i in range(1, 4))
        (project / "users.csv").write_text("idnumber,name,grade\n" + rows)
        (project / "empty.csv").write_text("idnumber,name,grade\n")
        config = project / "sync.toml"
        config.write_text(text)
        log = project / "run.jsonl"
        for command in COMMANDS:
            args = [part.format(log=log) for part in command]
            result = CliRunner().invoke(main, [args[0], str(config), *args[1:]])
            where = f"{name}: synctree {' '.join(command)}"
            output = result.output
            if result.exc_info is not None and not isinstance(result.exception, SystemExit):
                output += "".join(traceback.format_exception(*result.exc_info))
            texts[where] = output
            codes[where] = result.exit_code
            if log.exists():
                texts[f"{name}: run log"] = log.read_text()
        texts[f"{name}: reprs"] = config_reprs(config)
    return texts, codes


def config_reprs(path: Path) -> str:
    """The reprs of a config, its reader specs, and what it builds (where it can)."""
    parts = []
    try:
        config = Config(path)
    except Exception as exc:
        return error_text(exc)
    parts += [repr(config), repr(config.readers)]
    for build in (config.build_readers, config.build_template):
        try:
            parts.append(repr(build()))
        except Exception as exc:
            parts.append(error_text(exc))
    return "\n".join(parts)


def error_text(exc: BaseException) -> str:
    """An exception as outputs show it: str, repr and traceback, then the causes synctree
    chained to it, down to the first foreign one (a custom reader's own error, in its own
    words: not synctree's to reword)."""
    parts = []
    cause: BaseException | None = exc
    while cause is not None and (cause is exc or isinstance(cause, SyncTreeError)):
        parts += [str(cause), repr(cause), *traceback.format_exception(cause, chain=False)]
        # what a printed traceback shows next: the cause, or the context unless suppressed
        if cause.__cause__ is not None or cause.__suppress_context__:
            cause = cause.__cause__
        else:
            cause = cause.__context__
    return "\n".join(parts)


# -- the API ---------------------------------------------------------------------------------


async def api_outputs(base_url: str, closed: int, found: Secrets) -> dict[str, str]:
    """Readers, templates, reports and errors of syncs run from Python."""
    out: dict[str, str] = {}
    bearer = {"Authorization": f"Bearer {found.wrong_token}"}
    readers: dict[str, Any] = {
        "HTTPReader 401": HTTPReader(
            base_url, "/users", items="users", headers=bearer, retries=0,
            params={"access_token": found.url_secret},
        ),
        "HTTPReader refused": HTTPReader(
            f"http://admin:{found.url_secret}@127.0.0.1:{closed}", "/users", headers=bearer,
            retries=0,
        ),
        "SQLReader refused": SQLReader(
            f"postgresql+asyncpg://app:{found.password}@127.0.0.1:{closed}/school",
            table="users", key="idnumber",
        ),
    }  # fmt: skip
    with_credentials = base_url.replace("http://", f"http://admin:{found.url_secret}@")

    async def custom_reader() -> AsyncIterator[dict[str, Any]]:
        """A user's reader whose error quotes the URL it asked (httpx's message does)."""
        async with httpx.AsyncClient() as client:
            (await client.get(f"{with_credentials}/users")).raise_for_status()
        yield {}

    readers["custom reader 401"] = custom_reader()
    for name, reader in readers.items():
        out[f"repr({name})"] = repr(reader)
        tree = SyncTree(["source", "destination"], ["users"])
        try:
            await load(tree, {"destination": {"users": reader}})
        except Exception as exc:
            out[f"{name}: error"] = error_text(exc)

    templates = {
        "UsersTemplate 401": UsersTemplate(base_url, headers=bearer),
        "UsersTemplate refused": UsersTemplate(
            f"http://admin:{found.url_secret}@127.0.0.1:{closed}", headers=bearer
        ),
        "UsersTemplate 401, credentials in its URL": UsersTemplate(
            base_url.replace("http://", f"http://admin:{found.url_secret}@"), headers=bearer
        ),
        "SQLTemplate refused": SQLTemplate(
            f"postgresql+asyncpg://app:{found.password}@127.0.0.1:{closed}/school"
        ),
    }
    for name, template in templates.items():
        out[f"repr({name})"] = repr(template)
        tree = SyncTree(["source", "destination"], ["users"])
        for i in range(1, 4):
            tree.new("source", "users", f"u{i}", name=f"User {i}", grade=i)
        try:
            report = await (tree.source > tree.destination).run(
                template, retries=1, backoff_base=0.001, backoff_cap=0.01
            )
        except Exception as exc:
            out[f"{name}: error"] = error_text(exc)
            continue
        out[f"{name}: report"] = "\n".join([str(report), repr(report), report.to_json()])
        # synctree's renderings of each failure; a template's own exception object (here
        # httpx's) is the template's to word, and is only shown through these
        out[f"{name}: failures"] = "\n".join(
            f"{r.to_dict()}\n{r.traceback}" for r in report.failures if r.error is not None
        )
    return out
