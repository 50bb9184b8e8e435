"""CSVTemplate: a CSV file as the destination, written atomically and convergently."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synctree import Action, ConfigError, InputError, Outcome, Report, SyncTree
from synctree._cli._config import Config
from synctree.aio import batch
from synctree.aio.csv._formulas import neutralised, unneutralised
from synctree.aio.csv._reader import CSVReader
from synctree.aio.csv._template import CSVTemplate

pytestmark = pytest.mark.anyio

TYPES: dict[str, Any] = {"grade": int, "classes": set, "active": bool, "born": dt.date}
SOURCE = (
    "idnumber,first,grade,classes,active,born\n"
    "3,Cleo,9,MATH;ART,true,2010-01-02\n"
    '1,"Lee, Ann",7,,false,\n'
    "2,Bob,,BIO,,2011-03-04\n"
)
HEADER = "idnumber,first,grade,classes,active,born\r\n"


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def text(path: Path) -> str:
    return path.read_bytes().decode()


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def reader(path: Path, **options: Any) -> CSVReader:
    """A reader typing the columns of ``TYPES`` that the file has."""
    header = path.read_text().partition("\n")[0].split(",")
    types = {name: kind for name, kind in TYPES.items() if name in header}
    return CSVReader(path, key="idnumber", types=types, **options)


async def load(source: Path, dest: Path, **dest_options: Any) -> SyncTree:
    """A tree of students from two CSV files; a missing destination file is empty."""
    tree = SyncTree(["source", "destination"], ["students"])
    destination = (
        {"students": reader(dest, **dest_options)} if await anyio.Path(dest).exists() else {}
    )
    await tree.load(source={"students": reader(source)}, destination=destination)
    return tree


async def sync(source: Path, dest: Path, template: CSVTemplate | None = None, **run: Any) -> Report:
    tree = await load(source, dest)
    report: Report = await (tree.source > tree.destination).run(
        template or CSVTemplate(dest), **run
    )
    return report


async def plan(source: Path, dest: Path) -> list[Action]:
    tree = await load(source, dest)
    return list(tree.source > tree.destination)


def outcomes(report: Report) -> dict[tuple[str, str], Outcome]:
    return {(r.action.message, r.action.idnumber): r.outcome for r in report.results}


class TestCreate:
    async def test_into_a_missing_file(self, tmp_path: Path) -> None:
        """A new file: the key, then the attributes in first-seen order; rows sorted by key."""
        dest = tmp_path / "out.csv"
        report = await sync(write(tmp_path / "src.csv", SOURCE), dest)
        assert report.ok and report.totals[Outcome.SUCCEEDED] == 3
        assert text(dest) == (
            HEADER
            + '1,"Lee, Ann",7,,false,\r\n'
            + "2,Bob,,BIO,,2011-03-04\r\n"
            + "3,Cleo,9,ART;MATH,true,2010-01-02\r\n"
        )

    async def test_key_and_columns(self, tmp_path: Path) -> None:
        """``key`` names the key column; ``columns`` chooses and orders the columns."""
        dest = tmp_path / "out.csv"
        template = CSVTemplate(dest, key="id", columns=["first", "id", "classes"])
        await sync(write(tmp_path / "src.csv", SOURCE), dest, template)
        assert text(dest) == (
            'first,id,classes\r\n"Lee, Ann",1,\r\nBob,2,BIO\r\nCleo,3,ART;MATH\r\n'
        )

    async def test_values(self, tmp_path: Path) -> None:
        """None empty, bools true/false, dates ISO, sets and lists sorted, quoting by csv."""
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new(
            "source",
            "students",
            "1",
            none=None,
            yes=True,
            no=False,
            number=2.5,
            day=dt.date(2024, 1, 2),
            moment=dt.datetime(2024, 1, 2, 3, 4, 5),
            tags=["b", "a", "c"],
            ids={10, 9},
            note='say "hi",\nthen go',
        )
        dest = tmp_path / "out.csv"
        await ((tree.source > tree.destination) | CSVTemplate(dest, delimiter=";", separator="|"))
        assert text(dest) == (
            "idnumber;none;yes;no;number;day;moment;tags;ids;note\r\n"
            '1;;true;false;2.5;2024-01-02;2024-01-02T03:04:05;a|b|c;10|9;"say ""hi"",\nthen go"\r\n'
        )

    async def test_member_with_the_separator_fails(self, tmp_path: Path) -> None:
        """A member holding the separator would read back as two: that action fails."""
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", classes={"A;B"})
        tree.new("source", "students", "2", classes={"C"})
        dest = tmp_path / "out.csv"
        report = await ((tree.source > tree.destination) | CSVTemplate(dest))
        assert outcomes(report) == {
            ("new_students", "1"): Outcome.FAILED,
            ("new_students", "2"): Outcome.SUCCEEDED,
        }
        assert "separator" in str(report.failures[0].error)
        assert text(dest) == "idnumber,classes\r\n2,C\r\n"


class TestExistingFile:
    EXISTING = (
        "idnumber,first,notes,grade,classes,active,born\n"
        "9,Zed,keep me,5,X,true,\n"
        "3,Cleo,,8,ART;BIO,true,2010-01-02\n"
        '1,"Lee, Ann","a, b",7,,false,\n'
    )

    async def test_changes_keep_unknown_columns_and_row_order(self, tmp_path: Path) -> None:
        """update/add/remove in place, old drops, new appended; other cells kept as they are."""
        dest = write(tmp_path / "out.csv", self.EXISTING)
        source = write(tmp_path / "src.csv", SOURCE)
        report = await sync(source, dest, max_deletes=None)
        assert report.ok
        assert {r.action.message for r in report.results} == {
            "update_students",
            "add_students_classes",
            "remove_students_classes",
            "new_students",
            "old_students",
        }
        assert text(dest) == (
            "idnumber,first,notes,grade,classes,active,born\n"
            "3,Cleo,,9,ART;MATH,true,2010-01-02\n"
            '1,"Lee, Ann","a, b",7,,false,\n'
            "2,Bob,,,BIO,,2011-03-04\n"
        )

    async def test_new_rows_sorted_by_key_after_the_existing_ones(self, tmp_path: Path) -> None:
        """Existing rows stay where they are; new ones follow, sorted by key."""
        dest = write(tmp_path / "out.csv", "idnumber,first\r\n5,E\r\n")
        tree = SyncTree(["source", "destination"], ["students"])
        for key, first in {"5": "E", "b": "B", "a": "A", "4": "D"}.items():
            tree.new("source", "students", key, first=first)
        tree.new("destination", "students", "5", first="E")
        await ((tree.source > tree.destination) | CSVTemplate(dest))
        assert text(dest) == "idnumber,first\r\n5,E\r\n4,D\r\na,A\r\nb,B\r\n"

    async def test_columns_rearrange_an_existing_file(self, tmp_path: Path) -> None:
        """Given columns, the rows are rearranged to them; other columns are dropped."""
        dest = write(tmp_path / "out.csv", "first,idnumber,notes\nAnn,1,x\n")
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", first="Ann")
        tree.new("source", "students", "2", first="Bob", grade=7)
        tree.new("destination", "students", "1", first="Ann")
        template = CSVTemplate(dest, columns=["idnumber", "grade", "first"])
        await ((tree.source > tree.destination) | template)
        assert text(dest) == "idnumber,grade,first\n1,,Ann\n2,7,Bob\n"

    async def test_odd_headers_and_encoding_kept(self, tmp_path: Path) -> None:
        """Empty and 'idnumber' column names, spaces in names, a BOM: all kept as they were."""
        dest = tmp_path / "out.csv"
        dest.write_bytes(b"\xef\xbb\xbf id ,idnumber, first ,\r\n1,x,Ann,y\r\n")
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", first="Anna")
        tree.new("destination", "students", "1", first="Ann")
        await ((tree.source > tree.destination) | CSVTemplate(dest, key="id"))
        assert dest.read_bytes() == b"\xef\xbb\xbf id ,idnumber, first ,\r\n1,x,Anna,y\r\n"

    async def test_missing_row_or_column_fails_that_action(self, tmp_path: Path) -> None:
        """An action the file cannot take fails alone; the others are written."""
        dest = write(tmp_path / "out.csv", "idnumber,first\n1,Ann\n3,Cy\n")
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", first="Anna")
        tree.new("source", "students", "2", first="Bob")
        tree.new("source", "students", "3", first="Cy", grade=7)
        tree.new("destination", "students", "2", first="Bo")  # not in the file
        tree.new("destination", "students", "3", first="Cy", grade=6)  # no grade column
        tree.new("destination", "students", "1", first="Ann")
        report = await ((tree.source > tree.destination) | CSVTemplate(dest))
        assert outcomes(report) == {
            ("update_students", "1"): Outcome.SUCCEEDED,
            ("update_students", "2"): Outcome.FAILED,
            ("update_students", "3"): Outcome.FAILED,
        }
        errors = sorted(str(r.error) for r in report.failures)
        assert errors == [
            f"{dest}: no column 'grade' (pass columns=... to add it)",
            f"{dest}: no row with key '2'",
        ]
        assert text(dest) == "idnumber,first\n1,Anna\n3,Cy\n"

    @pytest.mark.parametrize(
        ("content", "line", "field", "problem"),
        [
            ("id,first\n1,Ann\n", 1, "idnumber", "the key column 'idnumber' is missing"),
            ("idnumber,a,a\n1,x,y\n", 1, "a", "appears twice"),
            ("idnumber,first\n1,Ann\n\n1,Bob\n", 4, "idnumber", "duplicate key '1'"),
            ("idnumber,first\n1,Ann\n2\n", 3, "first", "expected 2 fields, found 1"),
        ],
    )
    async def test_bad_file(
        self, tmp_path: Path, content: str, line: int, field: str, problem: str
    ) -> None:
        """A bad destination file stops the run before any action, naming line and field."""
        dest = write(tmp_path / "out.csv", content)
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "7", first="New")
        with pytest.raises(InputError) as info:
            await ((tree.source > tree.destination) | CSVTemplate(dest))
        assert (info.value.path, info.value.line, info.value.field) == (dest, line, field)
        assert problem in str(info.value)
        assert text(dest) == content


class TestAtomicWrite:
    async def test_old_file_intact_when_the_rename_fails(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If the file cannot be replaced, it is unchanged and no temporary file is left."""
        dest = write(tmp_path / "out.csv", "idnumber,first\n1,Ann\n")
        source = write(tmp_path / "src.csv", "idnumber,first\n1,Anna\n")

        def fail(src: object, dst: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(PermissionError) as info:
            await sync(source, dest)
        assert f"{dest} was not written; it is unchanged" in info.value.__notes__
        assert text(dest) == "idnumber,first\n1,Ann\n"
        assert listing(tmp_path) == ["out.csv", "src.csv"]

    async def test_no_temporary_file_left_when_writing_fails(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failure while writing (a full disk, say) leaves nothing behind."""
        dest = tmp_path / "out.csv"

        def fail(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "fsync", fail)
        with pytest.raises(OSError, match="No space left"):
            await sync(write(tmp_path / "src.csv", SOURCE), dest)
        assert listing(tmp_path) == ["src.csv"]

    async def test_mode_and_symlink_kept(self, tmp_path: Path) -> None:
        """The new file has the old one's permissions; a symlink stays a link."""
        real = write(tmp_path / "real.csv", "idnumber,first\n1,Ann\n")
        real.chmod(0o640)
        link = tmp_path / "out.csv"
        link.symlink_to(real)
        await sync(write(tmp_path / "src.csv", "idnumber,first\n1,Anna\n"), link)
        assert link.is_symlink()
        assert text(real) == "idnumber,first\n1,Anna\n"
        assert stat.S_IMODE(real.stat().st_mode) == 0o640

    async def test_not_written_when_nothing_succeeded(self, tmp_path: Path) -> None:
        """No succeeded action, no write: the file keeps its bytes, blank lines and all."""
        content = "idnumber,first\n\n1,Ann\n"
        dest = write(tmp_path / "out.csv", content)
        source = write(tmp_path / "src.csv", "idnumber,first\n1,Ann\n")
        report = await sync(source, dest)
        assert len(report) == 0
        assert text(dest) == content

        class Failing(CSVTemplate):
            async def update(self, action: Action) -> None:  # type: ignore[override]
                raise RuntimeError("no")

        write(source, "idnumber,first\n1,Anna\n")
        report = await sync(source, dest, Failing(dest))
        assert report.totals == {Outcome.FAILED: 1}
        assert text(dest) == content


class TestFormulas:
    VALUES = ["=1+1", "+cmd", "-x", "@SUM(A1)", "\tx", "\rx", "-5", "+3.5", "-1e3", "a=b", "'=z"]

    def tree(self) -> SyncTree:
        tree = SyncTree(["source", "destination"], ["students"])
        for n, value in enumerate(self.VALUES):
            tree.new("source", "students", str(n), value=value)
        tree.new("source", "students", "s", value={"=A", "B"})
        return tree

    async def test_neutralised(self, tmp_path: Path) -> None:
        """Cells a spreadsheet would run get a leading quote; plain numbers do not."""
        dest = tmp_path / "out.csv"
        tree = self.tree()
        await ((tree.source > tree.destination) | CSVTemplate(dest))
        rows = text(dest).split("\r\n")
        assert rows[1:-1] == [
            "0,'=1+1",
            "1,'+cmd",
            "10,''=z",  # quoted again, so that the quote reads back
            "2,'-x",
            "3,'@SUM(A1)",
            "4,'\tx",
            '5,"\'\rx"',
            "6,-5",
            "7,+3.5",
            "8,-1e3",
            "9,a=b",
            "s,'=A;B",
        ]

    async def test_not_neutralised_when_turned_off(self, tmp_path: Path) -> None:
        """neutralise_formulas=False writes the values as they are."""
        dest = tmp_path / "out.csv"
        tree = self.tree()
        await ((tree.source > tree.destination) | CSVTemplate(dest, neutralise_formulas=False))
        rows = text(dest).split("\r\n")
        assert rows[1:5] == ["0,=1+1", "1,+cmd", "10,'=z", "2,-x"]
        assert rows[-2] == "s,=A;B"

    async def test_read_back(self, tmp_path: Path) -> None:
        """CSVReader(neutralised_formulas=True) reads every value back as it was written."""
        dest = tmp_path / "out.csv"
        tree = self.tree()
        await ((tree.source > tree.destination) | CSVTemplate(dest))
        reader = CSVReader(dest, key="idnumber", neutralised_formulas=True)
        rows = {row["idnumber"]: row["value"] async for row in reader}
        assert rows == {**{str(n): value for n, value in enumerate(self.VALUES)}, "s": "=A;B"}

    @given(st.text(alphabet=st.sampled_from("'=+-@\t\r5.eEa "), max_size=8))
    def test_unneutralised_undoes_neutralised(self, value: str) -> None:
        """Taking the quote off gives back any value; the written cell never runs."""
        cell = neutralised(value)
        assert unneutralised(cell) == value
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or cell == value

    async def test_formula_key_fails(self, tmp_path: Path) -> None:
        """A key that would need a quote cannot be written unchanged: that create fails."""
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "=1", first="x")
        tree.new("source", "students", "-1", first="y")
        dest = tmp_path / "out.csv"
        report = await ((tree.source > tree.destination) | CSVTemplate(dest))
        assert outcomes(report)[("new_students", "=1")] is Outcome.FAILED
        assert text(dest) == "idnumber,first\r\n-1,y\r\n"


class TestRuns:
    async def test_dry_run_writes_nothing(self, tmp_path: Path) -> None:
        """A dry run plans; no file is created or changed."""
        source = write(tmp_path / "src.csv", SOURCE)
        missing = tmp_path / "out.csv"
        report = await sync(source, missing, dry_run=True)
        assert report.totals == {Outcome.PLANNED: 3}
        assert not missing.exists()
        content = "idnumber,first,grade,classes,active,born\n1,Ann,,,,\n9,Old,,,,\n"
        dest = write(tmp_path / "old.csv", content)
        report = await sync(source, dest, CSVTemplate(dest), dry_run=True, max_deletes=None)
        assert set(report.totals) == {Outcome.PLANNED}
        assert text(dest) == content
        assert listing(tmp_path) == ["old.csv", "src.csv"]

    async def test_cancelled_run_writes_what_succeeded(self, tmp_path: Path) -> None:
        """After a cancel, the file holds exactly the actions the report says succeeded."""
        source = write(tmp_path / "src.csv", SOURCE)
        dest = tmp_path / "out.csv"
        calls: list[str] = []

        class Slow(CSVTemplate):
            concurrency = 1

            @batch(1)
            async def new(self, actions: list[Action]) -> list[object]:
                outcomes = await super().new(actions)  # staged ...
                calls.append(actions[0].idnumber)
                if len(calls) == 2:  # ... then cut short: not applied
                    scope.cancel()
                    await anyio.sleep(5)
                return outcomes

        template = Slow(dest)
        tree = await load(source, dest)
        with anyio.CancelScope() as scope:
            await (tree.source > tree.destination).run(template, grace=0)
        assert template.report is not None
        assert outcomes(template.report) == {
            ("new_students", calls[0]): Outcome.SUCCEEDED,
            ("new_students", calls[1]): Outcome.FAILED,
        }
        assert [row["idnumber"] async for row in reader(dest)] == [calls[0]]
        report = await sync(source, dest)
        assert len(report) == 2 and report.ok
        assert await plan(source, dest) == []


class TestSubbranch:
    def tree(self, staff: bool = True) -> SyncTree:
        tree = SyncTree(["source", "destination"], ["students", "staff"])
        tree.new("source", "students", "1", first="Ann")
        if staff:
            tree.new("source", "staff", "9", first="Tess")
        return tree

    async def test_several_with_actions_is_an_error(self, tmp_path: Path) -> None:
        """Without subbranch=, actions for two subbranches stop the run before anything."""
        dest = tmp_path / "out.csv"
        tree = self.tree()
        with pytest.raises(ConfigError, match="students, staff: pass subbranch="):
            await ((tree.source > tree.destination) | CSVTemplate(dest))
        assert not dest.exists()

    async def test_the_only_one_with_actions(self, tmp_path: Path) -> None:
        """Without subbranch=, the only subbranch with actions is the file's."""
        dest = tmp_path / "out.csv"
        tree = self.tree(staff=False)
        report = await ((tree.source > tree.destination) | CSVTemplate(dest))
        assert report.ok and text(dest) == "idnumber,first\r\n1,Ann\r\n"

    async def test_given_subbranch_skips_the_others(self, tmp_path: Path) -> None:
        """subbranch= names the file's subbranch; other subbranches' actions are skipped."""
        dest = tmp_path / "out.csv"
        tree = self.tree()
        report = await ((tree.source > tree.destination) | CSVTemplate(dest, subbranch="staff"))
        assert outcomes(report) == {
            ("new_students", "1"): Outcome.SKIPPED,
            ("new_staff", "9"): Outcome.SUCCEEDED,
        }
        assert text(dest) == "idnumber,first\r\n9,Tess\r\n"

    async def test_unknown_subbranch(self, tmp_path: Path) -> None:
        """A subbranch the tree lacks is a configuration error."""
        tree = self.tree()
        with pytest.raises(ConfigError, match="subbranch='teachers' is not in the tree"):
            await (
                (tree.source > tree.destination)
                | CSVTemplate(tmp_path / "x.csv", subbranch="teachers")
            )


class TestConvergence:
    CHANGED = (
        "idnumber,first,grade,classes,active,born\n"
        "3,Cleo,10,MATH;BIO;CHEM,false,2010-01-02\n"
        "4,Dee,5,ART,true,2012-05-06\n"
        '1,"Lee, Ann",7,,,\n'
        '5,"multi\nline ""quoted""",6,A;B,true,\n'
    )

    FORMULAS = (
        "idnumber,first,note,classes\n"
        '1,Ann,"=HYPERLINK(""http://x.test"",""x"")",=A;B\n'
        "2,Bob,+1 555,C\n"
        "3,Cid,@SUM(A1),\n"
        "4,Dee,-x,+D;E\n"
        "5,Eve,-5,\n"
        "6,Fay,'=already,\n"
        "7,Gus,'hello,\n"
    )

    async def test_formulas(self, tmp_path: Path) -> None:
        """Neutralised cells read back with neutralised_formulas=True: no actions after a run."""
        source = write(tmp_path / "src.csv", self.FORMULAS)
        dest = tmp_path / "out.csv"
        report = await sync(source, dest)
        assert report.ok
        assert text(dest).split("\r\n")[1:-1] == [
            '1,Ann,"\'=HYPERLINK(""http://x.test"",""x"")",\'=A;B',
            "2,Bob,'+1 555,C",
            "3,Cid,'@SUM(A1),",
            "4,Dee,'-x,'+D;E",
            "5,Eve,-5,",
            "6,Fay,''=already,",
            "7,Gus,'hello,",
        ]
        tree = await load(source, dest, neutralised_formulas=True)
        assert list(tree.source > tree.destination) == []
        tree = await load(source, dest)  # the option off: the quotes look like changes
        changed = {(a.kind, a.idnumber) for a in tree.source > tree.destination}
        assert ("update", "1") in changed and ("update", "6") in changed
        assert ("add", "1") in changed and ("remove", "4") in changed

        write(source, self.FORMULAS.replace("=A;B", "B;=Z").replace("+D;E", "E"))
        tree = await load(source, dest, neutralised_formulas=True)
        assert {a.kind for a in tree.source > tree.destination} == {"add", "remove"}
        report = await (tree.source > tree.destination).run(CSVTemplate(dest))
        assert report.ok
        assert '1,Ann,"\'=HYPERLINK(""http://x.test"",""x"")",\'=Z;B' in text(dest)
        tree = await load(source, dest, neutralised_formulas=True)
        assert list(tree.source > tree.destination) == []

    async def test_formulas_through_a_config(self, tmp_path: Path) -> None:
        """The option is a key of a csv reader's table in a TOML config."""
        source = write(tmp_path / "src.csv", self.FORMULAS)
        await sync(source, tmp_path / "out.csv")
        config = write(
            tmp_path / "sync.toml",
            '[sync]\nsubbranches = ["students"]\n'
            '[source.students]\nreader = "csv"\npath = "src.csv"\nkey = "idnumber"\n'
            '[destination.students]\nreader = "csv"\npath = "out.csv"\nkey = "idnumber"\n'
            "neutralised_formulas = true\n"
            '[template]\nuse = "csv"\npath = "out.csv"\n',
        )
        parsed = Config(config)
        tree = parsed.tree()
        await tree.load(**parsed.build_readers())
        assert list(tree.source > tree.destination) == []

    async def test_csv_to_csv(self, tmp_path: Path) -> None:
        """After each run, planning again from the written file shows no actions."""
        source = write(tmp_path / "src.csv", SOURCE)
        dest = tmp_path / "out.csv"
        await sync(source, dest)
        assert await plan(source, dest) == []
        write(source, self.CHANGED)
        changes = await plan(source, dest)
        assert {a.kind for a in changes} == {"new", "update", "add", "remove", "old"}
        report = await sync(source, dest, max_deletes=None)
        assert report.ok
        assert await plan(source, dest) == []

    async def test_deterministic_output(self, tmp_path: Path) -> None:
        """The same inputs give byte-identical files, whatever the concurrency."""
        source = write(tmp_path / "src.csv", self.CHANGED + "".join(
            f"{n},N{n},{n % 12},{';'.join(f'C{c}' for c in range(n % 5))},true,\n"
            for n in range(100, 400)
        ))  # fmt: skip
        existing = "idnumber,first,x\n9,Z,keep\n3,C,\n150,Q,\n"
        files = []
        for n, concurrency in enumerate([1, 8, 64]):
            dest = write(tmp_path / f"out{n}.csv", existing)
            await sync(source, dest, concurrency=concurrency, max_deletes=None)
            files.append(dest.read_bytes())
        assert files[0] == files[1] == files[2]


class TestSQLiteRoundTrip:
    async def test_csv_to_sqlite_to_csv(self, tmp_path: Path) -> None:
        """CSV → SQLite → CSV gives back the original rows: reading both, no actions."""
        from synctree.aio.sql import SQLReader, SQLTemplate

        source = write(tmp_path / "src.csv", TestConvergence.CHANGED)
        url = f"sqlite+aiosqlite:///{tmp_path / 'school.db'}"
        dest = tmp_path / "out.csv"
        sql_types = {"classes": set, "active": bool}
        for _ in range(2):
            tree = SyncTree(["source", "destination"], ["students"])
            await tree.load(
                source={"students": reader(source)},
                destination={
                    "students": SQLReader(
                        url, table="students", key="idnumber", types=sql_types, missing_ok=True
                    )
                },
            )
            sql = SQLTemplate(url, create_tables=True)
            report = await (tree.source > tree.destination).run(sql, max_deletes=None)
            assert report.ok

            tree = SyncTree(["database", "file"], ["students"])
            file = {"students": reader(dest)} if await anyio.Path(dest).exists() else {}
            await tree.load(
                database={
                    "students": SQLReader(url, table="students", key="idnumber", types=sql_types)
                },
                file=file,
            )
            report = await (tree.database > tree.file).run(CSVTemplate(dest), max_deletes=None)
            assert report.ok
            assert await plan(source, dest) == []
            write(source, SOURCE)


class TestOptions:
    @pytest.mark.parametrize(
        ("options", "name"),
        [
            ({"key": ""}, "key"),
            ({"columns": "idnumber"}, "columns"),
            ({"columns": ["first"]}, "columns"),
            ({"columns": ["idnumber", "a", "a"]}, "columns"),
            ({"delimiter": ",,"}, "delimiter"),
            ({"delimiter": '"'}, "delimiter"),
            ({"encoding": "no-such-codec"}, "encoding"),
            ({"separator": ""}, "separator"),
            ({"neutralise_formulas": 1}, "neutralise_formulas"),
            ({"subbranch": ""}, "subbranch"),
        ],
    )
    def test_bad_option(self, options: dict[str, Any], name: str) -> None:
        """Options are checked at once; the error names the parameter."""
        with pytest.raises(ValueError, match=f"'{name}'"):
            CSVTemplate("out.csv", **options)

    def test_repr(self) -> None:
        """The repr names the file and the key."""
        assert repr(CSVTemplate("out.csv", key="id")) == "<CSVTemplate 'out.csv' key='id'>"
