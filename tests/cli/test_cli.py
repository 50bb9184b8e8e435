"""The command line: plan, run and show through the ``synctree`` entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.store import STORE_READER, write_store_config
from tests.cli_runner import invoke
from tests.http_server import make_app, serve

# A destination kept in a JSON file: a custom reader and template by import string.
STORE = (
    STORE_READER
    + """
import anyio
from synctree.aio import AsyncTemplate


class StoreTemplate(AsyncTemplate):
    max_deletes = None

    def __init__(self, path, fail=(), delay=0.0):
        self.path = pathlib.Path(path)
        self.fail = set(fail)
        self.delay = delay

    async def before_all(self):
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    async def after_all(self, report):
        await self._save()

    async def _save(self):  # atomically: another process may read the store meanwhile
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data))
        temporary.replace(self.path)

    async def new(self, action):
        if self.delay:
            await anyio.sleep(self.delay)
        if action.idnumber in self.fail:
            raise ValueError("rejected by the store")
        self.data[action.idnumber] = action.source.to_dict()
        await self._save()

    async def update(self, action):
        self.data[action.idnumber].update(action.changes)
        await self._save()

    async def old(self, action):
        del self.data[action.idnumber]
        await self._save()
"""
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a students CSV, the JSON store module, and a config."""
    (tmp_path / "jsonstore.py").write_text(STORE)
    monkeypatch.syspath_prepend(str(tmp_path))
    write_csv(tmp_path, [("1", "Ann", 7), ("2", "Bob", 8), ("3", "Cid", 9)])
    write_config(tmp_path)
    return tmp_path


def write_csv(folder: Path, rows: list[tuple[str, str, int]]) -> None:
    lines = ["student_id,first,grade"] + [f"{i},{f},{g}" for i, f, g in rows]
    (folder / "students.csv").write_text("\n".join(lines) + "\n")


def write_config(folder: Path, template_extra: str = "", run: str = "") -> Path:
    return write_store_config(
        folder,
        reader="jsonstore:StoreReader",
        template="jsonstore:StoreTemplate",
        template_extra=template_extra,
        extra=f"[run]\nconcurrency = 2\n{run}",
    )


def action_lines(log: Path) -> list[dict[str, object]]:
    """The run log's action lines (not its run header, retries or end)."""
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return [line for line in lines if line["type"] == "action"]


def count_actions(log: Path) -> int:
    """How many action lines a run log (perhaps being written) holds so far."""
    return log.read_text().count('"type": "action"') if log.exists() else 0


class TestPlanAndRun:
    def test_plan_run_converge(self, project: Path) -> None:
        """plan shows the creates, run applies them (exit 0), and planning again shows none."""
        code, out = invoke("plan", str(project / "sync.toml"))
        assert code == 0 and "students (3 new)" in out and "students  1 (Ann)  new" in out
        code, out = invoke("run", str(project / "sync.toml"))
        assert code == 0, out
        assert json.loads((project / "store.json").read_text()) == {
            "1": {"first": "Ann", "grade": 7},
            "2": {"first": "Bob", "grade": 8},
            "3": {"first": "Cid", "grade": 9},
        }
        code, out = invoke("plan", str(project / "sync.toml"), "--json")
        assert code == 0 and json.loads(out)["actions"] == []

    def test_json_plan_names_paths_outside_the_folder(self, project: Path) -> None:
        """plan --json lists the paths outside the config's folder, as the text output does."""
        folder = project / "configs"
        folder.mkdir()
        text = (project / "sync.toml").read_text()
        (folder / "sync.toml").write_text(text.replace('"students.csv"', '"../students.csv"'))
        code, out = invoke("plan", str(folder / "sync.toml"), "--json")
        plan = json.loads(out)
        assert code == 0 and len(plan["actions"]) == 3
        assert f"[source.students] path = {project / 'students.csv'}" in plan["outside_paths"]
        code, out = invoke("plan", str(project / "sync.toml"), "--json")
        assert json.loads(out)["outside_paths"] == []

    def test_notes_of_a_partial_source_are_in_the_plan(self, project: Path) -> None:
        """A reader's notes (an absent kind, a warning) reach the plan, text and JSON."""
        (project / "partial.py").write_text(
            "from synctree.aio import Batch\n"
            "class Absent:\n"
            "    def __init__(self, **_):\n"
            "        pass\n"
            "    async def batches(self):\n"
            "        yield Batch([], coverage='absent', notes=('students: not in this export',))\n"
        )
        invoke("run", str(project / "sync.toml"))
        text = (project / "sync.toml").read_text()
        text = text.replace('reader = "csv"', 'reader = "partial:Absent"')
        (project / "sync.toml").write_text(text)
        code, out = invoke("plan", str(project / "sync.toml"), "--json")
        plan = json.loads(out)
        assert code == 0 and plan["actions"] == []  # nothing removed: the kind is absent
        assert plan["notes"] == ["source students: not in this export"]
        code, out = invoke("plan", str(project / "sync.toml"))
        assert code == 0 and "note: source students: not in this export" in out

    def test_changes_are_applied(self, project: Path) -> None:
        """A changed export gives exactly its updates, creates and removals."""
        invoke("run", str(project / "sync.toml"))
        write_csv(project, [("1", "Ann", 8), ("3", "Cid", 9), ("4", "Dee", 7)])
        code, out = invoke("plan", str(project / "sync.toml"), "--json")
        actions = {(a["message"], a["idnumber"]) for a in json.loads(out)["actions"]}
        assert actions == {
            ("update_students_grade", "1"),
            ("new_students", "4"),
            ("old_students", "2"),
        }
        code, _ = invoke("run", str(project / "sync.toml"))
        assert code == 0
        assert sorted(json.loads((project / "store.json").read_text())) == ["1", "3", "4"]

    def test_failed_actions_exit_1_and_log(self, project: Path) -> None:
        """A failing action gives exit code 1; the run log has a line per action."""
        write_config(project, template_extra='fail = ["2"]')
        code, out = invoke("run", str(project / "sync.toml"), "--log", str(project / "run.jsonl"))
        assert code == 1
        assert "rejected by the store" in out
        lines = action_lines(project / "run.jsonl")
        assert sorted((x["idnumber"], x["outcome"]) for x in lines) == [
            ("1", "succeeded"),
            ("2", "failed"),
            ("3", "succeeded"),
        ]
        assert "rejected by the store" in next(x["error"] for x in lines if x["idnumber"] == "2")

    def test_safety_limit_exit_3(self, project: Path) -> None:
        """Removing more than --max-deletes stops with exit code 3 and changes nothing."""
        invoke("run", str(project / "sync.toml"))
        before = (project / "store.json").read_text()
        write_csv(project, [("1", "Ann", 7)])
        code, out = invoke("run", str(project / "sync.toml"), "--max-deletes", "1")
        assert code == 3 and "removes 2 of 3 students" in out
        assert (project / "store.json").read_text() == before
        code, _ = invoke("run", str(project / "sync.toml"), "--max-deletes", "1", "--force")
        assert code == 0
        assert list(json.loads((project / "store.json").read_text())) == ["1"]

    def test_empty_export_never_wipes(self, project: Path) -> None:
        """A header-only export is an input error (exit 2), not 'everyone left'."""
        invoke("run", str(project / "sync.toml"))
        write_csv(project, [])
        code, out = invoke("run", str(project / "sync.toml"))
        assert code == 2
        assert "students.csv" in out
        assert len(json.loads((project / "store.json").read_text())) == 3

    def test_dry_run_changes_nothing(self, project: Path) -> None:
        """--dry-run reports the plan and writes nothing."""
        code, out = invoke("run", str(project / "sync.toml"), "--dry-run")
        assert code == 0 and "planned" in out
        assert (
            not (project / "store.json").exists()
            or json.loads((project / "store.json").read_text()) == {}
        )

    def test_only(self, project: Path) -> None:
        """--only syncs just the named objects."""
        code, _ = invoke("run", str(project / "sync.toml"), "--only", "2")
        assert code == 0
        assert list(json.loads((project / "store.json").read_text())) == ["2"]

    def test_saved_plan(self, project: Path) -> None:
        """--plan applies a saved plan only while planning again gives the same actions."""
        plan = project / "plan.json"
        code, _ = invoke("plan", str(project / "sync.toml"), "--out", str(plan))
        assert code == 0 and len(json.loads(plan.read_text())["actions"]) == 3
        write_csv(project, [("1", "Ann", 7), ("2", "Bob", 8)])
        code, out = invoke("run", str(project / "sync.toml"), "--plan", str(plan))
        assert code == 3 and "no longer planned" in out
        assert not (project / "store.json").exists()
        invoke("plan", str(project / "sync.toml"), "--out", str(plan))
        code, _ = invoke("run", str(project / "sync.toml"), "--plan", str(plan))
        assert code == 0

    def test_json_report(self, project: Path) -> None:
        """run --json prints the report as JSON."""
        code, out = invoke("run", str(project / "sync.toml"), "--json")
        assert code == 0
        assert json.loads(out)["totals"] == {"succeeded": 3}


CSV_TO_CSV = """\
[sync]
subbranches = ["students"]

[source.students]
reader = "csv"
path = "students.csv"
key = "student_id"
types = { grade = "int" }

[destination.students]
reader = "csv"
path = "out/students.csv"
key = "idnumber"
types = { grade = "int" }
neutralised_formulas = true
{destination}
[template]
use = "csv"
path = "out/students.csv"
"""


class TestCSVDestination:
    """A CSV file as the destination: the template creates it on the first run."""

    def config(self, project: Path, destination: str = "") -> str:
        (project / "out").mkdir(exist_ok=True)
        path = project / "csv.toml"
        path.write_text(CSV_TO_CSV.replace("{destination}", destination))
        return str(path)

    def test_first_run_creates_the_file_and_converges(self, project: Path) -> None:
        """No destination file yet: run creates it (exit 0), then plan shows 0 actions."""
        config = self.config(project)
        code, out = invoke("plan", config)
        assert code == 0 and "students (3 new)" in out, out
        code, out = invoke("run", config)
        assert code == 0, out
        assert (project / "out" / "students.csv").read_text().splitlines()[0] == (
            "idnumber,first,grade"
        )
        code, out = invoke("plan", config, "--json")
        assert code == 0 and json.loads(out)["actions"] == [], out

    def test_missing_ok_from_the_config(self, project: Path) -> None:
        """missing_ok = true (or false) in the reader's table reaches CSVReader."""
        code, out = invoke("run", self.config(project, "missing_ok = false"))
        assert code == 2 and "file not found" in out, out
        assert not (project / "out" / "students.csv").exists()
        code, out = invoke("run", self.config(project, "missing_ok = true"))
        assert code == 0, out

    def test_missing_source_still_fails(self, project: Path) -> None:
        """A missing source export is exit 2, never 'everyone left'; the destination is kept."""
        config = self.config(project)
        invoke("run", config)
        before = (project / "out" / "students.csv").read_bytes()
        (project / "students.csv").unlink()
        code, out = invoke("run", config)
        assert code == 2 and "file not found" in out, out
        assert (project / "out" / "students.csv").read_bytes() == before

    def test_only_the_templates_own_file_may_be_missing(self, project: Path) -> None:
        """A destination CSV that another program writes stays an error when missing."""
        text = CSV_TO_CSV.replace("{destination}", "").replace(
            'use = "csv"\npath = "out/students.csv"',
            f'use = "jsonstore:StoreTemplate"\npath = "{project / "store.json"}"',
        )
        (project / "other.toml").write_text(text)
        code, out = invoke("run", str(project / "other.toml"))
        assert code == 2 and "file not found" in out, out


class TestShow:
    def test_show_tree(self, project: Path) -> None:
        """show prints every branch with counts."""
        code, out = invoke("show", str(project / "sync.toml"))
        assert code == 0
        assert "source" in out and "students (3)" in out and "students (0)" in out

    def test_show_object(self, project: Path) -> None:
        """show SUBBRANCH ID prints the object side by side with what differs."""
        invoke("run", str(project / "sync.toml"))
        write_csv(project, [("1", "Ann", 9)])
        code, out = invoke("show", str(project / "sync.toml"), "students", "1")
        assert code == 0
        line = next(line for line in out.splitlines() if line.startswith("grade"))
        assert "9" in line and "7" in line and "differs" in line

    def test_show_unknown(self, project: Path) -> None:
        """An unknown subbranch or object is exit code 2."""
        assert invoke("show", str(project / "sync.toml"), "teachers")[0] == 2
        assert invoke("show", str(project / "sync.toml"), "students", "404")[0] == 2


HTTP_SOURCE = """\
[sync]
subbranches = ["users"]
[source.users]
reader = "http"
client_or_url = "http://127.0.0.1:9"
pagination = {pagination}
[template]
use = "x:Y"
"""

#: Every built-in pagination as a config names it, each with the server's total.
PAGINATIONS = [
    '{ style = "page", param = "page", size_param = "per_page", size = 10, total = "total" }',
    '{ style = "offset", param = "offset", limit = 7, total_header = "X-Total-Count" }',
    '{ style = "next", path = "next", total = "total" }',
    '{ style = "link", total_header = "X-Total-Count" }',
    '{ style = "cursor", param = "cursor", next = "next_cursor", total = "total" }',
]


class TestHTTPSource:
    """A TOML config paginating a real HTTP server (127.0.0.1) in every style."""

    def config(self, folder: Path, base_url: str, pagination: str) -> Path:
        store = folder / "store.json"
        config = folder / "http.toml"
        config.write_text(
            textwrap.dedent(
                f"""\
                [sync]
                subbranches = ["users"]

                [source.users]
                reader = "http"
                client_or_url = "{base_url}"
                path = "/users"
                items = "users"
                params = {{ per_page = 10 }}
                retries = 0
                pagination = {pagination}

                [destination.users]
                reader = "jsonstore:StoreReader"
                path = "{store}"

                [template]
                use = "jsonstore:StoreTemplate"
                path = "{store}"
                """
            )
        )
        return config

    @pytest.mark.parametrize("pagination", PAGINATIONS)
    def test_whole_listing_then_short_listing(self, project: Path, pagination: str) -> None:
        """Read whole, the 30 users match the store (nothing to do); when the listing
        breaks off after 20 of its total 30, plan and run exit 2 and the store keeps
        all 30: the short read never becomes 10 removals."""
        users = [{"id": str(i), "name": f"U{i}"} for i in range(30)]
        store = {user["id"]: {"name": user["name"]} for user in users}
        (project / "store.json").write_text(json.dumps(store))
        api = make_app(users=users)
        with serve(api) as base_url:
            config = str(self.config(project, base_url, pagination))
            code, out = invoke("plan", config, "--json")
            assert (code, json.loads(out)["actions"]) == (0, [])
            api.list_limit = 20
            for command in ("plan", "run"):
                code, out = invoke(command, config)
                flat = out.replace("\n", "")
                assert code == 2, out
                assert "the listing ended with 20 items, but it announced 30" in flat
                assert f"{base_url}/users" in flat
        assert json.loads((project / "store.json").read_text()) == store
        assert api.stats()["deletes"] == api.stats()["updates"] == 0


RAISES = 'raise RuntimeError("no database configured")\n'


class TestBadConfig:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ('[sync]\nsubbranches = ["students"]\n[template]\nuse = "csv"\nfoo = 1',
             "[template], key 'foo'"),
            ('[sync]\nsubbranches = ["students"]\n[source.teachers]\nreader = "csv"\n'
             '[template]\nuse = "x:Y"', "unknown subbranch 'teachers'"),
            ('[sync]\nsubbranches = ["students"]\n[source.students]\nreader = "xls"\n'
             '[template]\nuse = "x:Y"', "unknown reader 'xls'"),
            ('[sync]\nsubbranches = ["students"]\n[source.students]\nreader = "csv"\n'
             'path = "s.csv"\n[template]\nuse = "x:Y"', "[source.students], key 'key'"),
            ('[sync]\nsubbranches = ["students"]\n[template]\nuse = "x:Y"\n'
             'token = "${SYNCTREE_NOT_SET}"', "SYNCTREE_NOT_SET is not set"),
            ("[sync\n", "not valid TOML"),
            (HTTP_SOURCE.format(pagination='{ style = "pages" }'),
             "[source.users], key 'pagination.style': unknown pagination style 'pages'"),
            (HTTP_SOURCE.format(pagination="{ size = 10 }"),
             "[source.users], key 'pagination.style': missing key"),
            (HTTP_SOURCE.format(pagination='{ style = "page", sise = 10 }'),
             "[source.users], key 'pagination.sise': unknown key for style 'page'"),
            (HTTP_SOURCE.format(pagination='{ style = "page", size = 0 }'),
             "[source.users], key 'pagination.size': 'size' must be an int >= 1, got 0"),
            (HTTP_SOURCE.format(pagination='{ style = "cursor", next = 1 }'),
             "[source.users], key 'pagination.next': 'next' must be a non-empty string"),
            (HTTP_SOURCE.format(pagination='{ style = "offset", total = "n", total_header = "X" }'),
             "[source.users], key 'pagination.total_header': 'total_header' cannot be given"),
            (HTTP_SOURCE.format(pagination="7"), "[source.users], key 'pagination': must be"),
        ],
    )  # fmt: skip
    def test_exit_2_naming_file_table_key(self, tmp_path: Path, body: str, message: str) -> None:
        """Bad configs exit 2 with one message naming the file, the table and the key."""
        config = tmp_path / "bad.toml"
        config.write_text(body)
        code, out = invoke("plan", str(config))
        assert code == 2
        assert str(config) in out.replace("\n", "")
        assert message in out.replace("\n", "")

    @pytest.mark.parametrize(
        ("module", "table", "key", "error"),
        [
            pytest.param(RAISES, "template", "use", "RuntimeError: no database configured",
                         id="template-raises"),
            pytest.param("def broken(:\n", "template", "use", "SyntaxError: ",
                         id="template-syntax-error"),
            pytest.param(RAISES, "source.students", "reader",
                         "RuntimeError: no database configured", id="reader-raises"),
            pytest.param("def broken(:\n", "source.students", "reader", "SyntaxError: ",
                         id="reader-syntax-error"),
        ],
    )  # fmt: skip
    def test_import_string_whose_module_fails(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        module: str,
        table: str,
        key: str,
        error: str,
    ) -> None:
        """A module that raises at import or does not compile: exit 2 naming file, table, key."""
        name = f"broken_{table.replace('.', '_')}_{len(module)}"
        (tmp_path / f"{name}.py").write_text(module)
        monkeypatch.syspath_prepend(str(tmp_path))
        reader = f"{name}:Reader" if key == "reader" else "csv"
        use = f"{name}:Template" if table == "template" else "csv"
        config = tmp_path / "bad.toml"
        config.write_text(
            '[sync]\nsubbranches = ["students"]\n'
            f'[source.students]\nreader = "{reader}"\npath = "s.csv"\nkey = "id"\n'
            f'[template]\nuse = "{use}"\npath = "out.csv"\nkey = "id"\n'
        )
        code, out = invoke("plan", str(config))
        flat = out.replace("\n", "")
        assert code == 2, out
        assert f"{config}, [{table}], key '{key}': cannot import '{name}:" in flat
        assert error in flat

    def test_missing_config(self, tmp_path: Path) -> None:
        """A config that does not exist is exit code 2."""
        code, out = invoke("plan", str(tmp_path / "nope.toml"))
        assert code == 2 and "not found" in out


def test_ctrl_c_finishes_in_flight_and_exits_130(project: Path) -> None:
    """First Ctrl-C: stop new actions, finish in-flight ones, print the summary, exit 130."""
    write_csv(project, [(str(i), f"N{i}", 7) for i in range(200)])
    write_config(project, template_extra="delay = 0.05")
    env = {**os.environ, "PYTHONPATH": f"{project}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "synctree", "run", str(project / "sync.toml"), "--log",
         str(project / "run.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if count_actions(project / "run.jsonl") >= 4:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "stopping" in err
    finished = action_lines(project / "run.jsonl")
    assert 4 <= len(finished) < 200
    # Everything the store holds was recorded as succeeded, and nothing else.
    store = json.loads((project / "store.json").read_text())
    succeeded = {line["idnumber"] for line in finished}
    assert set(store) == succeeded
    assert "succeeded" in out  # the summary table
    not_started = 200 - len(finished)
    assert f"not started: {not_started} planned actions never began" in " ".join(out.split())
    code, out = invoke("run", str(project / "sync.toml"))
    assert code == 0
    code, out = invoke("plan", str(project / "sync.toml"), "--json")
    assert json.loads(out)["actions"] == []


def test_help_loads_no_connector() -> None:
    """``synctree --help`` imports neither SQLAlchemy nor httpx (the connectors load when used)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "synctree", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "plan" in result.stdout
    # -X importtime writes "import time: self | cumulative | module" per import to stderr.
    imported = {
        line.rpartition("|")[2].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "synctree" in imported  # the listing was read
    assert not imported & {"sqlalchemy", "httpx"}


class TestOneRunAtATime:
    @pytest.fixture(autouse=True)
    def processes(self) -> Iterator[list[subprocess.Popen[str]]]:
        """The `synctree run` processes a test started; none outlives it."""
        started: list[subprocess.Popen[str]] = []
        self.started = started
        yield started
        for process in started:
            if process.poll() is None:
                process.kill()
            process.communicate()

    def start(self, project: Path, *args: str) -> subprocess.Popen[str]:
        path = f"{project}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
        process = subprocess.Popen(
            [sys.executable, "-m", "synctree", "run", str(project / "sync.toml"), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path},
            text=True,
        )  # fmt: skip
        self.started.append(process)
        return process

    def wait_for_lines(self, log: Path, count: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if count_actions(log) >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"{log} never had {count} lines")

    def test_a_second_run_exits_2_at_once(self, project: Path) -> None:
        """Two `synctree run`s of one config: the second exits 2 at once; creates are done once."""
        write_csv(project, [(str(i), f"N{i}", 7) for i in range(200)])
        write_config(project, template_extra="delay = 0.05")
        first = self.start(project, "--log", str(project / "first.jsonl"))
        self.wait_for_lines(project / "first.jsonl", 2)
        started = time.monotonic()
        second = self.start(project, "--log", str(project / "second.jsonl"), "--json")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2, err
        assert time.monotonic() - started < 20
        assert "another synctree run" in err and str(project / "sync.toml") in err
        assert f"pid {first.pid}" in err
        assert out == "" and not (project / "second.jsonl").exists()
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert len(json.loads((project / "store.json").read_text())) == 200
        # The lock went with the process: the next run runs (and has nothing to do).
        code, out = invoke("run", str(project / "sync.toml"), "--json")
        assert code == 0 and json.loads(out)["totals"] == {}

    def test_wait_runs_after_the_first(self, project: Path) -> None:
        """--wait SECONDS: the second run waits for the first, then finds nothing to create."""
        write_csv(project, [(str(i), f"N{i}", 7) for i in range(200)])
        write_config(project, template_extra="delay = 0.05")
        first = self.start(project, "--log", str(project / "first.jsonl"))
        self.wait_for_lines(project / "first.jsonl", 2)
        second = self.start(project, "--wait", "60", "--log", str(project / "second.jsonl"))
        out2, err2 = second.communicate(timeout=90)
        out1, err1 = first.communicate(timeout=60)
        assert (first.returncode, second.returncode) == (0, 0), err1 + err2
        assert "waiting for another synctree run" in err2
        assert len(action_lines(project / "first.jsonl")) == 200
        assert action_lines(project / "second.jsonl") == []

    def test_wait_gives_up(self, project: Path) -> None:
        """--wait SECONDS that runs out exits 2 with the same message."""
        write_csv(project, [(str(i), f"N{i}", 7) for i in range(200)])
        write_config(project, template_extra="delay = 0.05")
        first = self.start(project, "--log", str(project / "first.jsonl"))
        self.wait_for_lines(project / "first.jsonl", 2)
        second = self.start(project, "--wait", "0.2")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2 and "another synctree run" in err, err
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err

    def test_plan_and_show_need_no_lock(self, project: Path) -> None:
        """plan, show and run --dry-run work while a run holds the lock."""
        write_csv(project, [(str(i), f"N{i}", 7) for i in range(200)])
        write_config(project, template_extra="delay = 0.05")
        first = self.start(project, "--log", str(project / "first.jsonl"))
        self.wait_for_lines(project / "first.jsonl", 2)
        assert invoke("plan", str(project / "sync.toml"))[0] == 0
        assert invoke("show", str(project / "sync.toml"))[0] == 0
        assert invoke("run", str(project / "sync.toml"), "--dry-run")[0] == 0
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err


class TestTheExecutable:
    """The ``synctree`` executable ends its process at once (no teardown) but loses nothing."""

    def run(self, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
        path = f"{project}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
        return subprocess.run(
            [sys.executable, "-m", "synctree", *args],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": path},
        )  # fmt: skip

    def test_output_atexit_handlers_and_log_survive(self, project: Path) -> None:
        """Piped output is whole, atexit handlers run, the run log is complete, exit 0;
        the objects it made are never freed one by one (no teardown)."""
        rows = [(str(i), f"N{i}", 7) for i in range(300)]
        write_csv(project, rows)
        (project / "jsonstore.py").write_text(
            STORE
            + "\nimport atexit\n"
            + "atexit.register(lambda: pathlib.Path(__file__).with_name('bye').write_text('x'))\n"
            + "class Torn:\n"
            + "    def __del__(self):\n"
            + "        pathlib.Path(__file__).with_name('torn').write_text('x')\n"
            + "TORN = Torn()\n"
        )
        log = project / "run.jsonl"
        result = self.run(project, "run", "--json", str(project / "sync.toml"), "--log", str(log))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["totals"] == {"succeeded": 300}
        assert (project / "bye").read_text() == "x"
        assert not (project / "torn").exists()  # the process was not torn down
        assert len(action_lines(log)) == 300
        assert json.loads(log.read_text().splitlines()[-1])["type"] == "end"

    def test_exit_codes(self, project: Path) -> None:
        """A failed action exits 1, a missing config 2, as when run in-process."""
        write_config(project, template_extra='fail = ["2"]')
        result = self.run(project, "run", str(project / "sync.toml"))
        assert result.returncode == 1, result.stderr
        assert "rejected by the store" in result.stdout + result.stderr
        result = self.run(project, "plan", str(project / "nope.toml"))
        assert result.returncode == 2 and "not found" in result.stderr

    def test_help_and_version(self, project: Path) -> None:
        """``--help`` and ``--version`` print in full and exit 0."""
        result = self.run(project, "--version")
        assert result.returncode == 0 and ", version " in result.stdout
        result = self.run(project, "--help")
        assert result.returncode == 0 and "Exit codes:" in result.stdout
        assert result.stdout.endswith("\n")
