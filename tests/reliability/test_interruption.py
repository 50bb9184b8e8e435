"""Interruption: a run cancelled anywhere reports exactly what happened, and a rerun converges.

A reader failing half-way (a disk read error, an API page failing past its retries) changes
nothing in the destination, even with the safety limit forced off.
"""

from __future__ import annotations

import errno
import random
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from synctree import Action, Outcome, Report, Result, SyncTree
from synctree.aio import (
    AsyncTemplate,
    CSVReader,
    CSVTemplate,
    Event,
    EventKind,
    SQLReader,
    SQLTemplate,
)
from synctree.aio import load as load_tree
from tests.cli_runner import invoke
from tests.http_server import NO_FAULT, make_app, serve

pytestmark = pytest.mark.anyio  # the sync tests below take ``anyio_backend`` for the CLI

Data = dict[str, dict[str, Any]]
Key = tuple[str, str]


def key(action: Action) -> Key:
    return str(action.kind), action.idnumber


def sides(version: int = 1) -> tuple[Data, Data]:
    """``(source, destination)``: 80 creates, 60 updates and 30 deletes between them."""
    destination: Data = {f"d{i}": {"name": f"User {i}", "grade": i % 12} for i in range(150)}
    source = {k: dict(v) for k, v in list(destination.items())[:120]}
    for i in range(60):
        source[f"d{i}"]["grade"] += version
    source |= {f"n{i}": {"name": f"New {i}", "grade": i % 12} for i in range(80)}
    return source, destination


def tree_of(source: Data, destination: Data) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["users"])
    for idnumber, attrs in source.items():
        tree.new("source", "users", idnumber, **attrs)
    for idnumber, attrs in destination.items():
        tree.new("destination", "users", idnumber, **attrs)
    return tree


def applied(results: list[Any], data: Data) -> Data:
    """``data`` with the changes of the succeeded results applied, in report order."""
    out = {k: dict(v) for k, v in data.items()}
    for result in results:
        if result.outcome is not Outcome.SUCCEEDED:
            continue
        action = result.action
        if action.kind == "new":
            out[action.idnumber] = action.source.to_dict()
        elif action.kind == "old":
            del out[action.idnumber]
        else:
            changes = action.changes or {action.attribute: action.value}
            out[action.idnumber].update(changes)
    return out


class Store(AsyncTemplate):
    """An in-memory destination; each change lands at once, after an await, or not at all."""

    concurrency = 6
    max_deletes = None

    def __init__(self, data: Data, rng: random.Random, fail_rate: float = 0.0) -> None:
        self.data = data
        self.rng = rng
        self.fail_rate = fail_rate
        self.started: Counter[Key] = Counter()
        self.landed: Counter[Key] = Counter()

    async def _call(self, action: Action) -> None:
        self.started[key(action)] += 1
        await anyio.sleep(self.rng.uniform(0, 0.002))
        if self.rng.random() < self.fail_rate:
            raise ValueError("refused by the store")

    async def new_users(self, action: Action) -> None:
        await self._call(action)
        assert action.source is not None
        self.data[action.idnumber] = action.source.to_dict()
        self.landed[key(action)] += 1

    async def update_users(self, action: Action) -> None:
        await self._call(action)
        assert action.changes is not None
        self.data[action.idnumber].update(action.changes)
        self.landed[key(action)] += 1

    async def old_users(self, action: Action) -> None:
        await self._call(action)
        del self.data[action.idnumber]
        self.landed[key(action)] += 1


class CancelAfter:
    """An observer that cancels ``scope`` once ``count`` actions have finished."""

    def __init__(self, scope: anyio.CancelScope, count: int) -> None:
        self.scope = scope
        self.count = count
        self.finished = 0

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.FINISHED:
            self.finished += 1
        if self.finished >= self.count:
            self.scope.cancel()


async def run_cancelled(
    template: AsyncTemplate, tree: SyncTree, rng: random.Random, **options: Any
) -> Report:
    """Run, cancelling after a random number of finished actions or a random time."""
    total = len(list(tree.source > tree.destination))
    with anyio.CancelScope() as scope:
        if rng.random() < 0.5:
            options["observer"] = CancelAfter(scope, rng.randrange(total + 1))
        else:
            scope.deadline = anyio.current_time() + rng.uniform(0, 0.05)
        await (tree.source > tree.destination).run(template, **options)
    assert template.report is not None
    return template.report


def assert_accounted(report: Report) -> None:
    """Each action at most once in the report."""
    counts = Counter(key(result.action) for result in report.results)
    assert max(counts.values(), default=1) == 1, counts.most_common(3)


SEEDS = range(24)


@pytest.mark.parametrize("seed", SEEDS)
async def test_cancelled_run_reports_what_happened(seed: int) -> None:
    """Changes the store saw are exactly the succeeded ones; every started action is reported."""
    rng = random.Random(seed)
    source, destination = sides()
    data = {k: dict(v) for k, v in destination.items()}
    store = Store(data, rng, fail_rate=0.05)
    grace = rng.choice([0.0, 0.0005, 5.0])  # cut in-flight calls, or let them finish
    report = await run_cancelled(store, tree_of(source, destination), rng, grace=grace)

    assert_accounted(report)
    succeeded = {key(r.action) for r in report.results if r.outcome is Outcome.SUCCEEDED}
    assert set(store.landed) == succeeded  # nothing unreported, nothing invented
    assert max(store.landed.values(), default=1) == 1
    assert set(store.started) <= {key(r.action) for r in report.results}  # every call reported
    assert data == applied(report.results, destination)
    for result in report.failures:
        assert isinstance(result.error, ValueError) or "interrupted" in (result.reason or "")

    tree = tree_of(source, data)
    assert (await (tree.source > tree.destination).run(Store(data, random.Random(seed)))).ok
    tree = tree_of(source, data)
    assert list(tree.source > tree.destination) == []


def write_csv(path: Path, data: Data) -> None:
    lines = ["idnumber,name,grade"] + [f"{k},{v['name']},{v['grade']}" for k, v in data.items()]
    path.write_text("\n".join(lines) + "\n")


async def read_side(reader: Any) -> Data:
    tree = SyncTree(["source", "destination"], ["users"])
    await load_tree(tree, {"destination": {"users": reader}})
    return {leaf.idnumber: leaf.to_dict() for leaf in tree.destination.users}


@pytest.mark.parametrize("seed", range(8))
async def test_cancelled_csv_template(tmp_path: Path, seed: int) -> None:
    """The CSV file holds exactly the succeeded changes after a cancel; a rerun converges."""
    rng = random.Random(seed)
    source, destination = sides()
    path = tmp_path / "users.csv"
    write_csv(path, destination)
    reader = CSVReader(path, key="idnumber", types={"grade": int})
    report = await run_cancelled(
        CSVTemplate(path), tree_of(source, destination), rng, max_deletes=None
    )
    assert_accounted(report)
    on_disk = await read_side(reader)
    assert on_disk == applied(report.results, destination)

    tree = tree_of(source, on_disk)
    assert (await (tree.source > tree.destination).run(CSVTemplate(path), max_deletes=None)).ok
    assert await read_side(reader) == source


class SQLiteStore(SQLTemplate):
    max_deletes = None


@pytest.mark.parametrize("seed", range(8))
async def test_cancelled_sql_template(tmp_path: Path, seed: int) -> None:
    """The table holds exactly the succeeded changes after a cancel; a rerun converges."""
    rng = random.Random(seed)
    source, destination = sides()
    url = f"sqlite+aiosqlite:///{tmp_path / 'school.db'}"
    with sqlite3.connect(tmp_path / "school.db") as db:
        db.execute("CREATE TABLE users (idnumber TEXT PRIMARY KEY, name TEXT, grade INTEGER)")
        db.executemany(
            "INSERT INTO users VALUES (?, ?, ?)",
            [(k, v["name"], v["grade"]) for k, v in destination.items()],
        )
    db.close()
    report = await run_cancelled(SQLiteStore(url, batch_size=7), tree_of(source, destination), rng)
    assert_accounted(report)
    in_table = await read_side(SQLReader(url, table="users", key="idnumber"))
    assert in_table == applied(report.results, destination)

    tree = tree_of(source, in_table)
    assert (await (tree.source > tree.destination).run(SQLiteStore(url))).ok
    assert await read_side(SQLReader(url, table="users", key="idnumber")) == source


# -- a reader failing half-way ---------------------------------------------------------------


class FailingFile:
    """An open file whose reads fail with EIO once ``limit`` bytes were read."""

    def __init__(self, opened: Any, limit: int) -> None:
        self._opened = opened
        self._left = limit
        self.wrapped = opened.wrapped

    async def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise OSError(errno.EIO, "Input/output error")
        data: bytes = await self._opened.read(min(size, self._left) if size >= 0 else self._left)
        self._left -= len(data)
        return data

    async def aclose(self) -> None:
        await self._opened.aclose()


@pytest.fixture
def disk_error(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """``disk_error['path']`` fails with EIO after ``disk_error['after']`` bytes."""
    settings: dict[str, Any] = {"path": None, "after": 0, "opened": 0}
    real_open = anyio.open_file

    async def open_file(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened = await real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]
        if settings["path"] is not None and Path(file) == settings["path"]:
            settings["opened"] += 1
            return FailingFile(opened, settings["after"])
        return opened

    monkeypatch.setattr(anyio, "open_file", open_file)
    yield settings


def config(folder: Path, source: str, template: str) -> Path:
    path = folder / "sync.toml"
    path.write_text(
        textwrap.dedent(
            """\
            [sync]
            subbranches = ["users"]

            [source.users]
            {source}

            [destination.users]
            {destination}

            [template]
            {template}
            """
        ).format(source=source, **destinations(template))
    )
    return path


def destinations(kind: str) -> dict[str, str]:
    if kind == "csv":
        return {
            "destination": 'reader = "csv"\npath = "users.csv"\nkey = "idnumber"\n'
            'types = { grade = "int" }',
            "template": 'use = "csv"\npath = "users.csv"',
        }
    return {
        "destination": 'reader = "sql"\nurl = "sqlite:///school.db"\nkey = "idnumber"',
        "template": 'use = "sql"\nurl = "sqlite:///school.db"',
    }


def destination_bytes(folder: Path, kind: str) -> bytes:
    return (folder / ("users.csv" if kind == "csv" else "school.db")).read_bytes()


def seed_destination(folder: Path, kind: str, data: Data) -> None:
    if kind == "csv":
        write_csv(folder / "users.csv", data)
        return
    with sqlite3.connect(folder / "school.db") as db:
        db.execute("CREATE TABLE users (idnumber TEXT PRIMARY KEY, name TEXT, grade INTEGER)")
        db.executemany(
            "INSERT INTO users VALUES (?, ?, ?)",
            [(k, v["name"], v["grade"]) for k, v in data.items()],
        )
    db.close()


def run_cli(folder: Path, backend: str) -> str:
    """``synctree run --force``: exit 2 with one error and no traceback; returns the output."""
    # --force: the safety limit would stop a partial export as well; show the reader does.
    code, out = invoke("run", str(folder / "sync.toml"), "--force", "--backend", backend)
    assert code == 2, out
    assert out.count("error:") == 1 and "Traceback" not in out
    return " ".join(out.split())


EXPORT = {f"s{i}": {"name": f"Student {i}", "grade": i % 12} for i in range(5000)}


@pytest.mark.parametrize("kind", ["csv", "sql"])
def test_disk_error_half_way_changes_nothing(
    tmp_path: Path, disk_error: dict[str, Any], anyio_backend: str, kind: str
) -> None:
    """EIO after 20 kB of a 5,000-row export: one error naming the file; destination unchanged."""
    source_path = tmp_path / "students.csv"
    write_csv(source_path, {**EXPORT, "s0": {"name": "Renamed", "grade": 1}})
    disk_error.update(path=source_path, after=20_000)
    source = (
        f'reader = "csv"\npath = "{source_path}"\nkey = "idnumber"\n'
        'types = { grade = "int" }\nchunk_size = 4096'
    )
    folder = destination_folder(tmp_path, kind, source)
    before = destination_bytes(folder, kind)
    text = run_cli(folder, anyio_backend)
    assert f"{source_path}: cannot read the file: Input/output error" in text
    assert destination_bytes(folder, kind) == before
    assert disk_error["opened"] == 1


PAGES = """
from synctree.aio import HTTPReader, NextLink


class Users(HTTPReader):
    def __init__(self, url):
        super().__init__(
            url, "/users", items="users", pagination=NextLink(), params={"per_page": 100},
            retries=2, random=lambda: 0.001,
        )
"""


@pytest.mark.parametrize("kind", ["csv", "sql"])
def test_api_page_failing_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anyio_backend: str, kind: str
) -> None:
    """Page 3 of the source API answers 500 past its retries: one error, destination unchanged."""
    (tmp_path / "reliability_pages.py").write_text(PAGES)
    monkeypatch.syspath_prepend(str(tmp_path))
    users = [{"id": key, **attrs} for key, attrs in EXPORT.items()][:500]
    api = make_app(users=users)
    with serve(api) as base_url:
        api.force_faults(NO_FAULT, NO_FAULT, "500", "500", "500")
        source = f'reader = "reliability_pages:Users"\nurl = "{base_url}"'
        folder = destination_folder(tmp_path, kind, source)
        before = destination_bytes(folder, kind)
        text = run_cli(folder, anyio_backend)
    assert "page 3: HTTP 500 Internal Server Error (after 3 attempts)" in text
    assert f"{base_url}/users?page=3&per_page=100" in text
    assert destination_bytes(folder, kind) == before


def destination_folder(tmp_path: Path, kind: str, source: str) -> Path:
    """A folder with a config and a seeded destination of ``kind``."""
    folder = tmp_path / kind
    folder.mkdir()
    seed_destination(folder, kind, EXPORT)
    config(folder, source, kind)
    return folder


def test_sql_reader_cancelled_mid_load_closes_cleanly(tmp_path: Path) -> None:
    """A SQLReader cancelled by a failing sibling reader leaves nothing running (asyncio).

    Until 8a166f8, aiosqlite's close was left pending: "Event loop is closed" in its
    thread, and at times a hang in asyncio.run's shutdown.
    """
    script = textwrap.dedent(
        f"""
        import asyncio, faulthandler, os, sqlite3, threading
        from synctree import SyncTree
        from synctree.aio import SQLReader, load

        faulthandler.dump_traceback_later(5, exit=True)  # a hang fails, in 5 s
        threading.excepthook = lambda args: (print("thread:", args.exc_value), os._exit(3))
        db = sqlite3.connect({str(tmp_path / "d.db")!r})
        db.execute("CREATE TABLE users (idnumber TEXT PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO users VALUES (?, ?)", [(f"s{{i}}", "x") for i in range(5000)])
        db.commit()
        db.close()

        async def failing(steps):
            for _ in range(steps):
                await asyncio.sleep(0)
            raise OSError(5, "Input/output error")
            yield {{}}

        async def main(steps):
            tree = SyncTree(["source", "destination"], ["users"])
            sql = SQLReader({"sqlite+aiosqlite:///" + str(tmp_path / "d.db")!r},
                            table="users", key="idnumber")
            try:
                await load(tree, {{"source": {{"users": failing(steps)}},
                                   "destination": {{"users": sql}}}})
            except Exception:
                pass

        for steps in range(30):
            asyncio.run(main(steps))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "Event loop is closed" not in done.stderr + done.stdout, (
        done.stdout + done.stderr
    )[-2000:]


def test_expected_state_helper() -> None:
    """``applied`` turns the destination into the source when every action succeeded."""
    source, destination = sides()
    tree = tree_of(source, destination)
    results = [Result(action, Outcome.SUCCEEDED) for action in tree.source > tree.destination]
    assert applied(results, destination) == source
    assert applied(results[:0], destination) == destination
