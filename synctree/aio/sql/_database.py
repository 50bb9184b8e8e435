"""The database: engines and drivers, and where the blocking work of a transaction runs.

This module alone makes engines (the async driver a URL gets by default, the
install hint for a missing one) and touches the event loop.  The reader and the
template write their database work as plain synchronous functions of a
``sqlalchemy.Connection`` (a reflection, one batch transaction, one fetch);
:class:`Database` runs each such unit without blocking the event loop:

- with an async engine (an async driver in the URL, the default: aiosqlite,
  asyncpg, asyncmy), on asyncio, through ``AsyncConnection.run_sync``: the
  function runs in a greenlet that awaits the driver's coroutines;
- with a synchronous engine, on either loop, in a worker thread
  (``anyio.to_thread.run_sync``), one at a time for SQLite.  On trio, whose loop
  the async drivers cannot use, a SQLite URL gets the stdlib ``sqlite3`` driver
  that way; a PostgreSQL or MySQL URL must name a synchronous driver
  (``postgresql+psycopg``, ``mysql+pymysql``) or the sync must run on asyncio.

Cancellation: a worker thread cannot be interrupted (``to_thread.run_sync``
waits for it), so a unit of work that has started runs to its end and the
cancellation takes effect once it returns: a batch is committed, or rolled back
on an error, whole, never half-written.  aiosqlite runs its calls in a thread
too, so on asyncio a SQLite unit is shielded the same way (see
:func:`_uninterruptible`); with asyncpg or asyncmy, a cancelled unit is
interrupted at the driver's next await and its transaction rolled back (a
cancellation during COMMIT itself leaves the outcome to the server, as always).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from synctree import ConfigError

__all__ = ["Database", "EngineLike", "Link"]

EngineLike: TypeAlias = "str | sa.URL | sa.Engine | AsyncEngine"

P = ParamSpec("P")
T = TypeVar("T")

#: The async driver used when a URL names none (``sqlite:///x.db``).
_ASYNC_DRIVERS = {
    "sqlite": "aiosqlite",
    "postgresql": "asyncpg",
    "mysql": "asyncmy",
    "mariadb": "asyncmy",
}
#: The synctree extra that installs a driver.
_EXTRAS = {"asyncpg": "postgres", "asyncmy": "mysql"}
#: A synchronous driver to name, and how to install it, for a server off asyncio.
_SYNC_DRIVERS = {
    "postgresql": ("psycopg", "pip install 'psycopg[binary]'"),
    "mysql": ("pymysql", "pip install pymysql"),
    "mariadb": ("pymysql", "pip install pymysql"),
}


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _library() -> str:
    """The running async library's name, for messages."""
    try:
        import sniffio

        return str(sniffio.current_async_library())
    except Exception:  # sniffio missing, or no known library running
        return "this event loop"


class Link:
    """One open connection: ``await link.run(fn, *args)`` calls ``fn(connection, *args)``.

    The call runs in a greenlet (async engine, asyncio) or in a worker thread
    (synchronous engine), never blocking the event loop.
    """

    __slots__ = ("_conn", "_limiter", "_shield")

    def __init__(
        self,
        conn: AsyncConnection | sa.Connection,
        limiter: anyio.CapacityLimiter | None = None,
        shield: bool = False,
    ) -> None:
        self._conn = conn
        self._limiter = limiter
        self._shield = shield

    async def run(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        conn = self._conn
        if isinstance(conn, sa.Connection):
            call = functools.partial(fn, conn, *args, **kwargs)
            return await anyio.to_thread.run_sync(call, limiter=self._limiter)
        with anyio.CancelScope(shield=self._shield):
            result = await conn.run_sync(fn, *args, **kwargs)
        return result


def _uninterruptible(engine: AsyncEngine) -> bool:
    """Whether a unit of work on ``engine`` must not be interrupted: aiosqlite's.

    aiosqlite runs each call in its own thread; cancelling the await leaves the
    call running, and SQLAlchemy then invalidates the connection, whose cleanup
    awaits anyio cancels again: its close is left pending at loop shutdown ("Event
    loop is closed" in aiosqlite's thread, or a hang).  So such a unit is shielded,
    as a worker thread is.
    """
    return engine.dialect.name == "sqlite"


@dataclass(slots=True)
class _Threads:
    """A synchronous engine used from worker threads, ``limiter`` of them at a time."""

    engine: sa.Engine
    limiter: anyio.CapacityLimiter | None
    owned: bool


def _in_transaction(
    engine: sa.Engine, fn: Callable[Concatenate[sa.Connection, P], T], *args: Any, **kwargs: Any
) -> T:
    with engine.begin() as conn:
        return fn(conn, *args, **kwargs)


class Database:
    """An engine (given, or made from a URL), a name for it without the password, and
    :meth:`connect` and :meth:`transaction` to run synchronous database code on it.

    Engines made here are owned and disposed by :meth:`dispose`; a given one is
    left alone.  Making an engine does no I/O.

    :param owner: who uses the database (``'SQLReader'``), for messages.
    """

    __slots__ = (
        "_async",
        "_password",
        "_sync",
        "_threads",
        "_url",
        "_users",
        "name",
        "owned",
        "owner",
    )

    def __init__(self, url: EngineLike, param: str = "url", owner: str = "SQL") -> None:
        self.owner = owner
        self._threads: _Threads | None = None
        self._users = 0
        engine: sa.Engine | AsyncEngine
        if isinstance(url, AsyncEngine | sa.Engine):
            engine, self.owned = url, False
        elif isinstance(url, str | sa.URL):
            engine, self.owned = _create_engine(url, param), True
        else:
            raise ValueError(
                f"{param!r} must be a database URL, an Engine or an AsyncEngine, "
                f"not {type(url).__name__}"
            )
        if isinstance(engine, sa.Engine) and engine.dialect.is_async:
            raise ValueError(
                f"{param!r} is the sync_engine of an AsyncEngine ({engine.dialect.driver}); "
                f"give the AsyncEngine itself"
            )
        self._async = engine if isinstance(engine, AsyncEngine) else None
        self._sync = engine if isinstance(engine, sa.Engine) else None
        self._url: sa.URL = engine.url
        self.name = self._url.render_as_string(hide_password=True)
        self._password = self._url.password

    @property
    def dialect(self) -> str:
        """``'sqlite'``, ``'postgresql'``, ``'mysql'``, ``'mariadb'``..."""
        engine = self._async or self._sync
        assert engine is not None
        return str(engine.dialect.name)

    def scrub(self, text: str) -> str:
        """``text`` with the URL's password masked, should a driver ever echo it."""
        password = self._password
        if password and isinstance(password, str):
            text = text.replace(password, "***")
        return text

    def describe(self, error: BaseException) -> str:
        """A one-line, password-free description of a database error."""
        if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
            text = f"{type(error.orig).__name__}: {error.orig}"
        else:
            text = f"{type(error).__name__}: {error}"
        return self.scrub(" ".join(text.split()))

    def missing_sqlite_file(self) -> Path | None:
        """The SQLite database file, if the URL names one that does not exist.

        SQLite creates a missing file on connect; a reader must not.
        """
        url = self._url
        database = url.database
        if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return None
        if database.startswith("file:") or url.query.get("uri"):
            return None
        path = Path(database)
        return None if path.exists() else path

    def check(self) -> None:
        """Raise :class:`ConfigError` if the engine cannot run on this event loop."""
        self._runner()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Link]:
        """A connection for several units of work (a reader's fetches), closed at the end."""
        runner = self._runner()
        if isinstance(runner, AsyncEngine):
            shield = _uninterruptible(runner)
            with anyio.CancelScope(shield=shield):
                conn = await runner.connect()
            try:
                yield Link(conn, shield=shield)
            finally:
                with anyio.CancelScope(shield=True):
                    await conn.close()
            return
        limiter = runner.limiter
        connection = await anyio.to_thread.run_sync(runner.engine.connect, limiter=limiter)
        try:
            yield Link(connection, limiter)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(connection.close, limiter=limiter)

    async def transaction(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(connection, *args)`` in one transaction: committed if it returns, else rolled back.

        In a worker thread, the whole transaction (connect, ``fn``, commit) is one call.
        """
        runner = self._runner()
        if isinstance(runner, _Threads):
            call = functools.partial(_in_transaction, runner.engine, fn, *args, **kwargs)
            return await anyio.to_thread.run_sync(call, limiter=runner.limiter)
        with anyio.CancelScope(shield=_uninterruptible(runner)):
            async with runner.begin() as conn:
                result = await conn.run_sync(fn, *args, **kwargs)
        return result

    @asynccontextmanager
    async def used(self) -> AsyncIterator[None]:
        """One user of the engines (a reader's pass): the last one to leave disposes them.

        So that two passes at once do not close each other's pool.
        """
        self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if not self._users:
                await self.dispose()

    async def dispose(self) -> None:
        """Close the pools of the engines made here (shielded: it runs during cleanup)."""
        threads, self._threads = self._threads, None
        with anyio.CancelScope(shield=True):
            if threads is not None and threads.owned:
                await anyio.to_thread.run_sync(threads.engine.dispose)
            if self._async is not None and self.owned and _on_asyncio():
                await self._async.dispose()

    def _runner(self) -> AsyncEngine | _Threads:
        """The async engine on asyncio; otherwise a synchronous engine, made once per run."""
        if self._async is not None and _on_asyncio():
            return self._async
        if self._threads is None:
            if self._sync is not None:
                engine, owned = self._sync, self.owned
            else:
                engine, owned = self._sync_engine(), True
            # SQLite has one writer at a time: one thread per engine keeps them from queueing
            # on its lock (and a connection is only ever used by one thread at a time).
            limiter = anyio.CapacityLimiter(1) if engine.dialect.name == "sqlite" else None
            self._threads = _Threads(engine, limiter, owned)
        return self._threads

    def _sync_engine(self) -> sa.Engine:
        """A synchronous engine standing in for the async one, off asyncio: SQLite only."""
        assert self._async is not None
        library = _library()
        if not self.owned:
            raise ConfigError(
                f"{self.owner} was given an AsyncEngine, which runs on asyncio only, "
                f"not on {library}: give it the URL, or a synchronous sqlalchemy Engine",
                path=self.name,
            )
        url = self._url
        backend, driver = url.get_backend_name(), url.get_driver_name()
        if backend != "sqlite":
            sync_driver, install = _SYNC_DRIVERS.get(backend, ("a synchronous driver", ""))
            install = f" ({install})" if install else ""
            raise ConfigError(
                f"{self.owner} cannot use {driver} on {library}: SQLAlchemy's async drivers "
                f"run on asyncio only.  Run the sync on asyncio (asyncio.run(...) or "
                f"anyio.run(..., backend='asyncio')), or name a synchronous driver in the "
                f"URL, which synctree runs in worker threads: {backend}+{sync_driver}://..."
                f"{install}",
                path=self.name,
            )
        url = url.set(drivername="sqlite")
        if url.database and url.database != ":memory:" and url.query.get("mode") != "memory":
            return sa.create_engine(url)  # a file: a QueuePool, check_same_thread=False
        # One in-memory database, whichever worker thread asks (as with aiosqlite).
        return sa.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )


def _create_engine(url: str | sa.URL, param: str) -> sa.Engine | AsyncEngine:
    """An async engine for an async driver (the default), a synchronous one for a sync driver."""
    try:
        parsed = sa.make_url(url)
    except sa_exc.ArgumentError:
        # The message would quote the string, which may hold a password.
        raise ValueError(
            f"{param!r} is not a database URL (expected, say, 'sqlite+aiosqlite:///school.db')"
        ) from None
    if "+" not in parsed.drivername and parsed.drivername in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=f"{parsed.drivername}+{_ASYNC_DRIVERS[parsed.drivername]}")
    safe = parsed.render_as_string(hide_password=True)
    try:
        if parsed.get_dialect().is_async:
            return create_async_engine(parsed)
        return sa.create_engine(parsed)
    except ModuleNotFoundError as exc:
        driver = parsed.get_driver_name()
        extra = _EXTRAS.get(driver)
        hint = f"pip install 'synctree[{extra}]'" if extra else f"install the {driver} driver"
        raise ConfigError(
            f"the database driver is not installed ({exc.name}): {hint}", path=safe
        ) from None
    except sa_exc.NoSuchModuleError:
        raise ConfigError(
            f"unknown database dialect or driver {parsed.drivername!r}", path=safe
        ) from None
    except sa_exc.ArgumentError as exc:  # e.g. a SQLite URL with a user or password
        problem = str(exc).splitlines()[0].replace(str(parsed), safe)
        raise ConfigError(f"not a usable database URL: {problem}", path=safe) from None
