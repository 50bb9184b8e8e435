"""JSON HTTP APIs: :class:`HTTPReader`, its paginations, credentials (:class:`httpx.Auth`
flows and :func:`auth_from_config`), and how HTTP errors are retried."""

from synctree._util import exports

from ._auth import BearerAuth, HeaderAuth
from ._auth_config import auth_from_config
from ._classify import classify_error, classify_response, parse_retry_after
from ._errors import AuthError, ListingError, PageError
from ._google import GoogleServiceAccount
from ._oauth1 import OAuth1Auth
from ._oauth2 import OAuth2ClientCredentials
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
from ._token import TokenAuth

__all__ = [
    "AuthError",
    "BearerAuth",
    "Cursor",
    "GoogleServiceAccount",
    "HTTPReader",
    "HeaderAuth",
    "LinkHeader",
    "ListingError",
    "NextLink",
    "OAuth1Auth",
    "OAuth2ClientCredentials",
    "Offset",
    "Page",
    "PageError",
    "PageNumber",
    "Pagination",
    "TokenAuth",
    "auth_from_config",
    "classify_error",
    "classify_response",
    "pagination_from_config",
    "parse_retry_after",
]

exports.show_public_module(globals(), __all__)
