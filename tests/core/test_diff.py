from __future__ import annotations

import copy
import dataclasses
import pickle
import sys
import types
from typing import Any

import pytest

from synctree import Action, DefaultTemplate, Diff, Kind, Leaf, Report, SyncTree

SUBBRANCHES = ["students", "staff", "classes", "enrollments"]


def make_tree(subbranches: list[str] | None = None, **options: Any) -> SyncTree:
    return SyncTree(["source", "destination"], subbranches or ["students"], **options)


def diff(tree: SyncTree) -> list[Action]:
    return list(tree.source > tree.destination)


class SISStudent(Leaf):
    """The model of DESIGN.md: the SIS gives ``lastfirst``, the destination first/last."""

    @property
    def first(self) -> str:
        return str(self._lastfirst.split(",")[1].strip())

    @property
    def last(self) -> str:
        return str(self._lastfirst.split(",")[0].strip())


class TestSeedExample:
    def test_as_written(self) -> None:
        """The issue's seed example runs as written and calls ``new_students`` once."""
        synctree = SyncTree(["source", "destination"], SUBBRANCHES)
        assert repr(synctree.source.students) == "<Subbranch students of branch source>"
        synctree.new("source", "students", "111")
        synctree.new("source", "students", "999")
        synctree.new("destination", "students", "111")
        assert list(synctree.source > synctree.destination) == [
            Action(idnumber="999", message="new_students")
        ]
        assert repr(list(synctree.source > synctree.destination)) == (
            "[Action(idnumber='999', message='new_students')]"
        )
        calls: list[Action] = []

        class Template(DefaultTemplate):
            def new_students(self, action: Action) -> None:
                calls.append(action)

        report = (synctree.source > synctree.destination) | Template
        assert isinstance(report, Report)
        assert calls == [Action(idnumber="999", message="new_students")]

    def test_design_example(self) -> None:
        """DESIGN.md's first example: one new student and one grade update."""
        tree = SyncTree(["source", "destination"], SUBBRANCHES)
        tree.new("source", "students", "111", first="Ann", grade=7)
        tree.new("source", "students", "999")
        tree.new("destination", "students", "111", first="Ann", grade=6)
        assert diff(tree) == [
            Action(
                idnumber="111",
                message="update_students_grade",
                attribute="grade",
                value=7,
                old_value=6,
            ),
            Action(idnumber="999", message="new_students"),
        ]


class TestActionTable:
    def test_new(self) -> None:
        """A key only on the left is ``new_{subbranch}`` carrying the source leaf."""
        tree = make_tree()
        leaf = tree.new("source", "students", "1", first="Ann")
        (action,) = diff(tree)
        assert action == Action(idnumber="1", message="new_students")
        assert (action.kind, action.subbranch) == (Kind.NEW, "students")
        assert action.source == leaf and action.dest is None
        assert (action.attribute, action.value, action.old_value) == (None, None, None)

    def test_old(self) -> None:
        """A key only on the right is ``old_{subbranch}`` carrying the destination leaf."""
        tree = make_tree()
        leaf = tree.new("destination", "students", "1", first="Ann")
        (action,) = diff(tree)
        assert action == Action(idnumber="1", message="old_students")
        assert action.kind is Kind.OLD
        assert action.source is None and action.dest == leaf

    def test_update(self) -> None:
        """A differing scalar is ``update_{subbranch}_{attribute}`` with new and old values."""
        tree = make_tree()
        source = tree.new("source", "students", "1", grade=7)
        dest = tree.new("destination", "students", "1", grade=6)
        (action,) = diff(tree)
        assert action == Action(
            idnumber="1", message="update_students_grade", attribute="grade", value=7, old_value=6
        )
        assert (action.kind, action.subbranch) == (Kind.UPDATE, "students")
        assert action.source == source and action.dest == dest

    def test_add(self) -> None:
        """A member only on the left is ``add_{subbranch}_{attribute}`` with the member."""
        tree = make_tree()
        tree.new("source", "students", "1", groups={"a", "b"})
        tree.new("destination", "students", "1", groups={"a"})
        (action,) = diff(tree)
        assert action == Action(
            idnumber="1", message="add_students_groups", attribute="groups", value="b"
        )
        assert action.kind is Kind.ADD and action.old_value is None

    def test_remove(self) -> None:
        """A member only on the right is ``remove_{subbranch}_{attribute}`` with the member."""
        tree = make_tree()
        tree.new("source", "students", "1", groups={"a"})
        tree.new("destination", "students", "1", groups={"a", "z"})
        (action,) = diff(tree)
        assert action == Action(
            idnumber="1", message="remove_students_groups", attribute="groups", value="z"
        )
        assert action.kind is Kind.REMOVE

    def test_equal(self) -> None:
        """Equal sides give no action."""
        tree = make_tree()
        for branch in tree.branches:
            tree.new(branch, "students", "1", first="Ann", groups={"a"}, codes=[1, 2])
        assert diff(tree) == []


class TestAction:
    def test_actions_do_not_order(self) -> None:
        """An action is a record: ``<`` is a TypeError, not a tuple comparison of its fields."""
        a = Action(idnumber="1", message="new_students")
        b = Action(idnumber="2", message="new_students")
        for compare in (
            lambda: a < b,
            lambda: a <= b,
            lambda: a > b,
            lambda: a >= b,
            lambda: sorted([b, a]),
            lambda: a < ("1",),
        ):
            with pytest.raises(TypeError):
                compare()
        assert sorted([b, a], key=lambda action: action.idnumber) == [a, b]

    def test_derived_fields(self) -> None:
        """``kind`` and ``subbranch`` are derived from the message when not given."""
        action = Action(idnumber="1", message="update_class_sections_room", attribute="room")
        assert (action.kind, action.subbranch) == (Kind.UPDATE, "class_sections")
        assert Action(idnumber="1", message="old_class_sections").subbranch == "class_sections"
        assert Action(idnumber="1", message="new_x", kind="new").kind is Kind.NEW  # type: ignore[arg-type]

    def test_kind_is_a_string(self) -> None:
        """Kinds compare equal to their string values."""
        assert Kind.NEW == "new" and str(Kind.REMOVE) == "remove"

    def test_bad_message(self) -> None:
        """A message must start with a kind."""
        with pytest.raises(ValueError):
            Action(idnumber="1", message="create_students")

    def test_repr_shows_only_set_fields(self) -> None:
        """The repr never shows the leaves or unset fields."""
        action = Action(
            idnumber="1",
            message="update_students_grade",
            attribute="grade",
            value=7,
            old_value=None,
            source=Leaf("1"),
        )
        assert repr(action) == (
            "Action(idnumber='1', message='update_students_grade', attribute='grade', value=7)"
        )

    def test_frozen(self) -> None:
        """Actions are immutable."""
        action = Action(idnumber="1", message="new_students")
        with pytest.raises(dataclasses.FrozenInstanceError):
            action.idnumber = "2"  # type: ignore[misc]

    def test_frozen_everywhere(self) -> None:
        """No field can be deleted, and the diff's actions are as frozen as built ones."""
        tree = make_tree()
        tree.new("source", "students", "1", first="Ann")
        (action,) = diff(tree)
        assert type(action) is Action
        with pytest.raises(dataclasses.FrozenInstanceError):
            action.message = "old_students"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del action.source
        assert action == Action(idnumber="1", message="new_students")

    def test_pickle_and_copy(self) -> None:
        """An action survives pickle and copy, leaves included."""
        action = Action(idnumber="1", message="update_students_grade", attribute="grade",
                        value=7, old_value=6, source=Leaf("1", grade=7))  # fmt: skip
        again = pickle.loads(pickle.dumps(action))
        assert again == action and again.source is not None and again.source.grade == 7
        assert copy.copy(action) == action and copy.deepcopy(action) == action

    def test_replace(self) -> None:
        """``copy.replace`` (``__replace__``) gives a changed copy; the message's fields follow."""
        leaf = Leaf("1", grade=7)
        action = Action(idnumber="1", message="update_students_grade", attribute="grade",
                        value=7, old_value=6, source=leaf)  # fmt: skip
        changed = action.__replace__(value=8)
        assert changed.value == 8 and changed.old_value == 6 and changed.source is leaf
        assert action.value == 7
        moved = action.__replace__(message="update_staff_grade")
        assert (moved.subbranch, moved.kind) == ("staff", Kind.UPDATE)
        with pytest.raises(TypeError, match="'colour'"):
            action.__replace__(colour="red")
        if sys.version_info >= (3, 13):
            assert copy.replace(action, value=8) == changed  # type: ignore[attr-defined]

    def test_pattern_matching(self) -> None:
        """Actions match by position and by keyword."""
        match Action(idnumber="1", message="new_students"):
            case Action("1", "new_students", kind=Kind.OLD):
                matched = "old"
            case Action("1", "new_students", kind=Kind.NEW, subbranch=subbranch):
                matched = subbranch
        assert matched == "students"

    def test_subclass(self) -> None:
        """A subclass of Action (with its own attributes) is built and compared the same."""

        class Tagged(Action):
            pass

        tagged = Tagged(idnumber="1", message="new_students")
        assert type(tagged) is Tagged and tagged.kind is Kind.NEW
        assert tagged != Action(idnumber="1", message="new_students")
        with pytest.raises(dataclasses.FrozenInstanceError):
            tagged.idnumber = "2"  # type: ignore[misc]

    def test_leaves_not_compared(self) -> None:
        """Two actions with different leaves but the same fields are equal."""
        one = Action(idnumber="1", message="new_students", source=Leaf("1", a=1))
        two = Action(idnumber="1", message="new_students", source=Leaf("1", a=2))
        assert one == two and hash(one) == hash(two)

    def test_to_dict(self) -> None:
        """``to_dict`` gives the set fields, JSON-friendly (sets sorted, objects as text)."""
        action = Action(
            idnumber="1", message="update_students_tags", attribute="tags", value={"b", "a"}
        )
        assert action.to_dict() == {
            "idnumber": "1",
            "message": "update_students_tags",
            "subbranch": "students",
            "kind": "update",
            "attribute": "tags",
            "value": ["a", "b"],
        }
        other = Action(idnumber="1", message="new_x", value=(1, types.SimpleNamespace()))
        assert other.to_dict()["value"][0] == 1
        assert isinstance(other.to_dict()["value"][1], str)


class TestCollections:
    def test_one_action_per_member_sorted(self) -> None:
        """Each added or removed member is its own action, in sorted order."""
        tree = make_tree()
        tree.new("source", "students", "1", groups={"d", "a", "c"})
        tree.new("destination", "students", "1", groups={"z", "b", "y"})
        assert [(a.kind, a.value) for a in diff(tree)] == [
            ("add", "a"),
            ("add", "c"),
            ("add", "d"),
            ("remove", "b"),
            ("remove", "y"),
            ("remove", "z"),
        ]

    def test_lists(self) -> None:
        """List attributes compare by membership, in the left list's order when unsortable."""
        tree = make_tree()
        tree.new("source", "students", "1", codes=[3, 1], mixed=["b", 1])
        tree.new("destination", "students", "1", codes=[1, 2], mixed=[])
        assert [(a.message, a.value) for a in diff(tree)] == [
            ("add_students_codes", 3),
            ("add_students_mixed", "b"),
            ("add_students_mixed", 1),
            ("remove_students_codes", 2),
        ]

    def test_order_of_a_list_is_not_a_difference(self) -> None:
        """Lists with the same members in another order give no action."""
        tree = make_tree()
        tree.new("source", "students", "1", codes=[1, 2, 3])
        tree.new("destination", "students", "1", codes=[3, 2, 1])
        assert diff(tree) == []

    def test_set_against_list(self) -> None:
        """A set and a list with the same members agree; members differ one by one."""
        tree = make_tree()
        tree.new("source", "students", "1", codes={1, 2}, more={1})
        tree.new("destination", "students", "1", codes=[2, 1], more=[1, 2])
        assert [(a.kind, a.attribute, a.value) for a in diff(tree)] == [("remove", "more", 2)]

    def test_unhashable_members_against_a_set(self) -> None:
        """A list of unhashable members diffs against a set member by member."""
        tree = make_tree()
        tree.new("source", "students", "1", a=[[1]], b={1}, c=[{"k": 1}])
        tree.new("destination", "students", "1", a={1}, b=[[2], 1], c=[{"k": 2}])
        assert [(a.kind, a.attribute, a.value) for a in diff(tree)] == [
            ("add", "a", [1]),
            ("add", "c", {"k": 1}),
            ("remove", "a", 1),
            ("remove", "b", [2]),
            ("remove", "c", {"k": 2}),
        ]

    def test_collection_against_none(self) -> None:
        """A collection against None is an update of the whole value."""
        tree = make_tree()
        tree.new("source", "students", "1", groups={"a"}, other=None)
        tree.new("destination", "students", "1", groups=None, other={"b"})
        assert [(a.kind, a.attribute, a.value, a.old_value) for a in diff(tree)] == [
            ("update", "groups", {"a"}, None),
            ("update", "other", None, {"b"}),
        ]


class TestOrdering:
    def test_declared_order_and_reverse(self) -> None:
        """new/update/add in declared order, then remove/old in reverse declared order."""
        tree = make_tree(SUBBRANCHES)
        for sub in SUBBRANCHES:
            tree.new("source", sub, "new")
            tree.new("destination", sub, "old")
            tree.new("source", sub, "both", n=1, tags={"a"})
            tree.new("destination", sub, "both", n=2, tags={"b"})
        got = [(a.subbranch, a.kind.value) for a in diff(tree)]
        forward = [(s, k) for s in SUBBRANCHES for k in ("new", "update", "add")]
        backward = [(s, k) for s in reversed(SUBBRANCHES) for k in ("remove", "old")]
        assert got == forward + backward

    def test_removes_before_olds(self) -> None:
        """A subbranch's removes come before its olds, after later subbranches' olds."""
        tree = make_tree(["classes", "enrollments"])
        tree.new("source", "classes", "c", tags=set())
        tree.new("destination", "classes", "c", tags={"x"})
        tree.new("destination", "classes", "gone")
        tree.new("destination", "enrollments", "e")
        assert [a.message for a in diff(tree)] == [
            "old_enrollments",
            "remove_classes_tags",
            "old_classes",
        ]

    def test_load_order_within_subbranch(self) -> None:
        """Within a subbranch, news follow the left's load order and olds the right's."""
        tree = make_tree()
        for key in ("3", "1", "2"):
            tree.new("source", "students", key)
            tree.new("destination", "students", "x" + key)
        assert [a.idnumber for a in diff(tree)] == ["3", "1", "2", "x3", "x1", "x2"]

    def test_attribute_order(self) -> None:
        """One object's updates follow the left side's attribute order."""
        tree = make_tree()
        tree.new("source", "students", "1", b=1, a=1, c=1)
        tree.new("destination", "students", "1", a=2, b=2, c=2)
        assert [a.attribute for a in diff(tree)] == ["b", "a", "c"]


class TestModels:
    def test_sis_student(self) -> None:
        """DESIGN.md's SISStudent compares its derived first/last with the destination's."""
        tree = SyncTree(
            ["source", "destination"], ["students"], models={"source": {"students": SISStudent}}
        )
        tree.new("source", "students", "1", _lastfirst="Shmoe, Joe")
        tree.new("destination", "students", "1", first="Joe", last="Shmoe")
        assert list(tree.source > tree.destination) == []
        tree.new("source", "students", "2", _lastfirst="Doe, Jane")
        tree.new("destination", "students", "2", first="Jane", last="Roe")
        assert diff(tree) == [
            Action(
                idnumber="2",
                message="update_students_last",
                attribute="last",
                value="Doe",
                old_value="Roe",
            )
        ]

    def test_model_on_the_right(self) -> None:
        """Derived attributes on the destination's model are compared too."""

        class Account(Leaf):
            @property
            def first(self) -> str:
                return str(self.name.split()[0])

        tree = make_tree(models={"destination": {"students": Account}})
        tree.new("source", "students", "1", first="Joe")
        tree.new("destination", "students", "1", name="Jo Shmoe")
        assert [(a.attribute, a.value, a.old_value) for a in diff(tree)] == [("first", "Joe", "Jo")]

    def test_private_attributes_not_compared(self) -> None:
        """``_``-attributes are carried on the leaf but never compared."""
        tree = make_tree()
        tree.new("source", "students", "1", _row=1, first="Ann")
        dest = tree.new("destination", "students", "1", _row=2, first="Ann", _etag="x")
        assert diff(tree) == []
        assert dest._etag == "x"

    def test_cached_property(self) -> None:
        """A ``functools.cached_property`` derives an attribute like a property."""
        import functools

        class Student(Leaf):
            @functools.cached_property
            def email(self) -> str:
                return f"{self.first.lower()}@school.example"

        tree = make_tree(models={"source": {"students": Student}})
        tree.new("source", "students", "1", first="Ann")
        tree.new("destination", "students", "1", first="Ann", email="x@school.example")
        assert [(a.attribute, a.value) for a in diff(tree)] == [("email", "ann@school.example")]


class TestUncomparable:
    def test_property_raises(self) -> None:
        """A failing property gives an error action naming subbranch, key and attribute."""
        tree = SyncTree(
            ["source", "destination"], ["students"], models={"source": {"students": SISStudent}}
        )
        tree.new("source", "students", "1", _lastfirst="Cher")
        tree.new("destination", "students", "1", first="Cher", last="Cher")
        actions = diff(tree)
        assert [(a.kind, a.subbranch, a.idnumber, a.attribute) for a in actions] == [
            ("error", "students", "1", "first"),
        ]
        assert actions[0].message == "error_students_first"
        assert actions[0].error == (
            "SISStudent.first raised IndexError: list index out of range (left side)"
        )
        assert actions[0].value is None and actions[0].old_value == "Cher"

    def test_type_mismatch(self) -> None:
        """``7`` against ``'7'`` is an error action, not an update."""
        tree = make_tree()
        tree.new("source", "students", "1", grade=7)
        tree.new("destination", "students", "1", grade="7")
        (action,) = diff(tree)
        assert action.kind is Kind.ERROR
        assert (action.subbranch, action.idnumber, action.attribute) == ("students", "1", "grade")
        assert (action.value, action.old_value) == (7, "7")
        assert action.error == "cannot compare 7 (int) with '7' (str)"
        assert "error=" in repr(action)

    def test_missing_on_destination(self) -> None:
        """An attribute the destination lacks is an error action naming it."""
        tree = make_tree()
        tree.new("source", "students", "1", first="Ann", email="a@x")
        tree.new("destination", "students", "1", first="Ann")
        (action,) = diff(tree)
        assert action.kind is Kind.ERROR and action.attribute == "email"
        assert action.error == "Leaf has no attribute 'email' (right side)"
        assert (action.value, action.old_value) == ("a@x", None)

    def test_extra_on_destination(self) -> None:
        """Attributes only the destination has are not compared."""
        tree = make_tree()
        tree.new("source", "students", "1", first="Ann")
        tree.new("destination", "students", "1", first="Ann", created="2024-01-01")
        assert diff(tree) == []

    def test_none_against_value(self) -> None:
        """None against a value (either way) is an update."""
        tree = make_tree()
        tree.new("source", "students", "1", email=None, phone="1")
        tree.new("destination", "students", "1", email="a@x", phone=None)
        assert [(a.kind, a.attribute, a.value, a.old_value) for a in diff(tree)] == [
            ("update", "email", None, "a@x"),
            ("update", "phone", "1", None),
        ]

    def test_int_and_float(self) -> None:
        """Ints and floats compare as numbers: equal is no action, different an update."""
        tree = make_tree()
        tree.new("source", "students", "1", a=1, b=2)
        tree.new("destination", "students", "1", a=1.0, b=2.5)
        assert [(a.kind, a.attribute, a.value, a.old_value) for a in diff(tree)] == [
            ("update", "b", 2, 2.5)
        ]

    def test_bool_against_int(self) -> None:
        """A bool against a different int is a type mismatch, not an update."""
        tree = make_tree()
        tree.new("source", "students", "1", active=True, flag=False)
        tree.new("destination", "students", "1", active=0, flag=True)
        actions = diff(tree)
        assert [(a.kind, a.attribute) for a in actions] == [
            ("error", "active"),
            ("update", "flag"),
        ]
        assert actions[0].error == "cannot compare True (bool) with 0 (int)"

    def test_subclass_compares(self) -> None:
        """Values of a type and its subclass compare (a str subclass against a str)."""

        class Name(str):
            pass

        tree = make_tree()
        tree.new("source", "students", "1", first=Name("Ann"))
        tree.new("destination", "students", "1", first="Bob")
        assert [a.kind for a in diff(tree)] == ["update"]

    def test_error_is_not_repeated_as_update(self) -> None:
        """A mismatch stays an error on every diff; it never turns into an update."""
        tree = make_tree()
        tree.new("source", "students", "1", grade=7, first="A")
        tree.new("destination", "students", "1", grade="7", first="A")
        for _ in range(2):
            assert [a.kind for a in diff(tree)] == ["error"]


class TestOperators:
    def test_minus_is_a_plain_generator(self) -> None:
        """``left - right`` is a generator of the same actions."""
        tree = make_tree()
        tree.new("source", "students", "1")
        actions = tree.source - tree.destination
        assert isinstance(actions, types.GeneratorType)
        assert list(actions) == diff(tree)

    def test_greater_is_a_lazy_diff(self) -> None:
        """``left > right`` is a Diff that computes afresh on each iteration."""
        tree = make_tree()
        result = tree.source > tree.destination
        assert isinstance(result, Diff)
        assert repr(result) == "<Diff source > destination>"
        assert list(result) == []
        tree.new("source", "students", "1")
        assert [a.message for a in result] == ["new_students"]

    def test_reverse_direction(self) -> None:
        """``right > left`` swaps new and old."""
        tree = make_tree()
        tree.new("source", "students", "1")
        assert [a.message for a in tree.destination > tree.source] == ["old_students"]

    def test_subbranch_against_subbranch(self) -> None:
        """``left.students > right.students`` diffs that subbranch only."""
        tree = make_tree(["students", "staff"])
        tree.new("source", "students", "1")
        tree.new("source", "staff", "1")
        result = tree.source.students > tree.destination.students
        assert isinstance(result, Diff)
        assert [a.message for a in result] == ["new_students"]

    def test_subbranch_names_must_match(self) -> None:
        """Different subbranches do not compare."""
        tree = make_tree(["students", "staff"])
        with pytest.raises(TypeError):
            tree.source.students > tree.destination.staff  # noqa: B015

    def test_branches_of_other_trees(self) -> None:
        """Branches of different trees diff when their subbranches agree, else ValueError."""
        one, two = make_tree(), make_tree()
        one.new("source", "students", "1")
        assert [a.message for a in one.source > two.destination] == ["new_students"]
        other = make_tree(["staff"])
        with pytest.raises(ValueError, match="subbranches differ"):
            one.source > other.destination  # noqa: B015

    def test_not_a_branch(self) -> None:
        """Comparing a branch with anything else is a TypeError."""
        tree = make_tree()
        with pytest.raises(TypeError):
            tree.source > 1  # type: ignore[operator]  # noqa: B015
        with pytest.raises(TypeError):
            tree.source - 1  # type: ignore[operator]


class TestAsyncIteration:
    @pytest.mark.anyio
    async def test_async_for(self, anyio_backend: str) -> None:
        """``async for`` yields the same actions as ``for``, past the checkpoint interval."""
        tree = make_tree(["students", "staff"])
        for i in range(1500):
            tree.new("source", "students", str(i))
        tree.new("destination", "staff", "x")
        got = [action async for action in tree.source > tree.destination]
        assert got == diff(tree)
        assert len(got) == 1501


def test_nan_on_both_sides_is_no_change() -> None:
    """NaN != NaN, but a NaN read back as NaN must not be an update on every run."""
    import decimal

    tree = make_tree()
    tree.new("source", "students", "1", score=float("nan"), d=decimal.Decimal("NaN"), x=1.0)
    tree.new("destination", "students", "1", score=float("nan"), d=decimal.Decimal("NaN"), x=1.0)
    assert diff(tree) == []
    tree.new("source", "students", "2", score=float("nan"))
    tree.new("destination", "students", "2", score=2.5)
    tree.new("source", "students", "3", score=2.5)
    tree.new("destination", "students", "3", score=float("nan"))
    assert [(a.idnumber, a.message) for a in diff(tree)] == [
        ("2", "update_students_score"),
        ("3", "update_students_score"),
    ]
