"""A source that holds part of the truth: ``delta`` and ``absent`` subbranches."""

from __future__ import annotations

import pytest

from synctree import DefaultTemplate, SyncTree


def make_tree() -> SyncTree:
    tree = SyncTree(["source", "destination"], ["students", "classes"])
    for key in ("1", "2", "3"):
        tree.new("destination", "students", key, grade=7)
        tree.new("destination", "classes", "c" + key, title="Maths")
    return tree


def plan(tree: SyncTree) -> list[tuple[str, str, object]]:
    return [(a.idnumber, a.message, a.value) for a in tree.source > tree.destination]


def test_a_full_source_removes_what_it_leaves_out() -> None:
    tree = make_tree()
    tree.new("source", "students", "1", grade=7)
    assert tree.source.students.coverage == "full"
    assert ("2", "old_students", None) in plan(tree)


def test_a_delta_removes_only_what_it_names() -> None:
    tree = make_tree()
    students = tree.source.students
    students.mark_delta(removed=["2", "9"])  # "9" is not in the destination
    tree.new("source", "students", "1", grade=8)
    tree.new("source", "students", "4", grade=7)
    students.mark_delta(removed=["3"])  # removals add up
    assert students.coverage == "delta"
    assert students.removed == {"2", "3", "9"}
    got = [a for a in plan(tree) if a[0] in {"1", "2", "3", "4"}]
    assert got == [
        ("1", "update_students_grade", 8),
        ("4", "new_students", None),
        ("2", "old_students", None),
        ("3", "old_students", None),
    ]
    # the classes subbranch is still full: every class is an old one
    assert [a for a in plan(tree) if a[1] == "old_classes"] == [
        ("c1", "old_classes", None),
        ("c2", "old_classes", None),
        ("c3", "old_classes", None),
    ]


def test_an_empty_delta_removes_nothing_and_is_no_empty_export() -> None:
    tree = make_tree()
    tree.source.students.mark_delta()
    tree.source.classes.mark_delta(removed=["c1"])
    assert plan(tree) == [("c1", "old_classes", None)]
    # the empty-source refusal is for full sources only
    report = (tree.source > tree.destination) | DefaultTemplate
    assert [r.action.message for r in report.results] == ["old_classes"]


def test_an_absent_subbranch_is_left_alone_on_either_side() -> None:
    tree = make_tree()
    tree.source.classes.mark_absent("classes: not in this export")
    tree.new("source", "students", "1", grade=7)
    messages = {a[1] for a in plan(tree)}
    assert messages == {"old_students"}
    assert tree.source.classes.notes == ["classes: not in this export"]
    # the destination not providing a kind leaves it alone too
    other = SyncTree(["source", "destination"], ["students", "classes"])
    other.new("source", "classes", "c9", title="Art")
    other.destination.classes.mark_absent("not readable")
    assert plan(other) == []


def test_absent_and_rows_exclude_each_other() -> None:
    tree = make_tree()
    with pytest.raises(ValueError, match="has rows"):
        tree.destination.students.mark_absent("gone")
    tree.source.students.mark_absent("not provided")
    with pytest.raises(ValueError, match="absent"):
        tree.new("source", "students", "1", grade=7)
    with pytest.raises(ValueError, match="absent"):
        tree.source.students.mark_delta()
    with pytest.raises(TypeError, match="must be a str"):
        tree.source.classes.mark_delta(removed=[1])  # type: ignore[list-item]


def test_coverage_survives_a_snapshot() -> None:
    tree = make_tree()
    tree.source.students.mark_delta(removed=["2"])
    tree.source.students.add_note("users.csv line 4: a warning")
    tree.source.classes.mark_absent("classes: not in this export")
    again = SyncTree.from_json(tree.to_json())
    assert again.source.students.coverage == "delta"
    assert again.source.students.removed == {"2"}
    assert again.source.students.notes == ["users.csv line 4: a warning"]
    assert again.source.classes.coverage == "absent"
    assert plan(again) == plan(tree)


def test_a_delta_never_removes_on_absence_even_with_a_limit() -> None:
    tree = make_tree()
    tree.source.students.mark_delta()
    tree.new("source", "students", "1", grade=9)
    tree.source.classes.mark_absent("classes: not in this export")
    report = (tree.source > tree.destination).run(DefaultTemplate, max_deletes=0)
    assert [r.action.message for r in report.results] == ["update_students_grade"]
