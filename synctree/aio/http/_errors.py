"""What a read of an HTTP listing fails with: :class:`PageError` and :class:`ListingError`.

::

    InputError (synctree)
    └── PageError         a page the reader cannot use
        └── ListingError  a listing that is not whole
"""

from __future__ import annotations

from synctree import InputError

__all__ = ["ListingError", "PageError"]


class PageError(InputError):
    """A page the reader cannot use: not JSON, no items, an item without its key, HTTP error.

    ``url`` is the page's URL with secrets redacted; ``page`` its 1-based number.
    """

    def __init__(self, problem: str, *, url: str, page: int) -> None:
        self.url = url
        self.page = page
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
