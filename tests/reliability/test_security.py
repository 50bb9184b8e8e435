"""Hostile data stays data: CSV formulas, SQL, SCIM filters; a config imports only what it names."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from synctree import ConfigError, SyncTree
from synctree._cli import main
from synctree._cli._config import Config
from synctree.aio import SQLReader, SQLTemplate
from synctree.aio.scim import scim_string
from tests.aio.scim.test_scim import ROOT, USER, scim_app, state, sync, user

pytestmark = pytest.mark.anyio

HOSTILE = "'); DROP TABLE students; --"


class TestCSVFormulas:
    def test_neutralised_through_the_cli(self, tmp_path: Path) -> None:
        """The CLI's csv template neutralises formula cells in creates and updates by default."""
        (tmp_path / "students.csv").write_text(
            "student_id,first,note\n"
            '1,Ann,=HYPERLINK("http://x.test")\n'
            "2,Bob,@SUM(A1)\n"
            '3,Cid,"-2+3"\n'
            "4,Dee,+tab\n"
            "5,Eve,-7\n"
        )
        (tmp_path / "out.csv").write_text("idnumber,first,note\n2,Bob,old\n")
        (tmp_path / "sync.toml").write_text(
            textwrap.dedent(
                """\
                [sync]
                subbranches = ["students"]
                [source.students]
                reader = "csv"
                path = "students.csv"
                key = "student_id"
                [destination.students]
                reader = "csv"
                path = "out.csv"
                key = "idnumber"
                [template]
                use = "csv"
                path = "out.csv"
                """
            )
        )
        result = CliRunner().invoke(main, ["run", str(tmp_path / "sync.toml")])
        assert result.exit_code == 0, result.output
        lines = (tmp_path / "out.csv").read_text().splitlines()
        assert lines == [
            "idnumber,first,note",
            "2,Bob,'@SUM(A1)",  # an update
            '1,Ann,"\'=HYPERLINK(""http://x.test"")"',
            "3,Cid,'-2+3",
            "4,Dee,'+tab",
            "5,Eve,-7",  # a plain number stays a number
        ]


class TestSQLBoundParameters:
    async def test_hostile_values_land_verbatim(self, tmp_path: Path) -> None:
        """Keys and values that are SQL land as text, in creates, updates and filters."""
        url = f"sqlite+aiosqlite:///{tmp_path / 'school.db'}"
        with sqlite3.connect(tmp_path / "school.db") as db:
            db.execute("CREATE TABLE students (idnumber TEXT PRIMARY KEY, first TEXT)")
            db.execute("INSERT INTO students VALUES ('1', 'Ann')")
        db.close()
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", first=HOSTILE)  # an update
        tree.new("source", "students", HOSTILE, first='"; DELETE FROM students; --')  # a create
        tree.new("source", "students", "x' OR '1'='1", first="Robert'); DROP TABLE x;--")
        await tree.load(destination={"students": SQLReader(url, table="students", key="idnumber")})
        report = await (tree.source > tree.destination).run(SQLTemplate(url))
        assert report.ok, str(report)

        with sqlite3.connect(tmp_path / "school.db") as db:
            rows = dict(db.execute("SELECT idnumber, first FROM students").fetchall())
            tables = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        db.close()
        assert rows == {
            "1": HOSTILE,
            HOSTILE: '"; DELETE FROM students; --',
            "x' OR '1'='1": "Robert'); DROP TABLE x;--",
        }
        assert tables == [("students",)]
        scoped = SQLReader(url, table="students", key="idnumber", where={"first": HOSTILE})
        assert [row["idnumber"] async for row in scoped] == ["1"]  # a bound filter, not SQL


@pytest.fixture
async def scim() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        httpx.ASGITransport(app=scim_app()) as transport,
        httpx.AsyncClient(transport=transport, base_url=ROOT) as client,
    ):
        yield client


class TestSCIMFilters:
    @pytest.mark.parametrize(
        "value", ['a"b', "a\\b", '\\"', 'v1" or userName eq "odd', "ü\n\t", ""]
    )
    def test_scim_string_is_a_json_string(self, value: str) -> None:
        """A filter literal parses back to the value itself (RFC 7644 3.4.2.2: JSON strings)."""
        assert json.loads(scim_string(value)) == value

    async def test_a_key_cannot_widen_a_filter(self, scim: httpx.AsyncClient) -> None:
        """A key written to escape its quotes finds no one else's account (scim2-server)."""
        # inactive: outside what the sync reads, so only a widened filter could reach it
        victim = {"schemas": [USER], "userName": "odd", "externalId": "v1", "active": False}
        assert (await scim.post("/Users", json=victim)).status_code == 201
        before = await state(scim)
        # Unescaped, the lookup after the 409 would read: externalId eq "v1" or userName eq "odd"
        hostile = user('v1" or userName eq "odd', "Eve", username="odd")
        _, report = await sync(scim, [hostile])
        assert not report.ok  # the create conflicts and no one is adopted in its place
        assert await state(scim) == before
        (failure,) = report.failures
        assert "409" in str(failure.error) or "uniqueness" in str(failure.error)


class TestConfigImportsOnlyWhatItNames:
    """A config is code (README): still, an import string must name the right kind of thing."""

    def write(self, tmp_path: Path, template: str, reader: str = "csv") -> Path:
        config = tmp_path / "sync.toml"
        config.write_text(
            textwrap.dedent(
                f"""\
                [sync]
                subbranches = ["students"]
                [source.students]
                reader = "{reader}"
                {'path = "s.csv"' if reader == "csv" else 'args = ["touch", "PWNED"]'}
                {'key = "id"' if reader == "csv" else ""}
                [template]
                use = "{template}"
                {'command = "touch PWNED"' if template == "os:system" else 'path = "o.csv"'}
                """
            )
        )
        return config

    @pytest.mark.parametrize(
        ("template", "reader", "problem"),
        [
            ("os:system", "csv", "[template], key 'use': 'os:system' is not a template class"),
            ("subprocess:Popen", "csv", "is not a template class"),
            ("synctree:SyncTree", "csv", "is not a template class"),
            ("csv", "subprocess:Popen", "key 'reader': 'subprocess:Popen' is not a reader class"),
            ("csv", "os:system", "is not a reader class"),
        ],
    )
    def test_refused_uncalled(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: str, reader: str,
        problem: str,
    ) -> None:  # fmt: skip
        """Validation refuses a non-template or non-reader before calling anything."""
        monkeypatch.chdir(tmp_path)
        config = self.write(tmp_path, template, reader)
        with pytest.raises(ConfigError) as caught:
            Config(config)
        assert problem in str(caught.value)
        for command in ("plan", "run"):
            result = CliRunner().invoke(main, [command, str(config)])
            assert result.exit_code == 2 and problem in " ".join(result.output.split())
        assert not (tmp_path / "PWNED").exists()

    def test_template_classes_still_load(self, tmp_path: Path) -> None:
        """A real template class by import string is accepted."""
        config = self.write(tmp_path, "synctree.aio:CSVTemplate")
        assert Config(config).template[0] == "synctree.aio:CSVTemplate"
