"""Sync students into a Moodle-style web service with a custom AsyncTemplate.

Run it: ``python examples/moodle/sync.py``.  It serves a tiny fake Moodle on 127.0.0.1
(the web service functions ``core_user_get_users``, ``core_user_create_users``,
``core_user_update_users`` and ``core_user_delete_users``, called as form posts to
``/webservice/rest/server.php``), syncs ``students.csv`` into it, prints the report, and
plans again to show that nothing is left to do.

What it shows:

- Moodle reports errors in a JSON body with HTTP 200; the template turns a transient one
  ("database busy") into ``raise Retry(...)`` and the others into an exception.
- ``@batch(50)`` on ``new_students``: ``core_user_create_users`` takes a list of users.
- ``update_students`` gets every changed attribute of one student (``action.changes``):
  one ``core_user_update_users`` call per student, not one per attribute.
- ``HTTPReader`` reads the destination; the ``wstoken`` never shows in errors.

The token comes from the ``MOODLE_TOKEN`` environment variable, as a real one would.
"""

from __future__ import annotations

import csv
import os
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from synctree import Action, Report, SyncTree
from synctree.aio import AsyncTemplate, Retry, batch
from synctree.aio.http import HTTPReader

HERE = Path(__file__).parent
ENDPOINT = "/webservice/rest/server.php"
TOKEN = os.environ.get("MOODLE_TOKEN", "demo-token")

#: synctree attribute -> Moodle user field.
FIELDS = {"username": "username", "first": "firstname", "last": "lastname", "email": "email"}


# -- the fake Moodle -----------------------------------------------------------------------


class MoodleError(Exception):
    """An error Moodle reports in the body: ``{"exception", "errorcode", "message"}``."""

    def __init__(self, errorcode: str, message: str, exception: str = "moodle_exception"):
        super().__init__(message)
        self.body = {"exception": exception, "errorcode": errorcode, "message": message}


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """PHP-style form fields (``users[0][username]=ann``) as nested dicts and lists."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        head, _, rest = name.partition("[")
        keys = [head, *(rest[:-1].split("][") if rest else [])]
        node: Any = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    def lists(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: lists(v) for k, v in node.items()}
            if node and all(k.isdigit() for k in node):
                return [node[k] for k in sorted(node, key=int)]
        return node

    return {k: lists(v) for k, v in out.items()}


class FakeMoodle:
    """Just enough of Moodle's REST web service for the example.

    The first write call of each function answers a transient "database busy" error,
    as a loaded Moodle sometimes does; repeating the call succeeds.
    """

    def __init__(self, users: list[dict[str, Any]]) -> None:
        self.users = {int(u["id"]): dict(u) for u in users}
        self.next_id = max(self.users) + 1
        self.busy = {"core_user_create_users", "core_user_update_users", "core_user_delete_users"}
        self.calls: dict[str, int] = {}
        self.app = Starlette(routes=[Route(ENDPOINT, self.serve, methods=["GET", "POST"])])

    async def serve(self, request: Request) -> JSONResponse:
        pairs = list(request.query_params.multi_items())
        pairs += parse_qsl((await request.body()).decode(), keep_blank_values=True)
        params = unflatten(pairs)
        function = params.pop("wsfunction", "")
        self.calls[function] = self.calls.get(function, 0) + 1
        try:
            if params.pop("wstoken", None) != TOKEN:
                raise MoodleError("invalidtoken", "Invalid token - token not found")
            if function in self.busy:
                self.busy.discard(function)
                raise MoodleError("dbbusy", "Database busy, try again", "dml_write_exception")
            handler = getattr(self, function, None)
            if handler is None:
                raise MoodleError("invalidrecord", f"Can't find data record: {function}")
            return JSONResponse(handler(params))
        except MoodleError as error:
            return JSONResponse(error.body)  # Moodle answers errors with HTTP 200

    def core_user_get_users(self, params: dict[str, Any]) -> Any:
        criteria = {c["key"]: c["value"] for c in params.get("criteria", [])}
        users = [u for u in self.users.values() if u["auth"] == criteria.get("auth")]
        return {"users": users, "warnings": []}

    def core_user_create_users(self, params: dict[str, Any]) -> Any:
        taken = {u["username"] for u in self.users.values()}
        new = params.get("users", [])
        for user in new:  # all or nothing, as in Moodle's transaction
            if user["username"] in taken:
                raise MoodleError(
                    "invalidparameter",
                    f"Invalid parameter value detected (Username already exists: "
                    f"{user['username']})",
                    "invalid_parameter_exception",
                )
        created = []
        for user in new:
            self.users[self.next_id] = {"id": self.next_id, "auth": "manual", **user}
            created.append({"id": self.next_id, "username": user["username"]})
            self.next_id += 1
        return created

    def core_user_update_users(self, params: dict[str, Any]) -> Any:
        for user in params.get("users", []):
            self.users[int(user.pop("id"))].update(user)
        return None

    def core_user_delete_users(self, params: dict[str, Any]) -> Any:
        for user_id in params.get("userids", []):
            del self.users[int(user_id)]
        return None


# -- the sync ------------------------------------------------------------------------------


def flatten(params: Mapping[Any, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as PHP-style form fields: ``{'users': [{'id': 1}]}`` -> ``users[0][id]``."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        elif isinstance(value, list):
            out.update(flatten(dict(enumerate(value)), name))
        else:
            out[name] = str(value)
    return out


class MoodleTemplate(AsyncTemplate):
    """Create, update and delete Moodle users from the ``students`` subbranch."""

    concurrency = 4
    rate = 20.0  # calls per second: be gentle with the Moodle server
    retries = 3
    max_deletes = 5

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.token = token

    async def call(self, function: str, **params: Any) -> Any:
        """Call a web service function; errors in the body become exceptions."""
        form = {"wstoken": self.token, "wsfunction": function, "moodlewsrestformat": "json"}
        response = await self.client.post(ENDPOINT, data=form | flatten(params))
        response.raise_for_status()  # 429 and 5xx: the runner retries
        body = response.json()
        if isinstance(body, dict) and "exception" in body:
            if body.get("errorcode") == "dbbusy":
                raise Retry(after=0.1, reason=body["message"])
            raise RuntimeError(f"{function}: {body['errorcode']}: {body['message']}")
        return body

    @batch(50)
    async def new_students(self, actions: list[Action]) -> None:
        users = []
        for action in actions:
            assert action.source is not None
            user = {FIELDS[name]: getattr(action.source, name) for name in FIELDS}
            user |= {"idnumber": action.idnumber, "auth": "manual", "createpassword": 1}
            users.append(user)
        await self.call("core_user_create_users", users=users)

    async def update_students(self, action: Action) -> None:
        assert action.changes is not None and action.dest is not None
        fields = {FIELDS[name]: value for name, value in action.changes.items()}
        await self.call("core_user_update_users", users=[{"id": action.dest._id, **fields}])

    async def old_students(self, action: Action) -> None:
        assert action.dest is not None
        await self.call("core_user_delete_users", userids=[action.dest._id])


async def read_students(path: Path) -> AsyncIterator[dict[str, Any]]:
    """The source: the SIS export, one row per student, keyed by ``student_id``."""
    text = await anyio.Path(path).read_text(encoding="utf-8")
    for row in csv.DictReader(text.splitlines()):
        row["idnumber"] = row.pop("student_id")
        yield row


def moodle_users(client: httpx.AsyncClient, token: str) -> HTTPReader:
    """The destination: Moodle's manual-auth users that have an idnumber (not the admin)."""
    return HTTPReader(
        client,
        ENDPOINT,
        params={
            "wstoken": token,
            "wsfunction": "core_user_get_users",
            "moodlewsrestformat": "json",
            "criteria[0][key]": "auth",
            "criteria[0][value]": "manual",
        },
        items=lambda body: [u for u in body["users"] if u.get("idnumber")],
        key="idnumber",
        rename={"id": "_id", "firstname": "first", "lastname": "last"},
        fields=["_id", "username", "first", "last", "email"],
    )


async def plan_and_sync(base_url: str, token: str, *, dry_run: bool = False) -> Report:
    tree = SyncTree(["source", "destination"], ["students"])
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        await tree.load(
            source={"students": read_students(HERE / "students.csv")},
            destination={"students": moodle_users(client, token)},
        )
        diff = tree.source > tree.destination
        report: Report = await diff.run(MoodleTemplate(client, token), dry_run=dry_run)
        return report


async def main() -> None:
    moodle = FakeMoodle(
        [
            {"id": 2, "auth": "manual", "username": "admin", "idnumber": "", "firstname": "Admin",
             "lastname": "User", "email": "admin@school.test"},
            {"id": 10, "auth": "manual", "username": "alee", "idnumber": "1001",
             "firstname": "Ann", "lastname": "Lee", "email": "alee@school.test"},
            {"id": 11, "auth": "manual", "username": "bstone", "idnumber": "1002",
             "firstname": "Bob", "lastname": "Stone", "email": "bob@old.test"},
            {"id": 12, "auth": "manual", "username": "zleft", "idnumber": "1009",
             "firstname": "Zed", "lastname": "Left", "email": "zed@school.test"},
        ]
    )  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(moodle.app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        while not server.started:  # noqa: ASYNC110  # uvicorn offers no event to wait on
            await anyio.sleep(0.01)
        try:
            report = await plan_and_sync(base_url, TOKEN)
            print(report)
            for result in report.results:
                if result.attempts > 1:
                    what = f"{result.action.message} {result.action.idnumber}"
                    print(f"retried: {what} ({result.attempts} attempts)")
            again = await plan_and_sync(base_url, TOKEN, dry_run=True)
            print(f"planned again: {len(again)} actions")
            managed = sorted(u["username"] for u in moodle.users.values() if u["idnumber"])
            print(f"moodle users: {', '.join(managed)}")
        finally:
            server.should_exit = True
    if not report.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    anyio.run(main)
