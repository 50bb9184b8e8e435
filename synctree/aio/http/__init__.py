"""JSON HTTP APIs: :class:`HTTPReader`, its paginations, and how HTTP errors are retried."""

from synctree._util import exports

from ._classify import classify_error, classify_response, parse_retry_after
from ._reader import (
    Cursor,
    HTTPReader,
    LinkHeader,
    ListingError,
    NextLink,
    Offset,
    PageError,
    PageNumber,
    Pagination,
    pagination_from_config,
)

__all__ = [
    "Cursor",
    "HTTPReader",
    "LinkHeader",
    "ListingError",
    "NextLink",
    "Offset",
    "PageError",
    "PageNumber",
    "Pagination",
    "classify_error",
    "classify_response",
    "pagination_from_config",
    "parse_retry_after",
]

exports.show_public_module(globals(), __all__)
