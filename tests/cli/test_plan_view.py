"""Readable plans: lines grouped by subbranch, warnings, and plan's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.test_cli import invoke, project, write_config, write_csv

__all__ = ["project"]  # the fixture, used by name


def config(project: Path) -> str:
    return str(project / "sync.toml")


class TestReadablePlan:
    def test_lines_grouped_by_subbranch(self, project: Path) -> None:
        """Updates read 'students  ID (name)  attribute old → new', creates and removals too."""
        invoke("run", config(project))
        write_csv(project, [("1", "Ann", 8), ("3", "Cid", 9), ("4", "Dee", 7)])
        code, out = invoke("plan", config(project))
        assert code == 0, out
        assert "students (1 new, 1 updated, 1 to remove)" in out
        assert "students  1 (Ann)  grade 7 → 8" in out
        assert "students  4 (Dee)  new" in out
        assert "students  2 (Bob)  remove" in out

    def test_display_attribute(self, project: Path) -> None:
        """[sync] display names the attribute (or format) shown in parentheses."""
        text = (project / "sync.toml").read_text()
        text = text.replace('subbranches = ["students"]', 'subbranches = ["students"]\n'
                            'display = { students = "{first} in grade {grade}" }')  # fmt: skip
        (project / "sync.toml").write_text(text)
        code, out = invoke("plan", config(project))
        assert code == 0 and "students  2 (Bob in grade 8)  new" in out, out

    def test_json_lines(self, project: Path) -> None:
        """plan --json holds the same lines, by subbranch, with counts and notes."""
        invoke("run", config(project))
        write_csv(project, [("1", "Ann", 8), ("2", "Bob", 8), ("3", "Cid", 9)])
        code, out = invoke("plan", config(project), "--json")
        data = json.loads(out)
        assert code == 0
        students = data["subbranches"]["students"]
        assert students["counts"] == {"update": 1}
        assert [line["line"] for line in students["lines"]] == ["students  1 (Ann)  grade 7 → 8"]
        assert students["lines"][0]["display"] == "Ann"
        assert data["warnings"] == [] and data["errors"] == []

    def test_json_small_indented_big_compact(self, project: Path) -> None:
        """A small plan's JSON is indented for people; a big one is one compact line."""
        code, out = invoke("plan", config(project), "--json")
        assert code == 0 and out.startswith("{\n  ")
        write_csv(project, [(str(i), f"Name {i}", 7) for i in range(2000)])
        code, out = invoke("plan", config(project), "--json")
        assert code == 0 and out.count("\n") == 1, out[:200]
        data = json.loads(out)
        assert data["summary"]["students"] == {"new": 2000}
        assert len(data["subbranches"]["students"]["lines"]) == 2000

    def test_json_plan_needs_no_rich(self, project: Path) -> None:
        """plan --json prints nothing through rich, so it does not import it."""
        code = (
            "import sys, io, contextlib; from synctree._cli import main; "
            f"sys.argv = ['synctree', 'plan', '--json', {config(project)!r}]\n"
            "try:\n"
            "    with contextlib.redirect_stdout(io.StringIO()): main()\n"
            "except SystemExit as done:\n"
            "    assert done.code == 0, done.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"

    def test_limit(self, project: Path) -> None:
        """Only --limit lines per subbranch, saying how many more; --verbose shows all."""
        write_csv(project, [(str(i), f"N{i}", 7) for i in range(10)])
        _, out = invoke("plan", config(project), "--limit", "3")
        assert "… 7 more students lines" in out and "students  3 (N3)" not in out
        _, out = invoke("plan", config(project), "--limit", "3", "--verbose")
        assert "students  9 (N9)  new" in out


class TestPlanWarnings:
    def test_max_deletes_warns_and_check_exits_3(self, project: Path) -> None:
        """A plan that a run would stop at warns (exit 0), and exits 3 with --check."""
        invoke("run", config(project))
        write_csv(project, [("1", "Ann", 7)])
        code, out = invoke("plan", config(project), "--max-deletes", "1")
        assert code == 0, out
        flat = " ".join(out.split())
        assert "warning: a run would stop here: the plan removes 2 of 3 students" in flat
        assert "--force" in flat and "--max-deletes 25%" in flat
        assert "force=True" not in flat
        assert invoke("plan", config(project), "--max-deletes", "1", "--check")[0] == 3
        assert invoke("plan", config(project), "--max-deletes", "2", "--check")[0] == 0

    def test_max_deletes_from_the_config(self, project: Path) -> None:
        """[run] max_deletes counts for plan's warning as it does for a run."""
        invoke("run", config(project))
        write_config(project, run="max_deletes = 1")
        write_csv(project, [("1", "Ann", 7)])
        code, out = invoke("plan", config(project), "--check")
        assert code == 3 and "a run would stop here" in " ".join(out.split())

    def test_safety_stop_names_the_flags(self, project: Path) -> None:
        """The hint after a safety stop says --force and --max-deletes, not force=True."""
        invoke("run", config(project))
        write_csv(project, [("1", "Ann", 7)])
        code, out = invoke("run", config(project), "--max-deletes", "1")
        flat = " ".join(out.split())
        assert code == 3
        assert "run with --force" in flat and "--max-deletes 25%" in flat
        assert "force=True" not in flat

    def test_error_actions_exit_1_with_the_fix(self, project: Path) -> None:
        """A plan with differences it cannot judge (7 against '7') exits 1 naming the fix."""
        invoke("run", config(project))
        text = (project / "sync.toml").read_text().replace('types = { grade = "int" }', "")
        (project / "sync.toml").write_text(text)
        code, out = invoke("plan", config(project))
        flat = " ".join(out.split())
        assert code == 1, out
        assert "3 students objects (first: '1') cannot be compared on 'grade'" in flat
        assert 'declare types = { grade = "int" } in [source.students]' in flat
        code, out = invoke("plan", config(project), "--json")
        assert code == 1
        assert "declare types" in json.loads(out.partition("\nerror:")[0])["errors"][0]

    def test_only_unknown_id_warns(self, project: Path) -> None:
        """--only naming an id no branch holds warns, in plan and in run."""
        code, out = invoke("plan", config(project), "--only", "404", "--only", "2")
        flat = " ".join(out.split())
        assert code == 0 and "--only '404': no object has this id" in flat
        assert "'2'" not in flat.partition("warning")[2]
        code, out = invoke("run", config(project), "--only", "404")
        assert code == 0 and "--only '404': no object has this id" in " ".join(out.split())

    def test_nothing_to_do(self, project: Path) -> None:
        """A converged plan says so."""
        write_config(project)
        invoke("run", config(project))
        code, out = invoke("plan", config(project))
        assert code == 0 and "nothing to do" in out


class TestNotes:
    def test_notes_under_their_subbranch(self, project: Path) -> None:
        """A reader's notes print one line each under their subbranch, in text and JSON,
        and reach the run log's header."""
        (project / "partialnotes.py").write_text(
            "from synctree.aio import Batch\n"
            "class Absent:\n"
            "    def __init__(self, **_):\n"
            "        pass\n"
            "    async def batches(self):\n"
            "        yield Batch([], coverage='absent', notes=(\n"
            "            'students: not in this export (manifest.csv: absent); left untouched',\n"
            "            'students.csv line 7: a warning'))\n"
        )
        invoke("run", config(project))
        text = (project / "sync.toml").read_text()
        text = text.replace('reader = "csv"', 'reader = "partialnotes:Absent"')
        (project / "sync.toml").write_text(text)
        code, out = invoke("plan", config(project))
        assert code == 0, out
        heading = out.index("students (no changes)")
        first = out.index(
            "  note: source students: not in this export (manifest.csv: absent); left untouched"
        )
        second = out.index("  note: source students: students.csv line 7: a warning")
        assert heading < first < second
        code, out = invoke("plan", config(project), "--json")
        notes = json.loads(out)["subbranches"]["students"]["notes"]
        assert notes == [
            "source students: not in this export (manifest.csv: absent); left untouched",
            "source students: students.csv line 7: a warning",
        ]
        log = project / "run.jsonl"
        invoke("run", config(project), "--log", str(log))
        header = json.loads(log.read_text().splitlines()[0])
        assert header["notes"] == {"students": notes}
