"""What the SQL reader and template share: the engine, its safe name, asyncio only.

This module is the one seam between synctree and SQLAlchemy's async engine:
URLs become engines here (with an install hint when a driver is missing), and
set-valued attributes are encoded here the same way for writing and reading.

SQLAlchemy's async engine runs the synchronous core in a greenlet and awaits
the driver's asyncio coroutines (aiosqlite, asyncpg and asyncmy all use asyncio
futures or streams), so it works on asyncio only: on trio the first query fails
with "trio.run received unrecognized yield message <Future pending>".  The SQL
reader and template therefore check the running loop first and say so plainly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeAlias

import anyio
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .._exceptions import ConfigError

__all__ = ["Database", "EngineLike", "decode_members", "encode_members", "require_asyncio"]

EngineLike: TypeAlias = "str | sa.URL | AsyncEngine"

#: The async driver used when a URL names none (``sqlite:///x.db``).
_ASYNC_DRIVERS = {
    "sqlite": "aiosqlite",
    "postgresql": "asyncpg",
    "mysql": "asyncmy",
    "mariadb": "asyncmy",
}
#: The synctree extra that installs a driver.
_EXTRAS = {"asyncpg": "postgres", "asyncmy": "mysql"}


def require_asyncio(what: str) -> None:
    """Raise :class:`ConfigError` unless running on asyncio (see the module docstring)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return
    try:
        import sniffio

        library = sniffio.current_async_library()
    except Exception:  # sniffio missing, or no known library running
        library = "this event loop"
    raise ConfigError(
        f"{what} needs asyncio, not {library}: SQLAlchemy's async engine and its drivers "
        f"(aiosqlite, asyncpg, asyncmy) run on asyncio only; run this sync with "
        f"asyncio.run(...) or anyio.run(..., backend='asyncio')"
    )


class Database:
    """An async engine (given, or made from a URL) and a name for it without the password.

    An engine made here is owned and disposed by :meth:`dispose`; a given one is
    left alone.  Making an engine does no I/O.
    """

    __slots__ = ("_password", "engine", "name", "owned")

    def __init__(self, url: EngineLike, param: str = "url") -> None:
        if isinstance(url, AsyncEngine):
            self.engine = url
            self.owned = False
        elif isinstance(url, str | sa.URL):
            self.engine = _create_engine(url, param)
            self.owned = True
        else:
            raise ValueError(
                f"{param!r} must be a database URL or an AsyncEngine, "
                f"not {type(url).__name__}"
            )
        url = self.engine.url
        self.name = url.render_as_string(hide_password=True)
        self._password = url.password

    @property
    def dialect(self) -> str:
        """``'sqlite'``, ``'postgresql'``, ``'mysql'``, ``'mariadb'``..."""
        return str(self.engine.dialect.name)

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
        url = self.engine.url
        database = url.database
        if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return None
        if database.startswith("file:") or url.query.get("uri"):
            return None
        path = Path(database)
        return None if path.exists() else path

    async def dispose(self) -> None:
        """Close the pool of an engine made here (shielded: it runs during cleanup)."""
        if self.owned:
            with anyio.CancelScope(shield=True):
                await self.engine.dispose()


def _create_engine(url: str | sa.URL, param: str) -> AsyncEngine:
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
        return create_async_engine(parsed)
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
    except sa_exc.InvalidRequestError as exc:  # a synchronous driver
        raise ConfigError(
            f"{parsed.drivername!r} is not an async driver ({exc}); use e.g. "
            f"sqlite+aiosqlite, postgresql+asyncpg or mysql+asyncmy",
            path=safe,
        ) from None


def encode_members(value: Any, separator: str) -> Any:
    """A set or list as one text cell: set members sorted, list members in order.

    Other values pass unchanged.  A member holding ``separator`` cannot be stored
    faithfully and raises :class:`ValueError`.
    """
    if isinstance(value, set | frozenset):
        members = sorted(map(str, value))
    elif isinstance(value, list | tuple):
        members = [str(member) for member in value]
    else:
        return value
    for member in members:
        if separator in member:
            raise ValueError(
                f"member {member!r} holds the separator {separator!r}, so it cannot be "
                f"stored in a text column; choose another separator"
            )
    return separator.join(members)


def decode_members(value: Any, kind: type[Collection[Any]], separator: str) -> Any:
    """The inverse of :func:`encode_members`: ``None`` and ``''`` give an empty collection."""
    if value is None:
        return kind()
    if not isinstance(value, str):
        raise ValueError(f"expected text holding {separator!r}-separated members, got {value!r}")
    return kind([part for part in map(str.strip, value.split(separator)) if part])  # type: ignore[call-arg]
