"""What the HTTP connector fails with: :class:`PageError`, :class:`ListingError` (a read of a
listing) and :class:`AuthError` (credentials).

::

    InputError (synctree)
    └── PageError         a page the reader cannot use
        └── ListingError  a listing that is not whole
    SyncTreeError (synctree), httpx.HTTPError
    └── AuthError         a token could not be had, or credentials are unusable
"""

from __future__ import annotations

import httpx

from synctree import InputError, SyncTreeError

__all__ = ["AuthError", "ListingError", "PageError"]


class PageError(InputError):
    """A page the reader cannot use: not JSON, no items, an item without its key, HTTP error.

    ``url`` is the page's URL with secrets redacted; ``page`` its 1-based number;
    ``status`` the HTTP status of an error answer (None for other problems).
    """

    def __init__(self, problem: str, *, url: str, page: int, status: int | None = None) -> None:
        self.url = url
        self.page = page
        self.status = status
        super().__init__(f"page {page}: {problem}", path=url)


class ListingError(PageError):
    """A listing that is not whole: it ended before (or went past) the total it announced,
    the total changed between pages, or a key came again on a later page.

    ``expected`` is the announced total (None if there is none), ``received`` the items
    read up to ``page``, ``key`` the repeated key (None unless one came again).
    """

    def __init__(
        self,
        problem: str,
        *,
        url: str,
        page: int,
        expected: int | None,
        received: int,
        key: str | None = None,
    ) -> None:
        self.expected = expected
        self.received = received
        self.key = key
        super().__init__(problem, url=url, page=page)


class AuthError(SyncTreeError, httpx.HTTPError):
    """A token could not be had: the token endpoint refused the credentials, failed or
    answered something that is not a token.

    It is an :class:`httpx.HTTPError` too, since it comes out of an ``httpx`` call (the
    auth flow runs inside it): :func:`~synctree.aio.http.classify_error` retries it when
    ``status`` is 429 or 5xx and otherwise treats it as bad credentials (fatal).  The
    message names the endpoint (``url``, secrets redacted) and the server's OAuth
    ``error`` code, never a credential or a token.
    """

    def __init__(self, problem: str, *, url: str, status: int | None = None) -> None:
        self.problem = problem
        self.url = url
        self.status = status
        super().__init__(f"{problem} ({url})")
