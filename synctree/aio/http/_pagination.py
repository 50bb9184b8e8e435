"""How an HTTP listing pages: the :class:`Pagination` protocol and the built-in ones.

:class:`NextLink` (a URL in the body), :class:`LinkHeader` (RFC 8288), :class:`PageNumber`,
:class:`Offset` and :class:`Cursor`; each may read the total the listing announces (a key
path in the body, or a header such as ``X-Total-Count``), so the reader can check that the
listing is whole.  :func:`pagination_from_config` builds one from a config's table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable

import httpx

from synctree import ConfigError
from synctree._util.options import OptionError, non_empty, positive

from ._keypath import MISSING, dig

__all__ = [
    "PAGINATIONS",
    "Cursor",
    "LinkHeader",
    "NextLink",
    "NextPage",
    "Offset",
    "Page",
    "PageNumber",
    "Pagination",
    "Params",
    "pagination_from_config",
]

Params: TypeAlias = Mapping[str, str | int]
#: What comes after a page: a URL (absolute or relative to the page), query parameters, or
#: ``None`` when the page was the last.
NextPage: TypeAlias = "str | Params | None"


@dataclass(frozen=True, slots=True)
class Page:
    """One fetched page, as a pagination sees it to choose the next one.

    :param params: the pagination's own query parameters of this page (empty for a link).
    :param seen: the items of this page and every page before it.
    :param largest: the longest page before this one (0 for the first page).
    """

    number: int
    url: httpx.URL
    params: Params
    response: httpx.Response
    body: Any
    items: Sequence[Any]
    seen: int
    largest: int


@runtime_checkable
class Pagination(Protocol):
    """How to ask for the first page and the one after a page.

    An empty page always ends the listing, before :meth:`after` is asked.  ``after``
    may raise :class:`ValueError` for a page it cannot use; the reader names URL and page.

    A pagination may also define ``expected(page) -> int | None``, the item count the
    listing announces on that page (every built-in one does, given ``total`` or
    ``total_header``): the reader then fails a listing that ends with another count.
    """

    def first(self) -> dict[str, str | int]:
        """The query parameters of the first page."""
        ...

    def after(self, page: Page) -> NextPage:
        """A URL or the query parameters of the page after ``page``; ``None`` to stop."""
        ...


def _totals(total: str | None, total_header: str | None) -> None:
    """Check where a pagination finds the total: a body key path or a header, not both."""
    if total is not None:
        non_empty(total, "total")
    if total_header is not None:
        non_empty(total_header, "total_header")
        if total is not None:
            raise OptionError("total_header", "cannot be given with 'total': choose one")


def _total(page: Page, path: str | None, header: str | None) -> int | None:
    """The total item count ``page`` announces at ``path`` or in ``header``, if asked."""
    if path is not None:
        value, what = dig(page.body, path), f"the total {path!r}"
        if value is MISSING:
            raise ValueError(f"no total {path!r} in the body")
    elif header is not None:
        value, what = page.response.headers.get(header, MISSING), f"the header {header!r}"
        if value is MISSING:
            raise ValueError(f"no total header {header!r} in the response")
    else:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} is not a count: {value!r}")
    return value


def _last(page: Page, size: int, count: int | None) -> bool:
    """Whether ``page`` ends a numbered or offset listing whose total is ``count``.

    A known total decides.  Without one, a page shorter than ``size`` and than the
    pages before it is the last; a short first page is not trusted, since the server
    may cap the page size below ``size`` (one more request tells).
    """
    if count is not None:
        return page.seen >= count
    return page.largest > 0 and len(page.items) < min(size, page.largest)


@dataclass(frozen=True, slots=True)
class NextLink:
    """The body names the next page's URL at a key path (``'next'``, ``'links.next'``).

    :param total: a key path to the total item count in the body, if the API gives one.
    :param total_header: or the header holding it (``'X-Total-Count'``).
    """

    path: str = "next"
    total: str | None = None
    total_header: str | None = None

    def __post_init__(self) -> None:
        non_empty(self.path, "path")
        _totals(self.total, self.total_header)

    def first(self) -> dict[str, str | int]:
        return {}

    def expected(self, page: Page) -> int | None:
        return _total(page, self.total, self.total_header)

    def after(self, page: Page) -> NextPage:
        link = dig(page.body, self.path)
        if link is MISSING or link is None or link == "":
            return None
        if not isinstance(link, str):
            raise ValueError(f"the next link {self.path!r} is not a string: {link!r}")
        return link


@dataclass(frozen=True, slots=True)
class LinkHeader:
    """The ``Link`` header names the next page (``rel="next"``, RFC 8288), as GitHub does.

    :param total: a key path to the total item count in the body, if the API gives one.
    :param total_header: or the header holding it (``'X-Total-Count'``).
    """

    total: str | None = None
    total_header: str | None = None

    def __post_init__(self) -> None:
        _totals(self.total, self.total_header)

    def first(self) -> dict[str, str | int]:
        return {}

    def expected(self, page: Page) -> int | None:
        return _total(page, self.total, self.total_header)

    def after(self, page: Page) -> NextPage:
        link = page.response.links.get("next", {}).get("url")
        return link or None


@dataclass(frozen=True, slots=True)
class PageNumber:
    """Numbered pages: ``?page=1&per_page=100``, then 2, 3...

    :param size_param: the page size parameter, or ``None`` to send none (``size``
        is then the server's page size).
    :param total: a key path to the total item count in the body, if the API gives one.
    :param total_header: or the header holding it (``'X-Total-Count'``).
    """

    param: str = "page"
    size_param: str | None = "per_page"
    size: int = 100
    start: int = 1
    total: str | None = None
    total_header: str | None = None

    def __post_init__(self) -> None:
        non_empty(self.param, "param")
        if self.size_param is not None:
            non_empty(self.size_param, "size_param")
        positive(self.size, "size")
        positive(self.start, "start", 0)
        _totals(self.total, self.total_header)

    def expected(self, page: Page) -> int | None:
        return _total(page, self.total, self.total_header)

    def first(self) -> dict[str, str | int]:
        params: dict[str, str | int] = {self.param: self.start}
        if self.size_param is not None:
            params[self.size_param] = self.size
        return params

    def after(self, page: Page) -> NextPage:
        if _last(page, self.size, self.expected(page)):
            return None
        return {**page.params, self.param: int(page.params[self.param]) + 1}


@dataclass(frozen=True, slots=True)
class Offset:
    """Offset pages: ``?offset=0&limit=100``; the offset advances by the items returned,
    so a server that caps ``limit`` loses nothing.  SCIM is ``Offset('startIndex',
    'count', start=1, total='totalResults')``.

    :param total: a key path to the total item count in the body, if the API gives one.
    :param total_header: or the header holding it (``'X-Total-Count'``).
    """

    param: str = "offset"
    limit_param: str | None = "limit"
    limit: int = 100
    start: int = 0
    total: str | None = None
    total_header: str | None = None

    def __post_init__(self) -> None:
        non_empty(self.param, "param")
        if self.limit_param is not None:
            non_empty(self.limit_param, "limit_param")
        positive(self.limit, "limit")
        positive(self.start, "start", 0)
        _totals(self.total, self.total_header)

    def expected(self, page: Page) -> int | None:
        return _total(page, self.total, self.total_header)

    def first(self) -> dict[str, str | int]:
        params: dict[str, str | int] = {self.param: self.start}
        if self.limit_param is not None:
            params[self.limit_param] = self.limit
        return params

    def after(self, page: Page) -> NextPage:
        if _last(page, self.limit, self.expected(page)):
            return None
        return {**page.params, self.param: int(page.params[self.param]) + len(page.items)}


@dataclass(frozen=True, slots=True)
class Cursor:
    """An opaque cursor: the body gives the next one at ``next``, sent back as ``param``.

    :param total: a key path to the total item count in the body, if the API gives one.
    :param total_header: or the header holding it (``'X-Total-Count'``).
    """

    param: str = "cursor"
    next: str = "meta.next_cursor"
    total: str | None = None
    total_header: str | None = None

    def __post_init__(self) -> None:
        non_empty(self.param, "param")
        non_empty(self.next, "next")
        _totals(self.total, self.total_header)

    def first(self) -> dict[str, str | int]:
        return {}

    def expected(self, page: Page) -> int | None:
        return _total(page, self.total, self.total_header)

    def after(self, page: Page) -> NextPage:
        value = dig(page.body, self.next)
        if value is MISSING or value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"the cursor {self.next!r} is not a string: {value!r}")
        return {self.param: value}


#: The pagination styles a config names: ``pagination = { style = "page", size = 100 }``.
PAGINATIONS: Mapping[str, type[NextLink | LinkHeader | PageNumber | Offset | Cursor]] = {
    "next": NextLink,
    "link": LinkHeader,
    "page": PageNumber,
    "offset": Offset,
    "cursor": Cursor,
}


def pagination_from_config(value: object) -> Pagination:
    """The built-in pagination a config describes: a table with a ``style`` (see
    :data:`PAGINATIONS`) and that pagination's options, or just the style's name.

    TOML has no null: ``size_param = false`` (or ``limit_param``) sends no page size.

    :raises ConfigError: naming the key within the table (``style``, ``size``...).
    """
    styles = ", ".join(repr(name) for name in PAGINATIONS)
    if isinstance(value, str):
        value = {"style": value}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"must be a pagination style ({styles}) or a table with a 'style', got {value!r}"
        )
    options = dict(value)
    if "style" not in options:
        raise ConfigError(f"missing key (the pagination style: {styles})", key="style")
    style = options.pop("style")
    cls = PAGINATIONS.get(style) if isinstance(style, str) else None
    if cls is None:
        raise ConfigError(f"unknown pagination style {style!r} (known: {styles})", key="style")
    accepted = [field.name for field in dataclasses.fields(cls)]
    for key in options:
        if key not in accepted:
            raise ConfigError(
                f"unknown key for style {style!r} (accepted: {', '.join(['style', *accepted])})",
                key=key,
            )
    for key in ("size_param", "limit_param"):
        if options.get(key) is False:
            options[key] = None
    try:
        return cls(**options)
    except OptionError as exc:
        raise ConfigError(str(exc), key=exc.name) from None
