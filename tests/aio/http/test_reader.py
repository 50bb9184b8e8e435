"""HTTPReader: paginations, page ends, retries and throttling, bad pages, no leaked secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from synctree import InputError, ReaderError, SyncTree
from synctree.aio import (
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
from tests.http_server import make_app, serve

pytestmark = pytest.mark.anyio

BASE = "https://api.test/v1"
Handler = Callable[[httpx.Request], httpx.Response]


def people(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"P{i}"} for i in range(1, n + 1)]


class API:
    """A mock JSON API over ``items``; records the requests it gets."""

    def __init__(self, handler: Callable[[API, httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(self, request)

    def client(self, base_url: str = BASE, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self), base_url=base_url, **options)

    @property
    def params(self) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests]


def numbered(items: list[dict[str, Any]], *, cap: int = 1000, total: bool = False) -> API:
    """``?page=&per_page=`` pages; the server caps ``per_page`` at ``cap``."""

    def handle(api: API, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        size = min(int(request.url.params.get("per_page", "10")), cap)
        body: dict[str, Any] = {"users": items[(page - 1) * size : page * size]}
        if total:
            body["meta"] = {"total": len(items)}
        return httpx.Response(200, json=body)

    return API(handle)


async def read(reader: HTTPReader) -> list[dict[str, Any]]:
    return [row async for row in reader]


def keys(rows: list[dict[str, Any]]) -> list[str]:
    return [row["idnumber"] for row in rows]


class Sleeps:
    """A fake ``sleep`` recording its delays; with ``clock=lambda: 0.0`` waits are exact."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await anyio.lowlevel.checkpoint()


def fake_time(sleeps: Sleeps) -> dict[str, Any]:
    return {"sleep": sleeps, "clock": lambda: 0.0, "random": lambda: 0.5}


class TestPageNumber:
    async def test_short_last_page_ends(self) -> None:
        """Pages of 2, 2, 1: the short third page is the last; no fourth request."""
        api = numbered(people(5))
        async with api.client() as client:
            rows = await read(
                HTTPReader(client, "/users", items="users", pagination=PageNumber(size=2))
            )
        assert keys(rows) == ["1", "2", "3", "4", "5"]
        assert [p["page"] for p in api.params] == ["1", "2", "3"]
        assert api.params[0] == {"page": "1", "per_page": "2"}

    async def test_empty_page_ends(self) -> None:
        """Exactly two full pages: the empty third page ends the listing."""
        api = numbered(people(4))
        async with api.client() as client:
            rows = await read(
                HTTPReader(client, "/users", items="users", pagination=PageNumber(size=2))
            )
        assert keys(rows) == ["1", "2", "3", "4"]
        assert len(api.requests) == 3

    async def test_server_cap_on_size(self) -> None:
        """A server that caps per_page below ``size`` loses nothing: a short first page
        is not trusted, a page shorter than the ones before is."""
        api = numbered(people(7), cap=3)
        async with api.client() as client:
            reader = HTTPReader(client, "/users", items="users", pagination=PageNumber(size=100))
            rows = await read(reader)
        assert keys(rows) == [str(i) for i in range(1, 8)]
        assert [p["page"] for p in api.params] == ["1", "2", "3"]

    async def test_single_short_page_costs_one_more_request(self) -> None:
        """Fewer items than one page: the second, empty page confirms the end."""
        api = numbered(people(3))
        async with api.client() as client:
            rows = await read(HTTPReader(client, "/users", items="users", pagination=PageNumber()))
        assert keys(rows) == ["1", "2", "3"]
        assert len(api.requests) == 2

    async def test_total_reached_ends(self) -> None:
        """With a total in the body, the listing ends as soon as it is reached."""
        api = numbered(people(4), cap=3, total=True)
        async with api.client() as client:
            pagination = PageNumber(size=100, total="meta.total")
            rows = await read(HTTPReader(client, "/users", items="users", pagination=pagination))
        assert keys(rows) == ["1", "2", "3", "4"]
        assert len(api.requests) == 2

    async def test_no_size_param_and_start(self) -> None:
        """``size_param=None`` sends no size; pages count from ``start``."""
        items = people(3)

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            page = int(request.url.params["p"])
            return httpx.Response(200, json=items[page * 2 : page * 2 + 2])

        api = API(handle)
        async with api.client() as client:
            pagination = PageNumber("p", None, size=2, start=0)
            rows = await read(HTTPReader(client, "/users", pagination=pagination))
        assert keys(rows) == ["1", "2", "3"]
        assert api.params == [{"p": "0"}, {"p": "1"}]


class TestOffset:
    async def test_advances_by_items_returned(self) -> None:
        """The server returns 2 where 5 were asked: the next offset is 2, not 5."""
        items = people(5)

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            offset = int(request.url.params["offset"])
            chunk = items[offset : offset + min(2, int(request.url.params["limit"]))]
            return httpx.Response(200, json={"data": {"items": chunk}, "count": len(items)})

        api = API(handle)
        async with api.client() as client:
            pagination = Offset(limit=5, total="count")
            rows = await read(HTTPReader(client, "/x", items="data.items", pagination=pagination))
        assert keys(rows) == ["1", "2", "3", "4", "5"]
        assert [p["offset"] for p in api.params] == ["0", "2", "4"]

    async def test_short_page_without_total(self) -> None:
        """Without a total, a page shorter than the pages before it is the last."""
        items = people(5)

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            offset, limit = int(request.url.params["skip"]), int(request.url.params["top"])
            return httpx.Response(200, json=items[offset : offset + limit])

        api = API(handle)
        async with api.client() as client:
            pagination = Offset("skip", "top", limit=2)
            rows = await read(HTTPReader(client, "/x", pagination=pagination))
        assert keys(rows) == ["1", "2", "3", "4", "5"]
        assert len(api.requests) == 3


class TestLinks:
    async def test_next_link_in_body(self) -> None:
        """A relative next link is followed from the page's URL; params stay sent."""
        items = people(5)

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            after = int(request.url.params.get("after", "0"))
            chunk = items[after : after + 2]
            more = after + 2 < len(items)
            link = f"/v1/people?after={after + 2}" if more else None
            return httpx.Response(200, json={"results": chunk, "links": {"next": link}})

        api = API(handle)
        async with api.client() as client:
            reader = HTTPReader(
                client,
                "/people",
                items="results",
                pagination=NextLink("links.next"),
                params={"active": "1"},
            )
            rows = await read(reader)
        assert keys(rows) == ["1", "2", "3", "4", "5"]
        assert [str(r.url) for r in api.requests] == [
            f"{BASE}/people?active=1",
            f"{BASE}/people?after=2&active=1",
            f"{BASE}/people?after=4&active=1",
        ]

    async def test_link_header(self) -> None:
        """``Link: <...>; rel="next"`` is followed until a page has none."""
        items = people(3)

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            page = int(request.url.params.get("page", "1"))
            headers = {}
            if page < 3:
                headers["Link"] = (
                    f'<{BASE}/users?page={page + 1}>; rel="next", <{BASE}/users?page=3>; rel="last"'
                )
            return httpx.Response(200, json=items[page - 1 : page], headers=headers)

        api = API(handle)
        async with api.client() as client:
            rows = await read(HTTPReader(client, "/users", pagination=LinkHeader()))
        assert keys(rows) == ["1", "2", "3"]
        assert len(api.requests) == 3

    async def test_link_to_the_same_page_is_an_error(self) -> None:
        """A next link back to the page itself would loop forever: an error instead."""

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"items": people(1), "next": str(request.url)})

        api = API(handle)
        async with api.client() as client:
            reader = HTTPReader(client, "/users", items="items", pagination=NextLink())
            with pytest.raises(PageError, match="points to this page"):
                await read(reader)


class TestCursor:
    async def test_cursor_until_none(self) -> None:
        """The cursor of each page is sent back until the body has none."""
        items = people(5)

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            at = int(request.url.params.get("cursor", "c0")[1:])
            nxt = f"c{at + 2}" if at + 2 < len(items) else None
            return httpx.Response(
                200, json={"users": items[at : at + 2], "meta": {"next_cursor": nxt}}
            )

        api = API(handle)
        async with api.client() as client:
            rows = await read(HTTPReader(client, "/users", items="users", pagination=Cursor()))
        assert keys(rows) == ["1", "2", "3", "4", "5"]
        assert [p.get("cursor") for p in api.params] == [None, "c2", "c4"]

    async def test_repeated_cursor_is_an_error(self) -> None:
        """A server sending the same cursor again cannot make the reader loop."""

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"users": people(1), "meta": {"next_cursor": "same"}})

        api = API(handle)
        async with api.client() as client:
            reader = HTTPReader(client, "/users", items="users", pagination=Cursor())
            with pytest.raises(PageError, match="page 2: the next page is this page again"):
                await read(reader)

    async def test_empty_page_ends_even_with_a_cursor(self) -> None:
        """An empty page ends the listing, whatever cursor it carries."""

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"users": [], "meta": {"next_cursor": "more"}})

        api = API(handle)
        async with api.client() as client:
            reader = HTTPReader(client, "/users", items="users", pagination=Cursor())
            assert await read(reader) == []
        assert len(api.requests) == 1


class TestRows:
    async def test_rows_batches_and_fields(self) -> None:
        """One batch per page; ``rename`` (nested paths too), ``fields``, composite keys."""
        items = [
            {"org": "a", "num": 1, "profile": {"first": "Ann"}, "id": "x1", "extra": 1},
            {"org": "a", "num": 2, "profile": {"first": "Bob"}, "id": "x2", "extra": 2},
            {"org": "b", "num": 1, "id": "x3"},
        ]

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            page = int(request.url.params["page"])
            return httpx.Response(200, json=items[(page - 1) * 2 : page * 2])

        api = API(handle)
        async with api.client() as client:
            reader = HTTPReader(
                client,
                "/users",
                key=["org", "num"],
                key_separator="/",
                pagination=PageNumber(size_param=None, size=2),
                rename={"profile.first": "first", "id": "_id"},
                fields=["first", "_id"],
            )
            batches = [batch async for batch in reader.batches()]
        assert [batch.key for batch in batches] == ["org + num"] * 2
        assert [batch.line_of(0) for batch in batches if batch.line_of] == [1, 3]
        assert [batch.rows for batch in batches] == [
            [
                {"first": "Ann", "_id": "x1", "idnumber": "a/1"},
                {"first": "Bob", "_id": "x2", "idnumber": "a/2"},
            ],
            [{"first": None, "_id": "x3", "idnumber": "b/1"}],
        ]

    async def test_keep_key_and_int_keys(self) -> None:
        """Integer keys become strings; ``keep_key`` keeps the key field as it was."""
        api = API(lambda api, request: httpx.Response(200, json=people(2)))
        async with api.client() as client:
            rows = await read(HTTPReader(client, "/users", keep_key=True))
        assert rows == [
            {"id": 1, "name": "P1", "idnumber": "1"},
            {"id": 2, "name": "P2", "idnumber": "2"},
        ]

    async def test_loads_a_tree(self) -> None:
        """The reader loads a subbranch (through its ``batches``)."""
        api = numbered(people(5))
        tree = SyncTree(["source", "destination"], ["users"])
        async with api.client() as client:
            reader = HTTPReader(client, "/users", items="users", pagination=PageNumber(size=2))
            await tree.load(destination={"users": reader})
        assert sorted(tree.destination.users.keys()) == ["1", "2", "3", "4", "5"]
        assert tree.destination.users["3"].name == "P3"


def counted(
    items: list[dict[str, Any]], *, listed: int | None = None, total: int | None = None
) -> API:
    """Every pagination style over ``items``, two a page unless asked: ``?page=``,
    ``?offset=&limit=``, ``?cursor=``, body ``next``, ``Link`` header, body ``meta.total``
    and ``X-Total-Count``.  Only the first ``listed`` items are listed (later pages come
    back empty); the total says ``total`` (default: every item)."""

    def handle(api: API, request: httpx.Request) -> httpx.Response:
        query = request.url.params
        size = int(query.get("per_page", query.get("limit", "2")))
        if "offset" in query or "cursor" in query:
            start = int(query.get("offset", query.get("cursor", "0")))
        else:
            start = (int(query.get("page", "1")) - 1) * size
        shown = items if listed is None else items[:listed]
        count = len(items) if total is None else total
        more = start + size < len(items)
        link = f"{BASE}/users?offset={start + size}&limit={size}"
        headers = {"X-Total-Count": str(count)}
        if more:
            headers["Link"] = f'<{link}>; rel="next"'
        body = {
            "users": shown[start : start + size],
            "meta": {"total": count, "next_cursor": str(start + size) if more else None},
            "next": link if more else None,
        }
        return httpx.Response(200, json=body, headers=headers)

    return API(handle)


COUNTED = [
    PageNumber(size=2, total="meta.total"),
    PageNumber(size=2, total_header="X-Total-Count"),
    Offset(limit=2, total="meta.total"),
    Offset(limit=2, total_header="X-Total-Count"),
    NextLink(total="meta.total"),
    NextLink(total_header="X-Total-Count"),
    LinkHeader(total="meta.total"),
    LinkHeader(total_header="X-Total-Count"),
    Cursor(next="meta.next_cursor", total="meta.total"),
    Cursor(next="meta.next_cursor", total_header="X-Total-Count"),
]


class TestTotals:
    @pytest.mark.parametrize("pagination", COUNTED, ids=repr)
    async def test_complete_listing(self, pagination: Pagination) -> None:
        """A listing that reaches its total, by any pagination, reads every item."""
        api = counted(people(5))
        async with api.client() as client:
            rows = await read(HTTPReader(client, "/users", items="users", pagination=pagination))
        assert keys(rows) == ["1", "2", "3", "4", "5"]

    @pytest.mark.parametrize("pagination", COUNTED, ids=repr)
    async def test_listing_that_ends_before_its_total_fails(self, pagination: Pagination) -> None:
        """Pages that stop early (page 2 empty, the total says 6) fail the read, naming the
        URL and both counts, whatever the pagination."""
        api = counted(people(6), listed=2)
        async with api.client() as client:
            reader = HTTPReader(client, "/users", items="users", pagination=pagination)
            with pytest.raises(PageError) as info:
                await read(reader)
        error = info.value
        assert isinstance(error, ListingError) and isinstance(error, InputError)
        assert (error.expected, error.received, error.page) == (6, 2, 2)
        assert str(error).startswith(f"{BASE}/users")
        assert "page 2: the listing ended with 2 items, but it announced 6" in str(error)

    @pytest.mark.parametrize("pagination", COUNTED, ids=repr)
    async def test_listing_longer_than_its_total_fails(self, pagination: Pagination) -> None:
        """More items than the total announced is no complete listing either."""
        api = counted(people(5), total=3)
        async with api.client() as client:
            reader = HTTPReader(client, "/users", items="users", pagination=pagination)
            with pytest.raises(ListingError, match=r"items, more than the 3 it announced") as info:
                await read(reader)
        assert info.value.expected == 3
        assert info.value.received > 3

    async def test_total_that_changes_fails(self) -> None:
        """A total that changes between pages means the listing shifted while it was read."""
        totals = iter([6, 5, 5])

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            offset = int(request.url.params["offset"])
            body = {"users": people(6)[offset : offset + 2], "total": next(totals)}
            return httpx.Response(200, json=body)

        api = API(handle)
        async with api.client() as client:
            pagination = Offset(limit=2, total="total")
            reader = HTTPReader(client, "/users", items="users", pagination=pagination)
            with pytest.raises(ListingError, match=r"page 2: the total changed from 6 to 5"):
                await read(reader)

    async def test_shifted_offset_listing_fails_on_a_repeated_key(self) -> None:
        """Offset paging over a list that shifted (one added at the front after page 1)
        repeats a key on page 2: the read fails, even without a total."""
        listing = people(4)

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            offset = int(request.url.params["offset"])
            if offset > 0 and listing[0]["id"] != 0:
                listing.insert(0, {"id": 0, "name": "New"})
            return httpx.Response(200, json=listing[offset : offset + 2])

        api = API(handle)
        async with api.client() as client:
            reader = HTTPReader(client, "/users", pagination=Offset(limit=2))
            with pytest.raises(ListingError) as info:
                await read(reader)
        assert info.value.key == "2"
        assert "page 2: key '2' came again (first on page 1)" in str(info.value)

    async def test_repeats_may_be_allowed(self) -> None:
        """``unique=False``: a key on two pages is left to the tree's duplicates policy."""

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            page = int(request.url.params["page"])
            return httpx.Response(200, json=[people(2), [{"id": 2}], []][page - 1])

        api = API(handle)
        async with api.client() as client:
            pagination = PageNumber(size=2)
            rows = await read(HTTPReader(client, "/users", pagination=pagination, unique=False))
        assert keys(rows) == ["1", "2", "2"]

    async def test_missing_total_header(self) -> None:
        """A total header the response lacks is an error naming it."""
        api = numbered(people(3))
        async with api.client() as client:
            pagination = PageNumber(total_header="X-Total-Count")
            reader = HTTPReader(client, "/users", items="users", pagination=pagination)
            with pytest.raises(PageError, match="page 1: no total header 'X-Total-Count'"):
                await read(reader)

    async def test_short_listing_never_reaches_the_tree(self) -> None:
        """Through ``tree.load`` a short listing is a ReaderError: no tree to diff."""
        api = counted(people(6), listed=4)
        tree = SyncTree(["source", "destination"], ["users"])
        async with api.client() as client:
            pagination = NextLink(total="meta.total")
            reader = HTTPReader(client, "/users", items="users", pagination=pagination)
            with pytest.raises(ReaderError, match="ended with 4 items, but it announced 6"):
                await tree.load(source={"users": reader})


def flaky(*failures: httpx.Response | Exception) -> API:
    """Answers the given failures first, then one page of two people."""
    queue = list(failures)

    def handle(api: API, request: httpx.Request) -> httpx.Response:
        if queue:
            failure = queue.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        return httpx.Response(200, json=people(2))

    return API(handle)


class TestRetries:
    async def test_429_retry_after_is_honoured(self) -> None:
        """A 429 with ``Retry-After: 7`` waits 7 seconds, then the page comes."""
        api = flaky(httpx.Response(429, headers={"Retry-After": "7"}))
        sleeps = Sleeps()
        async with api.client() as client:
            rows = await read(HTTPReader(client, "/users", **fake_time(sleeps)))
        assert keys(rows) == ["1", "2"]
        assert sleeps.delays == [7.0]
        assert len(api.requests) == 2

    async def test_throttles_do_not_spend_retries(self) -> None:
        """Throttles are flow control: three 429s get through even with ``retries=0``."""
        api = flaky(*[httpx.Response(429, headers={"Retry-After": "2"})] * 3)
        sleeps = Sleeps()
        async with api.client() as client:
            rows = await read(HTTPReader(client, "/users", retries=0, **fake_time(sleeps)))
        assert keys(rows) == ["1", "2"]
        assert sleeps.delays == [2.0, 2.0, 2.0]

    async def test_throttled_too_long_gives_up(self) -> None:
        """A server throttling past ``max_retry_after`` (300 s) in total fails the page."""
        api = flaky(*[httpx.Response(429, headers={"Retry-After": "200"})] * 3)
        async with api.client() as client:
            with pytest.raises(PageError, match=r"HTTP 429 Too Many Requests \(after 3 attempts\)"):
                await read(HTTPReader(client, "/users", **fake_time(Sleeps())))

    async def test_5xx_and_transport_errors_back_off(self) -> None:
        """503, 502 and a connection error are retried with the runner's full-jitter backoff."""
        api = flaky(
            httpx.Response(503),
            httpx.Response(502),
            httpx.ConnectError("connection refused"),
        )
        sleeps = Sleeps()
        async with api.client() as client:
            rows = await read(HTTPReader(client, "/users", **fake_time(sleeps)))
        assert keys(rows) == ["1", "2"]
        assert sleeps.delays == [0.5, 1.0, 2.0]  # random() * base * 2 ** (attempt - 1)

    async def test_gives_up_after_retries(self) -> None:
        """Out of retries: a PageError saying the status, the page and the attempts."""
        api = flaky(*[httpx.Response(500)] * 3)
        async with api.client() as client:
            reader = HTTPReader(client, "/users", retries=2, **fake_time(Sleeps()))
            with pytest.raises(PageError) as info:
                await read(reader)
        assert str(info.value) == (
            f"{BASE}/users: page 1: HTTP 500 Internal Server Error (after 3 attempts)"
        )
        assert info.value.page == 1
        assert len(api.requests) == 3

    async def test_permanent_error_is_not_retried(self) -> None:
        """A 404 fails at once."""
        api = flaky(httpx.Response(404))
        async with api.client() as client:
            with pytest.raises(PageError, match="page 1: HTTP 404 Not Found$"):
                await read(HTTPReader(client, "/users", **fake_time(Sleeps())))
        assert len(api.requests) == 1

    async def test_rate_spaces_pages(self) -> None:
        """``rate=2`` spaces page requests half a second apart."""
        api = numbered(people(5))
        now = [0.0]

        async def sleep(delay: float) -> None:  # a clock that moves as we sleep
            now[0] += delay
            await anyio.lowlevel.checkpoint()

        async with api.client() as client:
            pagination = PageNumber(size=2)
            reader = HTTPReader(
                client,
                "/users",
                items="users",
                pagination=pagination,
                rate=2.0,
                sleep=sleep,
                clock=lambda: now[0],
            )
            await read(reader)
        assert now[0] == 1.0  # three pages: at 0, 0.5 and 1.0


class TestBadPages:
    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            (b"<html>oops</html>", "page 2: the body is not JSON (text/html)"),
            (b'{"data": {}}', "page 2: no 'data.items' in the body"),
            (b'{"data": {"items": {"a": 1}}}', "page 2: 'data.items' is not a list (it is dict)"),
            (b'{"data": {"items": [{"name": "x"}]}}', "page 2: an item has no key 'id'"),
            (b'{"data": {"items": [{"id": ""}]}}', "page 2: an item has an empty key 'id'"),
            (b'{"data": {"items": [{"id": [1]}]}}', "page 2: an item's key 'id' is not a string"),
            (b'{"data": {"items": [7]}}', "page 2: an item is not an object: int"),
        ],
    )
    async def test_bad_second_page(self, body: bytes, problem: str) -> None:
        """A bad page raises an InputError naming the page's URL and number."""

        def handle(api: API, request: httpx.Request) -> httpx.Response:
            if request.url.params["page"] == "1":
                return httpx.Response(200, json={"data": {"items": people(2)}})
            return httpx.Response(200, content=body, headers={"Content-Type": "text/html"})

        api = API(handle)
        async with api.client() as client:
            pagination = PageNumber(size=2)
            reader = HTTPReader(client, "/users", items="data.items", pagination=pagination)
            with pytest.raises(InputError) as info:
                await read(reader)
        assert str(info.value).startswith(f"{BASE}/users?page=2&per_page=2: {problem}")
        assert isinstance(info.value, PageError)
        assert info.value.page == 2

    async def test_missing_total(self) -> None:
        """A total the body lacks is an error, not an endless listing."""
        api = numbered(people(3))
        async with api.client() as client:
            pagination = PageNumber(total="meta.total")
            reader = HTTPReader(client, "/users", items="users", pagination=pagination)
            with pytest.raises(PageError, match="page 1: no total 'meta.total' in the body"):
                await read(reader)

    async def test_load_names_reader_url_and_page(self) -> None:
        """Through ``tree.load``, the ReaderError names the reader, the URL and the page."""
        api = API(lambda api, request: httpx.Response(200, json={"users": "nope"}))
        tree = SyncTree(["source", "destination"], ["users"])
        async with api.client() as client:
            with pytest.raises(ReaderError) as info:
                await tree.load(destination={"users": HTTPReader(client, "/users", items="users")})
        message = str(info.value)
        assert f"<HTTPReader '{BASE}/users' key='id'>" in message
        assert f"{BASE}/users: page 1: 'users' is not a list" in message


class TestSecrets:
    def test_redact_url(self) -> None:
        """User info goes, token-like query values are replaced, the rest stays."""
        url = "https://bob:hunter2@api.test/v1/u?api_key=K&access_token=T&wstoken=W&page=2"
        assert HTTPReader(url).path == (
            "https://api.test/v1/u?api_key=REDACTED&access_token=REDACTED&wstoken=REDACTED&page=2"
        )

    async def test_secrets_never_in_errors_or_repr(self) -> None:
        """Neither user info, nor a token in the query, nor the Authorization header leak."""
        secret = "s3cr3t-value"
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            if len(seen) == 1:
                raise httpx.ConnectError(f"cannot reach {request.url}")
            return httpx.Response(401, json={"error": "bad token"})

        client = httpx.AsyncClient(
            transport=httpx.MockTransport(handler),
            base_url=f"https://user:{secret}@api.test/v1",
        )
        async with client:
            reader = HTTPReader(
                client,
                "/users",
                params={"token": secret},
                headers={"Authorization": f"Bearer {secret}"},
                **fake_time(Sleeps()),
            )
            with pytest.raises(PageError) as info:
                await read(reader)
            tree = SyncTree(["source", "destination"], ["users"])
            with pytest.raises(ReaderError) as loaded:
                await tree.load(destination={"users": reader})
        assert seen[0].url.params["token"] == secret  # the secrets were sent...
        for text in (str(info.value), repr(reader), reader.path, str(loaded.value)):
            assert secret not in text  # ...and are shown nowhere
        assert "HTTP 401 Unauthorized (after 2 attempts)" in str(info.value)
        assert "token=REDACTED" in str(info.value)

    async def test_transport_error_text_is_redacted(self) -> None:
        """An exception quoting the URL has its secrets redacted in the PageError."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError(f"cannot reach {request.url}")

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=BASE)
        async with client:
            reader = HTTPReader(client, "/users", params={"access_token": "T0K"}, retries=0)
            with pytest.raises(PageError) as info:
                await read(reader)
        assert "T0K" not in str(info.value)
        assert "ConnectError: cannot reach https://api.test/v1/users?access_token=REDACTED" in str(
            info.value
        )


class TestClient:
    async def test_builds_and_closes_its_own_client_over_real_http(self) -> None:
        """Given a URL, the reader makes its client; here against a real local server."""
        api = make_app(users=[{"id": str(i), "name": f"U{i}"} for i in range(7)])
        with serve(api) as base_url:
            reader = HTTPReader(
                base_url,
                "/users",
                items="users",
                params={"per_page": 3},
                pagination=NextLink(),
            )
            rows = await read(reader)
        assert keys(rows) == [str(i) for i in range(7)]
        assert api.stats()["calls"] == 3

    async def test_given_client_stays_open(self) -> None:
        """A client passed in is the caller's: it is not closed."""
        api = numbered(people(1))
        client = api.client()
        async with client:
            await read(HTTPReader(client, "/users", items="users", pagination=PageNumber()))
            assert not client.is_closed

    def test_pagination_protocol(self) -> None:
        """Every built-in pagination is a Pagination."""
        for pagination in (NextLink(), LinkHeader(), PageNumber(), Offset(), Cursor()):
            assert isinstance(pagination, Pagination)

    @pytest.mark.parametrize(
        ("make", "name"),
        [
            (lambda: PageNumber(size=0), "'size'"),
            (lambda: Offset(limit=-1), "'limit'"),
            (lambda: Cursor(param=""), "'param'"),
            (lambda: NextLink(""), "'path'"),
            (lambda: LinkHeader(total=""), "'total'"),
            (lambda: Cursor(total_header=""), "'total_header'"),
            (lambda: PageNumber(total="n", total_header="X-Total-Count"), "'total_header'"),
            (lambda: HTTPReader(BASE, unique=1), "'unique'"),  # type: ignore[arg-type]
            (lambda: HTTPReader(BASE, key=""), "'key'"),
            (lambda: HTTPReader(BASE, rate=0), "'rate'"),
            (lambda: HTTPReader(BASE, retries=-1), "'retries'"),
            (lambda: HTTPReader(BASE, items=""), "'items'"),
            (lambda: HTTPReader(BASE, pagination="page"), "'pagination'"),  # type: ignore[arg-type]
            (lambda: HTTPReader(42), "'client_or_url'"),  # type: ignore[arg-type]
        ],
    )
    def test_bad_options(self, make: Callable[[], object], name: str) -> None:
        """Bad options fail at once with a ValueError naming the parameter."""
        with pytest.raises(ValueError, match=name):
            make()


class TestBatches:
    async def test_two_reads_at_once_give_the_same_rows(self) -> None:
        """One reader read twice concurrently (over real HTTP, pages interleaved) gives
        both passes every row: a read keeps its state to itself."""
        api = make_app(users=[{"id": str(i), "name": f"U{i}"} for i in range(7)], latency=0.02)
        passes: list[list[list[dict[str, Any]]]] = [[], []]
        with serve(api) as base_url:
            reader = HTTPReader(
                base_url, "/users", items="users", params={"per_page": 3}, pagination=NextLink()
            )
            state = dict(vars(reader))

            async def read_into(rows: list[list[dict[str, Any]]]) -> None:
                async for batch in reader.batches():
                    rows.append(batch.rows)
                    await anyio.sleep(0.01)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read_into, passes[0])
                tg.start_soon(read_into, passes[1])
        assert passes[0] == passes[1]
        assert [len(rows) for rows in passes[0]] == [3, 3, 1]
        assert vars(reader) == state  # nothing of either read stayed on the reader
        assert api.stats()["calls"] == 6

    async def test_batches_say_url_item_and_key(self) -> None:
        """Each batch carries its page's URL (secrets redacted), each row's item number in
        the listing, and the key field."""
        api = numbered(people(5))
        async with api.client() as client:
            reader = HTTPReader(
                client,
                "/users",
                items="users",
                params={"token": "T0K"},
                pagination=PageNumber(size=2),
            )
            batches = [batch async for batch in reader.batches()]
        assert [batch.path for batch in batches] == [
            f"{BASE}/users?token=REDACTED&page={n}&per_page=2" for n in (1, 2, 3)
        ]
        assert [[b.line_of(i) for i in range(len(b.rows))] for b in batches if b.line_of] == [
            [1, 2],
            [3, 4],
            [5],
        ]
        assert {batch.key for batch in batches} == {"id"}

    async def test_duplicate_key_names_the_page_and_item(self) -> None:
        """A key twice (``unique=False`` leaves it to the loader) names the page's URL, the
        item's number in the listing and the key field."""
        items = [*people(3), {"id": 2, "name": "again"}]
        api = numbered(items)
        tree = SyncTree(["source", "destination"], ["users"])
        async with api.client() as client:
            reader = HTTPReader(
                client, "/users", items="users", unique=False, pagination=PageNumber(size=2)
            )
            with pytest.raises(ReaderError) as info:
                await tree.load(source={"users": reader})
        error = info.value
        assert (error.path, error.line, error.field) == (
            f"{BASE}/users?page=2&per_page=2",
            4,
            "id",
        )
        assert "duplicate key" in str(error)
