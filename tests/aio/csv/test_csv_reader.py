"""CSVReader: rows as fresh dicts, exact line numbers, and errors naming file, line and field."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctree import InputError
from synctree.aio.csv import ByteSource, CSVReader

pytestmark = pytest.mark.anyio

STUDENTS = "id,first,last,grade\n1,Ann,Lee,7\n2,Bob,Ray,8\n3,Cleo,Sun,9\n"


def write(folder: Path, content: str | bytes, name: str = "students.csv") -> Path:
    path = folder / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


async def read(reader: CSVReader) -> list[dict[str, Any]]:
    return [row async for row in reader]


async def with_lines(reader: CSVReader) -> list[tuple[int | None, dict[str, Any]]]:
    """(line, row) of every row, as the loader sees them (from the batches)."""
    seen = []
    async for batch in reader.batches():
        assert batch.line_of is not None
        seen.extend((batch.line_of(i), row) for i, row in enumerate(batch.rows))
    return seen


async def read_lines(reader: CSVReader) -> list[tuple[int | None, str]]:
    """(line, idnumber) of every row, as the loader sees them."""
    return [(line, row["idnumber"]) for line, row in await with_lines(reader)]


async def error(reader: CSVReader) -> InputError:
    with pytest.raises(InputError) as info:
        await read(reader)
    return info.value


def assert_names(exc: InputError, path: Path, line: int | None, field: str | None) -> None:
    """The message names the file, the line and the field, and so do the attributes."""
    message = str(exc)
    assert str(path) in message
    assert exc.path == path
    assert exc.line == line
    assert exc.field == field
    if line is not None:
        assert f"line {line}" in message
    if field is not None:
        assert f"field {field!r}" in message


class TestRows:
    async def test_key_becomes_idnumber(self, tmp_path: Path) -> None:
        """The key column becomes 'idnumber' and leaves the attributes."""
        rows = await read(CSVReader(write(tmp_path, STUDENTS), key="id"))
        assert rows == [
            {"idnumber": "1", "first": "Ann", "last": "Lee", "grade": "7"},
            {"idnumber": "2", "first": "Bob", "last": "Ray", "grade": "8"},
            {"idnumber": "3", "first": "Cleo", "last": "Sun", "grade": "9"},
        ]
        assert list(rows[0]) == ["idnumber", "first", "last", "grade"]

    async def test_keep_key(self, tmp_path: Path) -> None:
        """keep_key=True keeps the key column as an attribute too."""
        rows = await read(CSVReader(write(tmp_path, STUDENTS), key="id", keep_key=True))
        assert rows[0] == {"idnumber": "1", "id": "1", "first": "Ann", "last": "Lee", "grade": "7"}

    async def test_key_named_idnumber(self, tmp_path: Path) -> None:
        """A key column already called 'idnumber' just stays the key."""
        path = write(tmp_path, "idnumber,first\n1,Ann\n")
        assert await read(CSVReader(path, key="idnumber", keep_key=True)) == [
            {"idnumber": "1", "first": "Ann"}
        ]

    async def test_rows_are_fresh(self, tmp_path: Path) -> None:
        """Every row is its own dict: the tree may keep and change it."""
        reader = CSVReader(write(tmp_path, STUDENTS), key="id")
        rows = await read(reader)
        assert len({id(row) for row in rows}) == 3
        rows[0]["first"] = "Changed"
        assert rows[1]["first"] == "Bob"
        again = await read(reader)
        assert again[0]["first"] == "Ann"

    async def test_batches_match_rows(self, tmp_path: Path) -> None:
        """batches() yields the same rows as iterating, in Batches."""
        path = write(tmp_path, "id,n\n" + "".join(f"{i},{i * 2}\n" for i in range(5000)))
        reader = CSVReader(path, key="id", chunk_size=4096)
        batches = [batch async for batch in reader.batches()]
        assert len(batches) > 1
        assert [row for batch in batches for row in batch.rows] == await read(reader)

    async def test_path_key_and_lines(self, tmp_path: Path) -> None:
        """A batch names the file and the key column; line_of gives each row's line."""
        path = write(tmp_path, STUDENTS)
        reader = CSVReader(path, key="id")
        assert reader.path == path
        assert await read_lines(reader) == [(2, "1"), (3, "2"), (4, "3")]
        batch = await anext(aiter(reader.batches()))
        assert (batch.path, batch.key) == (str(path), "id")
        assert "students.csv" in repr(reader)

    async def test_key_of_several_columns(self, tmp_path: Path) -> None:
        """A key of several columns is named as their names joined by ' + '."""
        path = write(tmp_path, "school,number,name\nA,1,Ann\n")
        batch = await anext(aiter(CSVReader(path, key=["school", "number"]).batches()))
        assert batch.key == "school + number"
        assert batch.rows == [{"idnumber": "A|1", "name": "Ann"}]

    async def test_line_of_rows_in_a_batch(self, tmp_path: Path) -> None:
        """line_of(i) is the line row i of its batch starts on."""
        path = write(tmp_path, 'id,note\n1,a\n2,"b\nc"\n\n3,d\n')
        reader = CSVReader(path, key="id")
        async for batch in reader.batches():
            assert batch.line_of is not None
            assert [batch.line_of(i) for i in range(len(batch.rows))] == [2, 3, 6]

    async def test_two_passes_at_once(self, tmp_path: Path) -> None:
        """Two passes over one reader, interleaved, each give every row and its line."""
        body = "".join(f"{i},x{i}\n" for i in range(3000))
        reader = CSVReader(write(tmp_path, "id,v\n" + body), key="id", chunk_size=777)
        expected = await with_lines(reader)
        first, second = aiter(reader.batches()), aiter(reader.batches())
        seen: dict[int, list[tuple[int | None, dict[str, Any]]]] = {1: [], 2: []}
        done = set()
        while len(done) < 2:
            for n, batches in ((1, first), (2, second)):
                if n in done:
                    continue
                try:
                    batch = await anext(batches)
                except StopAsyncIteration:
                    done.add(n)
                    continue
                assert batch.line_of is not None
                seen[n].extend((batch.line_of(i), row) for i, row in enumerate(batch.rows))
        assert len(expected) == 3000
        assert seen[1] == seen[2] == expected

    async def test_two_concurrent_loops(self, tmp_path: Path) -> None:
        """Two tasks iterating one reader with ``async for`` at once get the same rows."""
        body = "".join(f"{i},x{i}\n" for i in range(3000))
        reader = CSVReader(write(tmp_path, "id,v\n" + body), key="id", chunk_size=777)
        results: list[list[dict[str, Any]]] = []

        async def one() -> None:
            results.append(await read(reader))

        async with anyio.create_task_group() as group:
            group.start_soon(one)
            group.start_soon(one)
        assert len(results[0]) == 3000
        assert results[0] == results[1]

    async def test_many_rows_across_chunks(self, tmp_path: Path) -> None:
        """Line numbers stay exact over many chunks and batches."""
        body = "".join(f"{i},x{i}\n" for i in range(3000))
        reader = CSVReader(write(tmp_path, "id,v\n" + body), key="id", chunk_size=777)
        seen = await read_lines(reader)
        assert seen == [(i + 2, str(i)) for i in range(3000)]


class TestLineEndings:
    @pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
    @pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 64, 1 << 20])
    async def test_quoted_newlines(self, tmp_path: Path, newline: str, chunk_size: int) -> None:
        """Quoted line endings stay in the value; a row is reported on its first line."""
        text = newline.join(
            ["id,note", '1,"one', 'two"', "2,plain", '3,"a ""quoted""', "", 'end"', "4,last", ""]
        )
        reader = CSVReader(write(tmp_path, text), key="id", chunk_size=chunk_size)
        rows = await with_lines(reader)
        assert rows == [
            (2, {"idnumber": "1", "note": f"one{newline}two"}),
            (4, {"idnumber": "2", "note": "plain"}),
            (5, {"idnumber": "3", "note": f'a "quoted"{newline}{newline}end'}),
            (8, {"idnumber": "4", "note": "last"}),
        ]

    @pytest.mark.parametrize("chunk_size", [1, 2, 4, 1 << 20])
    async def test_mixed_endings_and_no_final_newline(
        self, tmp_path: Path, chunk_size: int
    ) -> None:
        """CRLF, LF and lone CR may mix; the last line needs no line ending."""
        path = write(tmp_path, "id,v\r\n1,a\n2,b\r3,c\r\n4,d")
        reader = CSVReader(path, key="id", chunk_size=chunk_size)
        assert await read_lines(reader) == [(2, "1"), (3, "2"), (4, "3"), (5, "4")]

    @pytest.mark.parametrize("chunk_size", [1, 3, 1 << 20])
    async def test_blank_lines_are_skipped(self, tmp_path: Path, chunk_size: int) -> None:
        """Blank lines (before the header too) are skipped but still counted."""
        path = write(tmp_path, "\n\nid,v\n\n1,a\n\n\n2,b\n\n")
        reader = CSVReader(path, key="id", chunk_size=chunk_size)
        assert await read_lines(reader) == [(5, "1"), (8, "2")]

    @pytest.mark.parametrize("chunk_size", [1, 2, 3, 1 << 20])
    async def test_bom(self, tmp_path: Path, chunk_size: int) -> None:
        """A UTF-8 byte order mark does not end up in the first column's name."""
        path = write(tmp_path, b"\xef\xbb\xbfid,name\n1,Ann\n")
        reader = CSVReader(path, key="id", chunk_size=chunk_size)
        assert await read(reader) == [{"idnumber": "1", "name": "Ann"}]

    @pytest.mark.parametrize("chunk_size", [1, 2, 3, 5])
    async def test_multibyte_split_between_chunks(self, tmp_path: Path, chunk_size: int) -> None:
        """A character whose bytes straddle two chunks is decoded whole."""
        text = "id,name\n1,Zoë\n2,€uro\n3,😀 smile\n4,日本語\n"
        reader = CSVReader(write(tmp_path, text), key="id", chunk_size=chunk_size)
        assert [row["name"] for row in await read(reader)] == ["Zoë", "€uro", "😀 smile", "日本語"]

    @pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20])
    async def test_other_unicode_line_breaks_are_data(
        self, tmp_path: Path, chunk_size: int
    ) -> None:
        """Only CR and LF end lines; U+2028, form feed and the like are data."""
        text = "id,v\n1,a\u2028b\n2,c\x0cd\x1ce\x85f\n"
        reader = CSVReader(write(tmp_path, text), key="id", chunk_size=chunk_size)
        assert await read_lines(reader) == [(2, "1"), (3, "2")]
        assert [row["v"] for row in await read(reader)] == ["a\u2028b", "c\x0cd\x1ce\x85f"]


class TestOptions:
    async def test_delimiter(self, tmp_path: Path) -> None:
        """delimiter sets the field separator."""
        path = write(tmp_path, "id;name\n1;Lee, Ann\n")
        rows = await read(CSVReader(path, key="id", delimiter=";"))
        assert rows == [{"idnumber": "1", "name": "Lee, Ann"}]

    async def test_dialect(self, tmp_path: Path) -> None:
        """dialect takes a csv dialect by name; delimiter overrides it."""
        path = write(tmp_path, "id\tname\n1\tAnn\n")
        assert await read(CSVReader(path, key="id", dialect="excel-tab")) == [
            {"idnumber": "1", "name": "Ann"}
        ]
        path = write(tmp_path, "id|name\n1|Ann\n", "piped.csv")
        rows = await read(CSVReader(path, key="id", dialect="excel-tab", delimiter="|"))
        assert rows == [{"idnumber": "1", "name": "Ann"}]

    async def test_dialect_with_escapechar(self, tmp_path: Path) -> None:
        """An escape character may escape a line ending, even at a chunk boundary."""

        class Escaped(csv.Dialect):
            delimiter = ","
            quotechar = None
            escapechar = "\\"
            quoting = csv.QUOTE_NONE
            lineterminator = "\n"
            skipinitialspace = False
            doublequote = False
            strict = False

        path = write(tmp_path, "id,v\n1,a\\,b\n2,c\\\nd\n3,e\n")
        for chunk_size in (1, 2, 3, 4, 5, 1 << 20):
            reader = CSVReader(path, key="id", dialect=Escaped, chunk_size=chunk_size)
            assert await read_lines(reader) == [(2, "1"), (3, "2"), (5, "3")]
            assert [row["v"] for row in await read(reader)] == ["a,b", "c\nd", "e"]

    async def test_encoding(self, tmp_path: Path) -> None:
        """encoding reads files that are not UTF-8."""
        path = write(tmp_path, "id,name\n1,Zoë\n".encode("latin-1"))
        assert await read(CSVReader(path, key="id", encoding="latin-1")) == [
            {"idnumber": "1", "name": "Zoë"}
        ]

    async def test_header_names_are_stripped(self, tmp_path: Path) -> None:
        """Spaces around header names are ignored; values are kept as they are."""
        path = write(tmp_path, " id , name \n1, Ann \n")
        assert await read(CSVReader(path, key="id")) == [{"idnumber": "1", "name": " Ann "}]

    async def test_unnamed_columns_are_dropped(self, tmp_path: Path) -> None:
        """A column with an empty header (a trailing delimiter) is left out."""
        path = write(tmp_path, "id,name,\n1,Ann,\n")
        assert await read(CSVReader(path, key="id")) == [{"idnumber": "1", "name": "Ann"}]

    async def test_rename_then_columns_then_types(self, tmp_path: Path) -> None:
        """rename applies first; columns and types use the new names."""
        path = write(tmp_path, "Student ID,First Name,Last Name,Grade,Notes\n7,Ann,Lee,9,x\n")
        reader = CSVReader(
            path,
            key="sid",
            rename={"Student ID": "sid", "First Name": "first", "Grade": "grade"},
            columns=["first", "grade"],
            types={"grade": int},
        )
        assert await read(reader) == [{"idnumber": "7", "first": "Ann", "grade": 9}]

    async def test_columns_empty_keeps_only_the_key(self, tmp_path: Path) -> None:
        """columns=[] gives rows with only the key."""
        rows = await read(CSVReader(write(tmp_path, STUDENTS), key="id", columns=[]))
        assert rows == [{"idnumber": "1"}, {"idnumber": "2"}, {"idnumber": "3"}]

    async def test_types(self, tmp_path: Path) -> None:
        """Each type converts its column; an empty cell is None for scalar types."""
        path = write(
            tmp_path,
            "id,n,x,ok,born,seen,tags,order,code,name\n"
            "1,7,1.5,yes,2010-05-01,2024-01-02T03:04:05,a;b; a,b;a,ab,Ann\n"
            "2,,,,,,,,cd,Bob\n"
            "3, 8 ,2e3,FALSE,2011-12-31,2024-01-02,x,;c;,ef,Cleo\n",
        )
        types: dict[str, Any] = {
            "n": int,
            "x": float,
            "ok": bool,
            "born": dt.date,
            "seen": dt.datetime,
            "tags": set,
            "order": list,
            "code": str.upper,
            "name": str,
        }
        rows = await read(CSVReader(path, key="id", types=types))
        assert rows[0] == {
            "idnumber": "1",
            "n": 7,
            "x": 1.5,
            "ok": True,
            "born": dt.date(2010, 5, 1),
            "seen": dt.datetime(2024, 1, 2, 3, 4, 5),
            "tags": {"a", "b"},
            "order": ["b", "a"],
            "code": "AB",
            "name": "Ann",
        }
        assert rows[1] == {
            "idnumber": "2",
            "n": None,
            "x": None,
            "ok": None,
            "born": None,
            "seen": None,
            "tags": set(),
            "order": [],
            "code": "CD",
            "name": "Bob",
        }
        assert rows[2]["n"] == 8
        assert rows[2]["x"] == 2000.0
        assert rows[2]["ok"] is False
        assert rows[2]["order"] == ["c"]

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("true", True),
            ("True", True),
            ("TRUE", True),
            ("yes", True),
            ("Y", True),
            ("t", True),
            ("1", True),
            ("false", False),
            ("No", False),
            ("n", False),
            ("F", False),
            ("0", False),
            (" yEs ", True),
            ("", None),
            ("  ", None),
        ],
    )
    async def test_bool_words(self, tmp_path: Path, text: str, value: bool | None) -> None:
        """bool reads true/false, yes/no, y/n, t/f and 1/0 in any case; empty is None."""
        path = write(tmp_path, f"id,ok\n1,{text}\n")
        rows = await read(CSVReader(path, key="id", types={"ok": bool}))
        assert rows[0]["ok"] is value

    async def test_collections_use_separator(self, tmp_path: Path) -> None:
        """separator splits set, frozenset, list and tuple columns."""
        path = write(tmp_path, 'id,a,b,c,d\n1,"x, y",x,"y,x",z\n')
        types: dict[str, Any] = {"a": set, "b": frozenset, "c": tuple, "d": list}
        rows = await read(CSVReader(path, key="id", types=types, separator=","))
        assert rows == [
            {"idnumber": "1", "a": {"x", "y"}, "b": frozenset({"x"}), "c": ("y", "x"), "d": ["z"]}
        ]

    async def test_typed_key_needs_keep_key(self, tmp_path: Path) -> None:
        """With keep_key, the kept copy of a key may be converted; idnumber stays a str."""
        rows = await read(
            CSVReader(write(tmp_path, STUDENTS), key="id", keep_key=True, types={"id": int})
        )
        assert rows[0]["idnumber"] == "1"
        assert rows[0]["id"] == 1

    async def test_composite_key(self, tmp_path: Path) -> None:
        """Several key columns are joined in the given order with key_separator."""
        path = write(tmp_path, "class,student,role\nc1,s1,learner\nc1,s2,teacher\n")
        reader = CSVReader(path, key=["student", "class"])
        assert await read(reader) == [
            {"idnumber": "s1|c1", "role": "learner"},
            {"idnumber": "s2|c1", "role": "teacher"},
        ]
        reader = CSVReader(path, key=("class", "student"), key_separator="/", keep_key=True)
        assert (await read(reader))[0] == {
            "idnumber": "c1/s1",
            "class": "c1",
            "student": "s1",
            "role": "learner",
        }

    async def test_fieldnames_for_a_file_without_header(self, tmp_path: Path) -> None:
        """fieldnames names the columns; the first line is a row."""
        path = write(tmp_path, "1,Ann,7\n2,Bob,8\n")
        reader = CSVReader(
            path,
            key="id",
            fieldnames=["id", "First", "grade"],
            rename={"First": "first"},
            types={"grade": int},
        )
        assert await read_lines(reader) == [(1, "1"), (2, "2")]
        assert (await read(reader))[0] == {"idnumber": "1", "first": "Ann", "grade": 7}

    async def test_allow_empty(self, tmp_path: Path) -> None:
        """allow_empty=True accepts an empty or header-only file (no rows)."""
        for content in ("", "id,name\n", "\n\n"):
            path = write(tmp_path, content)
            assert await read(CSVReader(path, key="id", allow_empty=True)) == []
        path = write(tmp_path, "")
        assert await read(CSVReader(path, key="id", fieldnames=["id"], allow_empty=True)) == []

    async def test_missing_ok(self, tmp_path: Path) -> None:
        """missing_ok=True reads a missing file as no rows, even without allow_empty."""
        missing = tmp_path / "missing.csv"
        assert await read(CSVReader(missing, key="id", missing_ok=True)) == []
        async with aclosing(CSVReader(missing, key="id", missing_ok=True).batches()) as batches:
            assert [batch async for batch in batches] == []

    async def test_missing_ok_is_only_about_a_missing_file(self, tmp_path: Path) -> None:
        """An existing empty file is still an error without allow_empty; rows still read."""
        exc = await error(CSVReader(write(tmp_path, "id,name\n"), key="id", missing_ok=True))
        assert "no rows" in str(exc)
        path = write(tmp_path, STUDENTS)
        rows = await read(CSVReader(path, key="id", missing_ok=True))
        assert [row["idnumber"] for row in rows] == ["1", "2", "3"]

    async def test_wide_file(self, tmp_path: Path) -> None:
        """Many columns work like few."""
        header = ",".join(["id"] + [f"c{i}" for i in range(300)])
        line = ",".join(["1"] + [str(i) for i in range(300)])
        rows = await read(CSVReader(write(tmp_path, f"{header}\n{line}\n"), key="id"))
        assert rows[0]["c299"] == "299"
        assert len(rows[0]) == 301


class TestNeutralisedFormulas:
    QUOTED = "id,a,b,c\n1,'=1+1,'+cmd,'-x\n2,'@SUM(A1),\"'\tx\",\"'\rx\"\n3,''=z,'''+y,'=A;B\n"
    LOOK_ALIKES = "id,a,b,c,d,e\n1,'hello,'123,'-5,'+3.5e2,'\n2,'a=b,=x, '=x,x'=y,''\n"

    @pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20])
    async def test_quote_taken_off(self, tmp_path: Path, chunk_size: int) -> None:
        """A quote before text CSVTemplate neutralises is taken off, once, whatever the chunk."""
        path = write(tmp_path, self.QUOTED)
        reader = CSVReader(path, key="id", neutralised_formulas=True, chunk_size=chunk_size)
        assert await read(reader) == [
            {"idnumber": "1", "a": "=1+1", "b": "+cmd", "c": "-x"},
            {"idnumber": "2", "a": "@SUM(A1)", "b": "\tx", "c": "\rx"},
            {"idnumber": "3", "a": "'=z", "b": "''+y", "c": "=A;B"},
        ]

    async def test_look_alikes_left_alone(self, tmp_path: Path) -> None:
        """A quote before a number, plain text or nothing stays, as does an unquoted formula."""
        path = write(tmp_path, self.LOOK_ALIKES)
        rows = await read(CSVReader(path, key="id", neutralised_formulas=True))
        assert rows == [
            {"idnumber": "1", "a": "'hello", "b": "'123", "c": "'-5", "d": "'+3.5e2", "e": "'"},
            {"idnumber": "2", "a": "'a=b", "b": "=x", "c": " '=x", "d": "x'=y", "e": "''"},
        ]

    async def test_off_by_default(self, tmp_path: Path) -> None:
        """Without the option every cell reads as written, quote and all."""
        rows = await read(CSVReader(write(tmp_path, self.QUOTED), key="id"))
        assert rows[0] == {"idnumber": "1", "a": "'=1+1", "b": "'+cmd", "c": "'-x"}
        assert rows[2]["a"] == "''=z"

    async def test_keys(self, tmp_path: Path) -> None:
        """Key cells are unquoted too, each part of a composite key on its own."""
        path = write(tmp_path, "id,sub,n\n'=k,'-x,'@n\n'-5,'+y,1\n")
        rows = await read(
            CSVReader(path, key=["id", "sub"], keep_key=True, neutralised_formulas=True)
        )
        assert rows == [
            {"idnumber": "=k|-x", "id": "=k", "sub": "-x", "n": "@n"},
            {"idnumber": "'-5|+y", "id": "'-5", "sub": "+y", "n": "1"},
        ]

    async def test_before_conversion(self, tmp_path: Path) -> None:
        """Types see the cell without the quote, on the fast and the row-by-row path."""
        path = write(tmp_path, "id,tags,code,ok\n1,'=a;b,'-x,yes\n2,'+c,'@y, no \n")
        types: dict[str, Any] = {"tags": set, "code": str.upper, "ok": bool}
        rows = await read(CSVReader(path, key="id", types=types, neutralised_formulas=True))
        assert rows == [
            {"idnumber": "1", "tags": {"=a", "b"}, "code": "-X", "ok": True},
            {"idnumber": "2", "tags": {"+c"}, "code": "@Y", "ok": False},  # " no ": careful
        ]


class TestOpener:
    """CSVReader.from_opener: bytes from a ByteSource instead of a file."""

    class Memory:
        """A ByteSource over bytes in memory, noting whether it was closed."""

        def __init__(self, data: bytes, closed: list[bool]) -> None:
            self._data = data
            self._at = 0
            self._closed = closed

        async def read(self, size: int) -> bytes:
            chunk = self._data[self._at : self._at + size]
            self._at += len(chunk)
            return chunk

        async def aclose(self) -> None:
            self._closed.append(True)

        def close(self) -> None:
            self._closed.append(True)

    async def test_rows_lines_and_path_from_a_source(self) -> None:
        """Each pass opens a fresh source; batches name the given path; the source is closed."""
        closed: list[bool] = []
        opened = []

        async def opener() -> ByteSource:
            opened.append(True)
            return self.Memory(STUDENTS.encode(), closed)

        reader = CSVReader.from_opener(opener, path="mem/students.csv", key="id", chunk_size=5)
        assert await read_lines(reader) == [(2, "1"), (3, "2"), (4, "3")]
        assert [row["first"] for row in await read(reader)] == ["Ann", "Bob", "Cleo"]
        assert len(opened) == len(closed) == 2
        batch = await anext(aiter(reader.batches()))
        assert batch.path == str(Path("mem/students.csv"))

    async def test_errors_name_the_given_path(self) -> None:
        """A bad cell in a source's data names the path given for it."""

        async def opener() -> ByteSource:
            return self.Memory(b"id,grade\n1,x\n", [])

        reader = CSVReader.from_opener(opener, path="mem.csv", key="id", types={"grade": int})
        assert_names(await error(reader), Path("mem.csv"), 2, "grade")

    def test_options_are_checked(self) -> None:
        """The opener must be callable; missing_ok is for files only."""
        with pytest.raises(ValueError, match="'opener'"):
            CSVReader.from_opener(b"id\n", path="x.csv", key="id")  # type: ignore[arg-type]

        async def opener() -> ByteSource:
            raise AssertionError("not opened")

        with pytest.raises(ValueError, match="'missing_ok'"):
            CSVReader.from_opener(opener, path="x.csv", key="id", missing_ok=True)


class TestValidation:
    @pytest.mark.parametrize(
        ("options", "param"),
        [
            ({"key": ""}, "key"),
            ({"key": []}, "key"),
            ({"key": ["a", "a"]}, "key"),
            ({"key": ["a", 1]}, "key"),
            ({"delimiter": ",,"}, "delimiter"),
            ({"delimiter": "\n"}, "delimiter"),
            ({"dialect": "no-such-dialect"}, "dialect"),
            ({"dialect": csv.excel, "delimiter": '"'}, "delimiter"),
            ({"encoding": "no-such-codec"}, "encoding"),
            ({"rename": {"a": ""}}, "rename"),
            ({"rename": {"a": "x", "b": "x"}}, "rename"),
            ({"columns": "first"}, "columns"),
            ({"columns": ["a", "a"]}, "columns"),
            ({"types": {"grade": 5}}, "types"),
            ({"types": {"id": int}}, "types"),
            ({"columns": ["a"], "types": {"b": int}}, "types"),
            ({"separator": ""}, "separator"),
            ({"key_separator": ""}, "key_separator"),
            ({"fieldnames": []}, "fieldnames"),
            ({"fieldnames": "id,name"}, "fieldnames"),
            ({"fieldnames": ["name"]}, "key"),
            ({"fieldnames": ["id"], "columns": ["x"]}, "columns"),
            ({"fieldnames": ["id"], "types": {"x": int}}, "types"),
            ({"fieldnames": ["id"], "rename": {"x": "y"}}, "rename"),
            ({"keep_key": "yes"}, "keep_key"),
            ({"allow_empty": 1}, "allow_empty"),
            ({"missing_ok": 1}, "missing_ok"),
            ({"neutralised_formulas": "yes"}, "neutralised_formulas"),
            ({"chunk_size": 0}, "chunk_size"),
            ({"chunk_size": 1.5}, "chunk_size"),
        ],
    )
    def test_bad_options(self, options: dict[str, Any], param: str) -> None:
        """Each bad option is refused at construction, naming the parameter."""
        options = {"key": "id", **options}
        with pytest.raises(ValueError, match=repr(param)):
            CSVReader("students.csv", **options)

    def test_quote_nonnumeric_is_refused(self) -> None:
        """A dialect that converts numbers itself is refused; types does that."""

        class Numeric(csv.excel):
            quoting = csv.QUOTE_NONNUMERIC

        with pytest.raises(ValueError, match="'dialect'"):
            CSVReader("students.csv", key="id", dialect=Numeric)

    def test_no_io_at_construction(self, tmp_path: Path) -> None:
        """A reader of a file that does not exist can be made; reading it fails."""
        CSVReader(tmp_path / "missing.csv", key="id")


class TestErrors:
    async def test_file_not_found(self, tmp_path: Path) -> None:
        """A missing file says so."""
        path = tmp_path / "missing.csv"
        exc = await error(CSVReader(path, key="id"))
        assert_names(exc, path, None, None)
        assert "file not found" in str(exc)
        exc = await error(CSVReader(path, key="id", missing_ok=False, allow_empty=True))
        assert "file not found" in str(exc)

    async def test_directory(self, tmp_path: Path) -> None:
        """A directory is not a CSV file."""
        exc = await error(CSVReader(tmp_path, key="id"))
        assert "directory" in str(exc)

    @pytest.mark.parametrize("content", ["", "\n\r\n"])
    async def test_empty_file(self, tmp_path: Path, content: str) -> None:
        """An empty file is an error: it must never look like everyone left."""
        path = write(tmp_path, content)
        exc = await error(CSVReader(path, key="id"))
        assert_names(exc, path, None, None)
        assert "empty" in str(exc)
        assert "allow_empty" in str(exc)
        exc = await error(CSVReader(path, key="id", fieldnames=["id"]))
        assert "empty" in str(exc) or "no rows" in str(exc)

    async def test_header_only(self, tmp_path: Path) -> None:
        """A header without rows is an error too, naming the header's line."""
        path = write(tmp_path, "\nid,name\n\n")
        exc = await error(CSVReader(path, key="id"))
        assert_names(exc, path, 2, None)
        assert "no rows" in str(exc)

    @pytest.mark.parametrize("chunk_size", [1, 5, 1 << 20])
    async def test_too_many_fields(self, tmp_path: Path, chunk_size: int) -> None:
        """A row with too many fields names its line and the extra values."""
        path = write(tmp_path, 'id,name\n1,Ann\n2,"B\nob",x,y\n')
        exc = await error(CSVReader(path, key="id", chunk_size=chunk_size))
        assert_names(exc, path, 3, None)
        assert "expected 2 fields, found 4" in str(exc)
        assert "'x'" in str(exc)

    @pytest.mark.parametrize("chunk_size", [1, 5, 1 << 20])
    async def test_too_few_fields(self, tmp_path: Path, chunk_size: int) -> None:
        """A row with too few fields names its line and the first missing column."""
        path = write(tmp_path, "id,first,last\n1,Ann,Lee\n2,Bob\n3,Cleo,Sun\n")
        exc = await error(CSVReader(path, key="id", chunk_size=chunk_size))
        assert_names(exc, path, 3, "last")
        assert "expected 3 fields, found 2" in str(exc)

    async def test_missing_key_column(self, tmp_path: Path) -> None:
        """A header without the key column names the key and shows the header."""
        path = write(tmp_path, "\nstudent,name\n1,Ann\n")
        exc = await error(CSVReader(path, key="id"))
        assert_names(exc, path, 2, "id")
        assert "key column 'id' is missing" in str(exc)
        assert "'student', 'name'" in str(exc)

    async def test_missing_composite_key_column(self, tmp_path: Path) -> None:
        """Each part of a composite key must be in the header."""
        path = write(tmp_path, "class,name\n1,Ann\n")
        exc = await error(CSVReader(path, key=["class", "student"]))
        assert_names(exc, path, 1, "student")

    @pytest.mark.parametrize(
        ("options", "field", "named"),
        [
            ({"rename": {"First Name": "first"}}, "First Name", "rename"),
            ({"columns": ["first", "email"]}, "email", "'columns'"),
            ({"types": {"grade": int}}, "grade", "'types'"),
            ({"rename": {"first": "given"}, "columns": ["first"]}, "first", "'columns'"),
        ],
    )
    async def test_missing_configured_column(
        self, tmp_path: Path, options: dict[str, Any], field: str, named: str
    ) -> None:
        """A column named in rename, columns or types must be in the header."""
        path = write(tmp_path, "id,first\n1,Ann\n")
        exc = await error(CSVReader(path, key="id", **options))
        assert_names(exc, path, 1, field)
        assert named in str(exc)

    async def test_duplicate_column(self, tmp_path: Path) -> None:
        """Two kept columns with one name are an error (rows would lose one)."""
        path = write(tmp_path, "id,name,Name\n1,Ann,Lee\n")
        exc = await error(CSVReader(path, key="id", rename={"Name": "name"}))
        assert_names(exc, path, 1, "Name")
        assert "twice" in str(exc)
        assert await read(CSVReader(path, key="id", columns=["Name"]))  # not kept: fine

    async def test_idnumber_column_clash(self, tmp_path: Path) -> None:
        """A non-key column called idnumber would clash with the key."""
        path = write(tmp_path, "id,idnumber\n1,2\n")
        exc = await error(CSVReader(path, key="id"))
        assert_names(exc, path, 1, "idnumber")

    @pytest.mark.parametrize("chunk_size", [1, 1 << 20])
    async def test_empty_key(self, tmp_path: Path, chunk_size: int) -> None:
        """An empty key names its line and the key column."""
        path = write(tmp_path, "name,id\nAnn,1\nBob,\n")
        exc = await error(CSVReader(path, key="id", chunk_size=chunk_size))
        assert_names(exc, path, 3, "id")
        assert "key is empty" in str(exc)

    async def test_empty_part_of_composite_key(self, tmp_path: Path) -> None:
        """Every part of a composite key must be present."""
        path = write(tmp_path, "class,student\nc1,s1\n,s2\n")
        exc = await error(CSVReader(path, key=["student", "class"]))
        assert_names(exc, path, 3, "class")

    @pytest.mark.parametrize("chunk_size", [1, 2, 3, 1 << 20])
    async def test_undecodable_byte(self, tmp_path: Path, chunk_size: int) -> None:
        """A byte that is not valid in the encoding names its line and column."""
        path = write(tmp_path, b'id,first,last\n1,Ann,Lee\n2,"B\nob",L\xe9e\n')
        exc = await error(CSVReader(path, key="id", chunk_size=chunk_size))
        assert_names(exc, path, 4, "last")
        assert "e9" in str(exc)
        assert "encoding" in str(exc)

    async def test_truncated_character_at_end(self, tmp_path: Path) -> None:
        """A file that ends in the middle of a UTF-8 character is an error."""
        path = write(tmp_path, b"id,name\n1,Zo\xc3")
        exc = await error(CSVReader(path, key="id"))
        assert_names(exc, path, 2, "name")

    async def test_undecodable_header(self, tmp_path: Path) -> None:
        """A bad byte in the header names line 1 (there is no field name yet)."""
        path = write(tmp_path, b"id,n\xffame\n1,Ann\n")
        exc = await error(CSVReader(path, key="id"))
        assert_names(exc, path, 1, None)

    @pytest.mark.parametrize("chunk_size", [1, 4, 1 << 20])
    async def test_nul_byte(self, tmp_path: Path, chunk_size: int) -> None:
        """A NUL byte (a binary file, UTF-16) names its line and column."""
        path = write(tmp_path, b"id,first,last\n1,Ann,Lee\n2,Bob,R\x00ay\n")
        exc = await error(CSVReader(path, key="id", chunk_size=chunk_size))
        assert_names(exc, path, 3, "last")
        assert "NUL" in str(exc)

    async def test_utf16_file(self, tmp_path: Path) -> None:
        """A UTF-16 file read as UTF-8 fails clearly rather than giving garbage."""
        path = write(tmp_path, "id,name\n1,Ann\n".encode("utf-16"))
        await error(CSVReader(path, key="id"))
        rows = await read(CSVReader(path, key="id", encoding="utf-16"))
        assert rows == [{"idnumber": "1", "name": "Ann"}]

    @pytest.mark.parametrize("chunk_size", [1, 1 << 20])
    async def test_bad_value_for_type(self, tmp_path: Path, chunk_size: int) -> None:
        """A value its type refuses names the line, the column and the value."""
        path = write(tmp_path, "id,Grade\n1,7\n2,seven\n")
        reader = CSVReader(
            path, key="id", rename={"Grade": "grade"}, types={"grade": int}, chunk_size=chunk_size
        )
        exc = await error(reader)
        assert_names(exc, path, 3, "Grade")
        assert "'seven'" in str(exc)
        assert "int" in str(exc)

    @pytest.mark.parametrize(
        ("kind", "value"),
        [(float, "1,5"), (bool, "maybe"), (dt.date, "01/02/2024"), (dt.datetime, "noon")],
    )
    async def test_bad_values(self, tmp_path: Path, kind: type, value: str) -> None:
        """Every scalar type explains what it could not convert."""
        path = write(tmp_path, f'id,v\n1,"{value}"\n')
        exc = await error(CSVReader(path, key="id", types={"v": kind}))
        assert_names(exc, path, 2, "v")
        assert repr(value) in str(exc)

    async def test_custom_converter_failure(self, tmp_path: Path) -> None:
        """A callable that raises is reported with its name and message."""

        def room(value: str) -> int:
            if not value.startswith("R"):
                raise ValueError("rooms start with R")
            return int(value[1:])

        path = write(tmp_path, "id,room\n1,R12\n2,12\n")
        exc = await error(CSVReader(path, key="id", types={"room": room}))
        assert_names(exc, path, 3, "room")
        assert "room('12')" in str(exc)
        assert "rooms start with R" in str(exc)

    @pytest.mark.parametrize("chunk_size", [1, 3, 1 << 20])
    async def test_unterminated_quote(self, tmp_path: Path, chunk_size: int) -> None:
        """A quote never closed names the line the row starts on."""
        path = write(tmp_path, 'id,note\n1,ok\n2,"open\n3,x\n')
        exc = await error(CSVReader(path, key="id", chunk_size=chunk_size))
        assert_names(exc, path, 3, None)
        assert "quote" in str(exc)

    async def test_strict_dialect_error(self, tmp_path: Path) -> None:
        """A csv module error (strict dialect) names the row's line."""

        class Strict(csv.excel):
            strict = True

        path = write(tmp_path, 'id,note\n1,ok\n2,"a"b\n')
        exc = await error(CSVReader(path, key="id", dialect=Strict))
        assert_names(exc, path, 3, None)
        assert "malformed CSV" in str(exc)

    async def test_error_after_rows_were_yielded(self, tmp_path: Path) -> None:
        """Good rows (those before the bad one's batch) come first; then the error stops it."""
        body = "".join(f"{i},x\n" for i in range(3000))
        path = write(tmp_path, f"id,v\n{body}oops\n")
        reader = CSVReader(path, key="id", chunk_size=1000)
        seen = []
        with pytest.raises(InputError) as info:
            async for row in reader:
                seen.append(row["idnumber"])
        assert 2000 < len(seen) < 3000
        assert seen == [str(i) for i in range(len(seen))]
        assert_names(info.value, path, 3002, "v")


class TestStopping:
    async def test_break_early(self, tmp_path: Path) -> None:
        """Stopping after a few rows closes the file (no ResourceWarning)."""
        body = "".join(f"{i},x\n" for i in range(5000))
        reader = CSVReader(write(tmp_path, f"id,v\n{body}"), key="id", chunk_size=512)
        async for row in reader:
            if row["idnumber"] == "3":
                break
        async with aclosing(reader.batches()) as batches:
            async for _batch in batches:
                break
        assert len(await read(reader)) == 5000

    async def test_cancelled_while_reading(self, tmp_path: Path) -> None:
        """A cancelled load stops the reader cleanly; the reader can be read again."""
        body = "".join(f"{i},x\n" for i in range(20000))
        reader = CSVReader(write(tmp_path, f"id,v\n{body}"), key="id", chunk_size=256)
        seen = 0
        with anyio.move_on_after(0.05) as scope:
            async for _row in reader:
                seen += 1
                await anyio.sleep(0.001)
        assert scope.cancelled_caught
        assert 0 < seen < 20000
        assert len(await read(reader)) == 20000


def expected_rows(table: list[list[str]]) -> list[dict[str, str]]:
    header = table[0]
    return [
        {"idnumber": row[0], **dict(zip(header[1:], row[1:], strict=True))} for row in table[1:]
    ]


def quote(value: str, always: bool) -> str:
    """RFC 4180 quoting (Python 3.11's csv.writer leaves a lone CR unquoted)."""
    if always or any(char in value for char in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


cell = st.text(alphabet=st.sampled_from('ab,"\r\n é€😀;'), max_size=6)


@st.composite
def tables(draw: st.DrawFn) -> list[list[str]]:
    width = draw(st.integers(1, 4))
    header = ["id"] + [f"c{i}" for i in range(1, width)]
    count = draw(st.integers(1, 12))
    rows = [[f"k{n}"] + [draw(cell) for _ in range(1, width)] for n in range(count)]
    return [header, *rows]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=tables(),
    terminator=st.sampled_from(["\n", "\r\n", "\r"]),
    quote_all=st.booleans(),
    blank_lines=st.lists(st.integers(0, 2), min_size=13, max_size=13),
    chunk_size=st.integers(1, 40),
    bom=st.booleans(),
)
async def test_round_trip(
    table: list[list[str]],
    terminator: str,
    quote_all: bool,
    blank_lines: list[int],
    chunk_size: int,
    bom: bool,
) -> None:
    """Any RFC 4180 file reads back as written, with exact lines, whatever the chunk size."""
    text, starts, line = "", [], 1
    for row, blanks in zip(table, blank_lines, strict=False):
        text += terminator * blanks
        line += blanks
        starts.append(line)
        record = ",".join(quote(value, quote_all) for value in row) + terminator
        text += record
        line += record.count("\n") + record.count("\r") - record.count("\r\n")
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), data)
        reader = CSVReader(path, key="id", chunk_size=chunk_size)
        seen = await with_lines(reader)
        assert seen == list(zip(starts[1:], expected_rows(table), strict=True))
