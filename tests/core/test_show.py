from __future__ import annotations

import io

import pytest

from synctree import Leaf, SyncTree


def render(tree: SyncTree, *args: str, limit: int | None = 20) -> str:
    out = io.StringIO()
    tree.show(*args, limit=limit, file=out)
    return out.getvalue()


def make_tree() -> SyncTree:
    tree = SyncTree(["source", "destination"], ["students", "classes"])
    tree.new("source", "students", "111", first="Ann", grade=7)
    tree.new("source", "students", "999")
    tree.new("destination", "students", "111", first="Ann", grade=6, groups={"b", "a"})
    tree.new("source", "classes", "c1", _hidden=1)
    return tree


class TestShowTree:
    def test_outline(self) -> None:
        """The tree prints as an outline: branch, subbranches with counts, leaves."""
        assert render(make_tree()) == (
            "source\n"
            "├── students (2)\n"
            "│   ├── 111  first='Ann' grade=7\n"
            "│   └── 999\n"
            "└── classes (1)\n"
            "    └── c1\n"
            "destination\n"
            "├── students (1)\n"
            "│   └── 111  first='Ann' grade=6 groups={'a', 'b'}\n"
            "└── classes (0)\n"
        )

    def test_stdout(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a file, ``show`` prints to stdout."""
        tree = make_tree()
        tree.show()
        assert capsys.readouterr().out == render(tree)

    def test_limit(self) -> None:
        """At most ``limit`` leaves per subbranch, then how many more; None shows all."""
        tree = SyncTree(["source"], ["students"])
        for i in range(1005):
            tree.new("source", "students", str(i))
        assert render(tree, limit=2) == (
            "source\n└── students (1,005)\n    ├── 0\n    ├── 1\n    └── … 1,003 more\n"
        )
        assert render(tree, limit=None).count("\n") == 2 + 1005
        assert render(tree).count("\n") == 2 + 20 + 1

    def test_one_subbranch(self) -> None:
        """``show('classes')`` prints that subbranch on every branch."""
        assert render(make_tree(), "classes") == (
            "source\n└── classes (1)\n    └── c1\ndestination\n└── classes (0)\n"
        )

    def test_failing_property(self) -> None:
        """A property that raises is shown as an error, not raised."""

        class Broken(Leaf):
            @property
            def first(self) -> str:
                raise ValueError("no name")

        tree = SyncTree(["source"], ["students"], models={"source": {"students": Broken}})
        tree.new("source", "students", "1")
        assert "1  first=<error: Broken.first raised ValueError: no name>" in render(tree)

    def test_unknown_subbranch(self) -> None:
        """An unknown subbranch is a KeyError naming it."""
        with pytest.raises(KeyError, match="teachers"):
            make_tree().show("teachers")

    def test_idnumber_needs_subbranch(self) -> None:
        """An idnumber without its subbranch is a ValueError."""
        with pytest.raises(ValueError, match="needs its subbranch"):
            make_tree().show(None, "111")


class TestShowObject:
    def test_side_by_side(self) -> None:
        """One object prints on every branch side by side, marking what differs."""
        assert render(make_tree(), "students", "111") == (
            "students 111\n"
            "attribute  source  destination\n"
            "(present)  yes     yes\n"
            "first      'Ann'   'Ann'\n"
            "grade      7       6            ← differs\n"
            "groups     —       {'a', 'b'}   (not compared)\n"
        )

    def test_differs_as_the_diff_does(self) -> None:
        """Equal values of other types (1 and 1.0, a set and a list) are not marked."""
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", score=1, tags={"a"}, grade=7)
        tree.new("destination", "students", "1", score=1.0, tags=["a"], grade=6)
        lines = render(tree, "students", "1").splitlines()
        assert [line.endswith("differs") for line in lines[3:]] == [False, False, True]

    def test_missing_on_one_branch(self) -> None:
        """An object present on one branch only shows as absent on the other."""
        assert render(make_tree(), "students", "999") == (
            "students 999\n"
            "attribute  source  destination\n"
            "(present)  yes     no           ← differs\n"
        )

    def test_absent_everywhere(self) -> None:
        """An unknown key shows as absent on every branch."""
        assert render(make_tree(), "students", "000").splitlines()[-1] == "(present)  no      no"

    def test_models(self) -> None:
        """Derived attributes are shown; ``_``-attributes are not."""

        class SISStudent(Leaf):
            @property
            def first(self) -> str:
                return str(self._lastfirst.split(",")[1].strip())

        tree = SyncTree(
            ["source", "destination"], ["students"], models={"source": {"students": SISStudent}}
        )
        tree.new("source", "students", "1", _lastfirst="Shmoe, Joe")
        tree.new("destination", "students", "1", first="Jo")
        assert render(tree, "students", "1").splitlines()[-1] == (
            "first      'Joe'   'Jo'         ← differs"
        )
