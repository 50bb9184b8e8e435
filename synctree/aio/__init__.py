"""Async loading and running: readers, async templates and the runner."""

from __future__ import annotations

from ._csv import CSVReader
from ._csv_template import CSVTemplate
from ._events import Event, EventKind, Observer
from ._http import (
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
from ._limiter import RateLimiter
from ._load import Derived, Pipeline, Reader, load
from ._oneroster import OneRoster, OneRosterReader
from ._retry import Retry, Verdict
from ._scim import SCIMError, SCIMReader, SCIMTemplate
from ._sql_reader import SQLReader
from ._sql_template import SQLTemplate
from ._template import AsyncRun, AsyncTemplate, batch, idempotent

__all__ = [
    "AsyncRun",
    "AsyncTemplate",
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
    "PageError",
    "PageNumber",
    "Pagination",
    "Pipeline",
    "RateLimiter",
    "Reader",
    "Retry",
    "SCIMError",
    "SCIMReader",
    "SCIMTemplate",
    "SQLReader",
    "SQLTemplate",
    "Verdict",
    "batch",
    "idempotent",
    "load",
]
