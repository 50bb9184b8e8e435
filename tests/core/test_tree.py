from __future__ import annotations

from typing import Any

import pytest

from synctree import Branch, DuplicateKeyError, InputError, Leaf, Subbranch, SyncTree

SUBBRANCHES = ["students", "staff", "classes", "enrollments"]


def make_tree(**options: Any) -> SyncTree:
    return SyncTree(["source", "destination"], SUBBRANCHES, **options)


class TestSyncTree:
    def test_names(self) -> None:
        """Branches and subbranches are listed in declared order."""
        tree = make_tree()
        assert tree.branches == ["source", "destination"]
        assert tree.subbranches == SUBBRANCHES

    def test_mirrored(self) -> None:
        """Every branch has every subbranch, reachable as an attribute and by name."""
        tree = make_tree()
        for name in tree.branches:
            branch = getattr(tree, name)
            assert isinstance(branch, Branch)
            assert branch is tree[name]
            assert branch.name == name
            assert branch.subbranches == SUBBRANCHES
            assert [sub.name for sub in branch] == SUBBRANCHES
            assert len(branch) == 4
            for sub in SUBBRANCHES:
                assert getattr(branch, sub) is branch[sub]
                assert branch[sub].branch == name

    def test_reprs(self) -> None:
        """The seed example's repr of a subbranch, and readable reprs for the rest."""
        tree = make_tree()
        assert repr(tree.source.students) == "<Subbranch students of branch source>"
        assert repr(tree.source) == "<Branch source of students, staff, classes, enrollments>"
        assert "source" in repr(tree) and "enrollments" in repr(tree)

    def test_unknown_branch(self) -> None:
        """An unknown branch is an AttributeError/KeyError naming it and the known ones."""
        tree = make_tree()
        with pytest.raises(AttributeError, match="no branch 'target'.*source, destination"):
            tree.target  # noqa: B018
        with pytest.raises(KeyError, match="target"):
            tree["target"]

    def test_unknown_subbranch(self) -> None:
        """An unknown subbranch is an AttributeError/KeyError naming it."""
        tree = make_tree()
        with pytest.raises(AttributeError, match="no subbranch 'teachers'.*students"):
            tree.source.teachers  # noqa: B018
        with pytest.raises(KeyError, match="teachers"):
            tree.source["teachers"]

    def test_private_attribute_lookup(self) -> None:
        """Names starting with ``_`` are not looked up as branches (copy/pickle stay sane)."""
        with pytest.raises(AttributeError):
            make_tree()._nothing  # noqa: B018

    @pytest.mark.parametrize("names", [["new"], ["show"], ["branches"], ["save"]])
    def test_reserved_branch_names(self, names: list[str]) -> None:
        """A branch may not shadow a tree method."""
        with pytest.raises(ValueError, match="reserved"):
            SyncTree(names, ["students"])

    @pytest.mark.parametrize("name", ["subbranches", "name"])
    def test_reserved_subbranch_names(self, name: str) -> None:
        """A subbranch may not shadow a branch attribute."""
        with pytest.raises(ValueError, match="reserved"):
            SyncTree(["source"], [name])

    @pytest.mark.parametrize("name", ["", "two words", "1st", "_private", "a-b"])
    def test_invalid_names(self, name: str) -> None:
        """Names must be public identifiers."""
        with pytest.raises(ValueError, match="not a valid name"):
            SyncTree(["source"], [name])
        with pytest.raises(ValueError, match="not a valid name"):
            SyncTree([name], ["students"])

    def test_names_not_a_string(self) -> None:
        """A single string is refused rather than split into letters."""
        with pytest.raises(TypeError, match="'subbranches' must be a list"):
            SyncTree(["source"], "students")

    def test_empty_and_repeated_names(self) -> None:
        """Empty name lists and repeated names are refused, naming the parameter."""
        with pytest.raises(ValueError, match="'branches' must not be empty"):
            SyncTree([], ["students"])
        with pytest.raises(ValueError, match="'subbranches' has a name twice"):
            SyncTree(["source"], ["students", "students"])

    def test_models_validated(self) -> None:
        """Models must name known branches and subbranches and subclass Leaf."""
        with pytest.raises(ValueError, match="unknown branch 'target'"):
            make_tree(models={"target": {"students": Leaf}})
        with pytest.raises(ValueError, match="unknown subbranch 'teachers'"):
            make_tree(models={"source": {"teachers": Leaf}})
        with pytest.raises(TypeError, match="must subclass synctree.Leaf"):
            make_tree(models={"source": {"students": dict}})

    def test_models_per_branch(self) -> None:
        """A model applies to its branch and subbranch only; the rest use Leaf."""

        class Student(Leaf):
            pass

        tree = make_tree(models={"source": {"students": Student}})
        assert type(tree.new("source", "students", "1")) is Student
        assert type(tree.new("destination", "students", "1")) is Leaf
        assert type(tree.new("source", "staff", "1")) is Leaf
        assert tree.source.students.model is Student


class TestNew:
    def test_returns_leaf(self) -> None:
        """``new`` returns the leaf, which holds the key and the attributes."""
        tree = make_tree()
        leaf = tree.new("source", "students", "111", first="Ann", grade=7)
        assert isinstance(leaf, Leaf)
        assert leaf.idnumber == "111"
        assert (leaf.first, leaf.grade) == ("Ann", 7)
        assert tree.source.students["111"] == leaf  # a view of the same row

    def test_leaf_is_a_view_of_its_row(self) -> None:
        """Setting an attribute on a leaf changes the object in the tree."""
        tree = make_tree()
        tree.new("source", "students", "111", first="Ann")
        tree.source.students["111"].first = "Anne"
        assert tree.source.students["111"].first == "Anne"
        other = make_tree()
        other.new("source", "students", "111", first="Anne")
        assert other.source.students["111"] != tree.source.students["111"]

    def test_idnumber_must_be_str(self) -> None:
        """A non-string key is a TypeError naming branch, subbranch and the value."""
        tree = make_tree()
        with pytest.raises(TypeError, match="source students: idnumber must be a str, got int 111"):
            tree.new("source", "students", 111)  # type: ignore[arg-type]
        assert len(tree.source.students) == 0

    def test_idnumber_not_an_attribute(self) -> None:
        """The key is passed positionally, never as an attribute."""
        with pytest.raises(TypeError, match="idnumber"):
            make_tree().new("source", "students", "1", idnumber="2")

    def test_unknown_names(self) -> None:
        """Unknown branches and subbranches are KeyErrors."""
        tree = make_tree()
        with pytest.raises(KeyError):
            tree.new("target", "students", "1")
        with pytest.raises(KeyError):
            tree.new("source", "teachers", "1")


class TestSubbranch:
    def test_read_only_mapping(self) -> None:
        """``len``, ``in``, ``[key]``, ``get`` and ``keys`` work like a mapping."""
        tree = make_tree()
        ann = tree.new("source", "students", "1", first="Ann")
        sub = tree.source.students
        assert isinstance(sub, Subbranch)
        assert len(sub) == 1
        assert "1" in sub and "2" not in sub
        assert sub["1"] == ann
        assert sub.get("1") == ann and sub.get("2") is None
        assert list(sub.keys()) == ["1"]
        with pytest.raises(KeyError):
            sub["2"]

    def test_iterates_leaves_in_load_order(self) -> None:
        """Iteration gives the leaves (not keys), in load order."""
        tree = make_tree()
        leaves = [tree.new("source", "students", key) for key in ("3", "1", "2")]
        assert list(tree.source.students) == leaves

    def test_names(self) -> None:
        """A subbranch knows its name and its branch."""
        sub = make_tree().destination.classes
        assert (sub.name, sub.branch) == ("classes", "destination")


class TestLeaf:
    def test_repr(self) -> None:
        """The repr shows the model, the key and the compared attributes."""
        tree = make_tree()
        assert repr(tree.new("source", "students", "1")) == "<Leaf '1'>"
        leaf = tree.new("source", "students", "2", first="Ann", _hidden=1)
        assert repr(leaf) == "<Leaf '2' first='Ann'>"

    def test_constructor(self) -> None:
        """A leaf may also be built directly."""
        leaf = Leaf("7", first="Ann")
        assert leaf.idnumber == "7"
        assert leaf.to_dict() == {"first": "Ann"}

    def test_to_dict(self) -> None:
        """``to_dict`` gives stored and derived public attributes, not ``_`` ones or the key."""

        class Student(Leaf):
            @property
            def initial(self) -> str:
                return str(self.first[0])

        leaf = make_tree(models={"source": {"students": Student}}).new(
            "source", "students", "1", first="Ann", _raw="x"
        )
        assert leaf.to_dict() == {"first": "Ann", "initial": "A"}
        assert leaf._raw == "x"

    def test_failing_property_in_repr(self) -> None:
        """A property that raises shows as ``<error>`` instead of breaking the repr."""

        class Broken(Leaf):
            @property
            def first(self) -> str:
                raise ValueError("no")

        leaf = make_tree(models={"source": {"students": Broken}}).new("source", "students", "1")
        assert repr(leaf) == "<Broken '1' first='<error>'>"


class TestDuplicates:
    def test_error_by_default(self) -> None:
        """A second row with the same key is a DuplicateKeyError naming branch, subbranch, key."""
        tree = make_tree()
        tree.new("source", "students", "1", first="Ann")
        with pytest.raises(DuplicateKeyError) as info:
            tree.new("source", "students", "1", first="Bob")
        error = info.value
        assert str(error) == "source students '1': duplicate key"
        assert (error.branch, error.subbranch, error.key) == ("source", "students", "1")
        assert (error.path, error.line) == (None, None)
        assert isinstance(error, InputError) and isinstance(error, KeyError)
        assert isinstance(error, ValueError)
        assert tree.source.students["1"].first == "Ann"

    def test_skip(self) -> None:
        """``skip`` keeps the first row."""
        tree = make_tree(duplicates="skip")
        first = tree.new("source", "students", "1", first="Ann")
        assert tree.new("source", "students", "1", first="Bob") == first
        assert first.first == "Ann"

    def test_replace(self) -> None:
        """``replace`` keeps the last row, changing the same object."""
        tree = make_tree(duplicates="replace")
        first = tree.new("source", "students", "1", first="Ann", grade=7)
        assert tree.new("source", "students", "1", first="Bob") == first
        assert first.to_dict() == {"first": "Bob"}
        assert first.idnumber == "1"

    def test_merge(self) -> None:
        """``merge`` accumulates set and list members and keeps equal scalars."""
        tree = make_tree(duplicates={"enrollments": "merge"})
        leaf = tree.new("source", "enrollments", "c1", teacher="T", students={"1"}, log=["a"])
        tree.new("source", "enrollments", "c1", teacher="T", students={"2"}, log=["b", "a"])
        tree.new("source", "enrollments", "c1", students=["3"], room="R1")
        assert leaf.to_dict() == {
            "teacher": "T",
            "students": {"1", "2", "3"},
            "log": ["a", "b"],
            "room": "R1",
        }

    def test_merge_conflict(self) -> None:
        """Merging different scalar values is an error saying which values conflict."""
        tree = make_tree(duplicates="merge")
        tree.new("source", "classes", "c1", teacher="T")
        with pytest.raises(DuplicateKeyError) as info:
            tree.new("source", "classes", "c1", teacher="U")
        assert str(info.value) == (
            "source classes 'c1': conflicting values for 'teacher' while merging: 'T' and 'U'"
        )
        assert info.value.key == "c1"

    def test_callable(self) -> None:
        """A callable gets the leaf and the new row and returns the attributes to keep."""
        seen: list[tuple[str, dict[str, Any]]] = []

        def newest(leaf: Leaf, row: dict[str, Any]) -> dict[str, Any] | None:
            seen.append((leaf.idnumber, dict(row)))
            return row if row["year"] > leaf.year else None

        tree = make_tree(duplicates=newest)
        leaf = tree.new("source", "students", "1", year=2020)
        tree.new("source", "students", "1", year=2023)
        tree.new("source", "students", "1", year=2021)
        assert leaf.year == 2023 and leaf.idnumber == "1"
        assert seen[0] == ("1", {"year": 2023, "idnumber": "1"})
        assert len(seen) == 2

    def test_per_subbranch(self) -> None:
        """A mapping sets the policy per subbranch; the others keep ``error``."""
        tree = make_tree(duplicates={"students": "skip"})
        tree.new("source", "students", "1")
        tree.new("source", "students", "1")
        tree.new("source", "staff", "1")
        with pytest.raises(DuplicateKeyError):
            tree.new("source", "staff", "1")

    def test_only_within_a_branch(self) -> None:
        """The same key on two branches or two subbranches is not a duplicate."""
        tree = make_tree()
        tree.new("source", "students", "1")
        tree.new("destination", "students", "1")
        tree.new("source", "staff", "1")

    def test_invalid_policy(self) -> None:
        """Unknown policies and subbranches are ValueErrors naming the parameter."""
        with pytest.raises(ValueError, match="'duplicates' must be one of error, skip"):
            make_tree(duplicates="ignore")
        with pytest.raises(ValueError, match="'duplicates'.*unknown subbranch 'teachers'"):
            make_tree(duplicates={"teachers": "skip"})
        with pytest.raises(ValueError, match="'duplicates' must be one of"):
            make_tree(duplicates={"students": "first"})


class TestSubbranchDiff:
    def test_minus_and_greater(self) -> None:
        """``left.students - right.students`` gives the same actions as ``>``, as a generator."""
        tree = make_tree()
        tree.new("source", "students", "1")
        tree.new("destination", "staff", "9")
        plain = tree.source.students - tree.destination.students
        assert not isinstance(plain, list) and hasattr(plain, "__next__")
        assert list(plain) == list(tree.source.students > tree.destination.students)
        assert [a.message for a in tree.source.students - tree.destination.students] == [
            "new_students"
        ]
