"""How the SQL connector judges database errors for the engine.

A deadlock, a lock timeout or a lost connection retries the whole batch (every
statement :class:`SQLTemplate` runs is idempotent); a missing table, refused
DDL or no connection at all stop the destination once; the rest (a constraint,
a value too long) fail the rows they concern, left to the runner's rules.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc

from synctree import ConfigError
from synctree.aio import Verdict

__all__ = ["destination_failure", "transient"]

#: Retryable database failures: serialization failure, deadlock (SQLSTATE), MySQL's
#: lock wait timeout and deadlock (errno), SQLite's busy and locked (result code).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
_TRANSIENT_MYSQL = frozenset({1205, 1213})
_TRANSIENT_SQLITE = frozenset({5, 6})


def transient(error: sa_exc.DBAPIError) -> bool:
    """Whether the failure is worth another attempt of the whole batch."""
    if error.connection_invalidated:
        return True
    orig = error.orig
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    if getattr(orig, "sqlite_errorcode", None) in _TRANSIENT_SQLITE:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _TRANSIENT_MYSQL


def destination_failure(error: BaseException) -> Verdict | None:
    """The SQL errors that fail the whole destination, not one row: the rest is left to
    the runner's rules (and to the per-row outcomes of a batch)."""
    if isinstance(error, ConfigError):  # no such table, no key column...
        return Verdict(False, "no", reason="ConfigError", fatal=True)
    if not isinstance(error, sa_exc.DBAPIError) or isinstance(error, sa_exc.IntegrityError):
        return None
    reason = type(error.orig or error).__name__
    if error.statement is None:  # no statement: connecting failed; retried, then fatal
        return Verdict(True, "no", reason=reason, fatal=True)
    if error.statement.lstrip()[:6].upper() in ("CREATE", "ALTER ", "DROP T"):
        return Verdict(False, "no", reason=f"{reason} (DDL)", fatal=True)
    return None
