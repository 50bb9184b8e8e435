from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx
import pytest

from tests.http_server import FakeUsersAPI, make_app, serve


@contextmanager
def client_for(api: FakeUsersAPI) -> Iterator[httpx.Client]:
    with serve(api) as base_url, httpx.Client(base_url=base_url) as client:
        yield client


class TestUsersAPI:
    def test_crud(self) -> None:
        """Create, conflict, read, update and delete behave like a small REST API."""
        api = make_app()
        with client_for(api) as client:
            assert client.post("/users", json={"id": "1", "name": "Ann"}).status_code == 201
            assert client.post("/users", json={"id": "1"}).status_code == 409
            assert client.post("/users", json={"name": "no id"}).status_code == 422
            update = client.patch("/users/1", json={"name": "Anne", "id": "2"})
            assert update.json() == {"id": "1", "name": "Anne"}
            assert client.get("/users/1").json() == {"id": "1", "name": "Anne"}
            assert client.patch("/users/9", json={}).status_code == 404
            assert client.delete("/users/1").status_code == 204
            assert client.delete("/users/1").status_code == 404
            stats = client.get("/stats").json()
        assert stats == api.stats()
        assert stats["creates"] == {"1": 1}
        assert (stats["updates"], stats["deletes"], stats["users"]) == (1, 1, 0)
        assert stats["calls"] == 8  # /stats itself is not counted

    def test_pagination_follows_next(self) -> None:
        """``GET /users`` pages through every user via the ``next`` link."""
        api = make_app(users=[{"id": str(i)} for i in range(5)])
        seen: list[str] = []
        pages = 0
        with client_for(api) as client:
            url: str | None = "/users?per_page=2"
            while url is not None:
                body = client.get(url).json()
                seen += [user["id"] for user in body["users"]]
                assert body["total"] == 5
                url = body["next"]
                pages += 1
            assert client.get("/users?page=0").status_code == 400
        assert (seen, pages) == (["0", "1", "2", "3", "4"], 3)

    def test_listing_styles_and_short_listing(self) -> None:
        """Offsets, cursors, ``Link`` and ``X-Total-Count``; ``list_limit`` cuts the listing
        short while the totals still count every user."""
        api = make_app(users=[{"id": str(i)} for i in range(5)])
        with client_for(api) as client:
            by_offset = client.get("/users?offset=3&limit=2")
            by_cursor = client.get("/users?cursor=2&per_page=2").json()
            first = client.get("/users?per_page=2")
            api.list_limit = 2
            cut = client.get("/users?page=2&per_page=2")
        assert [u["id"] for u in by_offset.json()["users"]] == ["3", "4"]
        assert by_offset.json()["next"] is None and "link" not in by_offset.headers
        assert [u["id"] for u in by_cursor["users"]] == ["2", "3"]
        assert by_cursor["next_cursor"] == "4"
        assert first.headers["X-Total-Count"] == "5"
        assert first.links["next"]["url"].endswith("/users?page=2&per_page=2")
        assert cut.json()["users"] == []
        assert (cut.json()["total"], cut.headers["X-Total-Count"]) == (5, "5")

    def test_duplicates_applied_when_not_unique(self) -> None:
        """With ``unique=False`` a repeated create is applied again, and stats show it."""
        api = make_app(unique=False)
        with client_for(api) as client:
            for _ in range(2):
                assert client.post("/users", json={"id": "7"}).status_code == 201
        assert api.stats()["creates"] == {"7": 2}

    def test_validation(self) -> None:
        """Bad settings are refused up front."""
        with pytest.raises(ValueError, match="'rate'"):
            make_app(rate=0)
        with pytest.raises(ValueError, match="'fault_rate'"):
            make_app(fault_rate=1.5)
        with pytest.raises(ValueError, match="unknown"):
            make_app(faults=["teapot"])
        with pytest.raises(ValueError, match="unknown"):
            make_app().force_faults("teapot")


class TestRateLimit:
    def test_429_when_over_the_rate(self) -> None:
        """Calls beyond the rate get 429 with a whole-seconds Retry-After, and are counted."""
        api = make_app(rate=1.0)
        with client_for(api) as client:
            responses = [client.get("/users") for _ in range(5)]
        codes = [response.status_code for response in responses]
        assert codes[0] == 200 and 429 in codes
        assert {r.headers["Retry-After"] for r in responses if r.status_code == 429} == {"1"}
        assert api.stats()["throttled"] == codes.count(429)
        assert api.stats()["calls"] == 5

    def test_fractional_retry_after(self) -> None:
        """``fractional_retry_after`` sends the exact wait."""
        api = make_app(rate=1.0, fractional_retry_after=True)
        with client_for(api) as client:
            client.get("/users")
            response = client.get("/users")
        assert response.status_code == 429
        assert 0 < float(response.headers["Retry-After"]) <= 1


class TestFaults:
    def test_drop_after_apply(self, caplog: pytest.LogCaptureFixture) -> None:
        """A drop after the create surfaces as RemoteProtocolError, yet the user was created."""
        api = make_app()
        api.force_faults("drop_after")
        with client_for(api) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                client.post("/users", json={"id": "1"})
            assert client.get("/users/1").status_code == 200
            assert client.post("/users", json={"id": "1"}).status_code == 409
        assert api.stats()["creates"] == {"1": 1}
        assert api.stats()["faults"] == {"drop_after": 1}
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # drops are quiet

    @pytest.mark.anyio
    async def test_drop_with_async_client(self) -> None:
        """The async client sees the same RemoteProtocolError, on asyncio and trio."""
        api = make_app()
        api.force_faults("drop_after", "drop_before")
        with serve(api) as base_url:
            async with httpx.AsyncClient(base_url=base_url) as client:
                for user_id in ("1", "2"):
                    with pytest.raises(httpx.RemoteProtocolError):
                        await client.post("/users", json={"id": user_id})
                assert (await client.get("/users")).json()["total"] == 1
        assert api.stats()["creates"] == {"1": 1}

    def test_drop_before_apply(self) -> None:
        """A drop before processing changes nothing; the retry applies the create once."""
        api = make_app()
        with client_for(api) as client:
            assert client.post("/faults", json={"faults": ["drop_before"]}).status_code == 204
            with pytest.raises(httpx.RemoteProtocolError):
                client.post("/users", json={"id": "1"})
            assert client.get("/users/1").status_code == 404
            assert client.post("/users", json={"id": "1"}).status_code == 201
        assert api.stats()["creates"] == {"1": 1}

    def test_forced_status_faults(self) -> None:
        """Forced faults answer their status, in order, then the API works again."""
        api = make_app()
        api.force_faults("500", "502", "503", "504")
        with client_for(api) as client:
            codes = [client.get("/users").status_code for _ in range(5)]
            assert client.post("/faults", json={"faults": ["nope"]}).status_code == 422
        assert codes == [500, 502, 503, 504, 200]

    def test_fault_rate_is_seeded(self) -> None:
        """The same seed gives the same faults in the same order; about the rate requested."""
        outcomes = []
        for _ in range(2):
            api = make_app(fault_rate=0.5, seed=3, faults=("500", "503"))
            with client_for(api) as client:
                outcomes.append([client.get("/users").status_code for _ in range(40)])
        assert outcomes[0] == outcomes[1]
        assert 8 <= sum(code != 200 for code in outcomes[0]) <= 32


@pytest.mark.anyio
async def test_max_in_flight() -> None:
    """Concurrent calls are counted in flight while the simulated latency lasts."""
    api = make_app(latency=0.05)
    with serve(api) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(client.get, "/users")
    stats = api.stats()
    assert stats["calls"] == 4 and stats["in_flight"] == 0
    assert 2 <= stats["max_in_flight"] <= 4
