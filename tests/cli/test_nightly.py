"""The unattended nightly job: the run log, ``synctree log``, notifications, the HTML report,
and configs that need no PYTHONPATH (custom code beside the config, factories, systems)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.cli.store import STORE_READER, write_store_config
from tests.cli.test_cli_auth import write_users
from tests.cli_runner import invoke
from tests.http_server import serve
from tests.scim_server import scim_server

__all__ = ["scim_server"]  # the fixture, used by name

SECRET = "Sup3rS3cretT0ken"  # read from ${NIGHTLY_TOKEN}: masked everywhere
PASSWORD = "hunter2-horse"  # a password column of a record

# A destination kept in a JSON file, whose "server" answers some creates with an HTTP
# error quoting the record (its password) and the token in its body.
STORE = (
    STORE_READER
    + '''
import httpx
from synctree.aio import AsyncTemplate, idempotent


def store_reader(path):
    """A factory: a function returning a reader."""
    return StoreReader(path)


class StoreTemplate(AsyncTemplate):
    max_deletes = None
    retries = 0

    def __init__(self, path, fail=(), token="", status=422):
        self.path = pathlib.Path(path)
        self.fail = set(fail)
        self.token = token
        self.status = status

    async def before_all(self):
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    async def after_all(self, report):
        self.path.write_text(json.dumps(self.data))

    async def new(self, action):
        if action.idnumber in self.fail and self.status == 0:
            raise ValueError(f"the server refused token {self.token}")
        if action.idnumber in self.fail:
            body = json.dumps({"error": "invalid user", "sent": action.source.to_dict(),
                               "echo": f"Bearer {self.token}", "token": self.token})
            request = httpx.Request("POST", "http://127.0.0.1:9/users")
            response = httpx.Response(self.status, text=body, request=request)
            raise httpx.HTTPStatusError(f"HTTP {self.status}", request=request, response=response)
        self.data[action.idnumber] = action.source.to_dict()

    async def update(self, action):
        self.data[action.idnumber].update(action.changes)

    async def old(self, action):
        del self.data[action.idnumber]


class FlakyTemplate(StoreTemplate):
    """Each create is throttled (429, Retry-After: 0) once, then fails with 503 once."""

    retries = 3
    tries = {}

    @idempotent
    async def new(self, action):
        count = self.tries[action.idnumber] = self.tries.get(action.idnumber, 0) + 1
        if count <= 2:
            status = 429 if count == 1 else 503
            headers = {"Retry-After": "0"} if status == 429 else {}
            request = httpx.Request("POST", "http://127.0.0.1:9/users")
            response = httpx.Response(status, headers=headers, request=request)
            raise httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)
        self.data[action.idnumber] = action.source.to_dict()


def store_template(path, fail=(), token=""):
    """A factory: a function returning a template."""
    return StoreTemplate(path, fail=fail, token=token)
'''
)


def write(folder: Path, *, reader: str = "nightlystore:StoreReader",
          template: str = "nightlystore:StoreTemplate", template_extra: str = "",
          extra: str = "") -> Path:  # fmt: skip
    """The config, with the template's ``token`` read from ``${NIGHTLY_TOKEN}``."""
    return write_store_config(
        folder,
        reader=reader,
        template=template,
        template_extra=f'token = "${{NIGHTLY_TOKEN}}"\n{template_extra}',
        extra=extra,
    )


def students(folder: Path, rows: list[tuple[str, str, int]]) -> None:
    lines = ["student_id,first,grade,password"]
    lines += [f"{i},{f},{g},{PASSWORD}" for i, f, g in rows]
    (folder / "students.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the store module beside its config (not on sys.path: the config's
    folder is what makes it importable)."""
    folder = tmp_path / f"school{len(str(tmp_path)) % 7}"
    folder.mkdir()
    # A module name per test: each test's folder holds its own copy.
    (folder / "nightlystore.py").write_text(STORE)
    monkeypatch.delitem(sys.modules, "nightlystore", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the config's folder is added per test
    monkeypatch.setenv("NIGHTLY_TOKEN", SECRET)
    students(folder, [("1", "Ann", 7), ("2", "Bob", 8), ("3", "Cid", 9)])
    write(folder)
    return folder


def lines_of(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


class TestRunLog:
    def test_header_actions_and_end(self, project: Path) -> None:
        """A run header, a line per action (records masked), an end line with the counts."""
        log = project / "run.jsonl"
        code, out = invoke("run", str(project / "sync.toml"), "--log", str(log))
        assert code == 0, out
        lines = lines_of(log)
        header, *actions, end = lines
        assert header["type"] == "run" and header["config"] == str(project / "sync.toml")
        assert header["planned"] == 3 and header["counts"] == {"students": {"new": 3}}
        assert header["version"] and header["started"].startswith("20")
        assert {line["run"] for line in lines} == {header["run"]}
        assert [a["outcome"] for a in actions] == ["succeeded"] * 3
        first = actions[0]
        assert first["record"] == {"first": "Ann", "grade": 7, "password": "***"}
        assert first["attempts"] == 1 and first["time"].startswith("20")
        assert first["calls"] and first["start"] <= first["end"]
        assert end["type"] == "end" and end["exit"] == 0 and end["ok"] is True
        assert end["counts"] == {"students": {"succeeded": 3}} and end["not_started"] == 0

    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_on_both_backends(self, project: Path, backend: str) -> None:
        """The run log is the same on asyncio and trio."""
        log = project / "run.jsonl"
        code, out = invoke("run", str(project / "sync.toml"), "--log", str(log),
                           "--backend", backend)  # fmt: skip
        assert code == 0, out
        kinds = [line["type"] for line in lines_of(log)]
        assert kinds == ["run", "action", "action", "action", "end"]

    def test_an_older_log_still_reads(self, project: Path) -> None:
        """synctree log reads a log of bare action lines (no type), and skips a torn line."""
        log = project / "old.jsonl"
        log.write_text(
            '{"idnumber": "1", "message": "new_students", "subbranch": "students", '
            '"outcome": "succeeded"}\n{"idnumber": "2", "mess'
        )
        code, out = invoke("log", str(log), "--json")
        assert code == 0 and json.loads(out)["counts"] == {"students": {"succeeded": 1}}

    def test_appends_and_records_old_and_new(self, project: Path) -> None:
        """A second run appends its lines; an update logs old and new, a removal the record."""
        log = project / "run.jsonl"
        invoke("run", str(project / "sync.toml"), "--log", str(log))
        students(project, [("1", "Ann", 8), ("3", "Cid", 9)])
        code, out = invoke("run", str(project / "sync.toml"), "--log", str(log))
        assert code == 0, out
        lines = lines_of(log)
        assert [line["type"] for line in lines].count("run") == 2
        second = [line for line in lines if line["run"] == lines[-1]["run"]]
        update = next(line for line in second if line.get("kind") == "update")
        assert update["idnumber"] == "1"
        assert update.get("changes", {}).get("grade") == {"old": 7, "new": 8} or (
            update["old"], update["new"]) == (7, 8)  # fmt: skip
        old = next(line for line in second if line.get("kind") == "old")
        assert old["record"]["first"] == "Bob" and old["record"]["password"] == "***"

    def test_failure_keeps_the_servers_body_masked(self, project: Path) -> None:
        """A failed action logs its error and the server's body; no secret reaches the log,
        the summary, `synctree log`, the HTML report or a notification."""
        write(project, template_extra='fail = ["2"]')
        log = project / "run.jsonl"
        code, out = invoke("run", str(project / "sync.toml"), "--log", str(log))
        assert code == 1
        assert "the server said (422)" in out and "invalid user" in out
        failed = next(line for line in lines_of(log) if line.get("outcome") == "failed")
        assert failed["status"] == 422 and "invalid user" in failed["response"]
        assert "HTTPStatusError" in failed["error"]
        _, summary = invoke("log", str(log))
        assert "new_students ('2')" in summary and "the server said (422)" in summary
        page = project / "out.html"
        assert invoke("report", str(log), "--html", str(page))[0] == 0
        for text in (log.read_text(), out, summary, page.read_text()):
            assert SECRET not in text and PASSWORD not in text
            assert SECRET[3:] not in text

    def test_log_dir_keeps_a_file_per_run_and_prunes(self, project: Path) -> None:
        """[log] dir: one file per run; files older than keep_days are deleted."""
        write(project, extra='[log]\ndir = "logs"\nkeep_days = 7')
        logs = project / "logs"
        logs.mkdir()
        stale = logs / "run-20200101T000000Z-old.jsonl"
        stale.write_text("{}\n")
        os.utime(stale, (time.time() - 8 * 86400,) * 2)
        other = logs / "notes.txt"
        other.write_text("kept")
        os.utime(other, (time.time() - 8 * 86400,) * 2)  # old, but not a run log
        assert invoke("run", str(project / "sync.toml"))[0] == 0
        time.sleep(1.1)  # the file names carry the second
        assert invoke("run", str(project / "sync.toml"))[0] == 0
        runs = sorted(logs.glob("run-*.jsonl"))
        assert len(runs) == 2 and not stale.exists() and other.exists()
        assert all(lines_of(path)[0]["type"] == "run" for path in runs)

    def test_synctree_log_json(self, project: Path) -> None:
        """synctree log --json: the last run's counts; --run ID picks another."""
        log = project / "run.jsonl"
        invoke("run", str(project / "sync.toml"), "--log", str(log))
        invoke("run", str(project / "sync.toml"), "--log", str(log))
        first = lines_of(log)[0]["run"]
        code, out = invoke("log", str(log), "--json")
        assert code == 0 and json.loads(out)["totals"] == {}
        code, out = invoke("log", str(log), "--json", "--run", first[:6])
        data = json.loads(out)
        assert data["counts"] == {"students": {"succeeded": 3}} and data["exit"] == 0
        assert invoke("log", str(log), "--run", "nope")[0] == 2

    def test_load_error_is_logged(self, project: Path) -> None:
        """A run that fails to load still leaves its header and end (exit 2, the error)."""
        log = project / "run.jsonl"
        (project / "students.csv").unlink()
        code, _ = invoke("run", str(project / "sync.toml"), "--log", str(log))
        assert code == 2
        header, end = lines_of(log)
        assert header["type"] == "run" and end["exit"] == 2 and "students.csv" in end["error"]


class TestFailingWell:
    def test_auth_failure_stops_at_once(self, project: Path) -> None:
        """A 401 on the first call stops the run with one message; the rest is skipped."""
        students(project, [(str(i), f"N{i}", 7) for i in range(1, 41)])
        write(project, template_extra=f"fail = {[str(i) for i in range(1, 41)]}\nstatus = 401")
        log = project / "run.jsonl"
        code, out = invoke("run", str(project / "sync.toml"), "--log", str(log), "--quiet")
        assert code == 1
        assert out.count("the run stopped") == 1 and "401" in out
        end = lines_of(log)[-1]
        assert end["stopped"] and end["totals"].get("failed", 0) <= 2  # concurrency 8: in flight
        assert end["totals"]["skipped"] >= 38

    def test_reader_error_shows_the_body(self, project: Path) -> None:
        """An HTTP reader's 403 says what the server said, its token field masked."""

        async def forbidden(request: Request) -> JSONResponse:
            body = {"error": "API key expired on 2026-11-30", "token": "tok-" + SECRET}
            return JSONResponse(body, status_code=403)

        app = Starlette(routes=[Route("/users", forbidden)])
        with serve(app) as base_url:
            config = project / "http.toml"
            config.write_text(
                '[sync]\nsubbranches = ["students"]\n'
                f'[source.students]\nreader = "http"\nclient_or_url = "{base_url}"\n'
                'path = "/users"\nretries = 0\n'
                '[template]\nuse = "nightlystore:StoreTemplate"\n'
                f'path = "{project / "store.json"}"\n'
            )
            code, out = invoke("plan", str(config))
        flat = " ".join(out.split())
        assert code == 2, out
        assert "HTTP 403 Forbidden" in flat and "API key expired on 2026-11-30" in flat
        assert SECRET not in flat and "tok-" not in flat


class TestLogging:
    def test_a_record_per_phase_and_per_failure(
        self, project: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The synctree logger: loading, the plan, each phase, each failure, the end; masked."""
        write(project, template_extra='fail = ["2"]\nstatus = 0')
        with caplog.at_level(logging.INFO, logger="synctree"):
            code, _ = invoke("run", str(project / "sync.toml"))
        assert code == 1
        messages = [r.getMessage() for r in caplog.records if r.name == "synctree"]
        assert any(m.startswith("loaded: source students 3") for m in messages), messages
        assert any(m.startswith("plan: 3 actions (new 3)") for m in messages)
        assert "phase: students changes, 3 actions" in messages
        failed = [m for m in messages if m.startswith("failed: new_students '2'")]
        assert len(failed) == 1 and "the server refused token ***" in failed[0]
        assert any(m.startswith("done: 3 actions") for m in messages)
        assert all(SECRET not in m for m in messages)


class Receiver:
    """A webhook receiver: keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> JSONResponse:
        self.bodies.append(json.loads(await request.body()))
        return JSONResponse({"ok": True})


class TestNotify:
    def test_webhook_on_failure_only(self, project: Path) -> None:
        """A failing run POSTs its summary (counts, failures, log path); a good one does not."""
        receiver = Receiver()
        with serve(receiver.app) as base_url:
            notify = f'[notify]\nwebhook = "{base_url}/hook"'
            write(project, template_extra='fail = ["2"]', extra=notify)
            log = project / "run.jsonl"
            assert invoke("run", str(project / "sync.toml"), "--log", str(log))[0] == 1
            students(project, [("1", "Ann", 7), ("3", "Cid", 9)])
            write(project, extra=notify)
            assert invoke("run", str(project / "sync.toml"))[0] == 0
        assert len(receiver.bodies) == 1
        body = receiver.bodies[0]
        assert body["exit"] == 1 and body["ok"] is False and body["log"] == str(log)
        assert body["counts"] == {"students": {"succeeded": 2, "failed": 1}}
        assert body["failures"][0]["examples"] == ["2"] and body["failures"][0]["status"] == 422
        assert body["run"] == lines_of(log)[0]["run"]
        text = json.dumps(body)
        assert SECRET not in text and PASSWORD not in text

    def test_a_run_that_cannot_load_notifies(self, project: Path) -> None:
        """A missing export (exit 2) notifies too, with the error: nothing ran tonight."""
        receiver = Receiver()
        with serve(receiver.app) as base_url:
            write(project, extra=f'[notify]\nwebhook = "{base_url}/hook"')
            (project / "students.csv").unlink()
            assert invoke("run", str(project / "sync.toml"))[0] == 2
        [body] = receiver.bodies
        assert body["exit"] == 2 and "students.csv" in body["error"] and body["totals"] == {}

    def test_command_always(self, project: Path) -> None:
        """A command gets the JSON summary on stdin and SYNCTREE_EXIT_CODE in its env."""
        script = project / "hook.py"
        script.write_text(
            "import json, os, sys, pathlib\n"
            "data = json.load(sys.stdin)\n"
            "data['env_exit'] = os.environ['SYNCTREE_EXIT_CODE']\n"
            "data['stdin'] = True\n"
            "out = pathlib.Path(sys.argv[1])\n"
            "out.write_text(out.read_text() + json.dumps(data) + '\\n' if out.exists()"
            " else json.dumps(data) + '\\n')\n"
        )
        received = project / "received.jsonl"
        command = json.dumps([sys.executable, str(script), str(received)])
        write(project, template_extra='fail = ["2"]',
              extra=f'[notify]\ncommand = {command}\non = "always"')  # fmt: skip
        assert invoke("run", str(project / "sync.toml"))[0] == 1
        body = json.loads(received.read_text())
        assert body["env_exit"] == "1" and body["failed"] == 1 and body["stdin"] is True
        assert SECRET not in received.read_text() and PASSWORD not in received.read_text()

    def test_a_failing_notification_is_a_warning(self, project: Path) -> None:
        """A webhook nobody answers: an error message, the run's own exit code."""
        write(project, extra='[notify]\nwebhook = "http://127.0.0.1:9/hook"\non = "always"')
        code, out = invoke("run", str(project / "sync.toml"))
        assert code == 0 and "[notify] webhook failed" in " ".join(out.split())

    def test_bad_notify_table(self, project: Path) -> None:
        """[notify] with an unknown key or a bad 'on' is exit 2 naming it."""
        write(project, extra='[notify]\nwebhook = "http://x"\non = "sometimes"')
        code, out = invoke("plan", str(project / "sync.toml"))
        assert code == 2 and "[notify], key 'on'" in out


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class TestHTMLReport:
    def make_report(self, project: Path) -> tuple[Path, Path]:
        write(project, template_extra='fail = ["2"]')
        students(project, [(str(i), f"N{i}", 7) for i in range(1, 8)])
        log = project / "run.jsonl"
        invoke("run", str(project / "sync.toml"), "--log", str(log))
        page = project / "report.html"
        code, out = invoke("report", str(log), "--html", str(page))
        assert code == 0, out
        return log, page

    def test_self_contained(self, project: Path) -> None:
        """One file: no external resource (no http(s):// URL, no src= or href= at all)."""
        _, page = self.make_report(project)
        text = page.read_text()
        assert "http://" not in text and "https://" not in text
        assert "src=" not in text and "href=" not in text and "@import" not in text
        assert 'id="total-succeeded">6<' in text and 'id="total-failed">1<' in text
        assert "<svg" in text and 'id="timeline"' in text

    def make_flaky_report(self, project: Path) -> tuple[Path, Path]:
        """A run whose creates are each throttled once and retried once."""
        write(project, template="nightlystore:FlakyTemplate",
              extra="[run]\nbackoff_base = 0.001\nbackoff_cap = 0.01\n")  # fmt: skip
        log = project / "run.jsonl"
        code, out = invoke("run", str(project / "sync.toml"), "--log", str(log))
        assert code == 0, out
        page = project / "report.html"
        assert invoke("report", str(log), "--html", str(page))[0] == 0
        return log, page

    def test_timeline_has_throttles_and_retries(self, project: Path) -> None:
        """The log has a throttle and a retry line per create; the page counts them."""
        log, page = self.make_flaky_report(project)
        lines = lines_of(log)
        throttles = [line for line in lines if line["type"] == "throttle"]
        retries = [line for line in lines if line["type"] == "retry"]
        actions = [line for line in lines if line["type"] == "action"]
        assert len(throttles) == 3 and "429" in throttles[0]["reason"]
        assert len(retries) == 6  # each throttle is retried too
        assert [len(a["calls"]) for a in actions] == [3, 3, 3]
        assert all(a["attempts"] == 3 for a in actions)
        text = page.read_text()
        assert 'id="calls">9<' in text and 'id="throttles">3<' in text
        assert 'id="retries">6<' in text and text.count('class="throttle"') == 3

    @pytest.mark.skipif(
        chromium() is None, reason="no chromium installed (apt-get install chromium)"
    )
    def test_renders_in_chromium(self, project: Path) -> None:
        """Headless Chromium renders the page with the run's numbers and its timeline."""
        _, page = self.make_report(project)
        browser = chromium()
        assert browser is not None
        result = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=2000",
             f"--user-data-dir={project / 'chromium-profile'}", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        dom = result.stdout
        assert 'id="total-actions">7<' in dom, result.stderr[-2000:]
        assert 'id="total-succeeded">6<' in dom and 'id="total-failed">1<' in dom
        assert 'data-subbranch="students" data-outcome="failed">1<' in dom
        assert dom.count('class="calls"') >= 1 and "new_students" in dom
        assert 'id="calls">7<' in dom and "invalid user" in dom  # the server's body


class TestConfigCode:
    def test_no_pythonpath_needed(self, project: Path) -> None:
        """A module beside the config imports without PYTHONPATH (a subprocess, cwd elsewhere)."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run(
            [sys.executable, "-m", "synctree", "run", str(project / "sync.toml"), "--json"],
            capture_output=True, text=True, env=env, cwd="/", timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["totals"] == {"succeeded": 3}

    def test_factories(self, project: Path) -> None:
        """A function returning a reader, and one returning a template, are accepted."""
        write(project, reader="nightlystore:store_reader", template="nightlystore:store_template")
        code, out = invoke("run", str(project / "sync.toml"))
        assert code == 0, out
        assert len(json.loads((project / "store.json").read_text())) == 3

    def test_branch_level_factory(self, project: Path) -> None:
        """A factory named in a branch table (no subbranch tables) gives every subbranch
        through the .readers() of what it returns."""
        (project / "multifactory.py").write_text(
            "from nightlystore import StoreReader\n"
            "class Both:\n"
            "    def __init__(self, path):\n"
            "        self.path = path\n"
            "    def readers(self):\n"
            "        return {'students': StoreReader(self.path)}\n"
            "def make(path):\n"
            "    return Both(path)\n"
        )
        text = (
            (project / "sync.toml")
            .read_text()
            .replace("[destination.students]", "[destination]")
            .replace('reader = "nightlystore:StoreReader"', 'reader = "multifactory:make"')
        )
        (project / "sync.toml").write_text(text)
        assert invoke("run", str(project / "sync.toml"))[0] == 0
        code, out = invoke("plan", str(project / "sync.toml"), "--json")
        assert code == 0 and json.loads(out)["actions"] == []

    def test_factory_returning_something_else(self, project: Path) -> None:
        """A factory that returns no reader is exit 2, naming the table and what it returned."""
        (project / "badfactory.py").write_text("def make(path):\n    return 42\n")
        write(project, reader="badfactory:make")
        code, out = invoke("plan", str(project / "sync.toml"))
        flat = " ".join(out.split())
        assert code == 2 and "[destination.students], key 'reader'" in flat
        assert "returned int" in flat


SYSTEMS = """\
[sync]
subbranches = ["students"]

[systems.school_db]
url = "sqlite+aiosqlite:///school.db"

[source.students]
reader = "csv"
path = "students.csv"
key = "student_id"
types = { grade = "int" }

[destination]
reader = "sql"
system = "school_db"
key = "idnumber"
missing_ok = true

[template]
use = "sql"
system = "school_db"
create_tables = true
"""


class TestSystems:
    def test_one_url_for_reader_and_template(self, project: Path) -> None:
        """[systems.NAME] names the database once; the reader and the template share it."""
        (project / "sync.toml").write_text(SYSTEMS)
        code, out = invoke("run", str(project / "sync.toml"))
        assert code == 0, out
        assert (project / "school.db").exists()
        code, out = invoke("plan", str(project / "sync.toml"), "--json")
        assert code == 0 and json.loads(out)["actions"] == []

    def test_a_run_of_new_rows_logged(self, project: Path) -> None:
        """New rows written in bulk: the run log's header counts them, a line per action."""
        (project / "sync.toml").write_text(SYSTEMS)
        log = project / "run.jsonl"
        code, out = invoke("run", str(project / "sync.toml"), "--log", str(log))
        assert code == 0, out
        header, *actions, end = lines_of(log)
        assert header["planned"] == 3 and header["counts"] == {"students": {"new": 3}}
        assert sorted(a["idnumber"] for a in actions) == ["1", "2", "3"]
        assert end["counts"] == {"students": {"succeeded": 3}}

    def test_one_table_for_an_api_and_its_credentials(
        self, scim_server: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A SCIM app's URL and bearer token, named once: the reader and template share them."""
        url, token = scim_server
        monkeypatch.setenv("SCIM_TOKEN", token)
        write_users(tmp_path, ["Ann", "Bob"])
        config = tmp_path / "sync.toml"
        config.write_text(
            '[sync]\nsubbranches = ["users"]\n'
            f'[systems.scim_app]\nurl = "{url}"\n'
            'auth = { type = "bearer", token = "${SCIM_TOKEN}" }\n'
            '[source.users]\nreader = "csv"\npath = "users.csv"\nkey = "idnumber"\n'
            '[destination.users]\nreader = "scim"\nsystem = "scim_app"\nresource = "Users"\n'
            '[template]\nuse = "scim"\nsystem = "scim_app"\nresources = { users = "Users" }\n'
        )
        code, out = invoke("run", str(config))
        assert code == 0, out
        assert token not in out
        code, out = invoke("plan", str(config), "--json")
        assert code == 0 and json.loads(out)["actions"] == [], out

    def test_oneroster_service_from_a_system(self, tmp_path: Path) -> None:
        """reader = "oneroster" with a system's url (and auth) reads the REST service."""
        from synctree._cli._config import Config

        config = tmp_path / "sync.toml"
        config.write_text(
            '[sync]\nsubbranches = ["students"]\n'
            '[systems.sis]\nurl = "https://sis.example.org/ims/oneroster/v1p1"\n'
            'auth = { type = "bearer", token = "abc" }\n'
            '[source]\nreader = "oneroster"\nsystem = "sis"\nversion = "1.1"\n'
            '[template]\nuse = "csv"\npath = "out.csv"\nkey = "idnumber"\n'
        )
        [spec] = Config(config).readers
        assert spec.battery == "oneroster_api"
        assert spec.options["url"] == "https://sis.example.org/ims/oneroster/v1p1"
        assert type(spec.options["auth"]).__name__ == "BearerAuth"

    def test_a_systems_reader_and_template_share_one_credential(self, tmp_path: Path) -> None:
        """One auth object for a system: its OAuth token is fetched once, not per user."""
        from synctree._cli._config import Config

        config = tmp_path / "sync.toml"
        config.write_text(
            '[sync]\nsubbranches = ["users"]\n'
            '[systems.app]\nurl = "https://app.example.org/scim/v2"\n'
            'auth = { type = "oauth2", token_url = "https://app.example.org/token", '
            'client_id = "synctree", client_secret = "${APP_SECRET}" }\n'
            '[systems.other]\nurl = "https://other.example.org/scim/v2"\n'
            'auth = { type = "oauth2", token_url = "https://other.example.org/token", '
            'client_id = "synctree", client_secret = "${APP_SECRET}" }\n'
            '[source.users]\nreader = "scim"\nsystem = "other"\nresource = "Users"\n'
            '[destination.users]\nreader = "scim"\nsystem = "app"\nresource = "Users"\n'
            '[template]\nuse = "scim"\nsystem = "app"\nresources = { users = "Users" }\n'
        )
        cfg = Config(config, environ={"APP_SECRET": "s3cret-4b1d"})
        source, destination = cfg.readers
        _, template = cfg.template
        assert destination.options["auth"] is template["auth"]
        assert source.options["auth"] is not template["auth"]  # another token endpoint
        assert type(template["auth"]).__name__ == "OAuth2ClientCredentials"

    def test_unknown_system(self, project: Path) -> None:
        """A system nobody declared is exit 2 naming the table and the known systems."""
        (project / "sync.toml").write_text(SYSTEMS.replace('system = "school_db"\ncreate',
                                                           'system = "sis"\ncreate'))  # fmt: skip
        code, out = invoke("plan", str(project / "sync.toml"))
        flat = " ".join(out.split())
        assert code == 2 and "[template], key 'system': unknown system 'sis'" in flat
        assert "school_db" in flat

    def test_unused_key(self, project: Path) -> None:
        """A system key no reader or template takes is an error, not silently dropped."""
        text = SYSTEMS.replace('school.db"\n', 'school.db"\nhedaers = { X = "1" }\n', 1)
        (project / "sync.toml").write_text(text)
        code, out = invoke("plan", str(project / "sync.toml"))
        assert code == 2 and "[systems.school_db], key 'hedaers'" in " ".join(out.split())


class TestProgress:
    def test_bars_show_rate_and_eta(self) -> None:
        """On a terminal, each subbranch's bar shows its count, rate and time remaining."""
        import io

        from rich.console import Console

        from synctree import Action, Kind, Outcome, Result
        from synctree._cli._output import Output
        from synctree._cli._progress import RunProgress
        from synctree.aio import Event, EventKind

        output = Output(quiet=False, verbose=False, as_json=False)
        screen = io.StringIO()
        output.err = Console(file=screen, force_terminal=True, width=150)
        actions = [Action(str(i), "new_students", "students", Kind.NEW) for i in range(10)]
        with RunProgress(output) as progress:
            progress.observe(Event(EventKind.PLANNED, total=10, plan=tuple(actions)))
            for action in actions[:4]:
                progress.observe(Event(EventKind.STARTED, action=action, attempt=1))
                time.sleep(0.02)
                result = Result(action, Outcome.SUCCEEDED)
                progress.observe(Event(EventKind.FINISHED, action=action, result=result))
            progress.bars.refresh()
        text = screen.getvalue()
        assert "4/10" in text and "/s" in text and "eta" in text
        assert re.search(r"\d+(\.\d)?/s", text), text
