from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from synctree import (
    Action,
    Changes,
    DefaultTemplate,
    Diff,
    Outcome,
    Report,
    Skip,
    SyncTree,
    TemplateImportError,
    UncomparableError,
)


def one_new() -> Diff:
    tree = SyncTree(["source", "destination"], ["students"])
    tree.new("source", "students", "1")
    return tree.source > tree.destination


class Recorder(DefaultTemplate):
    """Records every call as ``(message, idnumber)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def new_students(self, action: Action) -> None:
        self.calls.append((action.message, action.idnumber))


MODULE = """
from synctree import DefaultTemplate

CALLS = []

class Template(DefaultTemplate):
    def new_students(self, action):
        CALLS.append(action.idnumber)

    class Nested(DefaultTemplate):
        def new_students(self, action):
            CALLS.append("nested " + action.idnumber)

not_a_template = 42
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package ``synctree_test_pkg.sync`` on ``sys.path``, removed again afterwards."""
    name = "synctree_test_pkg"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "sync.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m.split(".")[0] == name]:
        del sys.modules[module]


class TestDispatch:
    def test_class(self) -> None:
        """A template class is instantiated and its method called per action."""
        calls: list[str] = []

        class Template(DefaultTemplate):
            def new_students(self, action: Action) -> None:
                calls.append(action.idnumber)

        report = one_new() | Template
        assert isinstance(report, Report)
        assert calls == ["1"]
        assert report.totals == {Outcome.SUCCEEDED: 1}

    def test_instance(self) -> None:
        """A template instance is used as it is."""
        template = Recorder()
        one_new() | template
        assert template.calls == [("new_students", "1")]

    @pytest.mark.parametrize("spec", ["{}.sync:Template", "{}.sync.Template"])
    def test_import_string(self, package: str, spec: str) -> None:
        """``'pkg.mod:Template'`` and ``'pkg.mod.Template'`` import the template."""
        report = one_new() | spec.format(package)
        assert report.totals == {Outcome.SUCCEEDED: 1}
        assert sys.modules[f"{package}.sync"].CALLS == ["1"]

    def test_import_string_nested(self, package: str) -> None:
        """A dotted name after the colon reaches a nested class."""
        one_new() | f"{package}.sync:Template.Nested"
        assert sys.modules[f"{package}.sync"].CALLS == ["nested 1"]

    @pytest.mark.parametrize(
        ("spec", "reason"),
        [
            ("no_such_module_xyz:Template", "ModuleNotFoundError"),
            ("no_such_module_xyz.Template", "ModuleNotFoundError"),
            ("{}.sync:Missing", "has no 'Missing'"),
            ("{}.sync.Missing", "has no 'Missing'"),
            ("Template", "expected 'package.module:Class'"),
            (":Template", "expected 'package.module:Class'"),
            ("{}.sync:", "expected 'package.module:Class'"),
        ],
    )
    def test_import_errors(self, package: str, spec: str, reason: str) -> None:
        """A string that does not import is a TemplateImportError naming it."""
        spec = spec.format(package)
        with pytest.raises(TemplateImportError) as info:
            one_new() | spec
        assert info.value.spec == spec
        assert str(info.value).startswith(f"cannot import template {spec!r}: ")
        assert reason in str(info.value)
        assert isinstance(info.value, ImportError)

    def test_import_string_not_a_template(self, package: str) -> None:
        """An import string naming something else is a TypeError."""
        with pytest.raises(TypeError, match="a template must be"):
            one_new() | f"{package}.sync:not_a_template"

    @pytest.mark.parametrize("template", [42, object, None])
    def test_not_a_template(self, template: object) -> None:
        """Anything but a template, class or string is a TypeError."""
        with pytest.raises(TypeError, match="a template must be"):
            one_new() | template  # type: ignore[operator]

    def test_run_with_options(self) -> None:
        """``diff.run(template, ...)`` takes options; an unknown one is a TypeError."""
        assert one_new().run(Recorder, dry_run=True).totals == {Outcome.PLANNED: 1}
        with pytest.raises(TypeError, match="Recorder has no option 'bogus'"):
            one_new().run(Recorder, bogus=1)


class TestOutcomes:
    def test_not_implemented(self) -> None:
        """Actions without a method are counted as not implemented, not failed."""
        tree = SyncTree(["source", "destination"], ["students", "staff"])
        tree.new("source", "students", "1")
        tree.new("source", "staff", "1")
        tree.new("destination", "staff", "2")
        report = (tree.source > tree.destination) | Recorder
        assert report.ok
        assert report.counts == {
            "new_students": {Outcome.SUCCEEDED: 1},
            "new_staff": {Outcome.NOT_IMPLEMENTED: 1},
            "old_staff": {Outcome.NOT_IMPLEMENTED: 1},
        }
        assert [r.attempts for r in report.results] == [1, 0, 0]

    def test_exception_fails_one_action(self) -> None:
        """An exception fails its action only; the run goes on and keeps the traceback."""
        tree = SyncTree(["source", "destination"], ["students"])
        for key in ("1", "2", "3"):
            tree.new("source", "students", key)

        class Template(DefaultTemplate):
            def new_students(self, action: Action) -> None:
                if action.idnumber == "2":
                    raise RuntimeError("boom")

        report = (tree.source > tree.destination) | Template
        assert [r.outcome for r in report.results] == ["succeeded", "failed", "succeeded"]
        (failure,) = report.failures
        assert failure.action.idnumber == "2"
        assert isinstance(failure.error, RuntimeError) and str(failure.error) == "boom"
        assert failure.traceback is not None
        assert "RuntimeError: boom" in failure.traceback
        assert "in new_students" in failure.traceback
        assert report.results[0].traceback is None
        assert not report.ok

    def test_base_exceptions_propagate(self) -> None:
        """KeyboardInterrupt and other BaseExceptions are not swallowed."""

        class Template(DefaultTemplate):
            def new_students(self, action: Action) -> None:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            one_new() | Template

    def test_skip(self) -> None:
        """Returning ``Skip("why")`` records a skip with its reason."""

        class Template(DefaultTemplate):
            def new_students(self, action: Action) -> Skip:
                return Skip("not this term")

        report = one_new() | Template
        (result,) = report.results
        assert (result.outcome, result.reason) == (Outcome.SKIPPED, "not this term")
        assert report.ok

    def test_return_value_is_success(self) -> None:
        """Any other return value is success."""

        class Template(DefaultTemplate):
            def new_students(self, action: Action) -> int:
                return 201

        assert (one_new() | Template).totals == {Outcome.SUCCEEDED: 1}

    def test_error_actions_never_dispatched(self) -> None:
        """Error actions fail with UncomparableError even when a method has their name."""
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", grade=7)
        tree.new("destination", "students", "1", grade="7")
        called: list[Action] = []

        class Template(DefaultTemplate):
            def error_students_grade(self, action: Action) -> None:
                called.append(action)

            def update_students_grade(self, action: Action) -> None:
                called.append(action)

            def update_students(self, action: Action) -> None:
                called.append(action)

        report = (tree.source > tree.destination) | Template
        assert called == []
        (failure,) = report.failures
        assert failure.action.message == "error_students_grade"
        assert failure.attempts == 0
        error = failure.error
        assert isinstance(error, UncomparableError) and isinstance(error, TypeError)
        assert (error.subbranch, error.key, error.attribute) == ("students", "1", "grade")
        assert str(error) == (
            "students '1', attribute 'grade': cannot compare 7 (int) with '7' (str)"
        )

    def test_dry_run(self) -> None:
        """A dry run calls nothing and records implemented actions as planned."""
        tree = SyncTree(["source", "destination"], ["students", "staff"])
        tree.new("source", "students", "1")
        tree.new("source", "staff", "1")
        template = Recorder()
        report = (tree.source > tree.destination).run(template, dry_run=True)
        assert template.calls == []
        assert [r.outcome for r in report.results] == [Outcome.PLANNED, Outcome.NOT_IMPLEMENTED]


class TestHooks:
    def test_order(self) -> None:
        """``before_all`` runs before the first action, ``after_all`` after the last."""
        events: list[str] = []
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1")
        tree.new("source", "students", "2")

        class Template(DefaultTemplate):
            def before_all(self) -> None:
                events.append("before")

            def new_students(self, action: Action) -> None:
                events.append(action.idnumber)

            def after_all(self, report: Report) -> None:
                events.append(f"after {len(report)}")

        (tree.source > tree.destination) | Template
        assert events == ["before", "1", "2", "after 2"]

    def test_hooks_without_actions(self) -> None:
        """The hooks run even when there is nothing to do."""
        events: list[str] = []

        class Template(DefaultTemplate):
            def before_all(self) -> None:
                events.append("before")

            def after_all(self, report: Report) -> None:
                events.append("after")

        tree = SyncTree(["source", "destination"], ["students"])
        assert len((tree.source > tree.destination) | Template) == 0
        assert events == ["before", "after"]


class TestGroupedUpdates:
    def make_diff(self) -> Diff:
        tree = SyncTree(["source", "destination"], ["students", "staff"])
        tree.new("source", "students", "1", first="Ann", last="Lee", grade=7, tags={"a"})
        tree.new("destination", "students", "1", first="An", last="Li", grade=6, tags=set())
        tree.new("source", "students", "2", first="Bob", last="Ray", grade=7, tags=set())
        tree.new("destination", "students", "2", first="Bob", last="Roy", grade=7, tags={"z"})
        tree.new("source", "staff", "1", first="Cy", last="Po", grade=0, tags=set())
        tree.new("destination", "staff", "1", first="Cyd", last="Po", grade=0, tags=set())
        return tree.source > tree.destination

    def test_one_call_per_object(self) -> None:
        """``update_{subbranch}`` gets one action per object with all its changes."""
        got: list[Action] = []

        class Template(DefaultTemplate):
            def update_students(self, action: Action) -> None:
                got.append(action)

        report = self.make_diff() | Template
        assert got == [
            Action(
                idnumber="1",
                message="update_students",
                changes=Changes({"first": "Ann", "last": "Lee", "grade": 7}),
            ),
            Action(idnumber="2", message="update_students", changes=Changes({"last": "Ray"})),
        ]
        assert got[0].kind == "update" and got[0].subbranch == "students"
        assert got[0].source is not None and got[0].dest is not None
        assert got[0].dest.grade == 6  # the old values are on the destination leaf
        assert report.counts["update_students"] == {Outcome.SUCCEEDED: 2}
        assert report.counts["update_staff_first"] == {Outcome.NOT_IMPLEMENTED: 1}

    def test_specific_method_wins(self) -> None:
        """``update_{subbranch}_{attribute}`` takes its attribute out of the group."""
        calls: list[str] = []

        class Template(DefaultTemplate):
            def update_students(self, action: Action) -> None:
                assert action.changes is not None
                calls.append(f"group {action.idnumber} {sorted(action.changes)}")

            def update_students_grade(self, action: Action) -> None:
                calls.append(f"grade {action.idnumber} {action.value} {action.old_value}")

        self.make_diff() | Template
        assert calls == ["group 1 ['first', 'last']", "grade 1 7 6", "group 2 ['last']"]

    def test_group_not_split_by_other_actions(self) -> None:
        """An object's add between its updates does not split its group."""
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", first="A", tags={"x"}, last="B")
        tree.new("destination", "students", "1", first="a", tags=set(), last="b")
        calls: list[str] = []

        class Template(DefaultTemplate):
            def update_students(self, action: Action) -> None:
                assert action.changes is not None
                calls.append(f"update {dict(action.changes)}")

            def add_students_tags(self, action: Action) -> None:
                calls.append(f"add {action.value}")

        report = (tree.source > tree.destination) | Template
        assert calls == ["update {'first': 'A', 'last': 'B'}", "add x"]
        assert len(report) == 2

    def test_changes_mapping(self) -> None:
        """``Changes`` is a read-only, hashable mapping with a readable repr."""
        changes = Changes({"first": "Ann", "grade": 7})
        assert dict(changes) == {"first": "Ann", "grade": 7}
        assert len(changes) == 2 and changes["grade"] == 7
        assert changes == Changes({"grade": 7, "first": "Ann"})
        assert hash(changes) == hash(Changes({"first": "Ann", "grade": 8}))
        assert repr(changes) == "Changes({'first': 'Ann', 'grade': 7})"
        assert "changes=Changes(" in repr(Action(idnumber="1", message="update_x", changes=changes))
