"""The async engine: loading, the runner, async templates, and the connectors beside it.

The engine's own names are imported here.  The connectors' names
(``CSVReader``, ``SQLTemplate``, ...) live in their subpackages
(``synctree.aio.csv``, ``synctree.aio.sql``, ...) and are re-exported lazily
(PEP 562), so ``import synctree.aio`` loads neither SQLAlchemy nor httpx.
"""

from __future__ import annotations

import importlib
import typing

from .._util import exports
from ._attempts import retrying
from ._events import Event, EventKind, Observer
from ._limiter import RateLimiter
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
from ._retry import Backoff, Retry, RetryPolicy, Sent, Verdict, classify
from ._template import AsyncRun, AsyncTemplate, batch, idempotent

if typing.TYPE_CHECKING:
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


def __getattr__(name: str) -> typing.Any:
    try:
        package = _CONNECTORS[name]
    except KeyError:
        raise AttributeError(f"module 'synctree.aio' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{package}"), name)
    globals()[name] = value  # the next lookup is a plain one
    return value


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
