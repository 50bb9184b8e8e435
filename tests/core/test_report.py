from __future__ import annotations

import datetime
import json
import time
from collections import Counter

import pytest

from synctree import Action, DefaultTemplate, Outcome, Report, Result, Skip, SyncTree


class Template(DefaultTemplate):
    def new_students(self, action: Action) -> Skip | None:
        if action.idnumber == "3":
            return Skip("later")
        if action.idnumber == "2":
            raise ValueError(f"bad {action.idnumber}")
        return None

    def update_students_grade(self, action: Action) -> None:
        pass


def run() -> Report:
    tree = SyncTree(["source", "destination"], ["students", "staff"])
    for key in ("1", "2", "3"):
        tree.new("source", "students", key)
    tree.new("source", "students", "4", grade=7, tags={"b", "a"})
    tree.new("destination", "students", "4", grade=6, tags=set())
    tree.new("destination", "staff", "9")
    return (tree.source > tree.destination).run(Template, force=True)  # staff: all removed


class TestReport:
    def test_results(self) -> None:
        """One result per action, in the order they ran."""
        report = run()
        assert len(report) == 7
        assert all(isinstance(r, Result) for r in report.results)
        assert [(r.action.message, r.outcome) for r in report.results] == [
            ("new_students", Outcome.SUCCEEDED),
            ("new_students", Outcome.FAILED),
            ("new_students", Outcome.SKIPPED),
            ("update_students_grade", Outcome.SUCCEEDED),
            ("add_students_tags", Outcome.NOT_IMPLEMENTED),
            ("add_students_tags", Outcome.NOT_IMPLEMENTED),
            ("old_staff", Outcome.NOT_IMPLEMENTED),
        ]

    def test_counts_and_totals(self) -> None:
        """Counts by message and outcome, in first-seen order, and totals by outcome."""
        report = run()
        assert report.counts == {
            "new_students": {Outcome.SUCCEEDED: 1, Outcome.FAILED: 1, Outcome.SKIPPED: 1},
            "update_students_grade": {Outcome.SUCCEEDED: 1},
            "add_students_tags": {Outcome.NOT_IMPLEMENTED: 2},
            "old_staff": {Outcome.NOT_IMPLEMENTED: 1},
        }
        assert list(report.counts) == [
            "new_students",
            "update_students_grade",
            "add_students_tags",
            "old_staff",
        ]
        assert report.totals == {
            Outcome.SUCCEEDED: 2,
            Outcome.FAILED: 1,
            Outcome.SKIPPED: 1,
            Outcome.NOT_IMPLEMENTED: 3,
        }

    def test_failures_and_ok(self) -> None:
        """Failures keep their exceptions; ``ok`` is false when any action failed."""
        report = run()
        (failure,) = report.failures
        assert failure.action.idnumber == "2"
        assert isinstance(failure.error, ValueError)
        assert not report.ok
        assert Report().ok

    def test_timing(self) -> None:
        """Duration is measured from the start to ``finish`` and stays fixed after it."""
        report = run()
        duration = report.duration
        time.sleep(0.01)
        assert 0 <= report.duration == duration
        running = Report()
        before = running.duration
        time.sleep(0.01)
        assert running.duration > before  # the clock runs until ``finish``
        assert report.started_at.tzinfo is datetime.UTC
        assert all(r.elapsed >= 0 for r in report.results)

    def test_str_table(self) -> None:
        """``str(report)`` is a table of counts by message and outcome, then the failures."""
        lines = str(run()).splitlines()
        assert lines[:9] == [
            "message                succeeded  failed  skipped  not implemented",
            "---------------------  ---------  ------  -------  ---------------",
            "new_students                   1       1        1                0",
            "update_students_grade          1       0        0                0",
            "add_students_tags              0       0        0                2",
            "old_staff                      0       0        0                1",
            "---------------------  ---------  ------  -------  ---------------",
            "total                          2       1        1                3",
            lines[8],
        ]
        assert lines[8].startswith("7 actions in ") and lines[8].endswith("s")
        assert lines[9:] == ["FAILED new_students '2': ValueError: bad 2"]

    def test_str_empty(self) -> None:
        """An empty report still prints a table."""
        assert str(Report()).splitlines()[-1].startswith("0 actions in")

    def test_repr(self) -> None:
        """The repr summarises the totals."""
        assert repr(run()).startswith(
            "<Report 7 actions (failed=1, not implemented=3, skipped=1, succeeded=2) in "
        )

    def test_to_json(self) -> None:
        """``to_json`` parses back to counts, totals, failures and timing."""
        report = run()
        data = json.loads(report.to_json())
        assert data["ok"] is False
        assert data["totals"] == {
            "succeeded": 2,
            "failed": 1,
            "skipped": 1,
            "not implemented": 3,
        }
        assert data["counts"]["add_students_tags"] == {"not implemented": 2}
        assert data["failures"] == [
            {
                "idnumber": "2",
                "message": "new_students",
                "subbranch": "students",
                "kind": "new",
                "outcome": "failed",
                "error": "ValueError: bad 2",
                "attempts": 1,
                "elapsed": data["failures"][0]["elapsed"],
            }
        ]
        assert data["duration"] >= 0
        assert datetime.datetime.fromisoformat(data["started_at"]) == report.started_at
        assert json.loads(report.to_json(indent=None)) == data
        assert "\n" not in report.to_json(indent=None)

    def test_result_to_dict(self) -> None:
        """A result's dict carries the action's set fields, JSON-friendly."""
        action = Action(idnumber="4", message="add_students_tags", attribute="tags", value="a")
        result = Result(action, Outcome.SKIPPED, reason="later")
        assert result.to_dict() == {
            "idnumber": "4",
            "message": "add_students_tags",
            "subbranch": "students",
            "kind": "add",
            "attribute": "tags",
            "value": "a",
            "outcome": "skipped",
            "reason": "later",
            "attempts": 1,
            "elapsed": 0.0,
        }

    def test_result_frozen(self) -> None:
        """Results are immutable."""
        result = Result(Action(idnumber="1", message="new_x"), Outcome.SUCCEEDED)
        with pytest.raises(AttributeError):
            result.outcome = Outcome.FAILED  # type: ignore[misc]

    def test_outcomes_are_strings(self) -> None:
        """Outcomes compare equal to their names as printed."""
        assert Outcome.NOT_IMPLEMENTED == "not implemented"
        assert [str(o) for o in Outcome] == [
            "succeeded",
            "failed",
            "skipped",
            "not implemented",
            "planned",
        ]


class TestRecordBatch:
    def test_compact_and_complete(self) -> None:
        """A batch that ended one way is one entry, yet every view of the report sees it all."""
        report = Report()
        actions = [Action(str(n), "new_students") for n in range(1000)]
        report.record_batch(actions, Outcome.SUCCEEDED, attempts=2, elapsed=0.5)
        failed = Action("x", "new_students")
        report.record_batch([failed], Outcome.FAILED, error=ValueError("bad row"))
        assert len(report) == 1001
        assert report.counts == {
            "new_students": Counter({Outcome.SUCCEEDED: 1000, Outcome.FAILED: 1})
        }
        assert report.totals[Outcome.SUCCEEDED] == 1000
        assert [r.action for r in report.failures] == [failed]
        assert [r.action for r in report.results][:3] == actions[:3]
        assert {r.attempts for r in report.results[:1000]} == {2}
        assert not report.ok

    def test_mixed_messages(self) -> None:
        """Actions of several messages are counted under each message."""
        report = Report()
        report.record_batch(
            [Action("1", "new_students"), Action("2", "new_staff")], Outcome.SKIPPED, reason="why"
        )
        assert report.counts == {
            "new_students": Counter({Outcome.SKIPPED: 1}),
            "new_staff": Counter({Outcome.SKIPPED: 1}),
        }
        assert {r.reason for r in report.results} == {"why"}

    def test_empty(self) -> None:
        """An empty batch records nothing."""
        report = Report()
        report.record_batch([], Outcome.SUCCEEDED)
        assert len(report) == 0 and report.ok
