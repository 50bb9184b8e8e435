"""The database fixtures of the SQL tests, and their pairing of event loops and databases.

The database tests run on SQLite on both event loops, and on the servers on
asyncio only: their drivers (asyncpg, asyncmy) run on asyncio only, so
``pytest_generate_tests`` pairs the loops with the databases in
:data:`.database.CASES` (those trio combinations are not generated, rather than
skipped).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .database import CASES, DB, SERVERS, dispose, make_engine


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Async tests on asyncio and trio; database tests on the pairs in ``CASES``."""
    if "anyio_backend" not in metafunc.fixturenames or any(
        "anyio_backend" in mark.args[0] for mark in metafunc.definition.iter_markers("parametrize")
    ):
        return
    if "db_url" in metafunc.fixturenames:
        metafunc.parametrize(("anyio_backend", "db_url"), CASES, indirect=["db_url"])
    else:
        metafunc.parametrize("anyio_backend", ["asyncio", "trio"])


@pytest.fixture
def anyio_backend() -> str:
    """Parametrized by ``pytest_generate_tests`` (this fixture stops conftest's params)."""
    return "asyncio"


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a SQLite file, or a server named by an environment variable."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'school.db'}"
    return os.environ[SERVERS[request.param]]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'school.db'}"


@pytest.fixture
async def db(db_url: str, anyio_backend: str) -> AsyncIterator[DB]:
    helper = DB(db_url, make_engine(db_url, anyio_backend))
    await helper.run(lambda conn: None)  # a SQLite file exists from now on
    try:
        yield helper
    finally:
        await helper.drop()
        await dispose(helper.engine)


@pytest.fixture
async def sqlite_db(sqlite_url: str, anyio_backend: str) -> AsyncIterator[DB]:
    helper = DB(sqlite_url, make_engine(sqlite_url, anyio_backend))
    await helper.run(lambda conn: None)
    try:
        yield helper
    finally:
        await dispose(helper.engine)
