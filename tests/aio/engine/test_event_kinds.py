"""An observer that says which kinds of event it takes gets only those (``synctree_kinds``)."""

from __future__ import annotations

from typing import Any

import pytest

from synctree import Action, Outcome, SyncTree
from synctree.aio import AsyncTemplate, Event, EventKind, Retry, batch

pytestmark = pytest.mark.anyio


def _tree(n: int) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["students"])
    for i in range(n):
        tree.new("source", "students", str(i), first=f"F{i}")
    return tree


class _Kinds:
    """An observer taking ``kinds`` only, recording what it got."""

    def __init__(self, *kinds: EventKind) -> None:
        self.synctree_kinds = frozenset(kinds)
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)


async def _no_sleep(delay: float) -> None:
    return None


class TestEventKinds:
    async def test_only_the_kinds_asked_for(self) -> None:
        """Each subset of kinds sees exactly the events of those kinds, in order."""
        attempts = 0

        class T(AsyncTemplate):
            async def new_students(self, action: Action) -> None:
                nonlocal attempts
                attempts += 1
                if attempts == 1:
                    raise Retry(after=0, reason="busy")

        everything: list[Event] = []
        tree = _tree(2)
        await (tree.source > tree.destination).run(T(), observer=everything.append, sleep=_no_sleep)
        all_kinds = [e.kind for e in everything]
        assert EventKind.STARTED in all_kinds and EventKind.RETRYING in all_kinds
        for kinds in (
            (EventKind.PLANNED,),
            (EventKind.FINISHED,),
            (EventKind.STARTED, EventKind.FINISHED),
            (EventKind.PLANNED, EventKind.RETRYING),
            (),
        ):
            attempts = 0
            observer = _Kinds(*kinds)
            tree = _tree(2)
            report = await (tree.source > tree.destination).run(
                T(), observer=observer, sleep=_no_sleep
            )
            assert [e.kind for e in observer.events] == [k for k in all_kinds if k in kinds]
            assert report.totals == {Outcome.SUCCEEDED: 2}

    async def test_batched_and_dry_run(self) -> None:
        """A batch's results and a dry run's are left out unless FINISHED is asked for."""

        class T(AsyncTemplate):
            @batch(size=3)
            async def new_students(self, actions: list[Action]) -> None:
                return None

        for dry_run in (False, True):
            planned, finished = _Kinds(EventKind.PLANNED), _Kinds(EventKind.FINISHED)
            for observer in (planned, finished):
                tree = _tree(7)
                report = await (tree.source > tree.destination).run(
                    T(), observer=observer, dry_run=dry_run
                )
                assert len(report) == 7
            assert [e.kind for e in planned.events] == [EventKind.PLANNED]
            assert planned.events[0].total == 7
            assert [e.kind for e in finished.events] == [EventKind.FINISHED] * 7
            results: Any = [e.result for e in finished.events]
            assert sorted(r.action.idnumber for r in results) == [str(i) for i in range(7)]
