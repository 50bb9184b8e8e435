"""The main job: the school example syncs the OneRoster sample into SQLite, then converges."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def school(tmp_path: Path) -> Path:
    """A copy of examples/school and the OneRoster exports, so the database lands in tmp."""
    shutil.copytree(EXAMPLES / "school", tmp_path / "school", ignore=shutil.ignore_patterns("*.db"))
    shutil.copytree(EXAMPLES / "oneroster", tmp_path / "oneroster")
    return tmp_path / "school" / "sync.toml"


def synctree(*args: str, export: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SCHOOL_EXPORT"}
    if export is not None:
        env["SCHOOL_EXPORT"] = export
    return subprocess.run(
        [sys.executable, "-m", "synctree", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def plan(config: Path, export: str | None = None) -> list[dict[str, object]]:
    result = synctree("plan", str(config), "--json", export=export)
    assert result.returncode == 0, result.stderr
    actions: list[dict[str, object]] = json.loads(result.stdout)["actions"]
    return actions


def test_entry_point() -> None:
    """``synctree`` is installed as a console script."""
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "synctree"]
    assert script.value == "synctree._cli:main"


def test_first_run_loads_everything_then_converges(school: Path) -> None:
    """The first run creates the database with every row; running again changes nothing."""
    result = synctree("run", str(school))
    assert result.returncode == 0, result.stderr
    assert "new_students" in result.stdout and "1649" in result.stdout
    with sqlite3.connect(school.parent / "school.db") as db:
        counts = {
            table: db.execute(f"select count(*) from {table}").fetchone()[0]
            for table in ("orgs", "courses", "classes", "students", "staff", "enrollments")
        }
    assert counts == {
        "orgs": 3, "courses": 28, "classes": 42, "students": 300, "staff": 33, "enrollments": 1243
    }  # fmt: skip
    assert plan(school) == []
    again = synctree("run", str(school))
    assert again.returncode == 0 and "0 actions" in again.stdout


def test_changed_export_gives_exactly_its_changes(school: Path) -> None:
    """The changed export plans exactly what CHANGES.md lists, and applying it converges."""
    assert synctree("run", str(school)).returncode == 0
    actions = {(a["message"], a["idnumber"], a.get("value")) for a in plan(school, "changed")}
    leavers = ["stu-0016", "stu-0270", "stu-0125", "stu-0279", "stu-0142"]
    joiners = ["stu-0301", "stu-0302", "stu-0303"]
    regraded = {"stu-0188": ("12", "11"), "stu-0166": ("09", "10"), "stu-0185": ("11", "12")}
    moved = {"enr-00964": "enr-01244", "enr-01160": "enr-01245", "enr-00180": "enr-01246"}
    sample = EXAMPLES / "oneroster" / "sample" / "enrollments.csv"
    changed = EXAMPLES / "oneroster" / "changed" / "enrollments.csv"
    with sample.open(encoding="utf-8") as before, changed.open(encoding="utf-8") as after:
        old_rows = {r["sourcedId"]: r["userSourcedId"] for r in csv.DictReader(before)}
        new_rows = {
            r["sourcedId"]: r["userSourcedId"]
            for r in csv.DictReader(after)
            if r["status"] != "tobedeleted"
        }
    gone = {key for key, user in old_rows.items() if user in leavers}
    joined = {key for key, user in new_rows.items() if user in joiners}
    assert len(gone) == 5 * 4 and len(joined) == 3 * 4
    assert actions == {
        *{("old_students", s, None) for s in leavers},
        *{("new_students", s, None) for s in joiners},
        *{("update_students_grade", s, new) for s, (_old, new) in regraded.items()},
        *{("add_students_grades", s, new) for s, (_old, new) in regraded.items()},
        *{("remove_students_grades", s, old) for s, (old, _new) in regraded.items()},
        *{("old_enrollments", e, None) for e in gone | set(moved)},
        *{("new_enrollments", e, None) for e in joined | set(moved.values())},
    }
    result = synctree("run", str(school), export="changed")
    assert result.returncode == 0, result.stderr
    assert plan(school, "changed") == []
    with sqlite3.connect(school.parent / "school.db") as db:
        classes = {
            row[0] for row in db.execute("select class from enrollments where user = 'stu-0231'")
        }
    assert "cls-math-11-b" in classes and "cls-math-11-a" not in classes


def test_show_one_student(school: Path) -> None:
    """``synctree show`` prints one student on both sides."""
    assert synctree("run", str(school)).returncode == 0
    result = synctree("show", str(school), "students", "stu-0188", export="changed")
    assert result.returncode == 0, result.stderr
    grade = next(line for line in result.stdout.splitlines() if line.startswith("grade"))
    assert "'11'" in grade and "'12'" in grade and "differs" in grade
