"""Read the OneRoster 1.1 and 1.2 REST rostering services: :class:`OneRosterAPI`.

Every collection (``/ims/oneroster/v1p1/users``, ``/ims/oneroster/rostering/v1p2/orgs``...)
is listed by :class:`synctree.aio.http.HTTPReader` with ``limit``/``offset`` paging; when
the server reports ``X-Total-Count``, a listing that delivers fewer (or more) records, or
whose count changes between pages, or repeats a ``sourcedId``, fails the read with a
:class:`~synctree.aio.http.ListingError` naming the URL, so a short list never reaches the
diff.  Each JSON object is put in the CSV binding's column form (``_json``) and shaped by
the same functions as the CSV reader's (``_shape``): both readers give the same rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import anyio

from synctree import InputError
from synctree._util.redact import redact_url
from synctree.aio import Batch, Row, rows_of

from . import _shape
from ._json import profiles_of, record_of, roles_of
from ._shape import Shaping

if TYPE_CHECKING:  # httpx loads with the first OneRosterAPI, not with the package
    import httpx

    from synctree.aio.http import HTTPReader, Page

__all__ = ["OneRosterAPI", "OneRosterAPIReader"]

APIVersion = Literal["1.1", "1.2"]
DateOrder = Literal["DMY", "MDY"]

#: Where each version's rostering service lives, below the server's URL.
PREFIXES: dict[str, str] = {"1.1": "ims/oneroster/v1p1", "1.2": "ims/oneroster/rostering/v1p2"}
#: The subbranches, in dependency order, and the collection each is read from.
SUBBRANCHES: dict[str, str] = {
    "orgs": "orgs",
    "sessions": "academicSessions",
    "courses": "courses",
    "classes": "classes",
    "students": "users",
    "staff": "users",
    "guardians": "users",
    "enrollments": "enrollments",
    "demographics": "demographics",
    "user_profiles": "users",
}
#: The CSV file of each collection: the shapers are the CSV binding's.
_FILES = {
    "orgs": "orgs.csv",
    "academicSessions": "academicSessions.csv",
    "courses": "courses.csv",
    "classes": "classes.csv",
    "users": "users.csv",
    "enrollments": "enrollments.csv",
    "demographics": "demographics.csv",
}
_USERS = ("students", "staff", "guardians")
_TOTAL = "X-Total-Count"
_MAX_WARNINGS = 20


@dataclass(frozen=True, slots=True)
class _Paging:
    """``?offset=&limit=`` with the total from ``X-Total-Count`` when the server sends it
    (OneRoster says it should; a listing without it is paged by page lengths alone)."""

    limit: int

    def first(self) -> dict[str, str | int]:
        return {"offset": 0, "limit": self.limit}

    def expected(self, page: Page) -> int | None:
        from synctree.aio.http import Offset

        if _TOTAL not in page.response.headers:
            return None
        return Offset(limit=self.limit, total_header=_TOTAL).expected(page)

    def after(self, page: Page) -> str | Mapping[str, str | int] | None:
        from synctree.aio.http import Offset

        total = self.expected(page)
        if total is None:
            return Offset(limit=self.limit).after(page)
        if page.seen >= total:
            return None
        return {**page.params, "offset": int(page.params["offset"]) + len(page.items)}


@dataclass(frozen=True, slots=True)
class _Listing:
    """A whole collection as fetched: its pages' URLs, first item numbers and objects."""

    url: str
    pages: tuple[tuple[str, int, list[Any]], ...]
    absent: str | None = None  # why the server has no such collection


class OneRosterAPI:
    """A OneRoster 1.1 or 1.2 REST rostering service, as readers for its subbranches.

    ``OneRosterAPI('https://sis.example.org', version='1.2', auth=OAuth2ClientCredentials(
    ...))``; ``readers()`` gives one per subbranch, in the CSV reader's shape (see
    :class:`~synctree.aio.oneroster.OneRoster` for the attributes): orgs, sessions,
    courses, classes, students, staff, guardians (users by primary role; 1.2 reads the
    roles each user embeds), enrollments (one row per enrollment), demographics and
    user_profiles (1.2, from the users).  1.1 servers (ClassLink and kin) usually want
    :class:`~synctree.aio.http.OAuth1Auth` signing, 1.2 servers
    :class:`~synctree.aio.http.OAuth2ClientCredentials`.

    The readers of one ``readers()`` call share one look at the service: each collection
    is listed once (users once for students, staff and guardians) and kept for the
    references that are checked (an enrollment naming a user or a class the service does
    not list is left out with a note, as the CSV reader does; ``dangling="keep"`` keeps
    it).  A collection the server answers 404 for is absent: that subbranch is left out
    of the sync, and the plan says so.

    :param url: the server's URL (``/ims/oneroster/...`` is added unless it is there),
        or an :class:`httpx.AsyncClient` whose base URL it is (your transport).
    :param version: ``"1.1"`` or ``"1.2"``.
    :param auth: credentials for every request, an :class:`httpx.Auth`.
    :param page_size: records asked per page (``limit``); a server may send fewer.
    :param sort: the field to sort listings by (stable pages), or ``None`` to send none.
    :param date_order: how to read slash dates (``"DMY"``, ``"MDY"``), as the CSV reader.
    :param keep_passwords: carry password fields as ``_password`` (never compared).
    :param allow_empty: accept a subbranch with no rows (the default, as the CSV reader).
    :param options: for every listing's :class:`~synctree.aio.http.HTTPReader`:
        ``headers``, ``rate``, ``retries``, ``max_throttle_time``, ``timeout``, ``sleep``.
    """

    subbranches: ClassVar[tuple[str, ...]] = tuple(SUBBRANCHES)
    """The subbranch names, in dependency order (orgs before classes before enrollments)."""

    def __init__(
        self,
        url: str | httpx.AsyncClient,
        *,
        version: APIVersion,
        auth: httpx.Auth | None = None,
        page_size: int = 100,
        sort: str | None = "sourcedId",
        date_order: DateOrder | None = None,
        keep_passwords: bool = False,
        dangling: Literal["drop", "keep"] = "drop",
        allow_empty: bool = True,
        headers: Mapping[str, str] | None = None,
        rate: float | None = None,
        retries: int = 5,
        max_throttle_time: float = 300.0,
        timeout: float | None = 30.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        import httpx

        if version not in PREFIXES:
            raise ValueError(f"'version' must be '1.1' or '1.2', not {version!r}")
        if isinstance(url, httpx.AsyncClient):
            self._client: httpx.AsyncClient | None = url
            base = str(url.base_url)
        elif isinstance(url, str) and url:
            self._client = None
            base = url
        else:
            raise ValueError(f"'url' must be a URL or an httpx.AsyncClient, not {url!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"'page_size' must be an int >= 1, not {page_size!r}")
        if sort is not None and (not isinstance(sort, str) or not sort):
            raise ValueError(f"'sort' must be a field name or None, not {sort!r}")
        if date_order is not None and date_order not in get_args(DateOrder):
            raise ValueError(f"'date_order' must be 'DMY', 'MDY' or None, not {date_order!r}")
        for name, flag in (("keep_passwords", keep_passwords), ("allow_empty", allow_empty)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name!r} must be a bool, not {flag!r}")
        if dangling not in ("drop", "keep"):
            raise ValueError(f"'dangling' must be 'drop' or 'keep', not {dangling!r}")
        prefix = PREFIXES[version]
        base = base.rstrip("/")
        self.url = base if base.endswith("/" + prefix) else f"{base}/{prefix}"
        self.version: APIVersion = version
        self.page_size = page_size
        self.date_order = date_order
        self.keep_passwords = keep_passwords
        self.dangling = dangling
        self.allow_empty = allow_empty
        self._auth = auth
        self._params = {"sort": sort, "orderBy": "asc"} if sort is not None else {}
        self._options: dict[str, Any] = {
            "headers": headers,
            "rate": rate,
            "retries": retries,
            "max_throttle_time": max_throttle_time,
            "timeout": timeout,
            "sleep": sleep,
        }
        self.listing("orgs")  # checks the options now, not at the first read

    def __repr__(self) -> str:
        return f"<OneRosterAPI {self.version} {redact_url(self.url)!r}>"

    def listing(self, collection: str) -> HTTPReader:
        """The :class:`~synctree.aio.http.HTTPReader` of one collection (``'users'``)."""
        from synctree.aio.http import HTTPReader

        url = f"{self.url}/{collection}"
        target: str | httpx.AsyncClient = url if self._client is None else self._client
        return HTTPReader(
            target,
            "" if self._client is None else url,
            key="sourcedId",
            items=collection,
            pagination=_Paging(self.page_size),
            params=self._params,
            auth=self._auth,
            **self._options,
        )

    def readers(self) -> dict[str, OneRosterAPIReader]:
        """A reader for each subbranch, in :attr:`subbranches` order, sharing one look."""
        session = _Session(self)
        readers = {name: OneRosterAPIReader(self, name) for name in self.subbranches}
        for reader in readers.values():
            reader._session = session
        return readers


class _Session:
    """One look at the service: each collection listed once, and the keys references need."""

    def __init__(self, api: OneRosterAPI) -> None:
        self.api = api
        self._locks: dict[str, anyio.Lock] = {}
        self._listings: dict[str, _Listing] = {}
        self._keys: dict[str, frozenset[str] | None] = {}

    async def listing(self, collection: str) -> _Listing:
        async with self._locks.setdefault(collection, anyio.Lock()):
            if collection not in self._listings:
                self._listings[collection] = await self._fetch(collection)
            return self._listings[collection]

    async def _fetch(self, collection: str) -> _Listing:
        from synctree.aio.http import PageError

        reader = self.api.listing(collection)
        pages: list[tuple[str, int, list[Any]]] = []
        try:
            async for page in reader.pages():
                first = page.seen - len(page.items) + 1
                pages.append((redact_url(str(page.url)), first, list(page.items)))
        except PageError as exc:
            if exc.status == 404 and exc.page == 1:
                why = f"the server has no {collection} (HTTP 404 at {exc.url})"
                return _Listing(reader.path, (), absent=why)
            raise
        return _Listing(reader.path, tuple(pages))

    async def keys(self, collection: str) -> frozenset[str] | None:
        """The keys of the objects a collection lists (None if the server has none);
        for classes, those whose course is known when dangling rows are dropped."""
        async with self._locks.setdefault(f"keys:{collection}", anyio.Lock()):
            if collection not in self._keys:
                self._keys[collection] = await self._read_keys(collection)
            return self._keys[collection]

    async def _read_keys(self, collection: str) -> frozenset[str] | None:
        listing = await self.listing(collection)
        if listing.absent is not None:
            return None
        courses = None
        if collection == "classes" and self.api.dangling == "drop":
            courses = await self.keys("courses")
        keys = set()
        for _url, _first, objects in listing.pages:
            for obj in objects:
                if not isinstance(obj, dict):
                    continue
                record = record_of(collection, obj)
                if _shape.is_deleted(record):
                    continue
                course = record.get("courseSourcedId", "").strip()
                if courses is not None and course and course not in courses:
                    continue
                keys.add(record.get("sourcedId", ""))
        return frozenset(keys)


class OneRosterAPIReader:
    """The rows of one subbranch of a :class:`OneRosterAPI` service.

    A batch reader: one :class:`~synctree.aio.Batch` per page, naming its URL and each
    row's number in the listing; the last batch carries the coverage and the notes.
    """

    def __init__(self, api: OneRosterAPI, subbranch: str) -> None:
        if subbranch not in SUBBRANCHES:
            raise ValueError(f"'subbranch' must be one of {list(SUBBRANCHES)}, not {subbranch!r}")
        self.api = api
        self.subbranch = subbranch
        self._session = _Session(api)  # readers() gives its readers one to share

    def __repr__(self) -> str:
        return f"<OneRosterAPIReader {self.subbranch} of {self.path!r}>"

    @property
    def path(self) -> str:
        """The collection's URL (secrets redacted)."""
        return self.api.listing(SUBBRANCHES[self.subbranch]).path.split("?", 1)[0]

    def __aiter__(self) -> AsyncIterator[Row]:
        return rows_of(self.batches())

    def batches(self) -> _Pass:
        """A pass: the rows in batches (the collection is listed once per ``readers()``)."""
        return _Pass(self)


class _Pass:
    """One pass over a subbranch: its collection's pages, shaped, then coverage and notes.

    Not an async generator, so that a loader that stops early leaves nothing behind.
    """

    def __init__(self, owner: OneRosterAPIReader) -> None:
        self._api = owner.api
        self._session = owner._session
        self._name = owner.subbranch
        self._collection = SUBBRANCHES[owner.subbranch]
        self._batches: list[Batch] | None = None
        self._next = 0
        self._notes: list[str] = []
        self._more = 0
        self._head: list[str] = []
        self._checks: list[tuple[str, str, frozenset[str]]] = []
        self._shaping = Shaping(
            version=self._api.version,
            date_order=self._api.date_order,
            keep_passwords=self._api.keep_passwords,
        )

    def __aiter__(self) -> _Pass:
        return self

    async def __anext__(self) -> Batch:
        if self._batches is None:
            self._batches = await self._read()
        if self._next >= len(self._batches):
            raise StopAsyncIteration
        self._next += 1
        return self._batches[self._next - 1]

    async def aclose(self) -> None:
        self._batches = []

    # -- reading --------------------------------------------------------------------------

    async def _read(self) -> list[Batch]:
        name, collection = self._name, self._collection
        if name == "user_profiles" and self._api.version != "1.2":
            why = f"OneRoster {self._api.version} has no user profiles"
            return [Batch([], coverage="absent", notes=(f"{name}: {why}; left untouched",))]
        listing = await self._session.listing(collection)
        if listing.absent is not None:
            note = f"{name}: not in this service ({listing.absent}); left untouched"
            return [Batch([], coverage="absent", notes=(note,))]
        if name == "user_profiles" and not any(
            isinstance(obj, dict) and "userProfiles" in obj
            for _url, _first, objects in listing.pages
            for obj in objects
        ):
            why = "its users carry no userProfiles"
            return [Batch([], coverage="absent", notes=(f"{name}: {why}; left untouched",))]
        if collection == "classes":
            await self._check("courseSourcedId", "course", "courses")
        elif collection == "enrollments":
            await self._check("userSourcedId", "user", "users")
            await self._check("classSourcedId", "class", "classes")
        batches = []
        count = 0
        for url, first, objects in listing.pages:
            rows: list[Row] = []
            numbers: list[int] = []
            for number, obj in enumerate(objects, first):
                for row in self._rows(obj, url, number):
                    rows.append(row)
                    numbers.append(number)
            if rows:
                count += len(rows)
                batches.append(Batch(rows, path=url, line_of=numbers.__getitem__, key="sourcedId"))
        if count == 0:
            if not self._api.allow_empty:
                raise InputError(
                    f"no {name}; an empty listing must never look like everyone left "
                    "(allow_empty=True accepts it)",
                    path=listing.url,
                )
            self._head.append(f"{name}: none in this service")
        more = [f"... and {self._more} more warnings like these"] if self._more else []
        notes = self._head + [f"{name}: {note}" for note in self._notes + more]
        batches.append(Batch([], path=listing.url, coverage="full", notes=tuple(notes)))
        return batches

    async def _check(self, column: str, what: str, collection: str) -> None:
        keys = await self._session.keys(collection)
        if keys is not None:
            self._checks.append((column, what, keys))
        else:
            self._head.append(
                f"{self._name}: the {what} of each row is not checked "
                f"(the server has no {collection})"
            )

    def _warn(self, text: str) -> None:
        if len(self._notes) < _MAX_WARNINGS:
            self._notes.append(text)
        else:
            self._more += 1

    def _rows(self, obj: Any, url: str, number: int) -> list[Row]:
        """The rows one object gives this subbranch (none, one, or a user's profiles)."""
        if not isinstance(obj, dict):
            kind = type(obj).__name__
            raise InputError(f"a record is not an object: {kind}", path=url, line=number)
        record = record_of(self._collection, obj)
        if not isinstance(obj.get("sourcedId"), str) or not obj["sourcedId"].strip():
            problem = "no sourcedId" if "sourcedId" not in obj else "an empty sourcedId"
            raise InputError(f"the record has {problem}", path=url, line=number, field="sourcedId")
        if _shape.is_deleted(record):
            return []
        try:
            if self._collection == "users":
                return self._user(obj, record, url, number)
            if not self._checked(record, url, number):
                return []
            return [_shape.SHAPERS[_FILES[self._collection]](record, self._shaping)]
        except _shape.ShapeError as exc:
            raise InputError(exc.problem, path=url, line=number, field=exc.column) from None

    def _checked(self, record: Mapping[str, str], url: str, number: int) -> bool:
        keep = self._api.dangling == "keep"
        for column, what, keys in self._checks:
            value = record.get(column, "").strip()
            if not value and self._collection == "classes":
                self._warn(f"{url} record {number}: the class has no course")
                continue
            if not value:
                raise InputError(f"the {what} is empty", path=url, line=number, field=column)
            if value not in keys:
                kind = self._name.removesuffix("es").removesuffix("s")
                left = "kept" if keep else "left out"
                self._warn(
                    f"{url} record {number}: {what} {value!r} is not in the service; {kind} {left}"
                )
                if not keep:
                    return False
        return True

    def _user(
        self, obj: dict[str, Any], record: dict[str, str], url: str, number: int
    ) -> list[Row]:
        if self._name == "user_profiles":
            shape = partial(_shape.shape_user_profile, options=self._shaping)
            return [shape(profile) for profile in profiles_of(obj)]
        roles = roles_of(obj) if "role" not in record else []
        row = _shape.shape_user(record, self._shaping, roles)
        kind = _shape.user_subbranch(row)
        if kind is None and self._name == "students":
            key = record.get("sourcedId", "")
            self._warn(
                f"{url} record {number}: user {key!r} has no role; "
                "left out of students, staff and guardians"
            )
        return [row] if kind == self._name else []
