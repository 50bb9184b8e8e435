"""OneRoster: the sample export read from a folder and a zip, manifest checks, honest errors."""

from __future__ import annotations

import csv
import datetime
import importlib.util
import shutil
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from synctree import InputError, SyncTree
from synctree.aio.oneroster import OneRoster, OneRosterReader
from tests.aio.oneroster.exports import SUBBRANCHES

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parents[3] / "examples" / "oneroster"
SAMPLE_COUNTS = {
    "orgs": 3,
    "sessions": 3,
    "courses": 28,
    "classes": 42,
    "students": 300,
    "staff": 33,
    "guardians": 0,
    "enrollments": 1243,  # one row per enrollment: 4 per student, 43 for the teachers
    "demographics": 0,
    "user_profiles": 0,
}


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A copy of the sample export that a test may change."""
    return Path(shutil.copytree(EXAMPLES / "sample", tmp_path / "export"))


def zip_folder(folder: Path, zip_path: Path, inside: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.glob("*.csv")):
            archive.write(file, inside + file.name)
    return zip_path


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        return list(csv.DictReader(file))


def edit(path: Path, change: Any) -> None:
    """Rewrite a CSV file, passing each row dict through ``change`` (None drops it)."""
    rows = rows_of(path)
    header = list(rows[0])
    kept = [row for row in (change(dict(row)) for row in rows) if row is not None]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, header)
        writer.writeheader()
        writer.writerows(kept)


def set_manifest(folder: Path, name: str, value: str | None) -> None:
    rows = [row for row in rows_of(folder / "manifest.csv") if row["propertyName"] != name]
    if value is not None:
        rows.append({"propertyName": name, "value": value})
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, ["propertyName", "value"])
        writer.writeheader()
        writer.writerows(rows)


async def load(roster: OneRoster, *names: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Rows per subbranch, keyed by idnumber (no key may repeat)."""
    loaded: dict[str, dict[str, dict[str, Any]]] = {}
    readers = roster.readers()
    for name in names or roster.subbranches:
        rows = [row async for row in readers[name]]
        loaded[name] = {row["idnumber"]: row for row in rows}
        assert len(loaded[name]) == len(rows), f"{name}: a key repeats"
    return loaded


async def failure(reader: OneRosterReader) -> InputError:
    with pytest.raises(InputError) as info:
        async for _ in reader:
            pass
    return info.value


class TestSample:
    async def test_counts(self) -> None:
        """The sample export has the documented number of rows per subbranch."""
        loaded = await load(OneRoster(EXAMPLES / "sample"))
        assert {name: len(rows) for name, rows in loaded.items()} == SAMPLE_COUNTS

    def test_subbranches_in_dependency_order(self) -> None:
        """Subbranches come in dependency order, and readers() follows it."""
        roster = OneRoster(EXAMPLES / "sample")
        assert OneRoster.subbranches == SUBBRANCHES
        assert tuple(roster.readers()) == SUBBRANCHES

    async def test_students_and_staff(self) -> None:
        """Users get friendly names; grade and school are the first of their lists."""
        loaded = await load(OneRoster(EXAMPLES / "sample"), "students", "staff")
        users = {row["sourcedId"]: row for row in rows_of(EXAMPLES / "sample" / "users.csv")}
        raw = users["stu-0001"]
        assert loaded["students"]["stu-0001"] == {
            "idnumber": "stu-0001",
            "username": raw["username"],
            "first": raw["givenName"],
            "last": raw["familyName"],
            "middle": raw["middleName"],
            "preferred_first": "",
            "preferred_last": "",
            "pronouns": "",
            "email": raw["email"],
            "sms": "",
            "phone": "",
            "identifier": raw["identifier"],
            "user_ids": set(),
            "master_id": "",
            "enabled": True,
            "role": "student",
            "roles": {"student@" + raw["orgSourcedIds"]},
            "school": raw["orgSourcedIds"],
            "orgs": {raw["orgSourcedIds"]},
            "grades": {raw["grades"]},
            "grade": raw["grades"],
            "agents": set(),
        }
        staff = loaded["staff"]
        assert sorted(row["role"] for row in staff.values()).count("teacher") == 30
        assert {row["role"] for row in staff.values()} == {"teacher", "administrator"}
        assert users["tch-020"]["orgSourcedIds"] == "org-hs,org-ms"
        assert staff["tch-020"]["school"] == "org-hs"
        assert staff["tch-020"]["orgs"] == {"org-hs", "org-ms"}
        assert staff["adm-01"]["school"] == "org-district"
        assert not set(staff) & set(loaded["students"])

    async def test_orgs_courses_classes(self) -> None:
        """Orgs, courses and classes get friendly names; terms is a set."""
        loaded = await load(OneRoster(EXAMPLES / "sample"), "orgs", "courses", "classes")
        assert loaded["orgs"]["org-ms"] == {
            "idnumber": "org-ms",
            "name": "Maple Valley Middle School",
            "type": "school",
            "identifier": "0417",
            "parent": "org-district",
        }
        assert loaded["courses"]["crs-math-07"] == {
            "idnumber": "crs-math-07",
            "title": "Mathematics 7",
            "code": "MATH7",
            "school_year": "as-2025",
            "org": "org-ms",
            "grades": {"07"},
            "subjects": {"Mathematics"},
            "_subjectCodes": "",
        }
        klass = loaded["classes"]["cls-sci-10-a"]
        assert klass["course"] == "crs-sci-10"
        assert klass["school"] == "org-hs"
        assert klass["terms"] == {"as-2025-s1", "as-2025-s2"}

    async def test_one_row_per_enrollment(self) -> None:
        """Enrollments are one row per enrollment, keyed by its sourcedId."""
        loaded = await load(OneRoster(EXAMPLES / "sample"), "enrollments")
        raw = rows_of(EXAMPLES / "sample" / "enrollments.csv")
        assert set(loaded["enrollments"]) == {row["sourcedId"] for row in raw}
        first = raw[0]
        assert loaded["enrollments"][first["sourcedId"]] == {
            "idnumber": first["sourcedId"],
            "user": first["userSourcedId"],
            "class": first["classSourcedId"],
            "school": first["schoolSourcedId"],
            "role": "teacher",
            "primary": True,
            "begin": datetime.date(2024, 8, 26),
            "end": None,
        }

    async def test_where_rows_come_from(self) -> None:
        """Batches name the file and line of a row; a user's first enrollment line."""
        roster = OneRoster(EXAMPLES / "sample")
        readers = roster.readers()
        lines = {}
        async for batch in readers["students"].batches():
            assert batch.line_of is not None
            assert (batch.path, batch.key) == (str(EXAMPLES / "sample" / "users.csv"), "sourcedId")
            for index, row in enumerate(batch.rows):
                lines[row["idnumber"]] = batch.line_of(index)
        assert readers["students"].path == EXAMPLES / "sample" / "users.csv"
        users = rows_of(EXAMPLES / "sample" / "users.csv")
        number = next(i for i, row in enumerate(users) if row["sourcedId"] == "stu-0007")
        assert lines["stu-0007"] == number + 2  # the header is line 1

        found = []
        async for batch in readers["enrollments"].batches():
            assert batch.path == str(EXAMPLES / "sample" / "enrollments.csv")
            for index, row in enumerate(batch.rows):
                if row["user"] == "tch-001":
                    assert batch.line_of is not None
                    found.append(batch.line_of(index))
        raw = rows_of(EXAMPLES / "sample" / "enrollments.csv")
        assert found == [i + 2 for i, row in enumerate(raw) if row["userSourcedId"] == "tch-001"]
        assert found[0] == 2

    @pytest.mark.parametrize("zipped", [False, True])
    async def test_two_passes_at_once(self, tmp_path: Path, zipped: bool) -> None:
        """Two concurrent passes over one reader (a folder or a zip) give the same rows."""
        path = EXAMPLES / "sample"
        if zipped:
            path = zip_folder(path, tmp_path / "export.zip")

        async def one(reader: OneRosterReader, results: list[list[dict[str, Any]]]) -> None:
            results.append([row async for row in reader])

        for name, reader in OneRoster(path, chunk_size=512).readers().items():
            results: list[list[dict[str, Any]]] = []
            async with anyio.create_task_group() as group:
                group.start_soon(one, reader, results)
                group.start_soon(one, reader, results)
            assert results[0] == results[1], name
            assert results[0] or SAMPLE_COUNTS[name] == 0, name

    def test_committed_sample_is_what_the_generator_writes(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """make_sample.py is deterministic and the committed files are its output."""
        module = load_generator(monkeypatch)
        sample = module.make_sample()
        changed, _changes = module.make_changed(sample)
        for name, export in (("sample", sample), ("changed", changed)):
            export.write(tmp_path / name)
            for file in sorted((tmp_path / name).glob("*.csv")):
                assert file.read_bytes() == (EXAMPLES / name / file.name).read_bytes(), file.name


def load_generator(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample", EXAMPLES / "make_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class TestChanged:
    async def test_changes_are_what_changes_md_says(self) -> None:
        """The changed export differs from the sample exactly as CHANGES.md lists."""
        before = await load(OneRoster(EXAMPLES / "sample"))
        after = await load(OneRoster(EXAMPLES / "changed"))
        notes = (EXAMPLES / "changed" / "CHANGES.md").read_text(encoding="utf-8")

        def listed(title: str) -> set[str]:
            section = notes.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
            return {line.split("`")[1] for line in section.splitlines() if line.startswith("- ")}

        left, joined = listed("Left"), listed("Joined")
        deleted = listed("Marked `tobedeleted`")
        regraded, moved = listed("Changed grade"), listed("Moved")
        assert (len(left), len(joined), len(deleted), len(regraded), len(moved)) == (4, 3, 1, 3, 3)

        students_before, students_after = before["students"], after["students"]
        assert set(students_before) - set(students_after) == left | deleted
        assert set(students_after) - set(students_before) == joined
        changed_grade = {
            key
            for key in set(students_before) & set(students_after)
            if students_before[key] != students_after[key]
        }
        assert changed_grade == regraded

        enrolled_before, enrolled_after = before["enrollments"], after["enrollments"]
        users_of = {row["user"] for row in enrolled_before.values()}
        assert {row["user"] for row in enrolled_after.values()} == users_of - (
            left | deleted
        ) | joined
        moved_users = {
            row["user"]
            for key in set(enrolled_before) ^ set(enrolled_after)
            for row in [enrolled_before.get(key) or enrolled_after[key]]
        }
        assert moved_users == left | deleted | joined | moved
        assert all(
            enrolled_before[key] == enrolled_after[key]
            for key in set(enrolled_before) & set(enrolled_after)
        )
        table = notes.split("| --- | ---: | ---: |\n", 1)[1].strip().splitlines()
        for line in table:
            name, in_sample, in_changed = (cell.strip() for cell in line.strip("|").split("|"))
            assert (len(before[name]), len(after[name])) == (int(in_sample), int(in_changed))
        for name in ("orgs", "courses", "classes", "staff"):
            assert before[name] == after[name]

    async def test_tobedeleted_rows_are_left_out(self) -> None:
        """A user marked tobedeleted is in users.csv but in no subbranch."""
        users = rows_of(EXAMPLES / "changed" / "users.csv")
        marked = [row["sourcedId"] for row in users if row["status"] == "tobedeleted"]
        assert marked == ["stu-0142"]
        loaded = await load(OneRoster(EXAMPLES / "changed"))
        assert "stu-0142" not in loaded["students"]
        assert all(row["user"] != "stu-0142" for row in loaded["enrollments"].values())
        assert len(loaded["students"]) == 298

    async def test_tobedeleted_in_every_file(self, export: Path) -> None:
        """tobedeleted is honoured for orgs, courses, classes, staff and enrollments too."""

        def mark(ids: set[str], key: str = "sourcedId") -> Any:
            def change(row: dict[str, str]) -> dict[str, str]:
                if row[key] in ids:
                    row["status"] = "tobedeleted"
                return row

            return change

        edit(export / "orgs.csv", mark({"org-district"}))
        edit(export / "courses.csv", mark({"crs-math-06"}))
        edit(export / "classes.csv", mark({"cls-math-06-a"}))
        edit(export / "users.csv", mark({"tch-001", "adm-02"}))
        edit(export / "enrollments.csv", mark({"cls-ela-06-a"}, key="classSourcedId"))
        loaded = await load(OneRoster(export))
        assert "org-district" not in loaded["orgs"]
        assert "crs-math-06" not in loaded["courses"]
        assert "cls-math-06-a" not in loaded["classes"]
        assert {"tch-001", "adm-02"}.isdisjoint(loaded["staff"])
        assert all(row["class"] != "cls-ela-06-a" for row in loaded["enrollments"].values())


class TestZip:
    async def test_zip_reads_like_the_folder(self, tmp_path: Path) -> None:
        """A zipped export gives the same rows; paths name the zip and the member."""
        archive = zip_folder(EXAMPLES / "sample", tmp_path / "export.zip")
        roster = OneRoster(archive)
        assert await load(roster) == await load(OneRoster(EXAMPLES / "sample"))
        assert roster.readers()["students"].path == archive / "users.csv"

    async def test_files_in_a_folder_inside_the_zip(self, tmp_path: Path) -> None:
        """Files may sit in one folder inside the zip."""
        archive = zip_folder(EXAMPLES / "sample", tmp_path / "export.ZIP", inside="oneroster/")
        roster = OneRoster(archive)
        loaded = await load(roster, "orgs", "enrollments")
        assert len(loaded["enrollments"]) == SAMPLE_COUNTS["enrollments"]
        assert roster.readers()["orgs"].path == archive / "oneroster" / "orgs.csv"

    async def test_error_inside_a_zip_names_member_and_line(self, export: Path) -> None:
        """A bad row in a zip member names the zip, the member, the line and the field."""
        text = (export / "courses.csv").read_text(encoding="utf-8").splitlines()
        text[5] = text[5].rsplit(",", 3)[0]  # three fields short
        (export / "courses.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
        archive = zip_folder(export, export.parent / "export.zip")
        exc = await failure(OneRoster(archive, chunk_size=64).readers()["courses"])
        assert exc.path == archive / "courses.csv"
        assert exc.line == 6
        assert exc.field == "orgSourcedId"
        assert f"{archive / 'courses.csv'}, line 6, field 'orgSourcedId'" in str(exc)

    async def test_not_a_zip(self, tmp_path: Path) -> None:
        """A file that is not a zip archive says so."""
        bogus = tmp_path / "export.zip"
        bogus.write_bytes(b"PK but not really")
        exc = await failure(OneRoster(bogus).readers()["orgs"])
        assert exc.path == bogus
        assert "zip" in str(exc)

    async def test_missing_zip(self, tmp_path: Path) -> None:
        """A zip that does not exist is not found."""
        exc = await failure(OneRoster(tmp_path / "gone.zip").readers()["orgs"])
        assert "file not found" in str(exc)


class TestManifest:
    async def test_manifest_values(self) -> None:
        """manifest() gives the checked manifest."""
        manifest = await OneRoster(EXAMPLES / "sample").manifest()
        assert manifest["oneroster.version"] == "1.1"
        assert manifest["file.users"] == "bulk"
        assert manifest["file.demographics"] == "absent"

    async def test_missing_manifest(self, export: Path) -> None:
        """An export without manifest.csv is refused."""
        (export / "manifest.csv").unlink()
        exc = await failure(OneRoster(export).readers()["students"])
        assert exc.path == export / "manifest.csv"
        assert "manifest.csv not found" in str(exc)

    @pytest.mark.parametrize(
        ("name", "value"), [("oneroster.version", "1.3"), ("manifest.version", "2.0")]
    )
    async def test_unsupported_version(self, export: Path, name: str, value: str) -> None:
        """Another OneRoster or manifest version is refused, naming the line and field."""
        set_manifest(export, name, value)
        exc = await failure(OneRoster(export).readers()["orgs"])
        assert exc.path == export / "manifest.csv"
        assert exc.line is not None and exc.line > 1
        assert exc.field == "value"
        assert f"unsupported {name} {value!r}" in str(exc)
        assert f"line {exc.line}, field 'value'" in str(exc)

    async def test_missing_version(self, export: Path) -> None:
        """A manifest without oneroster.version is refused."""
        set_manifest(export, "oneroster.version", None)
        exc = await failure(OneRoster(export).readers()["orgs"])
        assert "oneroster.version" in str(exc)

    async def test_bulk_file_missing(self, export: Path) -> None:
        """A file marked bulk must be there, whichever subbranch is read."""
        (export / "academicSessions.csv").unlink()
        exc = await failure(OneRoster(export).readers()["students"])
        assert exc.path == export / "manifest.csv"
        assert exc.field == "value"
        assert "file.academicSessions is 'bulk' but the export has no academicSessions.csv" in str(
            exc
        )

    async def test_delta_file_is_a_delta(self, export: Path) -> None:
        """A delta file gives its rows as changes: the last batch says delta, with removals."""
        set_manifest(export, "file.users", "delta")
        edit(
            export / "users.csv",
            lambda row: row if row["sourcedId"] in ("stu-0001", "stu-0002") else None,
        )
        edit(
            export / "users.csv",
            lambda row: {**row, "status": "tobedeleted"} if row["sourcedId"] == "stu-0002" else row,
        )
        batches = [batch async for batch in OneRoster(export).readers()["students"].batches()]
        assert [row["idnumber"] for batch in batches for row in batch.rows] == ["stu-0001"]
        assert (batches[-1].coverage, batches[-1].removed) == ("delta", ("stu-0002",))

    async def test_absent_file(self, export: Path) -> None:
        """A file marked absent gives one batch saying so; the other subbranches still read."""
        set_manifest(export, "file.courses", "absent")
        (export / "courses.csv").unlink()
        roster = OneRoster(export)
        batches = [batch async for batch in roster.readers()["courses"].batches()]
        assert [(b.rows, b.coverage) for b in batches] == [([], "absent")]
        assert batches[0].notes == (
            "courses: not in this export (manifest.csv: file.courses=absent); left untouched",
        )
        assert len((await load(roster, "classes"))["classes"]) == 42

    async def test_bad_mode(self, export: Path) -> None:
        """A file mode other than bulk, delta or absent is refused."""
        set_manifest(export, "file.orgs", "full")
        exc = await failure(OneRoster(export).readers()["orgs"])
        assert exc.field == "value"
        assert "'full'" in str(exc)


class TestErrors:
    async def test_missing_folder(self, tmp_path: Path) -> None:
        """An export folder that does not exist is not found."""
        exc = await failure(OneRoster(tmp_path / "nowhere").readers()["orgs"])
        assert exc.path == tmp_path / "nowhere"
        assert "file not found" in str(exc)

    async def test_a_file_is_not_a_folder(self, export: Path) -> None:
        """A path that is neither a folder nor a .zip is refused."""
        exc = await failure(OneRoster(export / "users.csv").readers()["orgs"])
        assert "not a folder or a .zip" in str(exc)

    async def test_no_students_is_an_error_if_asked(self, export: Path) -> None:
        """allow_empty=False: a users.csv without students is an error (by default, a note)."""
        edit(export / "users.csv", lambda row: None if row["role"] == "student" else row)
        exc = await failure(OneRoster(export, allow_empty=False).readers()["students"])
        assert exc.path == export / "users.csv"
        assert "no students" in str(exc)
        roster = OneRoster(export)
        assert (await load(roster, "students"))["students"] == {}
        assert len((await load(roster, "staff"))["staff"]) == 33

    async def test_missing_column(self, export: Path) -> None:
        """A file without a column a subbranch needs names the column."""
        rows = rows_of(export / "users.csv")
        with (export / "users.csv").open("w", newline="", encoding="utf-8") as file:
            header = [name for name in rows[0] if name != "familyName"]
            writer = csv.DictWriter(file, header, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        exc = await failure(OneRoster(export).readers()["staff"])
        assert exc.path == export / "users.csv"
        assert exc.line == 1
        assert exc.field == "familyName"

    async def test_enrollment_without_class(self, export: Path) -> None:
        """An enrollment row without a class names its line."""
        rows = rows_of(export / "enrollments.csv")
        target = rows[9]["sourcedId"]

        def blank(row: dict[str, str]) -> dict[str, str]:
            if row["sourcedId"] == target:
                row["classSourcedId"] = ""
            return row

        edit(export / "enrollments.csv", blank)
        exc = await failure(OneRoster(export).readers()["enrollments"])
        assert (exc.line, exc.field) == (11, "classSourcedId")

    def test_bad_options(self) -> None:
        """Options are checked when the export is named, naming the parameter."""
        with pytest.raises(ValueError, match="'chunk_size'"):
            OneRoster("export", chunk_size=0)
        with pytest.raises(ValueError, match="'allow_empty'"):
            OneRoster("export", allow_empty="no")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'subbranch'"):
            OneRosterReader(OneRoster("export"), "parents")


async def test_stopping_early(tmp_path: Path) -> None:
    """Readers may be abandoned (break, an error) without leaving files open."""
    archive = zip_folder(EXAMPLES / "sample", tmp_path / "export.zip")
    for path in (EXAMPLES / "sample", archive):
        readers = OneRoster(path, chunk_size=256).readers()
        for name in ("students", "enrollments"):
            async for _row in readers[name]:
                break
            with pytest.raises(RuntimeError):
                async for _batch in readers[name].batches():
                    raise RuntimeError("the loader failed")
        assert len((await load(OneRoster(path), "students"))["students"]) == 300


async def test_loads_into_a_tree() -> None:
    """The readers load a SyncTree; the changed export diffs as CHANGES.md says."""
    tree = SyncTree(["source", "destination"], list(OneRoster.subbranches))
    await tree.load(
        source=OneRoster(EXAMPLES / "changed").readers(),
        destination=OneRoster(EXAMPLES / "sample").readers(),
    )
    assert len(tree.destination.students) == 300
    assert len(tree.source.students) == 298
    messages = [action.message for action in tree.source > tree.destination]
    assert messages.count("new_students") == 3
    assert messages.count("old_students") == 5
    assert messages.count("update_students_grade") == 3
