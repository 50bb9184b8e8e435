"""Real exports that vendors publish as test fixtures: each loads, syncs into SQLite, converges.

The exports are read in place from ``../shared/real/oneroster/`` (see
``tests/real_data.py``); the tests skip, saying where they looked, without them.
For each: exactly what was loaded per subbranch, its coverage, and the warnings.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from synctree import SyncTree
from synctree.aio.oneroster import OneRoster
from tests.cli_runner import invoke
from tests.real_data import real_data

from .exports import write_config

ABSENT = "absent"
NOT_IN = "not in this export ({}); left untouched"
COURSES_ABSENT = "manifest.csv: file.courses=absent"
DEMOGRAPHICS_ABSENT = "manifest.csv: file.demographics=absent"
NO_PROFILES_1_1 = "OneRoster 1.1 has no userProfiles.csv"
DROPPED_CLASS = (
    "enrollments.csv line {}: class 'cls-222-123478' is not in the export; enrollment left out"
)

# export -> subbranch -> (coverage, rows loaded, notes)
EXPECTED: dict[str, dict[str, tuple[str, int, list[str]]]] = {
    "catalyst-1p1-full.zip": {
        "orgs": ("full", 1, []),
        "sessions": ("full", 4, []),  # one of five is tobedeleted
        "courses": (ABSENT, 0, [NOT_IN.format(COURSES_ABSENT)]),
        "classes": ("full", 1, [f"the course of each row is not checked ({COURSES_ABSENT})"]),
        "students": ("full", 3, []),
        "staff": ("full", 2, []),
        "guardians": ("full", 1, []),
        "enrollments": ("full", 3, [DROPPED_CLASS.format(n) for n in (5, 6, 7)]),
        "demographics": (ABSENT, 0, [NOT_IN.format(DEMOGRAPHICS_ABSENT)]),
        "user_profiles": (ABSENT, 0, [NOT_IN.format(NO_PROFILES_1_1)]),
    },
    "catalyst-1p1-minimal.zip": {
        "orgs": ("full", 1, []),
        "sessions": ("full", 5, []),
        "courses": (ABSENT, 0, [NOT_IN.format(COURSES_ABSENT)]),
        "classes": ("full", 2, [f"the course of each row is not checked ({COURSES_ABSENT})"]),
        "students": ("full", 3, []),
        "staff": ("full", 2, []),
        "guardians": ("full", 1, []),
        "enrollments": ("full", 6, []),
        "demographics": (ABSENT, 0, [NOT_IN.format(DEMOGRAPHICS_ABSENT)]),
        "user_profiles": (ABSENT, 0, [NOT_IN.format(NO_PROFILES_1_1)]),
    },
    "catalyst-1p2-full.zip": {
        "orgs": ("full", 1, []),
        "sessions": ("full", 4, []),
        "courses": (ABSENT, 0, [NOT_IN.format(COURSES_ABSENT)]),
        "classes": ("full", 1, [f"the course of each row is not checked ({COURSES_ABSENT})"]),
        "students": ("full", 3, []),
        "staff": ("full", 3, []),  # two teachers, and a user whose only role is siteAdministrator
        "guardians": ("full", 0, ["none in this export"]),
        "enrollments": ("full", 3, [DROPPED_CLASS.format(n) for n in (5, 6, 7)]),
        "demographics": (ABSENT, 0, [NOT_IN.format(DEMOGRAPHICS_ABSENT)]),
        "user_profiles": (
            ABSENT,
            0,
            [
                NOT_IN.format(
                    "manifest.csv gives file.userProfiles no value, read as absent; "
                    "userprofiles.csv is there but not read"
                )
            ],
        ),
    },
    "catalyst-1p2-small.zip": {
        name: ("delta", 0 if name in ("staff", "guardians") else 1, [])
        for name in OneRoster.subbranches
    },
    "oat-sa-1p1": {
        "orgs": ("full", 2, []),
        "sessions": ("full", 0, ["none in this export"]),  # header-only files marked bulk
        "courses": ("full", 0, ["none in this export"]),
        "classes": (
            "full",
            3,
            [f"classes.csv line {n}: the class has no course" for n in (2, 3, 4)],
        ),
        "students": ("full", 2, []),
        "staff": ("full", 0, ["none in this export"]),
        "guardians": ("full", 0, ["none in this export"]),
        "enrollments": ("full", 3, []),
        "demographics": ("full", 0, ["none in this export"]),
        "user_profiles": (
            ABSENT,
            0,
            [NOT_IN.format(NO_PROFILES_1_1)],
        ),
    },
}


async def load(path: Path) -> SyncTree:
    tree = SyncTree(["source"], list(OneRoster.subbranches))
    await tree.load(source=OneRoster(path).readers())
    return tree


def loaded(tree: SyncTree) -> dict[str, tuple[str, int, list[str]]]:
    """What the tree holds: per subbranch, coverage, rows and notes (without the prefix)."""
    return {
        sub.name: (
            sub.coverage,
            len(sub),
            [note.removeprefix(sub.name + ": ") for note in sub.notes],
        )
        for sub in tree.source
    }


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_what_each_export_gives(name: str) -> None:
    """Rows per subbranch, coverage and warnings of each real export, exactly."""
    tree = await load(real_data("oneroster", name))
    assert loaded(tree) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_export_syncs_into_sqlite_and_converges(tmp_path: Path, name: str) -> None:
    """``synctree run`` loads every export into SQLite; the second plan is empty."""
    export = real_data("oneroster", name)
    config = write_config(tmp_path, export)
    code, out = invoke("run", str(config))
    assert code == 0, out
    with sqlite3.connect(tmp_path / "school.db") as db:
        tables = {
            row[0] for row in db.execute("select name from sqlite_master where type = 'table'")
        }
        counts = {
            table: db.execute(f"select count(*) from {table}").fetchone()[0] for table in tables
        }
    expected = {sub: rows for sub, (_cov, rows, _notes) in EXPECTED[name].items() if rows}
    assert counts == expected
    code, out = invoke("plan", str(config), "--json")
    assert code == 0, out
    plan: dict[str, Any] = json.loads(out)
    assert plan["actions"] == []
    expected_notes = [
        f"source {sub}: {note}" for sub, (_c, _r, notes) in EXPECTED[name].items() for note in notes
    ]
    assert plan["notes"] == expected_notes


def test_catalyst_details(tmp_path: Path) -> None:
    """Quoted multi-value fields, userIds, agents, parents, enrollment roles, no passwords."""
    export = real_data("oneroster", "catalyst-1p1-full.zip")
    config = write_config(tmp_path, export)
    code, out = invoke("run", str(config), "--log", str(tmp_path / "run.jsonl"))
    assert code == 0, out
    with sqlite3.connect(tmp_path / "school.db") as db:
        db.row_factory = sqlite3.Row
        klass = dict(db.execute("select * from classes").fetchone())
        parent = dict(db.execute("select * from guardians").fetchone())
        teacher = dict(
            db.execute("select * from staff where idnumber = 'usr-222-123456'").fetchone()
        )
        enrollment = dict(
            db.execute(
                "select * from enrollments where idnumber = 'enr-t-222-12345-123456'"
            ).fetchone()
        )
        dump = "\n".join(db.iterdump())
    assert set(klass["grades"].split(";")) == {"09", "10", "11"}
    assert set(klass["subjects"].split(";")) == {"Science", "Physics", "Biology"}
    assert parent["role"] == "parent" and parent["agents"] == "usr-222-66778899"
    assert set(parent["user_ids"].split(";")) == {"{LDAP:12}", "{LTI:15}", "{Fed:23}"}
    assert (teacher["role"], teacher["middle"], teacher["enabled"]) == ("teacher", "Michael", 1)
    assert enrollment["role"] == "teacher" and enrollment["primary"] == 0
    assert (enrollment["begin"], enrollment["end"]) == ("2022-03-15", "2022-06-15")
    log = (tmp_path / "run.jsonl").read_text(encoding="utf-8")
    for text in (dump, out, log):
        assert "Password1-" not in text


@pytest.mark.anyio
async def test_catalyst_1p2_roles() -> None:
    """1.2: roles.csv gives each user's roles at their orgs; the primary role places them."""
    tree = await load(real_data("oneroster", "catalyst-1p2-full.zip"))
    teacher = tree.source.staff["usr-222-123456"]
    assert teacher.role == "teacher"
    assert teacher.roles == {"teacher@org-sch-222-456", "guardian@org-sch-222-456"}
    assert teacher.pronouns == "he/him/his" and teacher.school == "org-sch-222-456"
    # misspelled "prefferedMiddleName" is read as preferredMiddleName (not a mapped attribute)
    assert teacher._preferredMiddleName == "Mick"
    admin = tree.source.staff["usr-222-1234561"]  # a secondary role only
    assert (admin.role, admin.preferred_first, admin.preferred_last) == (
        "siteadministrator",
        "Tom",
        "Paulsy",
    )
    student = tree.source.students["usr-222-66778899"]
    assert student.preferred_first == "MJ" and student.pronouns == "she/her/hers"


@pytest.mark.anyio
async def test_oat_sa_details() -> None:
    """Reordered columns, 1.0 names, ext_* and metadata.* carried, a vendor password dropped."""
    tree = await load(real_data("oneroster", "oat-sa-1p1"))
    user = tree.source.students["user1"]
    assert (user.first, user.last, user.username, user.school) == (
        "ionut",
        "padurariu",
        "ionut",
        "12345",
    )
    assert user.user_ids == {"abc"}  # the 1.0 column userId
    assert user._ext_tao_userMotherName == "metadata.value1"
    assert not [name for name in vars(user) if "assword" in name]
    org = tree.source.orgs["12345"]
    assert org.parent == "54321"
    assert vars(org)["_metadata.classification"] == "Classification 1"
    assert tree.source.enrollments["enrol2"].user == "user1"
