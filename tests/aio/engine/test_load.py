"""Loading a tree from readers, concurrently, with hooks and honest errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from synctree import DuplicateKeyError, InputError, ReaderError, Subbranch, SyncTree
from synctree.aio import Batch, Derived, Pipeline

pytestmark = pytest.mark.anyio


async def rows(*items: dict[str, Any], delay: float = 0.0) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        if delay:
            await anyio.sleep(delay)
        yield dict(item)


class Located:
    """A reader that says where its rows come from, like the file readers do: a
    :class:`Batch` per row, each with its path and line (rows start on line 2)."""

    def __init__(self, items: list[dict[str, Any]], fail_at: int | None = None) -> None:
        self.items = items
        self.fail_at = fail_at
        self.path = "export/students.csv"

    def __repr__(self) -> str:
        return f"Located({self.path!r})"

    async def batches(self) -> AsyncIterator[Batch]:
        for number, item in enumerate(self.items, start=2):
            if number == self.fail_at:
                raise InputError("not an int: 'x'", path=self.path, line=number, field="grade")
            yield Batch([dict(item)], path=self.path, line_of=lambda _, n=number: n)


def tree(*subbranches: str, **kwargs: Any) -> SyncTree:
    return SyncTree(["source", "destination"], list(subbranches or ["students"]), **kwargs)


class TestLoad:
    async def test_loads_every_branch(self) -> None:
        """Every subbranch of every branch ends up in the tree."""
        t = tree("students", "staff")
        await t.load(
            source={
                "students": rows({"idnumber": "1", "first": "A"}),
                "staff": rows({"idnumber": "9"}),
            },
            destination={"students": rows({"idnumber": "1", "first": "B"})},
        )
        assert t.source.students["1"].first == "A"
        assert "9" in t.source.staff
        assert t.destination.students["1"].first == "B"

    async def test_loads_concurrently(self) -> None:
        """Slow readers overlap: two readers of 20 x 10 ms take far less than 400 ms."""
        t = tree()
        many = [{"idnumber": str(i)} for i in range(20)]
        start = anyio.current_time()
        await t.load(
            source={"students": rows(*many, delay=0.01)},
            destination={"students": rows(*many, delay=0.01)},
        )
        assert anyio.current_time() - start < 0.39
        assert len(t.source.students) == len(t.destination.students) == 20

    async def test_reader_with_batches(self) -> None:
        """A reader's ``batches()`` is used when it has one."""

        class Batched:
            async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
                yield [{"idnumber": "1"}, {"idnumber": "2"}]
                yield [{"idnumber": "3"}]

            def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
                raise AssertionError("batches() should be used")

        t = tree()
        await t.load(source={"students": Batched()})
        assert list(t.source.students.keys()) == ["1", "2", "3"]

    @pytest.mark.parametrize(
        "batches",
        [
            [[{"idnumber": "1"}, {"idnumber": "2"}, {"idnumber": "1", "x": 1}]],  # in a batch
            [[{"idnumber": "1"}, {"idnumber": "2"}], [{"idnumber": "1", "x": 1}]],  # across
        ],
        ids=["within", "across"],
    )
    async def test_batches_with_a_key_twice(self, batches: list[list[dict[str, Any]]]) -> None:
        """A key met twice in batches follows the duplicate policy, wherever the rows are."""

        class Batched:
            async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
                for batch in batches:
                    yield [dict(row) for row in batch]

        t = tree()
        with pytest.raises(ReaderError) as info:
            await t.load(source={"students": Batched()})
        assert isinstance(info.value.__cause__, DuplicateKeyError)
        t = tree(duplicates={"students": "replace"})
        await t.load(source={"students": Batched()})
        assert list(t.source.students.keys()) == ["1", "2"]
        assert t.source.students["1"].x == 1

    async def test_batch_with_a_key_not_a_string(self) -> None:
        """A batch holding a non-string idnumber is an error naming it."""

        class Batched:
            async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
                yield [{"idnumber": "1"}, {"idnumber": 2}]

        with pytest.raises(ReaderError, match="idnumber must be a str, got int 2"):
            await tree().load(source={"students": Batched()})

    async def test_merge_rows_sharing_a_key(self) -> None:
        """With the merge policy, one row per enrollment becomes one leaf with a set."""
        t = tree("enrollments", duplicates={"enrollments": "merge"})
        await t.load(
            source={
                "enrollments": rows(
                    {"idnumber": "s1", "classes": {"math"}},
                    {"idnumber": "s1", "classes": {"art"}},
                    {"idnumber": "s2", "classes": {"math"}},
                )
            }
        )
        assert t.source.enrollments["s1"].classes == {"math", "art"}

    async def test_preprocess_transforms_and_drops(self) -> None:
        """preprocess changes rows, and a None return drops the row."""

        def fix(row: dict[str, Any]) -> dict[str, Any] | None:
            if row["idnumber"].startswith("x"):
                return None
            row["first"] = row["first"].title()
            return row

        t = tree()
        reader = rows({"idnumber": "1", "first": "ann"}, {"idnumber": "x2", "first": "bob"})
        await t.load(source={"students": Pipeline(reader, preprocess=fix)})
        assert [leaf.first for leaf in t.source.students] == ["Ann"]

    async def test_scope_keeps_unmanaged_objects_out(self) -> None:
        """Destination objects outside the scope are never in the diff, so never removed."""
        t = tree()
        await t.load(
            source={"students": rows({"idnumber": "1"})},
            destination={
                "students": Pipeline(
                    rows({"idnumber": "1"}, {"idnumber": "admin", "role": "admin"}),
                    scope=lambda row: row.get("role") != "admin",
                )
            },
        )
        assert list(t.source > t.destination) == []

    async def test_derived_reader(self) -> None:
        """A derived subbranch reads another subbranch of its branch once it has loaded."""

        def parents(students: Subbranch) -> list[dict[str, Any]]:
            return [
                {"idnumber": leaf.parent, "child": leaf.idnumber}
                for leaf in students
                if getattr(leaf, "parent", None)
            ]

        t = tree("students", "parents")
        await t.load(
            source={
                "parents": Derived("students", parents),
                "students": rows(
                    {"idnumber": "1", "parent": "p1"}, {"idnumber": "2", "parent": "p2"}, delay=0.01
                ),
            }
        )
        assert sorted(t.source.parents.keys()) == ["p1", "p2"]

    async def test_derived_from_unloaded_subbranch(self) -> None:
        """Deriving from a subbranch that is not being loaded is an error before loading."""
        t = tree("students", "parents")
        with pytest.raises(ValueError, match="derived from 'students'"):
            await t.load(source={"parents": Derived("students", lambda s: [])})

    async def test_unknown_names(self) -> None:
        """An unknown branch or subbranch is named in a ValueError."""
        t = tree()
        with pytest.raises(ValueError, match="'sauce'"):
            await t.load(sauce={"students": rows()})
        with pytest.raises(ValueError, match="'teachers'"):
            await t.load(source={"teachers": rows()})


class TestErrors:
    async def test_failing_reader_names_everything(self) -> None:
        """One ReaderError names the branch, subbranch, reader, file, line and field."""
        t = tree("students", "staff")
        failing = Located([{"idnumber": "1"}, {"idnumber": "2"}], fail_at=3)
        with pytest.raises(ReaderError) as info:
            await t.load(
                source={
                    "students": failing,
                    "staff": rows(*[{"idnumber": str(i)} for i in range(50)], delay=0.01),
                }
            )
        error = info.value
        assert (error.branch, error.subbranch) == ("source", "students")
        assert (error.path, error.line, error.field) == ("export/students.csv", 3, "grade")
        assert str(error) == (
            "loading source students from Located('export/students.csv'): "
            "export/students.csv, line 3, field 'grade': not an int: 'x'"
        )
        # the other reader was cancelled rather than run to the end
        assert len(t.source.staff) < 50

    async def test_plain_exception_is_wrapped(self) -> None:
        """Any exception from a reader is reported as a ReaderError with its cause."""

        async def broken() -> AsyncIterator[dict[str, Any]]:
            yield {"idnumber": "1"}
            raise OSError("disk read error")

        t = tree()
        with pytest.raises(ReaderError, match="OSError: disk read error") as info:
            await t.load(source={"students": broken()})
        assert isinstance(info.value.__cause__, OSError)

    async def test_row_without_idnumber(self) -> None:
        """A row lacking 'idnumber' is a clear error."""
        t = tree()
        with pytest.raises(ReaderError, match="must give every row an 'idnumber'"):
            await t.load(source={"students": rows({"id": "1"})})

    async def test_duplicate_key_names_file_and_line(self) -> None:
        """A duplicate key under the default policy names the key, file and line."""
        t = tree()
        reader = Located([{"idnumber": "1"}, {"idnumber": "1"}, {"idnumber": "2"}])
        with pytest.raises(ReaderError) as info:
            await t.load(source={"students": reader})
        assert isinstance(info.value.__cause__, DuplicateKeyError)
        assert info.value.line == 3
        assert "'1': duplicate key" in str(info.value)

    async def test_not_a_reader(self) -> None:
        """Something that is not an async iterable is named."""
        t = tree()
        with pytest.raises(ReaderError, match="is not a reader"):
            await t.load(source={"students": [{"idnumber": "1"}]})

    async def test_reader_is_closed_on_error(self) -> None:
        """A reader stopped by an error is closed at once (its cleanup runs)."""
        closed = []

        async def reader() -> AsyncIterator[dict[str, Any]]:
            try:
                yield {"idnumber": "1"}
                yield {"idnumber": "1"}
                yield {"idnumber": "2"}
            finally:
                closed.append(True)

        t = tree()
        with pytest.raises(ReaderError, match="duplicate key"):
            await t.load(source={"students": reader()})
        assert closed == [True]

    async def test_duplicate_in_a_csv_batch_names_its_line(self, tmp_path: Any) -> None:
        """A duplicate key in the middle of a CSV file names that row's own line."""
        from synctree.aio import CSVReader

        lines = ["id,first"] + [f"{i},N{i}" for i in range(50)] + ["7,again"]
        lines += [f"{i},N{i}" for i in range(100, 150)]
        path = tmp_path / "students.csv"
        path.write_text("\n".join(lines) + "\n")
        t = tree()
        with pytest.raises(ReaderError) as info:
            await t.load(source={"students": CSVReader(path, key="id")})
        assert info.value.line == 52
        assert "'7': duplicate key" in str(info.value)


class Delta:
    """A reader of changes only: active rows, a removed key, a warning."""

    def __repr__(self) -> str:
        return "Delta()"

    async def batches(self) -> AsyncIterator[Batch]:
        yield Batch(
            [{"idnumber": "1", "grade": 8}],
            coverage="delta",
            removed=("2",),
            notes=("users.csv line 3: a warning",),
        )
        yield Batch([], removed=("3",))


class Absent:
    def __repr__(self) -> str:
        return "Absent()"

    async def batches(self) -> AsyncIterator[Batch]:
        yield Batch([], coverage="absent", notes=("not in this export", "and a second note"))


async def test_batches_say_what_they_cover() -> None:
    tree = SyncTree(["source", "destination"], ["students", "classes"])
    for key in "1234":
        tree.new("destination", "students", key, grade=7)
    tree.new("destination", "classes", "c1", title="Art")
    await tree.load(source={"students": Delta(), "classes": Absent()})
    students, classes = tree.source.students, tree.source.classes
    assert (students.coverage, students.removed) == ("delta", {"2", "3"})
    assert students.notes == ["users.csv line 3: a warning"]
    assert classes.coverage == "absent"
    assert classes.notes == ["not in this export", "and a second note"]
    assert [(a.idnumber, a.message) for a in tree.source > tree.destination] == [
        ("1", "update_students_grade"),
        ("2", "old_students"),
        ("3", "old_students"),
    ]


async def test_an_absent_batch_after_rows_is_a_reader_error() -> None:
    class Confused:
        async def batches(self) -> AsyncIterator[Batch]:
            yield Batch([{"idnumber": "1"}])
            yield Batch([], coverage="absent")

    tree = SyncTree(["source", "destination"], ["students"])
    with pytest.raises(ReaderError, match="cannot be absent"):
        await tree.load(source={"students": Confused()})
