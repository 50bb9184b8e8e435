"""OneRosterAPI against a OneRoster REST server on 127.0.0.1 serving real and generated
exports: the same rows as the CSV reader, both auth schemes, paging, and short reads."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from synctree import ReaderError, SyncTree
from synctree.aio.http import OAuth1Auth, OAuth2ClientCredentials
from synctree.aio.oneroster import OneRoster, OneRosterAPI
from tests.cli_runner import invoke
from tests.http_server import serve
from tests.oneroster_api_server import OneRosterServer
from tests.real_data import real_data

from .exports import PASSWORD, Export, write_config

pytestmark = pytest.mark.anyio

SUBBRANCHES = list(OneRoster.subbranches)

#: The real exports, and how they read (1.2 full writes its dates day-first).
REAL = {
    "catalyst-1p1-full.zip": {},
    "catalyst-1p1-minimal.zip": {},
    "catalyst-1p2-full.zip": {"date_order": "DMY"},
    "catalyst-1p2-small.zip": {},
    "oat-sa-1p1": {},
}


@contextmanager
def service(export: Path, **options: Any) -> Iterator[tuple[OneRosterServer, str]]:
    """The export served with the scheme its version's servers use: OAuth 1 for 1.1,
    OAuth 2 for 1.2 (unless ``auth`` says otherwise)."""
    server = OneRosterServer(export, **options)
    if "auth" not in options:
        server.auth = "oauth1" if server.version == "1.1" else "oauth2"
    with serve(server) as url:
        yield server, url


def credentials(server: OneRosterServer, url: str, **wrong: str) -> httpx.Auth:
    if server.auth == "oauth1":
        ((key, secret),) = server.consumers.items()
        return OAuth1Auth(key, wrong.get("secret", secret))
    return OAuth2ClientCredentials(
        f"{url}/oauth/token", server.client_id, wrong.get("secret", server.client_secret)
    )


def api(server: OneRosterServer, url: str, **options: Any) -> OneRosterAPI:
    options.setdefault("auth", credentials(server, url))
    options.setdefault("retries", 0)
    return OneRosterAPI(url, version=server.version, **options)  # type: ignore[arg-type]


async def load(names: list[str], reader: OneRosterAPI) -> SyncTree:
    """A one-branch tree of ``names``, loaded from the service."""
    tree = SyncTree(["source"], names)
    await tree.load(source={k: v for k, v in reader.readers().items() if k in names})
    return tree


async def both(export: Path, api_reader: OneRosterAPI, **csv_options: Any) -> SyncTree:
    tree = SyncTree(["csv", "api"], SUBBRANCHES)
    await tree.load(csv=OneRoster(export, **csv_options).readers(), api=api_reader.readers())
    return tree


def rows(tree: SyncTree, branch: str) -> dict[str, dict[str, dict[str, Any]]]:
    return {sub.name: {leaf.idnumber: leaf.to_dict() for leaf in sub} for sub in tree[branch]}


def assert_same(tree: SyncTree, *, coverage: bool = True) -> None:
    """Every subbranch holds the same rows (``_`` attributes too) on both branches."""
    csv_rows, api_rows = rows(tree, "csv"), rows(tree, "api")
    for name in SUBBRANCHES:
        csv_side, api_side = tree["csv"][name], tree["api"][name]
        if coverage:
            assert (csv_side.coverage, api_side.coverage) in (
                ("full", "full"),
                ("absent", "absent"),
            ), name
        if csv_side.coverage == "absent" and api_side.coverage == "absent":
            continue
        differences = {
            key: {
                attribute: (value, api_rows[name].get(key, {}).get(attribute))
                for attribute, value in row.items()
                if api_rows[name].get(key, {}).get(attribute) != value
            }
            for key, row in csv_rows[name].items()
        }
        assert api_rows[name] == csv_rows[name], (name, differences)
    assert list(tree["csv"] > tree["api"]) == []


class TestSameRowsAsTheCSVReader:
    @pytest.mark.parametrize("version", ["1.1", "1.2"])
    async def test_generated_export(self, tmp_path: Path, version: str) -> None:
        """A generated school (users of every role, 1.2 roles and user profiles): the
        REST reader gives exactly the CSV reader's rows, paged two at a time."""
        export = Export(version=version)
        if version == "1.2":
            export.profiles = [
                {
                    "sourcedId": "up-1",
                    "status": "active",
                    "userSourcedId": export.files["users.csv"][0]["sourcedId"],
                    "profileType": "lms",
                    "vendorId": "v1",
                    "credentialType": "password",
                    "username": "ann.lms",
                    "password": "pr0file",
                }
            ]
        folder = export.write(tmp_path / "export")
        with service(folder) as (server, url):
            tree = await both(folder, api(server, url, page_size=2))
        assert_same(tree)
        assert sum(len(sub) for sub in tree["api"]) > 10
        assert PASSWORD not in str(rows(tree, "api"))  # dropped, as from the CSV
        assert server.calls["users"] >= 3  # paged, and listed once for three subbranches
        assert server.calls["users"] == -(-len(server.collections["users"]) // 2)

    @pytest.mark.parametrize("name", sorted(REAL))
    async def test_real_export(self, name: str) -> None:
        """Each real export, served as the REST binding: the same tree as from its CSV."""
        export = real_data("oneroster", name)
        options = REAL[name]
        with service(export, max_limit=3) as (server, url):
            tree = await both(export, api(server, url, page_size=5, **options), **options)
        delta = name == "catalyst-1p2-small.zip"  # a delta export: the service lists all
        assert_same(tree, coverage=not delta)


class TestAuth:
    async def test_oauth1_signed_requests(self, tmp_path: Path) -> None:
        """A 1.1 service checking OAuth 1.0a signatures (oauthlib): read whole; a wrong
        secret is HTTP 401 naming the URL and never the secret."""
        folder = Export().write(tmp_path / "export")
        with service(folder, auth="oauth1") as (server, url):
            tree = await load(["students", "staff"], api(server, url))
            assert len(tree.source.students) > 0
            bad = api(server, url, auth=credentials(server, url, secret="not-it"))
            with pytest.raises(ReaderError, match="HTTP 401") as caught:
                await load(["students"], bad)
        assert f"{url}/ims/oneroster/v1p1/users" in str(caught.value)
        assert "not-it" not in str(caught.value)

    async def test_oauth2_one_token(self, tmp_path: Path) -> None:
        """A 1.2 service wanting OAuth 2 tokens: every collection on one token; a wrong
        secret is the token endpoint's refusal."""
        folder = Export(version="1.2").write(tmp_path / "export")
        with service(folder, auth="oauth2") as (server, url):
            tree = await load(SUBBRANCHES, api(server, url, page_size=3))
            assert server.calls["token"] == 1
            assert len(tree.source.enrollments) > 0
            bad = api(server, url, auth=credentials(server, url, secret="not-it"))
            with pytest.raises(ReaderError, match="invalid_client") as caught:
                await load(["orgs"], bad)
        assert "not-it" not in str(caught.value)


class TestPaging:
    async def test_limit_offset_and_sort(self, tmp_path: Path) -> None:
        """Pages ask ``limit``/``offset`` (advancing by what came, as the server caps
        ``limit``) and a stable ``sort``."""
        folder = Export().write(tmp_path / "export")
        with service(folder, auth=None, max_limit=2) as (server, url):
            tree = await load(["orgs"], api(server, url, auth=None, page_size=10))
        assert len(tree.source.orgs) == 3
        assert server.requests == [
            {"sort": "sourcedId", "orderBy": "asc", "offset": "0", "limit": "10"},
            {"sort": "sourcedId", "orderBy": "asc", "offset": "2", "limit": "10"},
        ]

    async def test_without_a_total(self, tmp_path: Path) -> None:
        """A server that sends no ``X-Total-Count`` is paged to its first short page."""
        folder = Export().write(tmp_path / "export")
        with service(folder, auth=None) as (server, url):
            server.send_total = False
            tree = await load(["students"], api(server, url, auth=None, page_size=2))
        users = server.collections["users"]
        students = [u for u in users if u["role"] == "student" and u["status"] != "tobedeleted"]
        assert len(tree.source.students) == len(students)

    async def test_unknown_collection_is_absent(self, tmp_path: Path) -> None:
        """A collection the server answers 404 for is absent: left out, with a note."""
        export = Export()
        del export.files["demographics.csv"]
        folder = export.write(tmp_path / "export")
        with service(folder, auth=None) as (server, url):
            tree = await load(["demographics", "orgs"], api(server, url, auth=None))
        assert tree.source.demographics.coverage == "absent"
        assert "HTTP 404" in tree.source.demographics.notes[0]
        assert tree.source.orgs.coverage == "full"


class TestBadRecords:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"orgs": [{"name": "x"}]}, "line 1, field 'sourcedId': the record has no sourcedId"),
            ({"orgs": ["x"]}, "line 1: a record is not an object: str"),
            ({"organisations": []}, "no 'orgs' in the body"),
            (
                {"orgs": [{"sourcedId": "o1", "name": "x", "type": "school"}, {"sourcedId": "o1"}]},
                "line 2, field 'sourcedId': source orgs 'o1': duplicate key",
            ),
        ],
    )
    async def test_named_by_url_and_number(self, body: Any, message: str) -> None:
        """A record the reader cannot use fails the load naming the URL and its number;
        through a client the caller made (its transport)."""

        def handler(request: httpx.Request) -> httpx.Response:
            total = str(len(next(iter(body.values()))))
            return httpx.Response(200, json=body, headers={"X-Total-Count": total})

        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url="https://sis.test") as client:
            reader = OneRosterAPI(client, version="1.1", retries=0)
            with pytest.raises(ReaderError) as caught:
                await load(["orgs"], reader)
        assert "https://sis.test/ims/oneroster/v1p1/orgs" in str(caught.value)
        assert message in str(caught.value)


class TestSecretsInURLs:
    async def test_user_info_never_shown(self, tmp_path: Path) -> None:
        """A URL with user info: errors and notes name the URL without the password."""
        export = Export()
        export.files["enrollments.csv"][0]["beginDate"] = "soon"
        export.files["enrollments.csv"][1]["userSourcedId"] = "nobody"
        folder = export.write(tmp_path / "export")
        with service(folder, auth=None) as (server, url):
            secret_url = url.replace("http://", "http://sync:hunter2pw@")
            reader = OneRosterAPI(secret_url, version="1.1", retries=0, date_order="DMY")
            with pytest.raises(ReaderError) as caught:
                await load(["enrollments"], reader)
            message = str(caught.value)
            assert "field 'beginDate'" in message and "hunter2pw" not in message
            export.files["enrollments.csv"][0]["beginDate"] = ""
            export.write(tmp_path / "export")
        with service(folder, auth=None) as (server, url):
            secret_url = url.replace("http://", "http://sync:hunter2pw@")
            tree = await load(["enrollments"], OneRosterAPI(secret_url, version="1.1"))
        notes = tree.source.enrollments.notes
        assert any("'nobody' is not in the service" in note for note in notes), notes
        assert "hunter2pw" not in str(notes) and "hunter2pw" not in repr(tree)


class TestShortRead:
    @pytest.mark.parametrize("version", ["1.1", "1.2"])
    async def test_short_listing_fails_the_load(self, tmp_path: Path, version: str) -> None:
        """The server leaves records out while X-Total-Count counts them all: the load
        fails naming the URL and both counts; the tree never sees the short list."""
        folder = Export(version=version).write(tmp_path / "export")
        with service(folder) as (server, url):
            server.drop("users", 1)
            total = len(server.collections["users"])
            with pytest.raises(ReaderError) as caught:
                await load(["students", "staff"], api(server, url, page_size=2))
        message = str(caught.value)
        assert f"the listing ended with {total - 1} items, but it announced {total}" in message
        assert "/users" in message and server.client_secret not in message


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="'version'"):
        OneRosterAPI("https://x.test", version="1.0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'page_size'"):
        OneRosterAPI("https://x.test", version="1.1", page_size=0)
    with pytest.raises(ValueError, match="'auth'"):
        OneRosterAPI("https://x.test", version="1.1", auth="token")  # type: ignore[arg-type]
    api = OneRosterAPI("https://u:pw@x.test/ims/oneroster/v1p1/", version="1.1")
    assert api.url == "https://u:pw@x.test/ims/oneroster/v1p1"
    assert "pw" not in repr(api) and "pw" not in repr(api.readers()["students"])


def service_config(folder: Path, export: Path, url: str, version: str, auth: str) -> Path:
    """``exports.write_config``'s sync, the source being the service instead of the files."""
    config = write_config(folder, export)
    text = config.read_text(encoding="utf-8").replace(
        f'path = "{export}"', f'url = "{url}"\nversion = "{version}"\npage_size = 3\nauth = {auth}'
    )
    config.write_text(text, encoding="utf-8")
    return config


def counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type = 'table'")]
        return {t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


class TestConfig:
    @pytest.mark.parametrize("version", ["1.1", "1.2"])
    def test_plan_and_run_from_a_config(self, tmp_path: Path, version: str) -> None:
        """``reader = "oneroster"`` with ``url`` and ``${ENV}`` credentials, no code: run
        fills SQLite with what the CSV export would, plan again is empty; then a short
        listing makes plan and run exit 2 naming the URL, and nothing is written."""
        folder = Export(version=version).write(tmp_path / "export")
        secret = "s3cr3t-" + version
        if version == "1.1":
            options: dict[str, Any] = {"auth": "oauth1", "consumer_secret": secret}
            auth = (
                '{ type = "oauth1", consumer_key = "${OR_KEY}", consumer_secret = "${OR_SECRET}" }'
            )
            env = {"OR_KEY": "or-consumer", "OR_SECRET": secret}
        else:
            options = {"auth": "oauth2", "client_secret": secret}
            auth = None
            env = {"OR_ID": "or-client", "OR_SECRET": secret}
        with service(folder, **options) as (server, url):
            if auth is None:
                auth = (
                    f'{{ type = "oauth2", token_url = "{url}/oauth/token", '
                    'client_id = "${OR_ID}", client_secret = "${OR_SECRET}" }'
                )
            config = str(service_config(tmp_path, folder, url, version, auth))
            code, out = invoke("run", config, env=env)
            assert code == 0, out
            loaded = counts(tmp_path / "school.db")
            assert loaded["students"] > 0 and loaded["enrollments"] > 0
            code, out = invoke("plan", config, "--json", env=env)
            assert (code, json.loads(out)["actions"]) == (0, [])

            server.drop("enrollments", 2)
            total = len(server.collections["enrollments"])
            for command in ("plan", "run"):
                code, out = invoke(command, config, env=env)
                flat = out.replace("\n", "")
                assert code == 2, out
                assert f"the listing ended with {total - 2} items, but it announced {total}" in flat
                assert "/enrollments" in flat
                assert secret not in out
        assert counts(tmp_path / "school.db") == loaded

        # the same sync from the CSV files: the same tables
        csv_folder = tmp_path / "from-csv"
        csv_folder.mkdir()
        code, out = invoke("run", str(write_config(csv_folder, folder)), env={})
        assert code == 0, out
        assert counts(csv_folder / "school.db") == loaded

    def test_path_and_url_together(self, tmp_path: Path) -> None:
        folder = Export().write(tmp_path / "export")
        config = service_config(
            tmp_path, folder, "http://127.0.0.1:9", "1.1", '{ type = "bearer", token = "x" }'
        )
        text = config.read_text(encoding="utf-8").replace(
            "[source]\n", f'[source]\npath = "{folder}"\n'
        )
        config.write_text(text, encoding="utf-8")
        code, out = invoke("plan", str(config), env={})
        assert code == 2 and "not both" in out
