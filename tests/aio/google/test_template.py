"""GoogleTemplate's rules: scope and safety, renames, quotas, concurrency and batches."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from synctree import Outcome, SafetyLimitExceeded
from synctree.aio.google import GoogleTemplate
from tests.google_emulator import GoogleEmulator
from tests.http_server import serve

from .conftest import DOMAINS, FAST, ROSTER, counts, load, sync

pytestmark = pytest.mark.anyio


class _Rows:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        for row in self.rows:
            yield dict(row)


class Export:
    """A small OneRoster-shaped export in memory: students, staff, classes, enrollments."""

    def __init__(self, students: int = 10, classes: int = 2) -> None:
        self.students = [
            {
                "idnumber": f"s{i}",
                "first": f"Kid{i}",
                "last": "Doe",
                "grade": "07",
                "school": "org-ms",
            }
            for i in range(students)
        ]
        self.staff = [{"idnumber": "t1", "first": "Tia", "last": "Teach", "school": "org-ms"}]
        self.classes = [
            {"idnumber": f"c{n}", "title": f"Class {n}", "code": f"C{n}"} for n in range(classes)
        ]
        self.enrollments = [
            {"idnumber": s["idnumber"], "classes": {c["idnumber"] for c in self.classes}}
            for s in self.students
        ] + [{"idnumber": "t1", "classes": {c["idnumber"] for c in self.classes}}]

    def readers(self) -> dict[str, _Rows]:
        return {
            "students": _Rows(self.students),
            "staff": _Rows(self.staff),
            "classes": _Rows(self.classes),
            "enrollments": _Rows(self.enrollments),
        }


def _roster(export: Export, **extra: Any) -> dict[str, Any]:
    return {**ROSTER, "roster": export, **extra}


class TestScopeAndSafety:
    async def test_with_adopt_false_unmanaged_users_are_never_touched(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """adopt=False: a person's own account with the pattern's address stays as it is;
        the new student gets a digit; the admin is not in the tree at all."""
        emulator.add_user("kid0.doe@students.maplevalley.example.org", "Kid0", "Doe")
        before = {u["id"]: dict(u) for u in emulator.users.values()}
        no = {"adopt": False}
        report = await sync(url, "", roster=_roster(Export()), reader=no)
        assert report.ok, [(r.action, r.error, r.reason) for r in report.failures]
        for user_id, user in before.items():
            assert emulator.users[user_id] == user
        assert emulator.user("kid0.doe2@students.maplevalley.example.org")["orgUnitPath"] == (
            "/Students/Middle School/07"
        )
        export = Export()
        export.students = []  # everyone left: the admin and the outsider are not "old"
        export.enrollments = export.enrollments[-1:]
        with pytest.raises(SafetyLimitExceeded):
            await sync(url, "", roster=_roster(export), reader=no)

    async def test_the_query_scopes_what_is_managed(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """A managed-looking user outside the reader's query is never read, so never
        suspended, though the source does not have it."""
        emulator.add_orgunit("/Alumni")
        outsider = emulator.add_user(
            "old.kid@students.maplevalley.example.org", "Old", "Kid", orgUnitPath="/Alumni",
            externalIds=[{"type": "organization", "value": "s99"}],
        )  # fmt: skip
        export = Export()
        export.staff, export.enrollments = [], export.enrollments[:-1]
        scoped = {"query": "orgUnitPath='/Students'"}
        report = await sync(url, "", roster=_roster(export), reader=scoped)
        assert report.ok and counts(report)["new_users"] == 10
        again = await sync(url, "", roster=_roster(export), reader=scoped, dry_run=True)
        assert counts(again) == {}
        assert emulator.users[outsider["id"]] == outsider and not outsider["suspended"]
        unscoped = await sync(url, "", roster=_roster(export), dry_run=True)
        assert counts(unscoped) == {"old_users": 1}  # without the query it would be a leaver

    async def test_suspensions_count_against_max_deletes(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """Suspending 5 of 11 users is past the default 10%: nothing is suspended; so are
        their memberships (an export that lost its enrollments empties no group)."""
        unenrolled = Export()
        unenrolled.enrollments = unenrolled.enrollments[5:]  # s0-s4 are in no class
        await sync(url, "", roster=_roster(unenrolled))
        export = Export()
        del export.students[:5]
        export.enrollments = export.enrollments[5:]
        with pytest.raises(SafetyLimitExceeded, match="5 of 11 users"):
            await sync(url, "", roster=_roster(export))
        lost = Export()
        lost.enrollments = []
        with pytest.raises(SafetyLimitExceeded, match="source members is empty but destination"):
            await sync(url, "", roster=_roster(lost), run={"max_deletes": "90%"})
        assert not any(u.get("suspended") for u in emulator.users.values())
        report = await sync(url, "", roster=_roster(export), run={"max_deletes": 5})
        assert counts(report)["old_users"] == 5
        assert sum(bool(u.get("suspended")) for u in emulator.users.values()) == 5

    async def test_on_old_delete(self, url: str, emulator: GoogleEmulator) -> None:
        await sync(url, "", roster=_roster(Export()))
        export = Export()
        del export.students[:1]
        report = await sync(url, "", roster=_roster(export), on_old="delete")
        assert report.ok and len(emulator.users) == 11  # the admin and 10 of 11


KID0 = "kid0.doe@students.maplevalley.example.org"
TIA = "tia.teach@maplevalley.example.org"


def _others(emulator: GoogleEmulator, local: str) -> list[str]:
    return sorted(u["primaryEmail"] for u in emulator.users.values() if local in u["primaryEmail"])


class TestAdoption:
    async def test_an_existing_account_is_adopted_not_duplicated(
        self, url: str, emulator: GoogleEmulator, tmp_path: Path
    ) -> None:
        """A hand-made account with a new student's address is adopted: the plan says so
        (counted), the run writes the key (other externalIds kept) and then manages it (its
        OU, its groups); no second account; the next plan is empty."""
        own = [{"type": "account", "value": "gcds-7"}]
        made = emulator.add_user(KID0, "Kid0", "Doe", externalIds=own)
        plan = await sync(url, "", roster=_roster(Export()), dry_run=True)
        assert counts(plan) == {
            "new_users": 10,
            "update_users_external_id": 1,
            "update_users": 1,  # its OU, from / to the student's
            "new_groups": 2,
            "new_members": 22,
            "new_courses": 2,
        }
        passwords = tmp_path / "p.csv"
        report = await sync(url, "", roster=_roster(Export()), passwords=passwords)
        assert report.ok, [(r.action, r.error, r.reason) for r in report.failures]
        kid = emulator.users[made["id"]]
        assert kid["externalIds"][0] == own[0]
        assert {"type": "organization", "value": "s0"} in kid["externalIds"]
        assert kid["orgUnitPath"] == "/Students/Middle School/07"
        assert _others(emulator, "kid0.") == [KID0]  # no kid0.doe2
        assert KID0 in emulator.group_members("c0@groups.maplevalley.example.org")
        assert KID0 in emulator.roster("d:c0")[1]
        assert KID0 not in passwords.read_text()  # its password is the person's own
        assert counts(await sync(url, "", roster=_roster(Export()), dry_run=True)) == {}

    async def test_an_admin_is_never_adopted_and_the_plan_says_why(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """An admin with a new teacher's address is not adopted nor changed; the plan's
        note names it; the teacher gets the next address; the next plan is empty."""
        admin = emulator.add_user(TIA, "Tia", "Teach", isAdmin=True)
        before = dict(admin)
        tree = await load(url, "", roster=_roster(Export()))
        assert tree.destination.users.notes == [
            f"users: {TIA} is an admin: never adopted nor changed; t1 will get a new address "
            "(with a digit)"
        ]
        assert "t1" not in tree.destination.users
        report = await sync(url, "", roster=_roster(Export()))
        assert report.ok and counts(report)["new_users"] == 11
        assert emulator.users[admin["id"]] == before
        assert _others(emulator, "tia.") == ["tia.teach2@maplevalley.example.org", TIA]
        assert counts(await sync(url, "", roster=_roster(Export()), dry_run=True)) == {}

    async def test_an_ambiguous_match_is_not_adopted(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """Two new students whose pattern gives the account's address: neither is adopted."""
        emulator.add_user(KID0, "Kid0", "Doe")
        export = Export(2, 1)
        export.students[1].update(first="Kid0")  # s1's pattern address is kid0.doe@ too
        tree = await load(url, "", roster=_roster(export))
        assert tree.destination.users.notes == [
            f"users: {KID0} matches 2 new users (s0, s1): not adopted; each will get a new address"
        ]
        assert len(tree.destination.users) == 0

    async def test_sis_email_matches_the_exports_address(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """adopt='sis_email': the account the export's email names is adopted, though the
        pattern gives another address; it keeps its address."""
        made = emulator.add_user("t.teach@maplevalley.example.org", "Tia", "Teach")
        export = Export(2, 1)
        export.staff[0]["email"] = "T.Teach@maplevalley.example.org"
        plan = await sync(url, "", roster=_roster(export), reader={"adopt": "sis_email"},
                          dry_run=True)  # fmt: skip
        assert counts(plan)["update_users_external_id"] == 1 and counts(plan)["new_users"] == 2
        report = await sync(url, "", roster=_roster(export), reader={"adopt": "sis_email"})
        assert report.ok, [(r.action, r.error) for r in report.failures]
        assert emulator.users[made["id"]]["externalIds"][0]["value"] == "t1"
        assert emulator.users[made["id"]]["primaryEmail"] == "t.teach@maplevalley.example.org"
        assert _others(emulator, "tia.") == []
        again = await sync(url, "", roster=_roster(export), reader={"adopt": "sis_email"},
                           dry_run=True)  # fmt: skip
        assert counts(again) == {}

    async def test_an_account_made_admin_after_the_plan_is_refused(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """The template checks again before it writes: an account made admin since the
        read fails its adoption (and that user's later actions), and is left as it was."""
        made = emulator.add_user(KID0, "Kid0", "Doe")
        tree = await load(url, "", roster=_roster(Export(2, 1)))
        emulator.users[made["id"]]["isAdmin"] = True
        before = dict(emulator.users[made["id"]])
        report = await ((tree.source > tree.destination) | GoogleTemplate(base_url=url, **FAST))
        failed = [(r.action.message, r.action.idnumber) for r in report.failures]
        assert failed == [("update_users_external_id", "s0")]
        assert "admin account" in str(report.failures[0].error)
        assert emulator.users[made["id"]] == before


def _enrolled(export: Export, role_of: dict[str, str]) -> Export:
    """One enrollment row per (user, class c0), with the role given (default student)."""
    export.enrollments = [
        {"user": s["idnumber"], "class": "c0", "role": role_of.get(s["idnumber"], "student")}
        for s in export.students
    ] + [{"user": "t1", "class": "c0", "role": role_of.get("t1", "teacher")}]
    return export


class TestOwners:
    async def test_teachers_own_their_groups_and_a_role_change_is_a_patch(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """Teachers are OWNER, students MEMBER; a student made a teacher (and back) is a
        patch of the member's role, not a delete and an insert; a teacher who leaves is one
        delete; each plan after a run is empty."""
        group = "c0@groups.maplevalley.example.org"

        def roles() -> dict[str, str]:
            found = emulator._find_group(group)
            return {m["email"]: m["role"] for m in emulator.members[found["id"]].values()}

        await sync(url, "", roster=_roster(_enrolled(Export(3, 1), {})))
        assert roles()[TIA] == "OWNER" and roles()[KID0] == "MEMBER"
        before = dict(emulator.stats.methods)

        def calls() -> dict[str, int]:
            now = emulator.stats.methods
            names = ("members.insert", "members.delete", "members.patch")
            return {n: now[f"directory:{n}"] - before.get(f"directory:{n}", 0) for n in names}

        promoted = _roster(_enrolled(Export(3, 1), {"s0": "aide"}))
        plan = await sync(url, "", roster=promoted, dry_run=True)
        assert counts(plan) == {
            "update_members_role": 1,
            "add_courses_teachers": 1,
            "remove_courses_students": 1,
        }
        assert (await sync(url, "", roster=promoted)).ok
        assert roles()[KID0] == "OWNER"
        assert emulator.roster("d:c0") == ({TIA, KID0, emulator.admin}, {
            "kid1.doe@students.maplevalley.example.org",
            "kid2.doe@students.maplevalley.example.org",
        })  # fmt: skip
        assert calls() == {"members.insert": 0, "members.delete": 0, "members.patch": 1}
        assert counts(await sync(url, "", roster=promoted, dry_run=True)) == {}

        back = _roster(_enrolled(Export(3, 1), {}))
        report = await sync(url, "", roster=back)
        assert report.ok and counts(report)["update_members_role"] == 1
        assert roles()[KID0] == "MEMBER"
        assert calls() == {"members.insert": 0, "members.delete": 0, "members.patch": 2}

        gone = _roster(_enrolled(Export(3, 1), {}))
        gone["roster"].enrollments.pop()  # the teacher leaves the class
        report = await sync(url, "", roster=gone)
        assert report.ok, [(r.action, r.error) for r in report.failures]
        assert counts(report)["old_members"] == 1
        assert TIA not in roles()
        assert calls() == {"members.insert": 0, "members.delete": 1, "members.patch": 2}
        assert counts(await sync(url, "", roster=gone, dry_run=True)) == {}

    async def test_teachers_own_groups_false_makes_everyone_a_member(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        await sync(url, "", roster=_roster(Export(2, 1), teachers_own_groups=False))
        group = emulator._find_group("c0@groups.maplevalley.example.org")
        assert {m["role"] for m in emulator.members[group["id"]].values()} == {"MEMBER"}


class TestGroupsAndCourses:
    async def test_patch_delete_archive_and_a_teacher_owner(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """A retitled class patches its group and course; a class gone deletes its group
        and archives its course; courses are owned by the configured teacher."""
        owner = "tia.teach@maplevalley.example.org"
        first = await sync(url, "", roster=_roster(Export(4, 3)), course_owner=owner)
        deletes = emulator.stats.methods["directory:members.delete"]
        assert first.ok, first
        course = emulator.course("d:c0")
        assert course["ownerId"] == emulator.user(owner)["id"]
        assert emulator.roster("d:c0")[0] == {owner}
        export = Export(4, 3)
        export.classes[0]["title"] = "Algebra"
        del export.classes[2]
        report = await sync(
            url, "", roster=_roster(export), course_owner=owner, run={"max_deletes": 5}
        )
        assert report.ok, report
        assert counts(report) == {
            "update_groups": 1,
            "update_courses": 1,
            "old_members": 5,
            "old_groups": 1,
            "old_courses": 1,
        }
        # The members of a group deleted go with it: no call each.
        assert emulator.stats.methods["directory:members.delete"] == deletes
        assert emulator.course("d:c0")["name"] == "Algebra"
        assert emulator.course("d:c2")["courseState"] == "ARCHIVED"
        assert "c2@groups.maplevalley.example.org" not in {
            g["email"] for g in emulator.groups.values()
        }
        again = await sync(url, "", roster=_roster(export), dry_run=True)
        assert counts(again) == {}


class TestRenames:
    async def test_a_name_change_is_no_rename_unless_asked(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """Off by default: the name changes, the address stays; with rename=True the
        rename is its own planned action, and the old address stays an alias."""
        await sync(url, "", roster=_roster(Export()))
        export = Export()
        export.students[0]["last"] = "Smith"
        plan = await sync(url, "", roster=_roster(export), dry_run=True)
        assert counts(plan) == {"update_users": 1}
        planned = await sync(url, "", roster=_roster(export, rename=True), dry_run=True)
        assert counts(planned) == {"update_users": 1, "update_users_email_base": 1}
        done = await sync(url, "", roster=_roster(export, rename=True))
        assert done.ok, done
        user = emulator.user("kid0.smith@students.maplevalley.example.org")
        assert user["name"]["familyName"] == "Smith"
        assert user["aliases"] == ["kid0.doe@students.maplevalley.example.org"]
        again = await sync(url, "", roster=_roster(export, rename=True), dry_run=True)
        assert counts(again) == {}


@pytest.fixture
def tight() -> Iterator[tuple[GoogleEmulator, str]]:
    """An emulator whose Directory quota is 20 calls a second."""
    emulator = GoogleEmulator(domains=DOMAINS, quota={"directory": 20, "classroom": 20}, window=1.0)
    with serve(emulator.app) as url:
        yield emulator, url


class TestQuota:
    async def test_within_the_quota_nothing_is_throttled(
        self, tight: tuple[GoogleEmulator, str]
    ) -> None:
        """Paced at 90% of the quota it knows, the template is never refused."""
        emulator, url = tight
        quotas = {"directory": 20, "classroom": 20}
        report = await sync(url, "", roster=_roster(Export(20, 1)), quotas=quotas, batch_size=5)
        assert report.ok, [(r.action, r.error) for r in report.failures]
        assert emulator.stats.throttled == {} and report.throttles == 0

    async def test_rate_limit_answers_pause_and_the_run_finishes(
        self, tight: tuple[GoogleEmulator, str]
    ) -> None:
        """Told a quota five times the real one, it is throttled (403 rateLimitExceeded),
        pauses, retries the refused parts alone, and finishes with everything done."""
        emulator, url = tight
        quotas = {"directory": 100, "classroom": 100}
        report = await sync(url, "", roster=_roster(Export(40, 1)), quotas=quotas)
        assert report.ok, [(r.action, r.error, r.reason) for r in report.failures]
        assert emulator.stats.throttled["directory"] > 0
        assert len([u for u in emulator.users.values() if not u["isAdmin"]]) == 41
        assert emulator.stats.parts["directory"] > 0  # the creates went as batches

    async def test_batch_parts_count_against_the_rate(
        self, tight: tuple[GoogleEmulator, str]
    ) -> None:
        """A batch of n calls waits for n of the quota's tokens, as Google counts them."""
        emulator, url = tight
        quotas = {"directory": 20, "classroom": 20}
        started = time.monotonic()
        report = await sync(
            url, "", roster=_roster(Export(30, 1), group_email=None), quotas=quotas, rate="100%"
        )
        assert report.ok, [(r.action, r.error, r.reason) for r in report.failures]
        calls = emulator.stats.calls["directory"] + emulator.stats.calls["classroom"]
        assert calls > 40 and time.monotonic() - started >= (calls - 25) / 20

    async def test_quota_exceeded_lowers_concurrency(self) -> None:
        """Too many requests at once (403 quotaExceeded): fewer at once, and all done."""
        emulator = GoogleEmulator(
            domains=DOMAINS, window=1.0, max_concurrent={"directory": 2}, latency=0.02
        )
        with serve(emulator.app) as url:
            report = await sync(
                url, "", roster=_roster(Export(30, 1)), batch_size=1, api_concurrency=8
            )
        assert report.ok, [(r.action, r.error, r.reason) for r in report.failures]
        assert emulator.stats.concurrency_refused["directory"] > 0
        assert emulator.stats.max_in_flight["directory"] == 2


class TestThrottles:
    @pytest.mark.parametrize(
        ("status", "reason"), [(403, "userRateLimitExceeded"), (429, None)], ids=["403", "429"]
    )
    async def test_a_throttle_pauses_every_worker_and_nothing_is_lost_or_doubled(
        self, url: str, emulator: GoogleEmulator, status: int, reason: str | None
    ) -> None:
        """Mid-run, three calls are refused for the rate (Retry-After 1 s): no call of that
        API reaches Google in the pause (the calls in flight aside), and then every action
        is done exactly once: each user inserted once, no digit, every member added."""
        export = Export(30, 2)
        tree = await load(url, "", roster=_roster(export))
        emulator.throttle(times=3, status=status, reason=reason, retry_after=1.0, after=8)
        template = GoogleTemplate(base_url=url, batch_size=1, **FAST)
        started = time.monotonic()
        report = await ((tree.source > tree.destination) | template)
        assert report.ok, [(r.action, r.error, r.reason) for r in report.failures]
        assert emulator.stats.throttled["directory"] == 3
        first = emulator.stats.throttle_times["directory"][0]
        during = [t for t in emulator.stats.times["directory"] if first + 0.1 < t < first + 0.9]
        assert during == []  # every worker waited
        assert time.monotonic() - started >= 1.0
        assert counts(report) == {
            "new_users": 31,
            "new_groups": 2,
            "new_members": 62,
            "new_courses": 2,
        }
        assert emulator.stats.methods["directory:users.insert"] == 31  # none twice
        users = [u["primaryEmail"] for u in emulator.users.values() if not u["isAdmin"]]
        assert len(users) == len(set(users)) == 31 and not any("2@" in u for u in users)
        for n in range(2):
            assert len(emulator.group_members(f"c{n}@groups.maplevalley.example.org")) == 31
        assert counts(await sync(url, "", roster=_roster(export), dry_run=True)) == {}


class TestMembers:
    async def test_one_refused_member_holds_back_no_other(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """Memberships are objects of their own: a group's new members are one batch, not
        a chain; the one whose user vanished fails alone and none of the group's others is
        skipped as 'dependency failed'."""
        first = Export(6, 1)
        first.enrollments = first.enrollments[:1] + first.enrollments[-1:]
        await sync(url, "", roster=_roster(first))
        tree = await load(url, "", roster=_roster(Export(6, 1)))
        gone = emulator.user("kid2.doe@students.maplevalley.example.org")
        del emulator.users[gone["id"]]  # deleted behind synctree's back, after the read
        batches = emulator.stats.batches["directory"]
        diff = (tree.source > tree.destination).filter(lambda a: a.subbranch == "members")
        report = await diff.run(GoogleTemplate(base_url=url, **FAST))
        group = "c0@groups.maplevalley.example.org"
        assert [(r.action.message, r.action.idnumber) for r in report.failures] == [
            ("new_members", f"{group} s2")
        ]
        assert counts(report) == {"new_members": 5}
        assert not [r for r in report.results if r.outcome is Outcome.SKIPPED]
        assert emulator.stats.batches["directory"] - batches == 1  # one wave, one batch
        assert len(emulator.group_members(group)) == 6  # s0, s1, s3, s4, s5 and the teacher


class TestBatches:
    async def test_each_part_maps_back_to_its_action(
        self, url: str, emulator: GoogleEmulator
    ) -> None:
        """In one batch of adds, the part whose user vanished fails alone; the part beside
        it (another class) lands."""
        first = Export(6, 2)
        first.enrollments = first.enrollments[:3] + first.enrollments[-1:]
        await sync(url, "", roster=_roster(first))
        second = Export(6, 2)
        second.enrollments[4]["classes"] = {"c0"}  # s4 joins c0
        second.enrollments[5]["classes"] = {"c1"}  # s5 joins c1
        tree = await load(url, "", roster=_roster(second))
        gone = emulator.user("kid4.doe@students.maplevalley.example.org")
        del emulator.users[gone["id"]]  # deleted behind synctree's back, after the read
        template = GoogleTemplate(base_url=url, **FAST)
        parts_before = emulator.stats.parts["classroom"]
        report = await ((tree.source > tree.destination) | template)
        assert {
            (r.action.message, r.action.value or r.action.idnumber) for r in report.failures
        } == {
            ("new_members", "c0@groups.maplevalley.example.org s4"),
            ("add_courses_students", "s4"),
        }
        assert counts(report) == {"new_members": 4, "add_courses_students": 4}
        assert emulator.stats.parts["classroom"] - parts_before == 4  # two batches of two
        assert len(emulator.roster("d:c0")[1]) == 4  # s0-s3 (s4 is gone)
        assert len(emulator.roster("d:c1")[1]) == 5  # s0-s3 and s5


@pytest.mark.parametrize(
    ("subbranches", "problem"),
    [
        (["users", "groups", "courses"], "has 'groups' but no 'members'"),
        (["users", "members", "groups"], "declare the subbranch 'members' after 'groups'"),
    ],
)
@pytest.mark.anyio
async def test_groups_need_their_members_declared_after_them(
    subbranches: list[str], problem: str
) -> None:
    """A sync that would leave every group empty, or add members before their group,
    is refused before the first call (the URL is never reached)."""
    from synctree import SyncTree

    tree = SyncTree(["source", "destination"], subbranches)
    tree.new("source", "users", "stu-1", first="Ann")
    google = GoogleTemplate(base_url="http://127.0.0.1:9", **FAST)
    with pytest.raises(ValueError, match=problem):
        await (tree.source > tree.destination).run(google)
