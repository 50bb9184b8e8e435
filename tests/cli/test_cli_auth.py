"""Credentials from a config: ``auth = {...}`` tables through the ``synctree`` command."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from synctree._cli._config import Config
from tests.cli_runner import invoke
from tests.http_server import serve
from tests.scim_server import scim_server

__all__ = ["scim_server"]  # the fixture, used by name

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def private(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text + "\n")
    path.chmod(mode)


def write_users(folder: Path, names: list[str]) -> None:
    lines = ["idnumber,username,first,last,email"]
    for number, name in enumerate(names, 1):
        login = f"{name.lower()}{number}"
        lines.append(f"{number},{login},{name},Doe,{login}@school.test")
    (folder / "users.csv").write_text("\n".join(lines) + "\n")


def scim_config(folder: Path, url: str, reader_auth: str, template_auth: str) -> Path:
    config = folder / "sync.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [sync]
            subbranches = ["users"]

            [source.users]
            reader = "csv"
            path = "users.csv"
            key = "idnumber"

            [destination.users]
            reader = "scim"
            client = "{url}"
            resource = "Users"
            auth = {reader_auth}

            [template]
            use = "scim"
            client = "{url}"
            resources = {{ users = "Users" }}
            auth = {template_auth}
            """
        )
    )
    return config


class TestSCIMFromConfig:
    def test_bearer_token_end_to_end(self, scim_server: tuple[str, str], tmp_path: Path) -> None:
        """A config with no code syncs into a real scim2-server that demands a bearer
        token (``${VAR}`` for the reader, a token file for the template); then converges.
        A wrong token fails the read (exit 2), and no token is ever printed."""
        url, token = scim_server
        write_users(tmp_path, ["Ann", "Bob", "Cid"])
        private(tmp_path / "token.txt", token)
        config = str(
            scim_config(
                tmp_path,
                url,
                '{ type = "bearer", token = "${SCIM_TOKEN}" }',
                '{ type = "bearer", token_file = "token.txt" }',
            )
        )
        env = {"SCIM_TOKEN": token}
        code, out = invoke("run", config, env=env)
        assert code == 0, out
        listed = httpx.get(f"{url}/Users", headers={"Authorization": f"Bearer {token}"}).json()
        assert sorted(user["userName"] for user in listed["Resources"]) == ["ann1", "bob2", "cid3"]
        code, out = invoke("plan", config, "--json", env=env)
        assert (code, json.loads(out)["actions"]) == (0, [])
        code, out = invoke("plan", config, env={"SCIM_TOKEN": "wrong-" + token})
        assert code == 2 and "HTTP 401" in out.replace("\n", "")
        assert token not in out

    def test_secrets_echoed_by_a_server_are_masked(self, tmp_path: Path) -> None:
        """A server that quotes the request's Authorization in its error: the command's
        output shows ``***`` for the token from ``${VAR}`` and for the one from a file."""
        seen: list[str] = []

        async def users(request: Request) -> JSONResponse:
            seen.append(request.headers.get("authorization", ""))
            if request.method == "GET":
                return JSONResponse({"schemas": [], "totalResults": 0, "Resources": []})
            detail = f"rejected credentials {request.headers.get('authorization')}"
            return JSONResponse(
                {"schemas": [ERROR], "status": "400", "detail": detail}, status_code=400
            )

        app = Starlette(routes=[Route("/v2/Users", users, methods=["GET", "POST"])])
        write_users(tmp_path, ["Ann"])
        private(tmp_path / "token.txt", "file-token-4b1d")
        with serve(app) as base:
            config = scim_config(
                tmp_path,
                f"{base}/v2",
                '{ type = "headers", headers = { X-Api-Key = "${API_KEY}" } }',
                '{ type = "bearer", token_file = "token.txt" }',
            )
            code, out = invoke("run", str(config), env={"API_KEY": "env-key-77aa"})
        assert "Bearer file-token-4b1d" in seen  # the server did get it
        assert code == 1, out
        assert "rejected credentials" in out and "***" in out
        assert "file-token-4b1d" not in out and "env-key-77aa" not in out
        secrets = Config(config, environ={"API_KEY": "env-key-77aa"}).secrets
        assert secrets("file-token-4b1d env-key-77aa") == "*** ***"


class TestBadAuth:
    def config(self, folder: Path, auth: str) -> str:
        write_users(folder, ["Ann"])
        return str(
            scim_config(folder, "http://127.0.0.1:9/v2", auth, '{ type = "bearer", token = "x" }')
        )

    def test_world_readable_token_file(self, tmp_path: Path) -> None:
        """Exit 2 naming the table, the key and the file, and how to fix it."""
        private(tmp_path / "token.txt", "t0ken-4b1d", mode=0o644)
        config = self.config(tmp_path, '{ type = "bearer", token_file = "token.txt" }')
        code, out = invoke("plan", config)
        flat = out.replace("\n", "")
        assert code == 2, out
        assert "[destination.users]" in flat and "'auth.token_file'" in flat
        assert f"chmod 600 {tmp_path / 'token.txt'}" in flat
        assert "t0ken-4b1d" not in out

    def test_unknown_key(self, tmp_path: Path) -> None:
        config = self.config(tmp_path, '{ type = "bearer", tokenfile = "token.txt" }')
        code, out = invoke("plan", config)
        flat = out.replace("\n", "")
        assert code == 2, out
        assert "'auth.tokenfile'" in flat and "accepted: type, token, token_file" in flat
