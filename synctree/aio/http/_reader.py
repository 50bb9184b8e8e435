"""Read the objects of a paginated JSON HTTP API: :class:`HTTPReader`.

A listing that announces its size (a total in the body, an ``X-Total-Count`` header)
must end with exactly that many items, and a key must not come again on a later page
(offset or page paging over a list that shifted): otherwise the read fails with a
:class:`ListingError`, so a short listing never reaches the diff as removals.

Pages are fetched one after another with the engine's retry rules
(:func:`synctree.aio.retrying`): HTTP 429/5xx and transport errors are retried with
backoff, ``Retry-After`` is honoured and a ``rate`` spaces the requests.  Credentials
stay out of every message: URLs are shown without user info and with token-like query
parameters redacted.  The reader keeps no state of a read: it can be read twice at once.
"""

from __future__ import annotations

import random as _random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any

import httpx

from synctree._util.options import boolean, non_empty
from synctree._util.redact import redact_body, redact_url
from synctree.aio import Backoff, Batch, RateLimiter, RetryPolicy, Row, retrying, rows_of

from ._errors import ListingError, PageError
from ._keypath import MISSING, dig
from ._pagination import Page, Pagination, Params

__all__ = ["HTTPReader"]


def _shown(url: httpx.URL | str) -> str:
    """``url`` fit to print: no user info, token-like query values replaced by ``REDACTED``."""
    return redact_url(str(url))


class HTTPReader:
    """Stream the objects of a JSON API, page by page, as rows for :meth:`SyncTree.load`.

    ``HTTPReader(client, '/users', key='id', items='data.items', pagination=PageNumber())``.

    :param client_or_url: an :class:`httpx.AsyncClient` (your auth, base URL,
        transport; left open) or a base URL (a client is made and closed).
    :param path: the listing's path, relative to the client's base URL.
    :param key: the field (or key path) holding each object's key, or several joined
        with ``key_separator``; the key becomes ``idnumber`` (a ``str``).
    :param items: the key path of the items in the body (``'users'``, ``'data.items'``),
        a function of the body returning them, or ``None`` when the body is the list.
    :param pagination: :class:`NextLink`, :class:`LinkHeader`, :class:`PageNumber`,
        :class:`Offset`, :class:`Cursor` (or your own :class:`Pagination`); ``None``
        for a single page.
    :param params: query parameters sent with every page.
    :param headers: headers sent with every page (they are never shown).
    :param auth: credentials for every page, an :class:`httpx.Auth` (:class:`BearerAuth`,
        :class:`OAuth2ClientCredentials`...; a config's ``auth`` table makes one); by
        default the client's own.
    :param rate: at most this many pages per second.
    :param retries: attempts after the first for a page that failed retryably.
    :param max_throttle_time: the most seconds one page waits out throttles (429 and
        kin) in all before it fails; throttles back off even at ``Retry-After: 0``.
    :param rename: new names for fields (or key paths such as ``'name.first'``), applied
        first; name one ``'_id'`` to carry the API's own id without comparing it.
    :param fields: keep only these attributes (after renaming; missing ones are ``None``).
    :param keep_key: also keep the key fields as attributes.
    :param unique: a key that comes again on a later page fails the read (a
        :class:`ListingError`: offset or page paging over a list that shifted skips
        as many items as it repeats); ``False`` leaves repeats to the tree's
        duplicates policy.
    :param timeout: seconds per request, for a client made from a URL.
    :param sleep: waits between attempts (default :func:`anyio.sleep`); for tests,
        like ``clock`` and ``random``.
    """

    def __init__(
        self,
        client_or_url: httpx.AsyncClient | str,
        path: str = "",
        *,
        key: str | Sequence[str] = "id",
        items: str | Callable[[Any], Any] | None = None,
        pagination: Pagination | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        rate: float | None = None,
        retries: int = 5,
        max_throttle_time: float = 300.0,
        rename: Mapping[str, str] | None = None,
        fields: Sequence[str] | None = None,
        keep_key: bool = False,
        unique: bool = True,
        key_separator: str = "|",
        timeout: float | None = 30.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if not isinstance(path, str):
            raise ValueError(f"'path' must be a string, got {path!r}")
        self._client: httpx.AsyncClient | None
        if isinstance(client_or_url, httpx.AsyncClient):
            self._client = client_or_url
            self._path: str | httpx.URL = path
            start = client_or_url.build_request("GET", path).url
        elif isinstance(client_or_url, str) and client_or_url:
            self._client = None
            self._path = start = _under(client_or_url, path)
        else:
            raise ValueError(
                f"'client_or_url' must be an httpx.AsyncClient or a URL, "
                f"got {type(client_or_url).__name__}"
            )
        self._keys = [key] if isinstance(key, str) else list(key)
        if not self._keys or not all(isinstance(k, str) and k for k in self._keys):
            raise ValueError(f"'key' must be a field name or a list of them, got {key!r}")
        if not (items is None or callable(items) or (isinstance(items, str) and items)):
            raise ValueError(f"'items' must be a key path, a function or None, got {items!r}")
        self._items = items
        if pagination is not None and not isinstance(pagination, Pagination):
            raise ValueError(f"'pagination' must be a Pagination or None, got {pagination!r}")
        self._pagination = pagination
        self._params = dict(params or {})
        self._headers = dict(headers or {})
        if auth is not None and not isinstance(auth, httpx.Auth):
            raise ValueError(f"'auth' must be an httpx.Auth or None, got {type(auth).__name__}")
        self._auth = auth
        self._policy = RetryPolicy(retries=retries, max_throttle_time=max_throttle_time)
        self._rate = rate
        RateLimiter(rate)  # validates 'rate' now, not at the first page
        self._rename = dict(rename or {})
        for old, new in self._rename.items():
            if not (isinstance(old, str) and old and isinstance(new, str) and new):
                raise ValueError(f"'rename' must map names to names, not {old!r}: {new!r}")
        if fields is not None and (
            isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields)
        ):
            raise ValueError(f"'fields' must be a list of names, got {fields!r}")
        self._fields = None if fields is None else list(fields)
        self._keep_key = bool(keep_key)
        boolean(unique, "unique")
        self._unique = unique
        non_empty(key_separator, "key_separator")
        self._key_separator = key_separator
        if timeout is not None and not timeout > 0:
            raise ValueError(f"'timeout' must be > 0 or None, got {timeout!r}")
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._start = _shown(start)
        self._key = " + ".join(self._keys)

    def __repr__(self) -> str:
        keys = self._keys[0] if len(self._keys) == 1 else self._keys
        return f"<{type(self).__name__} {self._start!r} key={keys!r}>"

    @property
    def path(self) -> str:
        """The listing's (first page's) URL, secrets redacted."""
        return self._start

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())

    async def batches(self) -> AsyncGenerator[Batch, None]:
        """Yield the rows one :class:`~synctree.aio.Batch` per page: the page's URL
        (secrets redacted), each row's item number in the listing (1-based, across the
        pages) as its line, and the key field(s).  Each call is a pass of its own."""
        async with aclosing(self.pages()) as pages:
            async for page in pages:
                first = page.seen - len(page.items) + 1  # the number of items[0]
                yield Batch(
                    [self._row(item, page) for item in page.items],
                    path=_shown(page.url),
                    line_of=first.__add__,  # index -> first + index
                    key=self._key,
                )

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._client is not None:
            yield self._client
            return
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            yield client

    async def pages(self) -> AsyncGenerator[Page, None]:
        """Yield the pages as fetched, each with its items (raw JSON values).

        :raises ListingError: before the last page, when the listing is not whole (see
            the module docstring).
        """
        limiter = RateLimiter(self._rate, clock=self._clock, sleep=self._sleep)
        pagination = self._pagination
        target: str | Params = pagination.first() if pagination is not None else {}
        expected = getattr(pagination, "expected", None)
        number, seen, largest = 0, 0, 0
        total: int | None = None
        first_pages: dict[str, int] | None = {} if self._unique and pagination else None
        async with self._open() as client:
            while True:
                number += 1
                url, response = await self._fetch(client, limiter, target, number)
                body = self._json(response, url, number)
                items = self._extract(body, url, number)
                seen += len(items)
                params = {} if isinstance(target, str) else target
                page = Page(number, url, params, response, body, items, seen, largest)
                largest = max(largest, len(items))
                if expected is not None:
                    total = self._announced(expected, page, total)
                following = None
                if items and pagination is not None:
                    following = self._following(pagination, page)
                if first_pages is not None:
                    self._no_repeats(page, first_pages, total)
                if total is not None and (seen > total or (following is None and seen != total)):
                    raise self._short(page, total)
                yield page
                if following is None:
                    return
                target = following

    def _announced(
        self, expected: Callable[[Page], int | None], page: Page, total: int | None
    ) -> int | None:
        """The total ``page`` announces; it must be the one the pages before announced."""
        try:
            announced = expected(page)
        except ValueError as exc:
            raise self._error(str(exc), page.url, page.number) from None
        if announced is None:
            return total
        if total is not None and announced != total:
            raise self._listing_error(
                f"the total changed from {total} to {announced}: "
                "the listing shifted while it was read",
                page,
                total,
            )
        return announced

    def _no_repeats(self, page: Page, first_pages: dict[str, int], total: int | None) -> None:
        """Fail on a key an earlier page had; remember this page's keys."""
        number = page.number
        for item in page.items:
            key = self._key_of(item)
            if key is None:
                continue  # not a row: ``_row`` says why, in order
            first = first_pages.setdefault(key, number)
            if first != number:
                raise self._listing_error(
                    f"key {key!r} came again (first on page {first}): "
                    "the listing shifted while it was read",
                    page,
                    total,
                    key=key,
                )

    def _short(self, page: Page, total: int) -> ListingError:
        if page.seen > total:
            problem = f"the listing has {page.seen} items, more than the {total} it announced"
        else:
            problem = f"the listing ended with {page.seen} items, but it announced {total}"
        return self._listing_error(problem, page, total)

    @staticmethod
    def _listing_error(
        problem: str, page: Page, total: int | None, *, key: str | None = None
    ) -> ListingError:
        return ListingError(
            problem,
            url=_shown(page.url),
            page=page.number,
            expected=total,
            received=page.seen,
            key=key,
        )

    def _following(self, pagination: Pagination, page: Page) -> str | Params | None:
        """What comes after ``page``: an absolute URL, query parameters or None."""
        try:
            following = pagination.after(page)
        except ValueError as exc:
            raise self._error(str(exc), page.url, page.number) from None
        if isinstance(following, str):
            link = page.url.join(following)
            if link == page.url:
                raise self._error("the next link points to this page", page.url, page.number)
            return str(link)
        if following is not None and dict(following) == dict(page.params):
            raise self._error("the next page is this page again", page.url, page.number)
        return following

    async def _fetch(
        self,
        client: httpx.AsyncClient,
        limiter: RateLimiter,
        target: str | Params,
        number: int,
    ) -> tuple[httpx.URL, httpx.Response]:
        # httpx replaces a URL's query with ``params``: merge them all into ``params``.
        if isinstance(target, str):
            url = httpx.URL(target)
            extra = {k: v for k, v in self._params.items() if k not in url.params}
            params = url.params.merge(extra)  # the link's own parameters win
        else:
            url = httpx.URL(self._path)
            params = url.params.merge(self._params).merge(target)
        request = client.build_request(
            "GET", url.copy_with(query=None), params=params, headers=self._headers
        )
        attempts = 0
        backoff = Backoff(self._policy, self._random)

        async def get() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            response = await client.send(
                request, auth=httpx.USE_CLIENT_DEFAULT if self._auth is None else self._auth
            )
            response.raise_for_status()
            return response

        try:
            response = await retrying(
                get,
                policy=self._policy,
                limiter=limiter,
                clock=self._clock,
                sleep=self._sleep,
                random=self._random,
                backoff=backoff,
            )
        except httpx.HTTPStatusError as exc:
            status = exc.response
            problem = _tried(f"HTTP {status.status_code} {status.reason_phrase}".rstrip(), attempts)
            body = _body(status)
            if body:
                problem += f"; the server said: {body}"
            if backoff.stopped_because.startswith("throttled"):
                problem += f"; {backoff.stopped_because}"
            error = self._error(problem, request.url, number)
            error.status = status.status_code
            raise error from None
        except httpx.HTTPError as exc:
            # A transport error's text may quote the URL: never with its secrets.
            text = str(exc).replace(str(request.url), _shown(request.url))
            problem = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            raise self._error(_tried(problem, attempts), request.url, number) from None
        return request.url, response

    @staticmethod
    def _error(problem: str, url: httpx.URL, number: int) -> PageError:
        return PageError(problem, url=_shown(url), page=number)

    def _json(self, response: httpx.Response, url: httpx.URL, number: int) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise self._error(f"the body is not JSON ({kind})", url, number) from None

    def _extract(self, body: Any, url: httpx.URL, number: int) -> list[Any]:
        items = self._items
        if items is None:
            found, what = body, "the body"
        elif isinstance(items, str):
            found, what = dig(body, items), repr(items)
            if found is MISSING:
                raise self._error(f"no {items!r} in the body", url, number)
        else:
            try:
                found, what = items(body), "the items"
            except (KeyError, TypeError, ValueError) as exc:
                raise self._error(f"cannot find the items: {exc}", url, number) from None
        if not isinstance(found, list):
            kind = type(found).__name__
            raise self._error(f"{what} is not a list (it is {kind})", url, number)
        return found

    def _key_of(self, item: Any) -> str | None:
        """The key of an item, or None when it has no usable one."""
        if not isinstance(item, dict):
            return None
        parts = []
        for name in self._keys:
            value = dig(item, name)
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                return None
            parts.append(value if isinstance(value, str) else str(value))
        return parts[0] if len(parts) == 1 else self._key_separator.join(parts)

    def _row(self, item: Any, page: Page) -> Row:
        """The row of one item; the item (fresh from the JSON) becomes the row."""
        if not isinstance(item, dict):
            raise self._error(
                f"an item is not an object: {type(item).__name__}", page.url, page.number
            )
        parts = []
        for name in self._keys:
            value = dig(item, name)
            if value is MISSING or value is None or value == "":
                problem = "no" if value is MISSING else "an empty"
                raise self._error(f"an item has {problem} key {name!r}", page.url, page.number)
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise self._error(
                    f"an item's key {name!r} is not a string or an integer: {value!r}",
                    page.url,
                    page.number,
                )
            parts.append(value if isinstance(value, str) else str(value))
        row: Row = item
        for old, new in self._rename.items():
            value = row.pop(old) if old in row else dig(item, old)
            if value is not MISSING:
                row[new] = value
        if not self._keep_key:
            for name in self._keys:
                if name not in self._rename:
                    row.pop(name, None)
        if self._fields is not None:
            row = {name: row.get(name) for name in self._fields}
        row["idnumber"] = parts[0] if len(parts) == 1 else self._key_separator.join(parts)
        return row


def _under(base: str, path: str) -> httpx.URL:
    """``path`` below the URL ``base`` (``'https://h/v1'`` and ``'/users'``: ``.../v1/users``)."""
    url = httpx.URL(base)
    if not path:
        return url
    if not url.path.endswith("/"):
        url = url.copy_with(path=url.path + "/")
    return url.join(path.lstrip("/"))


def _tried(problem: str, attempts: int) -> str:
    return f"{problem} (after {attempts} attempts)" if attempts > 1 else problem


def _body(response: httpx.Response) -> str:
    """An error response's body, on one line, cut short, secret-looking fields masked."""
    try:
        text = response.text
    except httpx.ResponseNotRead:
        return ""
    return redact_body(" ".join(text.split()), 300)
