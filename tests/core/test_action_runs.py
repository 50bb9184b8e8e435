"""NewActions: a diff's run of new objects, its actions made when read."""

from __future__ import annotations

from typing import Any

import pytest

from synctree import Action, Leaf, NewActions, SyncTree


def tree_of(
    source: dict[str, dict[str, Any]],
    destination: dict[str, dict[str, Any]] | None = None,
    model: type[Leaf] = Leaf,
) -> SyncTree:
    tree = SyncTree(
        ["source", "destination"], ["students", "classes"], models={"source": {"students": model}}
    )
    for key, attributes in source.items():
        tree.new("source", "students", key, **attributes)
    for key, attributes in (destination or {}).items():
        tree.new("destination", "students", key, **attributes)
    return tree


def flat(items: list[Any]) -> list[Action]:
    return [a for item in items for a in (item if isinstance(item, NewActions) else [item])]


def runs_of(tree: SyncTree) -> list[Any]:
    return list((tree.source > tree.destination)._items())


class TestTheDiffsRuns:
    def test_runs_expand_to_the_diff(self) -> None:
        """Consecutive new objects come as one run; expanded, the actions of ``list(diff)``."""
        source = {str(i): {"first": f"F{i}", "grade": 7} for i in range(8)}
        tree = tree_of(source, {"3": {"first": "F3", "grade": 8}, "9": {"first": "x", "grade": 1}})
        items = runs_of(tree)
        assert [type(item).__name__ for item in items] == [
            "NewActions", "Action", "NewActions", "Action",
        ]  # fmt: skip
        assert [len(item) for item in items if isinstance(item, NewActions)] == [3, 4]
        assert flat(items) == list(tree.source > tree.destination)

    def test_a_filtered_diff_has_no_runs(self) -> None:
        """A filter needs every action: a filtered diff's items are its actions."""
        tree = tree_of({"1": {"a": 1}, "2": {"a": 2}})
        diff = (tree.source > tree.destination).filter(lambda action: action.idnumber == "2")
        assert list(diff._items()) == list(diff) == [Action("2", "new_students")]


class TestNewActions:
    def make(self, n: int = 5) -> tuple[SyncTree, NewActions]:
        tree = tree_of({str(i): {"first": f"F{i}", "classes": {"a"}} for i in range(n)})
        (run,) = runs_of(tree)
        assert isinstance(run, NewActions)
        return tree, run

    def test_a_sequence_of_actions(self) -> None:
        """Indexing, slicing and iterating give the diff's actions, each made once."""
        tree, run = self.make()
        expected = list(tree.source > tree.destination)
        assert len(run) == 5 and list(run) == expected
        assert run.message == "new_students" and run.subbranch == "students"
        assert run[0] is run[0] and run[-1] == expected[-1]
        part = run[1:4]
        assert isinstance(part, NewActions) and list(part) == expected[1:4]
        assert part[0] is run[1] and part.keys == ["1", "2", "3"]
        assert len(run[4:2]) == 0
        assert isinstance(run[0].source, Leaf) and run[0].source.first == "F0"
        assert repr(run) == "<NewActions 5 × new_students>"
        with pytest.raises(IndexError):
            run[5]
        with pytest.raises(ValueError, match="consecutive"):
            run[::2]

    def test_cells_of_stored_tuples(self) -> None:
        """``cells()`` gives the stored rows as they are, without making leaves."""
        tree = SyncTree(["source", "destination"], ["students"])
        sub = tree.source.students
        sub._add_tuples(("idnumber", "first", "classes"), [("1", "A", "b;a"), ("2", "B", None)],
                        encoded={"classes": (set, ";")})  # fmt: skip
        (run,) = runs_of(tree)
        assert run.cells() == (
            ("idnumber", "first", "classes"),
            [("1", "A", "b;a"), ("2", "B", None)],
            {"classes": (set, ";")},
        )
        assert all(type(row) is tuple for row in sub._rows.values())
        # A row a leaf was made of reads by name, its cells decoded.
        assert sub["2"].classes == set()
        names, rows, _ = run.cells() or ((), [], {})
        assert rows == [("1", "A", "b;a"), ("2", "B", set())]

    def test_cells_of_dicts(self) -> None:
        """Rows kept as dicts are read by name; rows of other names give None."""
        tree, run = self.make(2)
        names, rows, encodings = run.cells() or ((), [], {})
        assert names == ("first", "classes", "idnumber")
        assert rows == [("F0", {"a"}, "0"), ("F1", {"a"}, "1")] and encodings == {}
        tree.source.students["1"].grade = 9  # another shape
        assert run.cells() is None

    def test_cells_of_a_deriving_model(self) -> None:
        """A model deriving attributes has no stored cells to write: None."""

        class Student(Leaf):
            @property
            def last(self) -> str:
                return "L"

        tree = tree_of({"1": {"first": "A"}}, model=Student)
        (run,) = runs_of(tree)
        assert run.cells() is None and run[0].source.last == "L"
