"""``encode_members``'s fast path (sets of plain strings) gives what the checked path gives."""

from __future__ import annotations

import itertools

import pytest

from synctree import Action, Outcome, Report, Result
from synctree._util.members import encode_members

MEMBERS = ["art", "math", "b", "a;b", "", " art", "art ", "x;;y", ";", "é", "Z", "a b"]


def _checked(value: set[str] | frozenset[str], separator: str) -> str:
    """The checked path: sorted by ``str``, every member checked one by one."""
    members = sorted(value, key=str)
    for member in members:
        if separator in member or not member or member.strip() != member:
            raise ValueError(member)
    return separator.join(members)


@pytest.mark.parametrize("separator", [";", ";;", ",", " ", ""])
def test_fast_path_agrees_with_the_checks(separator: str) -> None:
    for size in range(4):
        for combination in itertools.combinations(MEMBERS, size):
            for kind in (set, frozenset):
                value = kind(combination)
                try:
                    expected = _checked(value, separator)
                except ValueError:
                    with pytest.raises(ValueError):
                        encode_members(value, separator)
                else:
                    assert encode_members(value, separator) == expected


def test_non_strings_and_subclasses_take_the_checked_path() -> None:
    class S(str):
        pass

    assert encode_members({S("b"), "a"}, ";") == "a;b"
    with pytest.raises(ValueError, match="not a string"):
        encode_members({1, "a"}, ";")
    with pytest.raises(ValueError, match="separator"):
        encode_members({"a;b", "c"}, ";")
    with pytest.raises(ValueError, match="spaces"):
        encode_members({" a", "c"}, ";")
    assert encode_members(set(), ";") == ""


def test_subbranch_counts_match_the_results() -> None:
    """The command's summary counts (per subbranch, per outcome) without making Results."""
    report = Report()
    students = [Action(str(i), "new_students") for i in range(5)]
    classes = [Action(str(i), "new_classes") for i in range(2)]
    report.record_batch(students[:3], Outcome.SUCCEEDED)
    report.record(Result(classes[0], Outcome.FAILED, error=ValueError("x")))
    report.record_batch(students[3:], Outcome.SKIPPED, reason="r")
    report.record(Result(classes[1], Outcome.SUCCEEDED))
    expected: dict[str, dict[str, int]] = {}
    for result in report.results:
        counts = expected.setdefault(result.action.subbranch, {})
        counts[str(result.outcome)] = counts.get(str(result.outcome), 0) + 1
    got = report._subbranch_counts()
    assert {k: dict(v) for k, v in got.items()} == expected
    assert list(got) == list(expected)


def test_cells_comparer_agrees_with_same_cells() -> None:
    from synctree._util.members import cells_comparer, same_cells

    sets = (set, ";")
    for encodings in ((None, sets), (sets,), (None, None), (sets, None, sets)):
        same = cells_comparer(encodings)
        values = ["a", "b;a", "a;b", " a ; b", None, "", "a", frozenset({"a"}), {"a", "b"}]
        for left in itertools.product(values, repeat=len(encodings)):
            for right in (left, tuple(reversed(left)), tuple(values[:1] * len(encodings))):
                assert same(left, right) == same_cells(left, right, encodings), (left, right)
        with pytest.raises(ValueError):
            same(("a",) * (len(encodings) + 1), ("a",) * (len(encodings) + 1))
