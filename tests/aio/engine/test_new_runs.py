"""The runner hands a run of new objects to a ``@batch(lazy=True)`` method as one NewActions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from synctree import Action, NewActions, Outcome, SyncTree
from synctree.aio import AsyncTemplate, Event, EventKind, batch

pytestmark = pytest.mark.anyio


def make_tree(new: int, changed: int = 0) -> SyncTree:
    """``new`` objects only in the source, then ``changed`` ones whose grade differs."""
    tree = SyncTree(["source", "destination"], ["students"])
    for i in range(new + changed):
        tree.new("source", "students", str(i), first=f"F{i}", grade=7)
    for i in range(new, new + changed):
        tree.new("destination", "students", str(i), first=f"F{i}", grade=8)
    return tree


class Lazy(AsyncTemplate):
    def __init__(self, fail: str | None = None) -> None:
        self.got: list[Sequence[Action]] = []
        self.fail = fail

    @batch(size=4, lazy=True)
    async def new(self, actions: Sequence[Action]) -> list[object]:
        self.got.append(actions)
        return [RuntimeError("no") if a.idnumber == self.fail else None for a in actions]

    async def update_students_grade(self, action: Action) -> None:
        pass


class Eager(Lazy):
    @batch(size=4)
    async def new(self, actions: Sequence[Action]) -> list[object]:
        self.got.append(actions)
        return [None] * len(actions)


class TestLazyBatches:
    async def test_a_lazy_method_gets_the_run(self) -> None:
        """Batches of a run are NewActions slices; the report holds the diff's actions."""
        tree = make_tree(10)
        template = Lazy()
        report = await ((tree.source > tree.destination) | template)
        assert [type(a) for a in template.got] == [NewActions] * 3
        assert sorted(map(len, template.got)) == [2, 4, 4]
        assert report.totals == {Outcome.SUCCEEDED: 10} and len(report) == 10
        assert report._subbranch_counts() == {"students": {"succeeded": 10}}
        assert sorted(r.action.idnumber for r in report.results) == sorted(map(str, range(10)))
        ordered = sorted((r.action for r in report.results), key=lambda a: int(a.idnumber))
        assert ordered == list(tree.source > tree.destination)

    async def test_other_methods_get_lists(self) -> None:
        """A batch method not marked lazy gets lists of actions, as always."""
        tree = make_tree(10, 3)
        template = Eager()
        report = await ((tree.source > tree.destination) | template)
        assert all(type(actions) is list for actions in template.got)
        assert report.ok and len(report) == 13

    async def test_runs_between_updates_keep_the_order(self) -> None:
        """New objects between changed ones: runs joined into batches, every action once."""
        tree = SyncTree(["source", "destination"], ["students"])
        for i in range(12):
            tree.new("source", "students", str(i), grade=7)
            if i % 3 == 0:
                tree.new("destination", "students", str(i), grade=8)
        template = Lazy()
        report = await ((tree.source > tree.destination) | template)
        written = [a.idnumber for actions in template.got for a in actions]
        assert sorted(written, key=int) == [str(i) for i in range(12) if i % 3]
        assert report.ok and len(report) == 12

    async def test_planned_event_and_failures(self) -> None:
        """The PLANNED event's plan is the diff; a failed action fails alone."""
        tree = make_tree(6, 2)
        events: list[Event] = []
        template = Lazy(fail="2")
        report = await (tree.source > tree.destination).run(template, observer=events.append)
        planned = events[0]
        assert planned.kind is EventKind.PLANNED and planned.total == 8
        assert planned.plan is not None
        assert list(planned.plan) == list(tree.source > tree.destination)
        assert planned.plan[-1].message == "update_students_grade" and len(planned.plan[2:4]) == 2
        assert [r.action.idnumber for r in report.failures] == ["2"]
        finished = [e for e in events if e.kind is EventKind.FINISHED]
        assert len(finished) == 8

    async def test_fail_fast_records_each_action_once(self) -> None:
        """A stopped run records every planned action once (run, failed or skipped)."""
        tree = make_tree(10, 2)
        report = await (tree.source > tree.destination).run(Lazy(fail="0"), fail_fast=True)
        ids = [r.action.idnumber for r in report.results]
        assert sorted(ids) == sorted(map(str, range(12))) and len(set(ids)) == 12
        assert not report.ok

    async def test_dry_run(self) -> None:
        """A dry run plans a run's actions without calling the method."""
        tree = make_tree(5)
        template = Lazy()
        report = await (tree.source > tree.destination).run(template, dry_run=True)
        assert template.got == [] and report.totals == {Outcome.PLANNED: 5}


def test_lazy_must_be_a_bool() -> None:
    """``batch(lazy=...)`` is checked when the method is marked."""
    with pytest.raises(ValueError, match="'lazy'"):
        batch(size=3, lazy="yes")  # type: ignore[arg-type]


def test_sync_template_unchanged(tmp_path: Any) -> None:
    """The synchronous template still gets one action at a time."""
    from synctree import DefaultTemplate

    got: list[Action] = []

    class Sync(DefaultTemplate):
        def new_students(self, action: Action) -> None:
            got.append(action)

    tree = make_tree(3)
    report = (tree.source > tree.destination) | Sync
    assert report.ok and got == list(tree.source > tree.destination)
