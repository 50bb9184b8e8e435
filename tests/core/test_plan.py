"""One planning semantics: the same diff gives the same outcomes sync and async."""

from __future__ import annotations

from typing import Any

import pytest

from synctree import (
    Action,
    Changes,
    DefaultTemplate,
    Outcome,
    Report,
    SafetyLimitExceeded,
    SyncTree,
)
from synctree.aio import AsyncTemplate


def tree_of(source: dict[str, dict[str, Any]], destination: dict[str, dict[str, Any]]) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["students"])
    for key, attributes in source.items():
        tree.new("source", "students", key, **attributes)
    for key, attributes in destination.items():
        tree.new("destination", "students", key, **attributes)
    return tree


class SyncFails(DefaultTemplate):
    def update_students_a(self, action: Action) -> None:
        raise RuntimeError("a failed")

    def update_students_b(self, action: Action) -> None:
        pass

    def old_students(self, action: Action) -> None:
        pass


class AsyncFails(AsyncTemplate):
    async def update_students_a(self, action: Action) -> None:
        raise RuntimeError("a failed")

    async def update_students_b(self, action: Action) -> None:
        pass

    async def old_students(self, action: Action) -> None:
        pass


def outcomes(report: Report) -> dict[tuple[str, str], tuple[Outcome, str | None]]:
    """Each action's outcome, and why it was skipped (a failure's reason says how it ran)."""
    return {
        (r.action.idnumber, r.action.message): (
            r.outcome,
            r.reason if r.outcome is Outcome.SKIPPED else None,
        )
        for r in report.results
    }


@pytest.mark.anyio
class TestSameOutcomes:
    async def test_dependency_skip(self) -> None:
        """After ``update_a`` fails, ``update_b`` of that object is skipped both ways."""
        tree = tree_of({"1": {"a": 1, "b": 1}}, {"1": {"a": 0, "b": 0}})
        sync = (tree.source > tree.destination) | SyncFails
        async_ = await ((tree.source > tree.destination) | AsyncFails())
        assert outcomes(sync) == outcomes(async_)
        assert outcomes(sync)["1", "update_students_b"] == (Outcome.SKIPPED, "dependency failed")

    async def test_max_deletes(self) -> None:
        """Removing 99 of 100 stops before any call, through either template."""
        tree = tree_of({"0": {}}, {str(n): {} for n in range(100)})
        with pytest.raises(SafetyLimitExceeded) as sync:
            _ = (tree.source > tree.destination) | SyncFails
        with pytest.raises(SafetyLimitExceeded) as async_:
            await ((tree.source > tree.destination) | AsyncFails())
        assert str(sync.value) == str(async_.value)
        assert sync.value.deletes == 99

    async def test_empty_source(self) -> None:
        """An empty source facing a full destination is refused both ways, whatever max_deletes."""
        tree = tree_of({}, {"1": {}})
        with pytest.raises(SafetyLimitExceeded, match="is empty"):
            (tree.source > tree.destination).run(SyncFails, max_deletes=None)
        with pytest.raises(SafetyLimitExceeded, match="is empty"):
            await (tree.source > tree.destination).run(AsyncFails(), max_deletes=None)

    async def test_forced_and_dry_runs(self) -> None:
        """``force=True`` runs the removals; ``dry_run=True`` plans them; alike both ways."""
        tree = tree_of({"0": {}}, {str(n): {} for n in range(10)})
        diff = tree.source > tree.destination
        assert outcomes(diff.run(SyncFails, force=True)) == outcomes(
            await diff.run(AsyncFails(), force=True)
        )
        dry = diff.run(SyncFails, dry_run=True)
        assert dry.totals == (await diff.run(AsyncFails(), dry_run=True)).totals
        assert dry.totals[Outcome.PLANNED] == 9

    async def test_fail_fast(self) -> None:
        """``fail_fast`` skips what comes after the first failure, both ways."""
        tree = tree_of({"1": {"a": 1}, "2": {"a": 1}}, {"1": {"a": 0}, "2": {"a": 0}})
        diff = tree.source > tree.destination
        sync = diff.run(SyncFails, fail_fast=True)
        async_ = await diff.run(AsyncFails(), fail_fast=True, concurrency=1)
        assert sync.totals == async_.totals

    def test_unknown_sync_option(self) -> None:
        """A sync run refuses an option it does not know, naming it."""
        tree = tree_of({}, {})
        with pytest.raises(TypeError, match="'concurrency'"):
            (tree.source > tree.destination).run(SyncFails, concurrency=2)


@pytest.mark.anyio
class TestSettingsComeFromDeclaredFields:
    async def test_helper_named_like_a_hook_is_not_a_setting(self) -> None:
        """A template's own ``sleep`` helper is never the runner's backoff sleep."""
        slept: list[float] = []
        calls = 0

        class Template(AsyncTemplate):
            retries = 1

            async def sleep(self, seconds: float) -> None:  # a user's helper
                slept.append(seconds)

            async def new_students(self, action: Action) -> None:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise TimeoutError("once")

            new_students.__synctree_idempotent__ = True  # type: ignore[attr-defined]

        tree = tree_of({"1": {}}, {})
        report = await (tree.source > tree.destination).run(
            Template(), backoff_base=0.001, random=lambda: 0.5
        )
        assert report.ok and calls == 2
        assert slept == []


class TestSmallDefects:
    def test_changes_hash_ignores_order(self) -> None:
        """Equal ``Changes`` hash alike, so equal actions meet in a set once."""
        one, two = Changes({"a": 1, "b": 2}), Changes({"b": 2, "a": 1})
        assert one == two and hash(one) == hash(two)
        actions = {
            Action("1", "update_students", changes=one),
            Action("1", "update_students", changes=two),
        }
        assert len(actions) == 1

    @pytest.mark.anyio
    async def test_hasattr_on_a_pending_run(self) -> None:
        """``hasattr`` on a run not yet awaited is False, not an exception."""
        tree = tree_of({"1": {}}, {})
        pending = (tree.source > tree.destination) | AsyncFails()
        assert not hasattr(pending, "counts")
        assert (await pending).ok
