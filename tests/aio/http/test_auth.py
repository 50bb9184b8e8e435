"""Credentials: every scheme against a real server on 127.0.0.1 that checks them on its own
(oauthlib verifies the OAuth 1 signatures, cryptography the Google assertions)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from synctree import ConfigError
from synctree.aio import classify
from synctree.aio.http import (
    AuthError,
    BearerAuth,
    GoogleServiceAccount,
    HeaderAuth,
    HTTPReader,
    OAuth1Auth,
    OAuth2ClientCredentials,
    Offset,
    PageError,
    auth_from_config,
)
from tests.auth_server import AuthServer
from tests.http_server import serve

pytestmark = pytest.mark.anyio

SECRETS = ("static-token", "p@ss:word", "key-123", "s3cret/+=", "consumer secret&/~")


@pytest.fixture
def server() -> Iterator[tuple[AuthServer, str]]:
    api = AuthServer()
    with serve(api) as url:
        api.base_url = url
        yield api, url


def reader(url: str, scheme: str, auth: httpx.Auth | None, **options: Any) -> HTTPReader:
    options.setdefault("retries", 0)
    pagination = Offset(limit=10, total_header="X-Total-Count")
    return HTTPReader(
        url, f"/{scheme}/items", items="items", pagination=pagination, auth=auth, **options
    )


async def ids(listing: HTTPReader) -> list[str]:
    return [row["idnumber"] async for row in listing]


def no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


class TestStatic:
    async def test_bearer(self, server: tuple[AuthServer, str]) -> None:
        """A bearer token reads the whole listing; a wrong one fails with HTTP 401."""
        api, url = server
        assert await ids(reader(url, "bearer", BearerAuth("static-token"))) == [
            str(i) for i in range(25)
        ]
        with pytest.raises(PageError, match="HTTP 401") as caught:
            await ids(reader(url, "bearer", BearerAuth("wrong-token")))
        assert "wrong-token" not in str(caught.value)
        assert "static-token" not in repr(BearerAuth("static-token"))

    async def test_basic_and_headers(self, server: tuple[AuthServer, str]) -> None:
        """Basic auth and a static API-key header, each read whole."""
        api, url = server
        assert len(await ids(reader(url, "basic", httpx.BasicAuth("sync", "p@ss:word")))) == 25
        headers = HeaderAuth({"X-Api-Key": "key-123"})
        assert len(await ids(reader(url, "headers", headers))) == 25
        assert "key-123" not in repr(headers)
        with pytest.raises(PageError, match="HTTP 401"):
            await ids(reader(url, "headers", HeaderAuth({"X-Api-Key": "nope"})))

    async def test_auth_on_a_given_client(self, server: tuple[AuthServer, str]) -> None:
        """``auth=`` applies to a client the caller made, without changing the client."""
        api, url = server
        async with httpx.AsyncClient(base_url=url) as client:
            listing = HTTPReader(
                client, "/bearer/items", items="items", auth=BearerAuth("static-token")
            )
            assert len(await ids(listing)) == 10  # one page: no pagination
            assert (await client.get("/bearer/items")).status_code == 401


class TestOAuth1:
    async def test_signed_listing_verified_by_oauthlib(
        self, server: tuple[AuthServer, str]
    ) -> None:
        """Every page (offset, limit and extra query parameters with characters RFC 5849
        encodes) carries a signature oauthlib accepts; a wrong secret is refused."""
        api, url = server
        auth = OAuth1Auth("consumer-key", "consumer secret&/~")
        params = {"filter": "name='a b'+c", "fields": "ü,~*!"}
        assert len(await ids(reader(url, "oauth1", auth, params=params))) == 25
        assert api.calls["oauth1"] == 3 and api.oauth1_failures == []
        bad = OAuth1Auth("consumer-key", "other secret")
        with pytest.raises(PageError, match="HTTP 401"):
            await ids(reader(url, "oauth1", bad))
        assert api.oauth1_failures == ["bad signature"]
        assert "secret" not in repr(auth)

    async def test_hmac_sha256(self, server: tuple[AuthServer, str]) -> None:
        api, url = server
        auth = OAuth1Auth("consumer-key", "consumer secret&/~", signature_method="HMAC-SHA256")
        assert len(await ids(reader(url, "oauth1", auth))) == 25

    def test_form_body_is_signed_sync(self, server: tuple[AuthServer, str]) -> None:
        """A form body is in the signature (through the sync flow of ``httpx.Client``)."""
        api, url = server
        auth = OAuth1Auth("consumer-key", "consumer secret&/~", realm="roster")
        with httpx.Client(base_url=url, auth=auth) as client:
            response = client.post("/oauth1/echo?x=1", data={"name": "Zoë & co", "n": "2"})
        assert response.status_code == 200, response.text
        assert response.json() == {"name": "Zoë & co", "n": "2"}

    def test_nonce_and_timestamp(self) -> None:
        """Each signature has a new nonce; the clock gives the timestamp."""
        auth = OAuth1Auth("k", "s", clock=lambda: 1700000000.5)
        request = httpx.Request("GET", "https://x.test/a")
        one, two = auth.authorization(request), auth.authorization(request)
        assert 'oauth_timestamp="1700000000"' in one and one != two


def oauth2(url: str, **options: Any) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(f"{url}/oauth2/token", "client", "s3cret/+=", **options)


class TestOAuth2:
    @pytest.mark.parametrize("client_auth", ["basic", "body"])
    async def test_one_token_for_the_listing(
        self, server: tuple[AuthServer, str], client_auth: Any
    ) -> None:
        """Three pages take one token, fetched with the client's credentials and scopes."""
        api, url = server
        auth = oauth2(
            url, scopes=["roster-core.readonly", "roster.readonly"], client_auth=client_auth
        )
        assert len(await ids(reader(url, "oauth2", auth))) == 25
        assert (api.calls["oauth2_token"], api.calls["oauth2"]) == (1, 3)
        assert api.token_auth == [client_auth]
        assert api.token_forms[0]["scope"] == "roster-core.readonly roster.readonly"
        assert ("client_secret" in api.token_forms[0]) is (client_auth == "body")
        assert "s3cret" not in repr(auth)

    async def test_refreshed_before_expiry(self, server: tuple[AuthServer, str]) -> None:
        """A token of 120 s is used for 60 s (the margin), then a new one is fetched."""
        api, url = server
        api.expires_in = 120
        now = [1000.0]
        auth = oauth2(url, clock=lambda: now[0])
        async with httpx.AsyncClient(base_url=url, auth=auth) as client:
            for at, token_calls in ((1000, 1), (1059, 1), (1060.5, 2), (1119, 2), (1121, 3)):
                now[0] = at
                assert (await client.get("/oauth2/items")).status_code == 200
                assert api.calls["oauth2_token"] == token_calls, at
        assert api.issued == ["t1", "t2", "t3"]

    async def test_refreshed_once_on_401(self, server: tuple[AuthServer, str]) -> None:
        """A revoked token gets a 401: one new token, the request again, and it passes;
        when the new token is refused too, that 401 stands (no loop)."""
        api, url = server
        auth = oauth2(url)
        async with httpx.AsyncClient(base_url=url, auth=auth) as client:
            assert (await client.get("/oauth2/items")).status_code == 200
            api.revoked.add("t1")
            assert (await client.get("/oauth2/items")).status_code == 200
            assert (api.calls["oauth2_token"], api.calls["oauth2"]) == (2, 3)
            api.revoked |= {"t2", "t3"}
            assert (await client.get("/oauth2/items")).status_code == 401
            assert (api.calls["oauth2_token"], api.calls["oauth2"]) == (3, 5)

    async def test_concurrent_requests_share_one_fetch(
        self, server: tuple[AuthServer, str]
    ) -> None:
        """Ten requests at once, the token endpoint slow: one token call."""
        api, url = server
        api.token_delay = 0.2
        auth = oauth2(url)
        statuses: list[int] = []
        async with httpx.AsyncClient(base_url=url, auth=auth) as client:

            async def get() -> None:
                statuses.append((await client.get("/oauth2/items")).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(get)
        assert statuses == [200] * 10
        assert api.calls["oauth2_token"] == 1

    async def test_refused_credentials(self, server: tuple[AuthServer, str]) -> None:
        """A wrong secret: an AuthError naming the endpoint and the OAuth error, without
        the secret; the engine treats it as fatal, not to retry."""
        api, url = server
        auth = OAuth2ClientCredentials(f"{url}/oauth2/token", "client", "wrong-secret")
        async with httpx.AsyncClient(base_url=url, auth=auth) as client:
            with pytest.raises(AuthError) as caught:
                await client.get("/oauth2/items")
        error = caught.value
        assert error.status == 401 and error.url == f"{url}/oauth2/token"
        assert "invalid_client: unknown client" in str(error)
        assert "wrong-secret" not in str(error) and "wrong-secret" not in repr(error)
        verdict = classify(error)
        assert (verdict.retryable, verdict.fatal) == (False, True)
        with pytest.raises(PageError, match="invalid_client"):  # through the reader
            await ids(reader(url, "oauth2", auth))

    async def test_token_endpoint_unavailable_is_retried(self) -> None:
        """A 503 from the token endpoint is retryable; the next attempt gets the token."""
        answers = iter([503, 200])

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/token":
                status = next(answers)
                if status == 503:
                    return httpx.Response(503)
                return httpx.Response(200, json={"access_token": "a", "expires_in": 60})
            assert request.headers["authorization"] == "Bearer a"
            return httpx.Response(200, json=[{"id": 1}])

        auth = OAuth2ClientCredentials("https://api.test/token", "c", "s")
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(base_url="https://api.test", transport=transport) as client:
            with pytest.raises(AuthError) as caught:
                await client.get("/x", auth=auth)
            assert classify(caught.value).retryable
            listing = HTTPReader(client, "/x", auth=auth, retries=2, sleep=no_sleep)
            assert await ids(listing) == ["1"]

    def test_sync_client(self, server: tuple[AuthServer, str]) -> None:
        """The sync flow (``httpx.Client``) caches and refreshes alike."""
        api, url = server
        auth = oauth2(url)
        with httpx.Client(base_url=url, auth=auth) as client:
            assert client.get("/oauth2/items").status_code == 200
            api.revoked.add("t1")
            assert client.get("/oauth2/items").status_code == 200
        assert api.calls["oauth2_token"] == 2

    @pytest.mark.parametrize(
        "body",
        [{"token_type": "bearer"}, {"access_token": "a", "token_type": "mac"}, ["a"]],
    )
    async def test_not_a_token(self, body: Any) -> None:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(AuthError, match="token"):
                await client.get(
                    "https://api.test/x",
                    auth=OAuth2ClientCredentials("https://api.test/t", "c", "s"),
                )


async def no_sleep(delay: float) -> None:
    await anyio.lowlevel.checkpoint()


# -- Google service accounts ---------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_file(folder: Path, key: Any, token_uri: str, mode: int = 0o600) -> Path:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "kid-1",
        "private_key": pem,
        "client_email": "sync@project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path = folder / "sa.json"
    path.write_text(json.dumps(info))
    path.chmod(mode)
    return path


class TestGoogle:
    async def test_delegated_token(self, rsa_key: Any, tmp_path: Path) -> None:
        """The assertion is signed with the key (checked with its public half), names the
        admin to act as and the scopes; the token it buys is cached."""
        api = AuthServer(google_key=rsa_key.public_key())
        with serve(api) as url:
            api.base_url = url
            path = key_file(tmp_path, rsa_key, f"{url}/google/token")
            scopes = ["https://www.googleapis.com/auth/admin.directory.user"]
            auth = GoogleServiceAccount(path, subject="admin@school.example", scopes=scopes)
            assert len(await ids(reader(url, "google", auth))) == 25
            assert api.calls["google_token"] == 1
            assert api.claims["sub"] == "admin@school.example"
            assert api.claims["scope"] == scopes[0]
            assert api.claims["exp"] - api.claims["iat"] == 3600
            assert "PRIVATE" not in repr(auth)

    async def test_wrong_key_is_refused(self, rsa_key: Any, tmp_path: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        api = AuthServer(google_key=other.public_key())
        with serve(api) as url:
            api.base_url = url
            path = key_file(tmp_path, rsa_key, f"{url}/google/token")
            auth = GoogleServiceAccount(path, subject="a@b.c", scopes=["s"])
            with pytest.raises(PageError, match="invalid_grant: bad signature"):
                await ids(reader(url, "google", auth))

    def test_not_a_key(self, tmp_path: Path) -> None:
        path = tmp_path / "sa.json"
        path.write_text('{"type": "authorized_user", "private_key": "SECRETPEM"}')
        with pytest.raises(ValueError, match="not a service account key") as caught:
            GoogleServiceAccount(path, scopes=["s"])
        assert "SECRETPEM" not in str(caught.value)
        path.write_text("SECRETPEM, not JSON")
        with pytest.raises(ValueError, match="is not JSON") as caught:
            GoogleServiceAccount(path, scopes=["s"])
        assert "SECRETPEM" not in str(caught.value)


# -- from a config -------------------------------------------------------------------------


def from_toml(text: str, folder: Path, secrets: list[str] | None = None) -> httpx.Auth:
    table = tomllib.loads(f"auth = {text}")["auth"]
    return auth_from_config(table, folder, secret=None if secrets is None else secrets.append)


def private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


class TestFromConfig:
    async def test_each_type_works(
        self, server: tuple[AuthServer, str], tmp_path: Path, rsa_key: Any
    ) -> None:
        """Each ``type`` of table makes credentials the server accepts."""
        api, url = server
        api.google_key = rsa_key.public_key()
        key_file(tmp_path, rsa_key, f"{url}/google/token")
        private(tmp_path / "token.txt", "static-token")
        tables = {
            "bearer": '{ type = "bearer", token_file = "token.txt" }',
            "basic": '{ type = "basic", username = "sync", password = "p@ss:word" }',
            "headers": '{ type = "headers", headers = { X-Api-Key = "key-123" } }',
            "oauth2": f'{{ type = "oauth2", token_url = "{url}/oauth2/token", '
            'client_id = "client", client_secret = "s3cret/+=", scopes = ["a", "b"], '
            'client_auth = "body" }',
            "oauth1": '{ type = "oauth1", consumer_key = "consumer-key", '
            'consumer_secret = "consumer secret&/~" }',
            "google": '{ type = "google_service_account", key_file = "sa.json", '
            'subject = "admin@x.example", scopes = ["s"] }',
        }
        for scheme, text in tables.items():
            auth = from_toml(text, tmp_path)
            assert len(await ids(reader(url, scheme, auth))) == 25, scheme
            no_secrets(repr(auth))

    def test_file_secrets_are_handed_to_the_masking(self, tmp_path: Path) -> None:
        private(tmp_path / "secret.txt", "file-held-secret")
        seen: list[str] = []
        from_toml(
            '{ type = "oauth2", token_url = "https://x/t", client_id = "c", '
            'client_secret_file = "secret.txt" }',
            tmp_path,
            seen,
        )
        assert seen == ["file-held-secret"]

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
    def test_readable_file_is_refused(self, tmp_path: Path, mode: int) -> None:
        """A secret file its group or others may read is refused, naming it and the fix."""
        path = private(tmp_path / "token.txt", "t0ken-value", mode)
        with pytest.raises(ConfigError) as caught:
            from_toml('{ type = "bearer", token_file = "token.txt" }', tmp_path)
        message = str(caught.value)
        assert caught.value.key == "token_file"
        assert str(path) in message and f"chmod 600 {path}" in message
        assert "t0ken-value" not in message

    @pytest.mark.parametrize(
        ("text", "key", "message"),
        [
            ('{ type = "bearer", tokn = "x" }', "tokn", "accepted: type, token, token_file"),
            ('{ type = "kerberos" }', "type", "unknown auth type 'kerberos' (known: 'bearer'"),
            ('{ token = "x" }', "type", "missing key"),
            ('{ type = "basic", username = "u" }', "password", "missing key (or password_file)"),
            ('{ type = "bearer", token = "x", token_file = "f" }', "token_file", "not both"),
            ('{ type = "bearer", token_file = "absent.txt" }', "token_file", "does not exist"),
            (
                '{ type = "oauth2", token_url = "u", client_id = "c", client_secret = "s", '
                'client_auth = "jwt" }',
                "client_auth",
                "must be 'basic' or 'body'",
            ),
            ('{ type = "bearer", token = 5 }', "token", "must be a string"),
        ],
    )
    def test_bad_tables(self, tmp_path: Path, text: str, key: str, message: str) -> None:
        with pytest.raises(ConfigError) as caught:
            from_toml(text, tmp_path)
        assert caught.value.key == key
        assert message in str(caught.value)

    def test_world_readable_key_file(self, tmp_path: Path, rsa_key: Any) -> None:
        key_file(tmp_path, rsa_key, "https://oauth2.googleapis.com/token", mode=0o644)
        with pytest.raises(ConfigError, match="chmod 600") as caught:
            from_toml(
                '{ type = "google_service_account", key_file = "sa.json", scopes = ["s"] }',
                tmp_path,
            )
        assert "PRIVATE KEY" not in str(caught.value)
