"""OneRoster export → the Google emulator: accounts, OUs, groups, courses; convergence."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import pytest

from synctree import Outcome
from tests.google_emulator import GoogleEmulator

from .conftest import counts, sync

pytestmark = pytest.mark.anyio

STUDENT_OU = "/Students/Middle School/06"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _by_key(emulator: GoogleEmulator) -> dict[str, dict[str, object]]:
    out = {}
    for user in emulator.users.values():
        for entry in user.get("externalIds") or ():
            if entry.get("type") == "organization":
                out[entry["value"]] = user
    return out


class TestSchoolExport:
    async def test_first_run_second_plan_changed_export(
        self, url: str, emulator: GoogleEmulator, tmp_path: Path
    ) -> None:
        """The sample creates everything; a second plan is empty; the changed export gives
        exactly its actions and effects; a plan after it is empty again."""
        passwords = tmp_path / "passwords.csv"
        first = await sync(url, passwords=passwords)
        assert first.ok, first
        assert counts(first) == {
            "new_users": 333,
            "new_groups": 42,
            "new_members": 1243,  # a membership each: batched, never chained
            "new_courses": 42,
        }
        users = _by_key(emulator)
        assert len(users) == 333
        ben = users["stu-0016"]  # Ben Santos, grade 06 at the middle school
        assert ben["orgUnitPath"] == STUDENT_OU
        assert ben["changePasswordAtNextLogin"] is True
        assert users["tch-001"]["primaryEmail"] == "ben.walker@maplevalley.example.org"
        assert users["tch-001"]["orgUnitPath"] == "/Staff/Middle School"
        # Students of the same name: one gets the pattern's address, the other a digit.
        twins = sorted(
            u["primaryEmail"]
            for u in users.values()
            if u["name"]["givenName"] == "Aiden" and u["name"]["familyName"] == "Ito"
        )
        assert twins == [
            "aiden.ito2@students.maplevalley.example.org",
            "aiden.ito@students.maplevalley.example.org",
        ]
        # A group per class with its people; a course per class with its roster.
        group = emulator.group_members("math6-a@groups.maplevalley.example.org")
        teachers, students = emulator.roster("d:cls-math-06-a")
        assert "ben.walker@maplevalley.example.org" in group
        assert teachers == {"ben.walker@maplevalley.example.org", emulator.admin}
        assert students and students <= group and len(group) == len(students) + 1
        assert emulator.course("d:cls-math-06-a")["courseState"] == "ACTIVE"
        # Passwords: only in the file, mode 0600, one row per created user.
        assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
        rows = _rows(passwords)
        assert len(rows) == 333 and all(len(row["password"]) == 16 for row in rows)
        assert not any(row["password"] in first.to_json() for row in rows)

        before = dict(emulator.stats.methods)
        again = await sync(url, passwords=passwords, dry_run=True)
        assert counts(again) == {}
        reads = {k: v - before.get(k, 0) for k, v in emulator.stats.methods.items()}
        # O(groups + pages) and O(courses) reads: one members listing per group, never
        # one call per user and group.
        assert reads["directory:members.list"] == 42
        assert reads["directory:users.list"] == 1  # 333 users: one page of 500
        assert reads["classroom:courses.students.list"] == 42
        assert sum(reads.values()) < 42 * 5

        changed = await sync(url, "changed", passwords=passwords)
        assert changed.ok, changed
        assert counts(changed) == {
            "new_users": 3,
            "update_users": 3,
            "old_users": 5,
            "new_members": 15,
            "old_members": 23,
            "add_courses_students": 15,
            "remove_courses_students": 23,
        }
        users = _by_key(emulator)
        assert users["stu-0016"]["suspended"] is True  # a leaver: suspended, not deleted
        assert users["stu-0142"]["suspended"] is True  # marked tobedeleted
        assert users["stu-0188"]["orgUnitPath"].endswith("/11")  # grade 12 -> 11 moved OU
        zoe = users["stu-0231"]["primaryEmail"]  # moved cls-math-11-a -> cls-math-11-b
        assert zoe in emulator.group_members("math11-b@groups.maplevalley.example.org")
        assert zoe not in emulator.group_members("math11-a@groups.maplevalley.example.org")
        assert zoe in emulator.roster("d:cls-math-11-b")[1]
        assert zoe not in emulator.roster("d:cls-math-11-a")[1]
        assert len(_rows(passwords)) == 336  # appended

        assert counts(await sync(url, "changed", passwords=passwords, dry_run=True)) == {}

    async def test_a_leaver_who_returns_is_reactivated(
        self, url: str, emulator: GoogleEmulator, tmp_path: Path
    ) -> None:
        """Back in the export, a suspended user is reactivated, not created a second time."""
        await sync(url, passwords=tmp_path / "p.csv")
        await sync(url, "changed", passwords=tmp_path / "p.csv")
        back = await sync(url, passwords=tmp_path / "p.csv")
        assert back.ok, back
        assert back.counts["new_users"][Outcome.SUCCEEDED] == 5
        users = _by_key(emulator)
        assert len(users) == 336 and users["stu-0016"]["suspended"] is False
        assert counts(await sync(url, passwords=tmp_path / "p.csv", dry_run=True)) == {}
