"""The async engine: loading, the runner, async templates, and the connectors beside it.

Loading's names are imported here; the runner's (``AsyncTemplate``, ``Retry``,
...) when first used, so that a plan (load and diff) does not load the runner.
The connectors' names (``CSVReader``, ``SQLTemplate``, ...) live in their
subpackages (``synctree.aio.csv``, ``synctree.aio.sql``, ...) and are
re-exported lazily too (PEP 562), so ``import synctree.aio`` loads neither
SQLAlchemy nor httpx.
"""

from __future__ import annotations

import typing

from .._util import exports
from ._load import Derived, Pipeline, load
from ._reader import (
    Batch,
    BatchReader,
    PackedTable,
    Packing,
    Reader,
    Row,
    Table,
    TableReader,
    rows_of,
)

if typing.TYPE_CHECKING:
    from ._attempts import retrying
    from ._events import Event, EventKind, Observer
    from ._limiter import RateLimiter
    from ._retry import Backoff, Retry, RetryPolicy, Sent, Verdict, classify
    from ._template import AsyncRun, AsyncTemplate, batch, idempotent
    from .csv import CSVReader, CSVTemplate
    from .http import (
        Cursor,
        HTTPReader,
        LinkHeader,
        ListingError,
        NextLink,
        Offset,
        PageError,
        PageNumber,
        Pagination,
    )
    from .oneroster import OneRoster, OneRosterReader
    from .scim import SCIMError, SCIMReader, SCIMTemplate
    from .sql import SQLReader, SQLTemplate

#: Connector names importable from ``synctree.aio`` too: name -> subpackage.
_CONNECTORS = {
    "CSVReader": "csv",
    "CSVTemplate": "csv",
    "Cursor": "http",
    "HTTPReader": "http",
    "LinkHeader": "http",
    "ListingError": "http",
    "NextLink": "http",
    "Offset": "http",
    "PageError": "http",
    "PageNumber": "http",
    "Pagination": "http",
    "OneRoster": "oneroster",
    "OneRosterReader": "oneroster",
    "SCIMError": "scim",
    "SCIMReader": "scim",
    "SCIMTemplate": "scim",
    "SQLReader": "sql",
    "SQLTemplate": "sql",
}


#: The engine's names that only a run needs (loading and diffing do not): name -> module.
_RUNNER = {
    "AsyncRun": "._template",
    "AsyncTemplate": "._template",
    "Backoff": "._retry",
    "Event": "._events",
    "EventKind": "._events",
    "Observer": "._events",
    "RateLimiter": "._limiter",
    "Retry": "._retry",
    "RetryPolicy": "._retry",
    "Sent": "._retry",
    "Verdict": "._retry",
    "batch": "._template",
    "classify": "._retry",
    "idempotent": "._template",
    "retrying": "._attempts",
}
_runner_name = exports.lazy_names(globals(), _RUNNER)
_connector_name = exports.lazy_names(
    globals(), {name: f".{package}" for name, package in _CONNECTORS.items()}, show=False
)


def __getattr__(name: str) -> typing.Any:
    if name in _RUNNER:
        return _runner_name(name)
    return _connector_name(name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AsyncRun",
    "AsyncTemplate",
    "Backoff",
    "Batch",
    "BatchReader",
    "CSVReader",
    "CSVTemplate",
    "Cursor",
    "Derived",
    "Event",
    "EventKind",
    "HTTPReader",
    "LinkHeader",
    "ListingError",
    "NextLink",
    "Observer",
    "Offset",
    "OneRoster",
    "OneRosterReader",
    "PackedTable",
    "Packing",
    "PageError",
    "PageNumber",
    "Pagination",
    "Pipeline",
    "RateLimiter",
    "Reader",
    "Retry",
    "RetryPolicy",
    "Row",
    "SCIMError",
    "SCIMReader",
    "SCIMTemplate",
    "SQLReader",
    "SQLTemplate",
    "Sent",
    "Table",
    "TableReader",
    "Verdict",
    "batch",
    "classify",
    "idempotent",
    "load",
    "retrying",
    "rows_of",
]

exports.show_public_module(globals(), __all__)
