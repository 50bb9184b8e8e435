"""CSVTemplate then CSVReader: every value written reads back as the same value, or is refused."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synctree import Outcome, Report, SyncTree
from synctree.aio import CSVReader, CSVTemplate

#: Pieces of text that CSV writing, CSV reading or formula neutralising treat specially.
PIECES = [
    *"\r\n\"',;|\t =+-@:5.eE\x00\x0b\x0c\x1c\x85\u2028\ufeff",
    "\r\n",
    "''=",
    "-5",
    "ab",
]
PIECE = st.sampled_from(PIECES) | st.characters(codec="utf-8")
TEXT = st.lists(PIECE, max_size=8).map("".join)
KEY = st.lists(PIECE, min_size=1, max_size=4).map("".join)
ENDINGS = ["\r\n", "\n", "\r"]
EXISTING = {"e1": "x", "e2": "y"}  # rows of the file before the run


def existing_file(path: Path, delimiter: str, ending: str) -> bytes:
    """A destination file with a header and two plain rows, in the given line ending."""
    lines = [delimiter.join(["idnumber", "first", "note"])]
    lines += [delimiter.join([key, value, value]) for key, value in EXISTING.items()]
    data = ending.join(lines).encode() + ending.encode()
    path.write_bytes(data)
    return data


def run(template: CSVTemplate, tree: SyncTree, **options: Any) -> Report:
    async def go() -> Report:
        report: Report = await (tree.source > tree.destination).run(
            template, max_deletes=None, **options
        )
        return report

    return anyio.run(go)


def read(reader: CSVReader) -> dict[str, dict[str, Any]]:
    async def go() -> dict[str, dict[str, Any]]:
        return {row.pop("idnumber"): row async for row in reader}

    return anyio.run(go)


def outcomes(report: Report) -> dict[str, Outcome]:
    return {result.action.idnumber: result.outcome for result in report.results}


def errors(report: Report) -> dict[str, str]:
    return {failure.action.idnumber: str(failure.error) for failure in report.failures}


def load(tree: SyncTree, dest: Path, **options: Any) -> None:
    """Load the destination branch of ``tree`` from ``dest``."""

    async def go() -> None:
        await tree.load(destination={"students": CSVReader(dest, key="idnumber", **options)})

    anyio.run(go)


class TestText:
    @given(
        rows=st.dictionaries(KEY, st.tuples(TEXT, TEXT), max_size=6),
        delimiter=st.sampled_from([",", ";", "\t", "|"]),
        ending=st.sampled_from(ENDINGS),
        neutralise=st.booleans(),
    )
    def test_any_text_reads_back_or_is_refused(
        self, rows: dict[str, tuple[str, str]], delimiter: str, ending: str, neutralise: bool
    ) -> None:
        """Any text (CR, LF, quotes, delimiter, spaces, formulas, NUL) reads back, or is refused.

        Refused are a NUL anywhere (one error naming subbranch, key and
        attribute) and, when neutralising, a key that would need a quote; a
        refused action leaves its row as it was.
        """
        with tempfile.TemporaryDirectory() as folder:
            dest = Path(folder) / "out.csv"
            existing_file(dest, delimiter, ending)
            tree = SyncTree(["source", "destination"], ["students"])
            for key, (first, note) in rows.items():
                tree.new("source", "students", key, first=first, note=note)
            for key, value in EXISTING.items():
                if key not in rows:  # kept: the same values on both sides
                    tree.new("source", "students", key, first=value, note=value)
            options = {"delimiter": delimiter, "neutralised_formulas": neutralise}
            load(tree, dest, **options)
            template = CSVTemplate(dest, delimiter=delimiter, neutralise_formulas=neutralise)
            report = run(template, tree)
            done, why = outcomes(report), errors(report)

            expected = {key: {"first": v, "note": v} for key, v in EXISTING.items()}
            for key, (first, note) in rows.items():
                if key in EXISTING and first == note == EXISTING[key]:
                    assert key not in done  # no action
                    continue
                has_nul = "\x00" in key + first + note
                formula_key = neutralise and key[:1] in "=+-@\t\r'"
                if done[key] is Outcome.SUCCEEDED:
                    assert not has_nul
                    expected[key] = {"first": first, "note": note}
                else:
                    assert done[key] is Outcome.FAILED
                    assert has_nul or formula_key, why[key]
                    if has_nul and not formula_key:  # else either reason may be given
                        assert "NUL" in why[key] and "students" in why[key], why[key]
                        assert repr(key) in why[key], why[key]
            after = read(CSVReader(dest, key="idnumber", **options))
            assert after == expected
            tree = SyncTree(["source", "destination"], ["students"])
            for key, attrs in expected.items():
                tree.new("source", "students", key, **attrs)
            load(tree, dest, **options)
            assert list(tree.source > tree.destination) == []


UTC_MINUS_5 = dt.timezone(dt.timedelta(hours=-5))
TYPES: dict[str, Any] = {
    "grade": int,
    "score": float,
    "active": bool,
    "born": dt.date,
    "seen": dt.datetime,
    "tags": set,
    "items": list,
}
COLLECTIONS = ("tags", "items")
SEPARATORS = [";", "|", "::", "ab"]


def values(member: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """One object's typed attributes; each scalar may be None."""
    return st.fixed_dictionaries(
        {
            "grade": st.none() | st.integers(),
            "score": st.none() | st.floats(allow_nan=False),  # NaN never equals itself
            "active": st.none() | st.booleans(),
            "born": st.none() | st.dates(),
            "seen": st.none()
            | st.datetimes(timezones=st.none() | st.sampled_from([dt.UTC, UTC_MINUS_5])),
            "tags": st.frozensets(member, max_size=3).map(set),
            "items": st.lists(member, max_size=3, unique=True),  # lists compare as sets
        }
    )


def safe(member: str, separator: str) -> bool:
    """A member that must be written: no separator character, no NUL, no edge spaces."""
    return bool(member) and member.strip() == member and not set(separator + "\x00") & set(member)


def as_sets(attrs: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``attrs`` with the collections as sets (lists compare as sets)."""
    return {**attrs, **{name: set(attrs[name]) for name in COLLECTIONS}}


def model(rows: dict[str, dict[str, Any]], report: Report) -> dict[str, dict[str, Any]]:
    """``rows`` with the changes of the actions ``report`` says succeeded."""
    out = {key: as_sets(attrs) for key, attrs in rows.items()}
    for result in report.results:
        action = result.action
        if result.outcome is not Outcome.SUCCEEDED:
            continue
        if action.kind == "new":
            assert action.source is not None
            out[action.idnumber] = as_sets({name: getattr(action.source, name) for name in TYPES})
        elif action.kind == "update":
            assert action.changes is not None
            out[action.idnumber].update(action.changes)
        elif action.kind == "add":
            out[action.idnumber][action.attribute or ""].add(action.value)
        elif action.kind == "remove":
            out[action.idnumber][action.attribute or ""].discard(action.value)
    return out


class TestTyped:
    @given(
        rows=st.dictionaries(
            st.text("0123456789xyz", min_size=1, max_size=3),
            st.tuples(values(TEXT), values(TEXT)),
            max_size=5,
        ),
        separator=st.sampled_from(SEPARATORS),
        neutralise=st.booleans(),
    )
    def test_typed_values_read_back_or_are_refused(
        self,
        rows: dict[str, tuple[dict[str, Any], dict[str, Any]]],
        separator: str,
        neutralise: bool,
    ) -> None:
        """int, float, bool, date, datetime, None, sets and lists read back as written.

        Created, then changed (updates, adds, removes): after each run the file
        reads back as the actions that succeeded made it, and planning again
        shows nothing left to do for them.  Only collection members that would
        split differently (the separator, edge spaces, empty) or hold a NUL
        are refused.
        """
        with tempfile.TemporaryDirectory() as folder:
            dest = Path(folder) / "out.csv"
            options: dict[str, Any] = {
                "types": TYPES,
                "separator": separator,
                "neutralised_formulas": neutralise,
                "allow_empty": True,
            }
            state: dict[str, dict[str, Any]] = {}
            for phase in (0, 1):
                tree = SyncTree(["source", "destination"], ["students"])
                for key, pair in rows.items():
                    tree.new("source", "students", key, **pair[phase])
                load(tree, dest, missing_ok=True, **options)  # no file until a row is written
                template = CSVTemplate(dest, separator=separator, neutralise_formulas=neutralise)
                report = run(template, tree)
                for result in report.results:
                    action = result.action
                    attrs = rows[action.idnumber][phase]
                    members = [m for name in COLLECTIONS for m in attrs[name]]
                    if all(safe(m, separator) for m in members):
                        assert result.outcome is Outcome.SUCCEEDED, errors(report)
                    elif result.outcome is Outcome.FAILED:
                        message = str(result.error)
                        assert "member" in message or "NUL" in message, message
                        assert "students" in message, message
                state = model(state, report)
                if not state:
                    continue
                after = read(CSVReader(dest, key="idnumber", **options))
                assert {key: as_sets(attrs) for key, attrs in after.items()} == state
                tree = SyncTree(["source", "destination"], ["students"])
                for key, attrs in state.items():
                    tree.new("source", "students", key, **attrs)
                load(tree, dest, **options)
                assert list(tree.source > tree.destination) == []


class TestRefused:
    """Values no CSV file can give back are refused before the file changes."""

    FILE = b"idnumber,first,note\r\n1,,x\r\n2,Bo,y\r\n"

    async def sync(self, dest: Path, tree: SyncTree) -> Report:
        await tree.load(destination={"students": CSVReader(dest, key="idnumber")})
        report: Report = await (tree.source > tree.destination).run(CSVTemplate(dest))
        return report

    @pytest.mark.anyio
    async def test_nul_is_refused_naming_subbranch_key_and_attribute(self, tmp_path: Path) -> None:
        """A NUL in a value, a key or a member fails that action; the file stays readable."""
        dest = tmp_path / "out.csv"
        dest.write_bytes(self.FILE)
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", first="", note="x")
        tree.new("source", "students", "2", first="B\x00o", note="y")  # update
        tree.new("source", "students", "3", first="Cy", note="z\x00")  # new
        tree.new("source", "students", "4\x00", first="Di", note="w")  # new, the key
        report = await self.sync(dest, tree)
        why = errors(report)
        assert set(why) == {"2", "3", "4\x00"}
        for key, where in [
            ("2", "students '2', attribute 'first'"),
            ("3", "students '3', attribute 'note'"),
            ("4\x00", "students '4\\x00', attribute 'idnumber'"),
        ]:
            assert where in why[key] and "NUL" in why[key], why[key]
        assert dest.read_bytes() == self.FILE  # nothing succeeded: not even rewritten

    @pytest.mark.anyio
    async def test_update_that_would_repeat_is_refused(self, tmp_path: Path) -> None:
        """None over '' in a text column writes the same cell: refused, not repeated forever."""
        dest = tmp_path / "out.csv"
        dest.write_bytes(self.FILE)
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", first=None, note="x")
        tree.new("source", "students", "2", first="Bo", note="y")
        report = await self.sync(dest, tree)
        assert list(errors(report)) == ["1"]
        assert "would repeat on every run" in errors(report)["1"]
        assert "students '1', attribute 'first'" in errors(report)["1"]
        assert dest.read_bytes() == self.FILE

    @pytest.mark.anyio
    async def test_column_name_that_would_not_read_back_is_refused(self, tmp_path: Path) -> None:
        """A new file's header names read back stripped: ' x' is refused, not renamed."""
        dest = tmp_path / "out.csv"
        tree = SyncTree(["source", "destination"], ["students"])
        tree.new("source", "students", "1", **{"first": "A", " x": "1"})
        tree.new("source", "students", "2", first="B")
        report = await (tree.source > tree.destination).run(CSVTemplate(dest))
        assert list(errors(report)) == ["1"] and "' x'" in errors(report)["1"]
        assert dest.read_bytes() == b"idnumber,first\r\n2,B\r\n"
