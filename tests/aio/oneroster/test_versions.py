"""Generated exports: versions 1.0, 1.1 and 1.2 read alike; delta and absent; real-world files."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from synctree import InputError, ReaderError, SyncTree
from synctree.aio.oneroster import OneRoster
from tests.cli_runner import invoke

from .exports import PASSWORD, PROFILE_PASSWORD, Export, write_config

COMMON = {  # attributes every version gives, per subbranch
    "orgs": ("name", "type", "identifier", "parent"),
    "sessions": ("title", "type", "start", "end", "parent"),
    "courses": ("title", "code", "school_year", "org", "grades", "subjects"),
    "classes": ("title", "code", "type", "course", "school", "terms", "grades", "subjects"),
    "students": ("username", "first", "last", "email", "identifier", "user_ids", "role"),
    "staff": ("username", "first", "last", "role", "roles", "school", "orgs", "agents"),
    "guardians": ("username", "role", "agents", "school"),
    "enrollments": ("user", "class", "school", "role", "primary"),
    "demographics": ("birth_date", "sex", "races", "hispanic", "city_of_birth"),
}


async def load(path: Path, **options: Any) -> SyncTree:
    tree = SyncTree(["source"], list(OneRoster.subbranches))
    await tree.load(source=OneRoster(path, **options).readers())
    return tree


def picked(tree: SyncTree, name: str) -> dict[str, dict[str, Any]]:
    return {
        leaf.idnumber: {attribute: getattr(leaf, attribute) for attribute in COMMON[name]}
        for leaf in tree.source[name]
    }


def keys(leaves: Any) -> set[str]:
    return {leaf.idnumber for leaf in leaves}


def plan(config: Path) -> dict[str, Any]:
    code, out = invoke("plan", str(config), "--json")
    assert code == 0, out
    result: dict[str, Any] = json.loads(out)
    return result


def actions(config: Path) -> set[tuple[str, str]]:
    return {(a["message"], a["idnumber"]) for a in plan(config)["actions"]}


@pytest.mark.anyio
class TestVersions:
    async def test_1_1_shape(self, tmp_path: Path) -> None:
        """A 1.1 bulk export: every subbranch in the normalised shape."""
        tree = await load(Export("1.1").write(tmp_path / "x"))
        assert {sub.name: len(sub) for sub in tree.source} == {
            "orgs": 3,
            "sessions": 2,
            "courses": 2,
            "classes": 2,
            "students": 3,
            "staff": 3,
            "guardians": 1,
            "enrollments": 6,
            "demographics": 1,
            "user_profiles": 0,
        }
        assert tree.source.user_profiles.coverage == "absent"
        assert tree.source.students["stu-2"].to_dict() == {
            "username": "stu2",
            "first": "Bob",
            "last": "Ito",
            "middle": "",
            "preferred_first": "",
            "preferred_last": "",
            "pronouns": "",
            "email": "stu-2@school.example.org",
            "sms": "",
            "phone": "",
            "identifier": "STU-2",
            "user_ids": set(),
            "master_id": "",
            "enabled": True,
            "role": "student",
            "roles": {"student@org-s"},
            "school": "org-s",
            "orgs": {"org-s"},
            "grades": {"08", "09"},
            "grade": "08",
            "agents": set(),
        }
        teacher = tree.source.staff["tch-1"]
        assert teacher.roles == {"teacher@org-s", "teacher@org-t"}
        assert (teacher.school, teacher.orgs) == ("org-s", {"org-s", "org-t"})
        assert tree.source.staff["aid-1"].role == "aide"  # aides are staff
        assert tree.source.guardians["par-1"].agents == {"stu-1"}
        enrollment = tree.source.enrollments["enr-4"]
        assert (
            enrollment.user,
            getattr(enrollment, "class"),
            enrollment.role,
            enrollment.primary,
        ) == (
            "tch-1",
            "cls-m1",
            "teacher",
            True,
        )
        assert (enrollment.begin, enrollment.end) == (dt.date(2024, 8, 26), dt.date(2025, 1, 17))
        assert tree.source.sessions["as-t1"].start == dt.date(2024, 8, 26)
        assert tree.source.classes["cls-m1"].periods == {"1", "2"}
        demo = tree.source.demographics["stu-1"]
        assert (demo.birth_date, demo.races, demo.hispanic) == (
            dt.date(2012, 4, 17),
            {"asian"},
            False,
        )

    @pytest.mark.parametrize("version", ["1.0", "1.2"])
    async def test_versions_read_like_1_1(self, tmp_path: Path, version: str) -> None:
        """The same data written as 1.0 (no manifest) or 1.2 (roles.csv) gives the same rows."""
        baseline = await load(Export("1.1").write(tmp_path / "1.1"))
        tree = await load(Export(version).write(tmp_path / version))
        for name in COMMON:
            if version == "1.0" and name == "staff":
                continue  # 1.0 has no enabledUser; checked below
            assert picked(tree, name) == picked(baseline, name), name
        assert await OneRoster(tmp_path / version).version() == version
        if version == "1.0":
            assert picked(tree, "staff").keys() == picked(baseline, "staff").keys()
            enrollment = tree.source.enrollments["enr-1"]
            assert (enrollment.begin, enrollment.end) == (None, None)  # not in 1.0

    async def test_1_2_roles_profiles_and_new_columns(self, tmp_path: Path) -> None:
        """1.2: several roles at several orgs, the primary one places the user; new columns."""
        export = Export("1.2")
        export.profiles = [
            {
                "sourcedId": "prof-1",
                "status": "active",
                "userSourcedId": "stu-1",
                "profileType": "lms",
                "vendorId": "v1",
                "credentialType": "password",
                "username": "ann.lee",
                "password": PROFILE_PASSWORD,
            }
        ]
        roles = export._roles()
        roles.append(
            {
                "sourcedId": "rol-tch-1-guardian",
                "status": "active",
                "userSourcedId": "tch-1",
                "roleType": "secondary",
                "role": "guardian",
                "orgSourcedId": "org-s",
            }
        )
        # a user whose primary role is listed after a secondary one
        roles = [r for r in roles if r["userSourcedId"] != "adm-1"] + [
            dict(roles[0], sourcedId="r-a", userSourcedId="adm-1", roleType="secondary",
                 role="teacher", orgSourcedId="org-t"),
            dict(roles[0], sourcedId="r-b", userSourcedId="adm-1", roleType="primary",
                 role="districtAdministrator", orgSourcedId="org-d"),
        ]  # fmt: skip
        export.roles = roles
        user = export.find("users.csv", "stu-1")
        user.update(
            preferredGivenName="Annie",
            preferredFamilyName="L.",
            pronouns="she/her",
            userMasterIdentifier="M-1",
        )
        tree = await load(export.write(tmp_path / "x"))
        teacher = tree.source.staff["tch-1"]
        assert teacher.role == "teacher"
        assert teacher.roles == {"teacher@org-s", "teacher@org-t", "guardian@org-s"}
        admin = tree.source.staff["adm-1"]
        assert (admin.role, admin.school) == ("districtadministrator", "org-d")
        assert admin.orgs == {"org-d", "org-t"}
        student = tree.source.students["stu-1"]
        assert (student.preferred_first, student.preferred_last, student.pronouns) == (
            "Annie",
            "L.",
            "she/her",
        )
        assert student.master_id == "M-1"
        profile = tree.source.user_profiles["prof-1"].to_dict()
        assert profile == {
            "user": "stu-1",
            "type": "lms",
            "vendor": "v1",
            "application": "",
            "description": "",
            "credential_type": "password",
            "username": "ann.lee",
        }
        assert "_password" not in vars(tree.source.user_profiles["prof-1"])

    async def test_1_2_without_roles_is_absent_not_empty(self, tmp_path: Path) -> None:
        """1.2 users with roles.csv absent cannot be placed: the user subbranches are absent."""
        export = Export("1.2", modes={"roles": "absent"})
        folder = export.write(tmp_path / "x")
        (folder / "roles.csv").unlink()
        tree = await load(folder)
        for name in ("students", "staff", "guardians"):
            assert tree.source[name].coverage == "absent"
            assert "roles.csv" in tree.source[name].notes[0]

    async def test_1_0_needs_1_0_headers_without_a_manifest(self, tmp_path: Path) -> None:
        """Without manifest.csv, 1.1 headers are refused: the export is incomplete."""
        folder = Export("1.1").write(tmp_path / "x")
        (folder / "manifest.csv").unlink()
        with pytest.raises(ReaderError) as info:
            await load(folder)
        assert "manifest.csv not found" in str(info.value)

    async def test_unsupported_version(self, tmp_path: Path) -> None:
        """An unknown OneRoster version is one error naming the manifest's line and field."""
        folder = Export("1.1").write(tmp_path / "x")
        text = (folder / "manifest.csv").read_text().replace(",1.1", ",1.3")
        (folder / "manifest.csv").write_text(text)
        with pytest.raises(ReaderError) as info:
            await load(folder)
        assert (info.value.line, info.value.field) == (3, "value")
        assert "unsupported oneroster.version '1.3'" in str(info.value)


@pytest.mark.anyio
class TestRealWorldFiles:
    async def test_bom_crlf_and_reordered_columns(self, tmp_path: Path) -> None:
        """A BOM, CRLF line ends and columns in another order read as the plain files."""
        plain = await load(Export("1.2").write(tmp_path / "plain"))
        odd = await load(Export("1.2").write(tmp_path / "odd", bom=True, crlf=True, reverse=True))
        assert (tmp_path / "odd" / "users.csv").read_bytes().startswith(b"\xef\xbb\xbfpronouns,")
        for name in OneRoster.subbranches:
            assert {leaf.idnumber: leaf.to_dict() for leaf in odd.source[name]} == {
                leaf.idnumber: leaf.to_dict() for leaf in plain.source[name]
            }, name

    async def test_day_first_dates(self, tmp_path: Path) -> None:
        """Day-first dates read with date_order="DMY"; unset, one error naming the option."""
        folder = Export("1.1").write(tmp_path / "x", day_first=True)
        assert "26/08/2024" in (folder / "enrollments.csv").read_text()
        tree = await load(folder, date_order="DMY")
        assert tree.source.enrollments["enr-1"].begin == dt.date(2024, 8, 26)
        assert tree.source.sessions["as-y"].end == dt.date(2025, 6, 13)
        with pytest.raises(ReaderError) as info:
            await load(folder)
        assert info.value.line == 2 and info.value.field in ("startDate", "beginDate", "birthDate")
        assert "date_order" in str(info.value) and "DMY" in str(info.value)
        with pytest.raises(ReaderError) as info:
            await load(folder, date_order="MDY")  # 26 is no month
        assert "is not a valid date (read as MDY)" in str(info.value)

    async def test_missing_required_column(self, tmp_path: Path) -> None:
        """A missing required column is one error naming file, line 1 and the column."""
        export = Export("1.1")
        folder = export.write(tmp_path / "x")
        text = (folder / "enrollments.csv").read_text().replace("userSourcedId", "user")
        (folder / "enrollments.csv").write_text(text)
        with pytest.raises(ReaderError) as info:
            await load(folder)
        error = info.value
        assert (error.path, error.line, error.field) == (
            folder / "enrollments.csv",
            1,
            "userSourcedId",
        )
        assert "the required column 'userSourcedId' is missing" in str(error)

    async def test_missing_optional_columns_and_extras(self, tmp_path: Path) -> None:
        """Optional columns may be missing (empty); extra columns are carried, not compared."""
        folder = Export("1.1").write(tmp_path / "x")
        lines = (folder / "orgs.csv").read_text().splitlines()
        header = lines[0].split(",")
        dropped = ("identifier", "parentSourcedId")
        keep = [i for i, name in enumerate(header) if name not in dropped]
        extras = ["ext_vendor_id", *(f"V{n}" for n in range(len(lines) - 1))]
        out = [
            ",".join([*(row.split(",")[i] for i in keep), extra])
            for row, extra in zip(lines, extras, strict=True)
        ]
        (folder / "orgs.csv").write_text("\n".join(out) + "\n")
        tree = await load(folder)
        org = tree.source.orgs["org-s"]
        assert (org.identifier, org.parent, org._ext_vendor_id) == ("", "", "V1")
        assert "_ext_vendor_id" not in org.to_dict()

    async def test_case_and_misspelled_names(self, tmp_path: Path) -> None:
        """Column names in another case, and known misspellings, are read as the spec's."""
        folder = Export("1.1").write(tmp_path / "x")
        text = (folder / "users.csv").read_text()
        text = text.replace("givenName", "GivenName", 1).replace(
            "dateLastModified", "dataLastModified", 1
        )
        (folder / "users.csv").write_text(text)
        tree = await load(folder)
        assert tree.source.students["stu-1"].first == "Ann"
        assert "_dataLastModified" not in vars(tree.source.students["stu-1"])

    async def test_trailing_empty_header_columns(self, tmp_path: Path) -> None:
        """A header with empty trailing names above narrower rows (``...,orgSourcedId,,``)."""
        folder = Export("1.1").write(tmp_path / "x")
        lines = (folder / "orgs.csv").read_text().splitlines()
        lines[0] += ",,"
        (folder / "orgs.csv").write_text("\n".join(lines) + "\n")
        tree = await load(folder)
        assert tree.source.orgs["org-s"].parent == "org-d"

    async def test_booleans(self, tmp_path: Path) -> None:
        """TRUE, true and 1 are true; a value that is no boolean names its line and column."""
        export = Export("1.1")
        for row, value in zip(
            export.files["users.csv"], ["TRUE", "true", "1", "FALSE", "0", ""], strict=False
        ):
            row["enabledUser"] = value
        tree = await load(export.write(tmp_path / "a"))
        enabled = {
            leaf.idnumber: leaf.enabled
            for name in ("students", "staff")
            for leaf in tree.source[name]
        }
        assert enabled == {
            "stu-1": True,
            "stu-2": True,
            "stu-3": True,
            "tch-1": False,
            "aid-1": False,
            "adm-1": True,
        }
        export.files["users.csv"][1]["enabledUser"] = "maybe"
        with pytest.raises(ReaderError) as info:
            await load(export.write(tmp_path / "b"))
        assert (info.value.line, info.value.field) == (3, "enabledUser")

    async def test_tobedeleted_in_a_bulk_file_is_left_out(self, tmp_path: Path) -> None:
        """In a bulk file a tobedeleted row is not part of the truth; its references warn."""
        export = Export("1.1")
        export.find("classes.csv", "cls-e1")["status"] = "tobedeleted"
        tree = await load(export.write(tmp_path / "x"))
        assert "cls-e1" not in tree.source.classes
        assert keys(tree.source.enrollments) == {"enr-1", "enr-2", "enr-4", "enr-6"}
        assert tree.source.enrollments.notes == [
            "enrollments: enrollments.csv line 4: class 'cls-e1' is not in the export; "
            "enrollment left out",
            "enrollments: enrollments.csv line 6: class 'cls-e1' is not in the export; "
            "enrollment left out",
        ]
        assert tree.source.classes.coverage == "full" and not tree.source.classes.removed

    async def test_dangling_references(self, tmp_path: Path) -> None:
        """An enrollment or class naming what the export lacks warns; kept only if asked."""
        export = Export("1.1")
        export.find("enrollments.csv", "enr-2")["userSourcedId"] = "stu-9"
        export.find("classes.csv", "cls-e1")["courseSourcedId"] = "crs-x"
        folder = export.write(tmp_path / "x")
        tree = await load(folder)
        assert keys(tree.source.classes) == {"cls-m1"}
        assert tree.source.classes.notes == [
            "classes: classes.csv line 3: course 'crs-x' is not in the export; class left out"
        ]
        assert keys(tree.source.enrollments) == {"enr-1", "enr-4", "enr-6"}
        assert tree.source.enrollments.notes[0] == (
            "enrollments: enrollments.csv line 3: user 'stu-9' is not in the export; "
            "enrollment left out"
        )
        kept = await load(folder, dangling="keep")
        assert keys(kept.source.enrollments) == {f"enr-{n}" for n in range(1, 7)}
        assert kept.source.enrollments.notes[0].endswith("enrollment kept")


class TestCoverage:
    def test_delta_after_bulk(self, tmp_path: Path) -> None:
        """A delta export creates, updates and removes only what its rows say."""
        bulk = Export("1.1")
        config = write_config(tmp_path, bulk.write(tmp_path / "export"))
        assert invoke("run", str(config))[0] == 0
        delta = Export("1.1", modes={"users": "delta", "enrollments": "delta"})
        for name in ("orgs", "academicSessions", "courses", "classes", "demographics"):
            delta.modes[name] = "absent"
        users = delta.files["users.csv"]
        changed = delta.find("users.csv", "stu-2")
        changed["grades"] = "10"
        gone = delta.find("users.csv", "stu-3")
        gone["status"] = "tobedeleted"
        new = dict(changed, sourcedId="stu-4", username="stu4", grades="07")
        promoted = dict(delta.find("users.csv", "aid-1"), role="teacher")
        delta.files["users.csv"] = [changed, gone, new, promoted]
        assert len(users) == 7  # the other four users are not listed
        enrollments = delta.files["enrollments.csv"]
        dropped = delta.find("enrollments.csv", "enr-3")
        dropped["status"] = "tobedeleted"
        added = dict(enrollments[0], sourcedId="enr-7", userSourcedId="stu-4")
        delta.files["enrollments.csv"] = [dropped, added]
        delta.write(tmp_path / "export")
        assert actions(config) == {
            ("update_students_grade", "stu-2"),
            ("add_students_grades", "stu-2"),
            ("remove_students_grades", "stu-2"),
            ("old_students", "stu-3"),
            ("new_students", "stu-4"),
            ("update_staff_role", "aid-1"),
            ("add_staff_roles", "aid-1"),
            ("remove_staff_roles", "aid-1"),
            ("old_enrollments", "enr-3"),
            ("new_enrollments", "enr-7"),
        }
        code, out = invoke("run", str(config))
        assert code == 0, out
        assert plan(config)["actions"] == []
        with sqlite3.connect(tmp_path / "school.db") as db:
            students = {row[0] for row in db.execute("select idnumber from students")}
            courses = db.execute("select count(*) from courses").fetchone()[0]
        assert students == {"stu-1", "stu-2", "stu-4"}
        assert courses == 2  # absent in the delta: untouched

    def test_a_date_where_there_was_none(self, tmp_path: Path) -> None:
        """An end date that appears later (its column was made when all were empty) converges."""
        export = Export("1.1")
        for enrollment in export.files["enrollments.csv"]:
            enrollment["endDate"] = ""
        config = write_config(tmp_path, export.write(tmp_path / "export"))
        assert invoke("run", str(config))[0] == 0
        export.find("enrollments.csv", "enr-1")["endDate"] = "2025-01-17"
        export.write(tmp_path / "export")
        assert actions(config) == {("update_enrollments_end", "enr-1")}
        assert invoke("run", str(config))[0] == 0
        assert plan(config)["actions"] == []

    def test_delta_role_change_moves_the_user(self, tmp_path: Path) -> None:
        """In a delta, a student who became staff leaves students and joins staff."""
        config = write_config(tmp_path, Export("1.1").write(tmp_path / "export"))
        assert invoke("run", str(config))[0] == 0
        delta = Export("1.1", modes={"users": "delta"})
        delta.files["users.csv"] = [dict(delta.find("users.csv", "stu-1"), role="aide")]
        delta.write(tmp_path / "export")
        assert actions(config) == {("old_students", "stu-1"), ("new_staff", "stu-1")}

    def test_absent_files_next_to_a_full_destination(self, tmp_path: Path) -> None:
        """Files marked absent leave their (full) destination tables alone; the plan says so."""
        config = write_config(tmp_path, Export("1.1").write(tmp_path / "export"))
        assert invoke("run", str(config))[0] == 0
        export = Export("1.1", modes={"courses": "absent", "enrollments": "absent"})
        export.write(tmp_path / "export")
        result = plan(config)
        assert result["actions"] == []
        absent = "source courses: not in this export (manifest.csv: file.courses=absent)"
        assert f"{absent}; left untouched" in result["notes"]
        code, out = invoke("plan", str(config))
        assert code == 0 and "note: source enrollments: not in this export" in out
        assert invoke("run", str(config))[0] == 0
        with sqlite3.connect(tmp_path / "school.db") as db:
            counts = [
                db.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("courses", "enrollments")
            ]
        assert counts == [2, 6]

    def test_empty_bulk_file_never_empties_the_destination(self, tmp_path: Path) -> None:
        """A header-only bulk users.csv loads, but the sync refuses to remove everyone."""
        config = write_config(tmp_path, Export("1.1").write(tmp_path / "export"))
        assert invoke("run", str(config))[0] == 0
        export = Export("1.1")
        export.files["users.csv"] = []
        export.write(tmp_path / "export")
        code, out = invoke("run", str(config))
        assert code == 3, out
        assert "refusing to remove all of them" in out


class TestPasswords:
    def test_never_in_any_output(self, tmp_path: Path) -> None:
        """Passwords are dropped; kept on request as _password, never compared nor shown."""
        export = Export("1.2")
        export.profiles = [
            {"sourcedId": "prof-1", "status": "active", "userSourcedId": "stu-1",
             "profileType": "lms", "vendorId": "v", "credentialType": "password",
             "password": PROFILE_PASSWORD}
        ]  # fmt: skip
        folder = export.write(tmp_path / "export")
        for keep in (False, True):
            config = write_config(tmp_path, folder, f"keep_passwords = {str(keep).lower()}")
            (tmp_path / "school.db").unlink(missing_ok=True)
            outputs = [invoke("plan", str(config), "--verbose")[1]]
            outputs.append(
                invoke("run", str(config), "--verbose", "--log", str(tmp_path / "run.jsonl"))[1]
            )
            outputs.append(invoke("show", str(config), "students", "stu-1")[1])
            export.find("users.csv", "stu-1")["password"] = PASSWORD + "2"  # a changed password
            export.write(tmp_path / "export")
            outputs.append(invoke("plan", str(config), "--json")[1])
            assert json.loads(outputs[-1])["actions"] == []  # never compared
            outputs.append((tmp_path / "run.jsonl").read_text())
            with sqlite3.connect(tmp_path / "school.db") as db:
                outputs.append("\n".join(db.iterdump()))
            for text in outputs:
                assert PASSWORD not in text and PROFILE_PASSWORD not in text
            export.find("users.csv", "stu-1")["password"] = PASSWORD
            export.write(tmp_path / "export")

    def test_not_in_errors(self, tmp_path: Path) -> None:
        """A row that shifts the password into another field fails without showing it."""
        export = Export("1.1")
        export.find("users.csv", "stu-1")["familyName"] = "Lee"
        folder = export.write(tmp_path / "export")
        text = (folder / "users.csv").read_text().replace(",Ann,Lee,", ",Ann,Lee, Jr,", 1)
        (folder / "users.csv").write_text(text)
        config = write_config(tmp_path, folder)
        code, out = invoke("plan", str(config))
        assert code == 2, out
        assert "users.csv" in out and "line 2" in out and "not shown" in out
        assert PASSWORD not in out

    @pytest.mark.anyio
    async def test_kept_only_when_asked(self, tmp_path: Path) -> None:
        """keep_passwords=True carries the password as _password for a template to use."""
        folder = Export("1.1").write(tmp_path / "x")
        dropped = await load(folder)
        assert not [n for n in vars(dropped.source.students["stu-1"]) if "password" in n]
        kept = await load(folder, keep_passwords=True)
        assert kept.source.students["stu-1"]._password == PASSWORD
        assert "_password" not in kept.source.students["stu-1"].to_dict()


def test_options_are_checked() -> None:
    """Bad options are a ValueError naming the parameter."""
    for options, name in (
        ({"date_order": "YMD"}, "date_order"),
        ({"keep_passwords": "yes"}, "keep_passwords"),
        ({"dangling": "warn"}, "dangling"),
    ):
        with pytest.raises(ValueError, match=repr(name)):
            OneRoster("x", **options)
    assert issubclass(InputError, ValueError)


@pytest.mark.anyio
async def test_the_documented_columns_are_what_the_reader_gives(tmp_path: Path) -> None:
    """The README's table and help(OneRoster) list exactly the attributes of each subbranch."""
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    section = readme.split("| subbranch | file | attributes |", 1)[1].split("\n\n", 1)[0]
    documented: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            name = cells[0].strip("`")
            attributes = cells[2]
            if attributes == "as students":
                documented[name] = documented["students"]
            else:
                documented[name] = {a.strip() for a in attributes.split(",")}
    assert list(documented) == list(OneRoster.subbranches)
    export = Export("1.2")
    export.profiles = [{"sourcedId": "prof-1", "status": "active", "userSourcedId": "stu-1"}]
    tree = await load(export.write(tmp_path / "x"))
    doc = " ".join((OneRoster.__doc__ or "").split())
    for name, attributes in documented.items():
        leaf = next(iter(tree.source[name]))
        assert set(leaf.to_dict()) == attributes, name
        for attribute in attributes:
            assert attribute in doc, attribute


@pytest.mark.anyio
async def test_fast_paths_read_as_the_careful_ones(tmp_path: Path) -> None:
    """One-item fields, plain ISO dates and rows without extras read as their long forms."""
    short, long = Export("1.1"), Export("1.1")
    for enrollment in long.files["enrollments.csv"]:
        enrollment["beginDate"] = enrollment["beginDate"] + "T00:00:00.000Z"  # the regex path
        enrollment["endDate"] = enrollment["endDate"].replace("-", "/")
    for klass in long.files["classes.csv"]:
        klass["periods"] = " ," + klass["periods"] + ", "  # the split path
        klass["grades"] = klass["grades"] + ","
    a = await load(short.write(tmp_path / "short"))
    b = await load(long.write(tmp_path / "long"))
    for name in ("enrollments", "classes"):
        assert {x.idnumber: x.to_dict() for x in a.source[name]} == {
            x.idnumber: x.to_dict() for x in b.source[name]
        }
    assert a.source.classes["cls-m1"].periods == {"1", "2"}


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["1.1", "1.2"])
async def test_a_user_without_a_role(tmp_path: Path, version: str) -> None:
    """A user with no role is in no subbranch; one warning under students names the line."""
    export = Export(version)
    export.find("users.csv", "stu-2")["role"] = ""
    if version == "1.2":
        export.roles = [r for r in export._roles() if r["userSourcedId"] != "stu-2"]
    tree = await load(export.write(tmp_path / "x"))
    assert all("stu-2" not in tree.source[name] for name in ("students", "staff", "guardians"))
    where = "no role" if version == "1.1" else "no role in roles.csv"
    assert tree.source.students.notes == [
        f"students: users.csv line 3: user 'stu-2' has {where}; "
        "left out of students, staff and guardians"
    ]
    assert tree.source.staff.notes == [] and tree.source.guardians.notes == []
