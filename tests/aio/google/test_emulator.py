"""The Google emulator refuses what Google refuses, as the discovery documents say."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.google_emulator import GoogleEmulator, make_key
from tests.http_server import serve

USERS = "/admin/directory/v1/users"


@pytest.fixture
def emulator() -> GoogleEmulator:
    return GoogleEmulator(domains=("example.org",), quota={"directory": 50, "classroom": 20})


@pytest.fixture
def client(emulator: GoogleEmulator) -> Iterator[httpx.Client]:
    with serve(emulator.app) as url, httpx.Client(base_url=url) as client:
        yield client


def _user(email: str = "ann.lee@example.org", **extra: Any) -> dict[str, Any]:
    return {
        "primaryEmail": email,
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "password": "correct-horse-battery",
        **extra,
    }


def _reason(response: httpx.Response) -> str:
    return str(response.json()["error"]["errors"][0]["reason"])


class TestValidation:
    def test_unknown_method_is_404(self, client: httpx.Client) -> None:
        """A path no method of the discovery document has is not found."""
        assert client.get("/admin/directory/v2/users").status_code == 404

    def test_unknown_query_parameter_is_400(self, client: httpx.Client) -> None:
        """A query parameter users.list does not declare is refused, named."""
        response = client.get(USERS, params={"customer": "my_customer", "pageSize": 10})
        assert response.status_code == 400
        assert 'Unknown name "pageSize"' in response.json()["error"]["message"]

    def test_wrong_integer_is_400(self, client: httpx.Client) -> None:
        """maxResults is an integer in the document."""
        response = client.get(USERS, params={"customer": "my_customer", "maxResults": "ten"})
        assert response.status_code == 400

    def test_enum_is_checked(self, client: httpx.Client) -> None:
        """projection is one of basic, custom, full."""
        bad = client.get(USERS, params={"customer": "my_customer", "projection": "all"})
        good = client.get(USERS, params={"customer": "my_customer", "projection": "full"})
        assert (bad.status_code, good.status_code) == (400, 200)

    def test_unknown_body_field_is_400(self, client: httpx.Client) -> None:
        """A field the User schema lacks, even nested, is refused."""
        top = client.post(USERS, json=_user(grade=7))
        nested = client.post(USERS, json=_user(name={"givenName": "A", "familyName": "B", "x": 1}))
        assert (top.status_code, nested.status_code) == (400, 400)
        assert 'Unknown name "grade"' in top.json()["error"]["message"]

    def test_wrong_body_type_is_400(self, client: httpx.Client) -> None:
        """suspended is a boolean, not a string."""
        assert client.post(USERS, json=_user(suspended="yes")).status_code == 400

    def test_a_valid_insert_then_a_duplicate(self, client: httpx.Client) -> None:
        """The second insert of one address is 409 'Entity already exists.'."""
        first = client.post(USERS, json=_user())
        again = client.post(USERS, json=_user())
        assert first.status_code == 200 and "password" not in first.json()
        assert again.status_code == 409
        assert again.json()["error"]["message"] == "Entity already exists."

    def test_characters_google_refuses(self, client: httpx.Client) -> None:
        """An address with a character Google does not allow is invalid input."""
        assert client.post(USERS, json=_user("zoë@example.org")).status_code == 400
        assert client.post(USERS, json=_user("ann@other.org")).status_code == 400

    def test_classroom_patch_needs_an_update_mask(self, client: httpx.Client) -> None:
        """courses.patch without updateMask is refused, as Classroom does."""
        created = client.post("/v1/courses", json={"name": "Math", "ownerId": "me", "id": "d:m"})
        assert created.status_code == 200
        assert client.patch("/v1/courses/d:m", json={"name": "M"}).status_code == 400
        ok = client.patch("/v1/courses/d:m", params={"updateMask": "name"}, json={"name": "M"})
        assert ok.json()["name"] == "M"


class TestQuota:
    def test_over_the_quota_is_403_rate_limit_exceeded(
        self, client: httpx.Client, emulator: GoogleEmulator
    ) -> None:
        """The 51st call in the window is refused with Google's rate-limit reason."""
        answers = [client.get(f"{USERS}/admin@example.org") for _ in range(51)]
        assert [a.status_code for a in answers[:50]] == [200] * 50
        assert answers[50].status_code == 403
        assert _reason(answers[50]) == "rateLimitExceeded"
        assert emulator.stats.throttled["directory"] == 1

    def test_the_throttle_switch(self, emulator: GoogleEmulator, client: httpx.Client) -> None:
        """throttle(): the calls after the next ``after`` answer 429 (Retry-After) or 403
        userRateLimitExceeded, as many as asked; then the API answers again."""
        params = {"customer": "my_customer"}
        emulator.throttle(times=1, status=429, reason=None, retry_after=2, after=1)
        assert client.get(USERS, params=params).status_code == 200
        too_many = client.get(USERS, params=params)
        assert too_many.status_code == 429 and too_many.headers["Retry-After"] == "2"
        assert too_many.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        emulator.throttle(times=1)
        limited = client.get(USERS, params=params)
        assert (limited.status_code, _reason(limited)) == (403, "userRateLimitExceeded")
        assert client.get(USERS, params=params).status_code == 200
        assert emulator.stats.throttled["directory"] == 2


class TestBatch:
    def _batch(self, client: httpx.Client, parts: list[str], path: str) -> httpx.Response:
        body = "".join(
            f"--b\r\nContent-Type: application/http\r\nContent-ID: <item{i}>\r\n\r\n{part}\r\n"
            for i, part in enumerate(parts)
        )
        return client.post(
            path,
            content=body + "--b--\r\n",
            headers={"Content-Type": "multipart/mixed; boundary=b"},
        )

    def test_parts_are_answered_one_by_one(
        self, client: httpx.Client, emulator: GoogleEmulator
    ) -> None:
        """Each part is validated and answered alone; each counts against the quota."""
        import json

        good = json.dumps(_user())
        parts = [
            f"POST {USERS}\r\nContent-Type: application/json\r\n\r\n{good}",
            f"POST {USERS}\r\nContent-Type: application/json\r\n\r\n{good}",
            f"GET {USERS}?bogus=1\r\n\r\n",
        ]
        response = self._batch(client, parts, "/batch/admin/directory_v1")
        assert response.status_code == 200
        text = response.text
        assert text.count("HTTP/1.1 200") == 1 and text.count("HTTP/1.1 409") == 1
        assert "HTTP/1.1 400" in text and "<response-item2>" in text
        assert emulator.stats.calls["directory"] == 2  # the invalid part is refused first

    def test_classroom_batches_hold_50(self, client: httpx.Client) -> None:
        """A Classroom batch of 51 calls is refused whole."""
        response = self._batch(client, ["GET /v1/courses\r\n\r\n"] * 51, "/batch/classroom/v1")
        assert response.status_code == 400


class TestToken:
    def test_only_assertions_signed_with_the_key_get_a_token(self) -> None:
        """A JWT signed by another key is refused; API calls need an issued token."""
        from google.auth import crypt, jwt

        info, public = make_key("http://127.0.0.1/token")
        other, _ = make_key("http://127.0.0.1/token")
        emulator = GoogleEmulator(domains=("example.org",), public_key=public)
        grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

        def assertion(key: dict[str, Any]) -> str:
            signer = crypt.RSASigner.from_service_account_info(key)
            claims = {"iss": key["client_email"], "scope": "s", "aud": "x", "iat": 0, "exp": 9e9}
            return str(jwt.encode(signer, claims).decode())

        with serve(emulator.app) as url, httpx.Client(base_url=url) as client:
            bad = client.post("/token", data={"grant_type": grant, "assertion": assertion(other)})
            good = client.post("/token", data={"grant_type": grant, "assertion": assertion(info)})
            token = good.json()["access_token"]
            anonymous = client.get(f"{USERS}/admin@example.org")
            signed = client.get(
                f"{USERS}/admin@example.org", headers={"Authorization": f"Bearer {token}"}
            )
        assert (bad.status_code, good.status_code) == (400, 200)
        assert (anonymous.status_code, signed.status_code) == (401, 200)
