"""JSON HTTP APIs: :class:`HTTPReader`, its paginations, and how HTTP errors are retried."""

from synctree._util import exports

from ._classify import classify_error, classify_response, parse_retry_after
from ._errors import ListingError, PageError
from ._pagination import (
    Cursor,
    LinkHeader,
    NextLink,
    Offset,
    Page,
    PageNumber,
    Pagination,
    pagination_from_config,
)
from ._reader import HTTPReader

__all__ = [
    "Cursor",
    "HTTPReader",
    "LinkHeader",
    "ListingError",
    "NextLink",
    "Offset",
    "Page",
    "PageError",
    "PageNumber",
    "Pagination",
    "classify_error",
    "classify_response",
    "pagination_from_config",
    "parse_retry_after",
]

exports.show_public_module(globals(), __all__)
