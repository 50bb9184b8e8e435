"""Public usage that must type-check under ``mypy --strict`` (run ``mypy`` from the root).

Not a test module (pytest does not collect it) and safe to import: every use is
inside a function that is never called.  A ``# type: ignore[code]`` marks a
misuse that mypy must reject (strict mode fails on an ignore that is not needed).
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, assert_type

from synctree import (
    Action,
    Branch,
    Changes,
    DefaultTemplate,
    Diff,
    DuplicateKeyError,
    Kind,
    Leaf,
    Outcome,
    Report,
    Result,
    Skip,
    Subbranch,
    SyncTree,
    SyncTreeError,
    UncomparableError,
)
from synctree.aio import AsyncRun, AsyncTemplate, batch


class SISStudent(Leaf):
    """DESIGN.md's model: attributes from the reader are typed ``Any``."""

    @property
    def first(self) -> str:
        return str(self._lastfirst.split(",")[1].strip())


class Template(DefaultTemplate):
    def before_all(self) -> None:
        pass

    def new_students(self, action: Action) -> None:
        assert action.source is not None
        assert_type(action.source, Leaf)

    def update_students(self, action: Action) -> Skip | None:
        assert action.changes is not None
        assert_type(action.changes, Changes)
        if "grade" not in action.changes:
            return Skip("no grade")
        return None

    def after_all(self, report: Report) -> None:
        assert_type(report.ok, bool)


def newest(leaf: Leaf, row: dict[str, Any]) -> dict[str, Any] | None:
    return row if row["year"] > leaf.year else None


def tree_usage(path: Path) -> None:
    tree = SyncTree(
        ["source", "destination"],
        ["students", "enrollments"],
        models={"source": {"students": SISStudent}},
        duplicates={"enrollments": "merge", "students": newest},
    )
    assert_type(tree.branches, list[str])
    assert_type(tree.subbranches, list[str])
    assert_type(tree.source, Branch)
    assert_type(tree["source"], Branch)
    assert_type(tree.source.students, Subbranch)
    assert_type(tree.source["students"], Subbranch)
    leaf = tree.new("source", "students", "111", _lastfirst="Shmoe, Joe", grade=7)
    assert_type(leaf, Leaf)
    assert_type(leaf.idnumber, str)
    assert_type(leaf.grade, Any)
    assert_type(leaf.to_dict(), dict[str, Any])
    students = tree.source.students
    assert_type(len(students), int)
    assert_type(students["111"], Leaf)
    assert_type(students.get("111"), Leaf | None)
    for each in students:
        assert_type(each, Leaf)
    tree.show()
    tree.show("students", "111", limit=None)
    tree.save(path)
    assert_type(SyncTree.restore(path, models={"source": {"students": SISStudent}}), SyncTree)
    assert_type(SyncTree.from_json(tree.to_json()), SyncTree)

    tree.new("source", "students", 111)  # type: ignore[arg-type]
    SyncTree(["a"], ["b"], duplicates="ignore")  # type: ignore[arg-type]
    SyncTree(["a"], ["b"], models={"a": {"b": dict}})  # type: ignore[dict-item]


def diff_usage(tree: SyncTree) -> None:
    diff = tree.source > tree.destination
    assert_type(diff, Diff)
    assert_type(tree.source.students > tree.destination.students, Diff)
    assert_type(tree.source - tree.destination, Iterator[Action])
    for action in diff:
        assert_type(action, Action)
        assert_type(action.idnumber, str)
        assert_type(action.kind, Kind)
        assert_type(action.attribute, str | None)
        assert_type(action.value, Any)
        assert_type(action.to_dict(), dict[str, Any])
    assert_type(diff.filter(lambda a: a.kind is Kind.NEW), Diff)
    assert_type(Action(idnumber="999", message="new_students"), Action)


async def async_usage(diff: Diff) -> None:
    async for action in diff:
        assert_type(action, Action)


def template_usage(diff: Diff) -> None:
    assert_type(diff | Template, Report)
    assert_type(diff | Template(), Report)
    assert_type(diff.run(Template, dry_run=True), Report)
    assert_type(diff | "mypkg.sync:Template", Any)
    diff | 42  # type: ignore[operator]


class AsyncUserTemplate(AsyncTemplate):
    """The README's async template: hooks are coroutines, no ``type: ignore`` needed."""

    concurrency = 4
    rate = 10.0

    async def before_all(self) -> None:
        pass

    async def new_students(self, action: Action) -> None:
        assert_type(action.idnumber, str)

    @batch(size=100)
    async def old_students(self, actions: list[Action]) -> list[Skip | None]:
        return [None for _ in actions]

    async def after_all(self, report: Report) -> None:
        assert_type(report.ok, bool)


async def async_template_usage(diff: Diff) -> None:
    assert_type(await (diff | AsyncUserTemplate()), Report)
    assert_type(await (diff | AsyncUserTemplate), Report)
    assert_type(await diff.run(AsyncUserTemplate(), concurrency=2, dry_run=True), Report)
    assert_type(diff | AsyncUserTemplate(), AsyncRun)


def report_usage(report: Report) -> None:
    assert_type(report.results, list[Result])
    assert_type(report.counts, dict[str, Counter[Outcome]])
    assert_type(report.totals, Counter[Outcome])
    assert_type(report.failures, list[Result])
    assert_type(report.duration, float)
    assert_type(report.started_at, datetime.datetime)
    assert_type(report.to_json(indent=None), str)
    for result in report.failures:
        assert_type(result.outcome, Outcome)
        assert_type(result.error, BaseException | None)
        assert_type(result.traceback, str | None)
    assert_type(str(report), str)


def error_usage() -> None:
    try:
        SyncTree(["a"], ["b"]).new("a", "b", "1")
    except DuplicateKeyError as error:
        assert_type(error.key, str)
        assert_type(error.line, int | None)
    except UncomparableError as error:
        assert_type(error.attribute, str)
    except SyncTreeError:
        pass


async def oneroster_usage(path: Path) -> None:
    from synctree.aio.oneroster import OneRoster, OneRosterReader

    roster = OneRoster(path, date_order="DMY", keep_passwords=False, dangling="keep")
    readers = roster.readers()
    assert_type(readers, dict[str, OneRosterReader])
    assert_type(await roster.version(), Literal["1.0", "1.1", "1.2"])
    assert_type(await roster.manifest(), dict[str, str])
    tree = SyncTree(["source", "destination"], list(OneRoster.subbranches))
    await tree.load(source=readers)
    assert_type(tree.source.students.coverage, Literal["full", "delta", "absent"])
