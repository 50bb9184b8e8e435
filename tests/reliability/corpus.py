"""The bad input corpus (``tests/data/bad/``) and how each file goes through the CLI.

Every input is tried in a fresh project folder: a ``students.csv`` export, a CSV
destination (``out.csv``, read back by a CSV reader and written by ``CSVTemplate``) and a
config.  A bad CSV replaces the export; a bad config replaces ``sync.toml``.  Shared by
``test_bad_input.py`` (which asserts) and ``bench/reliability.py`` (which reports).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

from tests.cli_runner import invoke

__all__ = ["CASES", "CORPUS", "Case", "Tried", "big_field_csv", "make_project", "try_case"]

CORPUS = Path(__file__).resolve().parent.parent / "data" / "bad"

CONFIG = """\
[sync]
subbranches = ["students"]

[source.students]
reader = "csv"
path = "{source}"
key = "student_id"
types = {{ grade = "int" }}

[destination.students]
reader = "csv"
path = "out.csv"
key = "idnumber"
types = {{ grade = "int" }}
allow_empty = true

[template]
use = "csv"
path = "out.csv"
"""
GOOD_EXPORT = "student_id,first,grade\n1,Ann,7\n2,Bob,8\n"
DESTINATION = "idnumber,first,grade\n1,Ann,6\n"  # a plan: one update, one create


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    """One input and what must come of it.

    ``expect`` are fragments of the one error message (``{path}`` is the input file,
    ``{config}`` the config); for an input that must load, ``rows`` are the rows the
    destination then holds (``first`` and ``grade`` by key).
    """

    name: str
    what: str
    expect: tuple[str, ...] = ()
    rows: dict[str, tuple[str, int]] | None = None

    @property
    def kind(self) -> str:
        return "config" if self.name.endswith(".toml") else "csv"

    @property
    def loads(self) -> bool:
        return self.rows is not None


GOOD_ROWS = {"1": ("Ann", 7), "2": ("Bob", 8)}

CASES = [
    # -- CSV exports -------------------------------------------------------------------
    Case("ragged_short.csv", "a row with a field missing",
         ("{path}, line 3, field 'grade': expected 3 fields, found 2",)),
    Case("ragged_long.csv", "a row with an extra field (no column to name)",
         ("{path}, line 3: expected 3 fields, found 4 (extra: '9')",)),
    Case("missing_key_column.csv", "no key column",
         ("{path}, line 1, field 'student_id': the key column 'student_id' is missing",)),
    Case("empty_key.csv", "an empty key",
         ("{path}, line 3, field 'student_id': the key is empty",)),
    Case("duplicate_key.csv", "a key twice",
         ("{path}, line 4, field 'student_id': source students '1': duplicate key",)),
    Case("nul_byte.csv", "a NUL byte",
         ("{path}, line 3, field 'first': NUL byte in the file",)),
    Case("invalid_utf8.csv", "invalid UTF-8",
         ("{path}, line 3, field 'first': cannot decode byte(s) e9",)),
    Case("bad_type.csv", "a value its type rejects",
         ("{path}, line 3, field 'grade': cannot convert 'eight' to int",)),
    Case("unclosed_quote.csv", "a quote never closed",
         ("{path}, line 3: the file ends inside a row",)),
    Case("empty.csv", "an empty file (no line to name)",
         ("{path}: the file is empty; an empty export must never look like everyone left",)),
    Case("header_only.csv", "a header and no rows",
         ("{path}, line 1: the file has a header but no rows",)),
    Case("bom.csv", "a UTF-8 byte order mark", rows=GOOD_ROWS),
    Case("crlf.csv", "CRLF line ends", rows=GOOD_ROWS),
    Case("lone_cr.csv", "lone CR line ends", rows=GOOD_ROWS),
    Case("quoted_newline.csv", "line ends inside quoted fields",
         rows={"1": ("Ann\nMarie", 7), "2": ('Bob "B"\r\nSmith', 8)}),
    # -- configs -----------------------------------------------------------------------
    Case("unknown_key.toml", "an unknown key",
         ("{config}, [template], key 'colour': unknown key",)),
    Case("unknown_table.toml", "a misspelt table",
         ("{config}, [destinaton]: unknown table [destinaton]",)),
    Case("wrong_type_run.toml", "a run limit of the wrong type",
         ("{config}, [run], key 'concurrency': 'concurrency' must be an int >= 1, got 'four'",)),
    Case("wrong_type_path.toml", "a path that is a number",
         ("{config}, [source.students], key 'path': must be a path (a string)",)),
    Case("wrong_type_types.toml", "an unknown column type",
         ("{config}, [source.students], key 'types': unknown type 'integer'",)),
    Case("wrong_type_option.toml", "a template option of the wrong type",
         ("{config}, [template]: 'neutralise_formulas' must be a bool, not 'yes'",)),
    Case("missing_env.toml", "a missing environment variable",
         ("{config}, [source.students], key 'path': environment variable "
          "SYNCTREE_TEST_SURELY_UNSET is not set",)),
    Case("bad_toml.toml", "a TOML syntax error",
         ("{config}: not valid TOML: Unclosed array (at line 4, column 1)",)),
    Case("not_a_template.toml", "os:system named as the template",
         ("{config}, [template], key 'use': 'os:system' is not a template class",)),
    Case("not_a_reader.toml", "subprocess:Popen named as a reader",
         ("{config}, [destination.students], key 'reader': 'subprocess:Popen' is not a "
          "reader class",)),
    Case("outside_path.toml", "a path outside the config's folder (allowed, shown)",
         rows=GOOD_ROWS),
]  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Tried:
    """What the CLI did with one input."""

    plan_code: int
    run_code: int
    plan_output: str
    run_output: str
    message: str  # the one error message (whitespace folded), or ""
    destination_unchanged: bool
    rows: dict[str, tuple[str, int]]  # the destination afterwards
    replan_actions: int | None  # actions a second plan shows, for inputs that load
    path: Path
    config: Path


def make_project(folder: Path, *, source: str = "students.csv") -> Path:
    """A project folder: the good export, the destination and the config; returns the config."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "students.csv").write_text(GOOD_EXPORT)
    (folder / "out.csv").write_text(DESTINATION)
    config = folder / "sync.toml"
    config.write_text(CONFIG.format(source=source))
    return config


def big_field_csv(path: Path, size: int = 100_000_000) -> Path:
    """An export whose second row holds one ``size``-character field, written in pieces."""
    with path.open("w", encoding="ascii") as file:
        file.write("student_id,first,grade\n1,")
        piece = "A" * 1_000_000
        for _ in range(size // len(piece)):
            file.write(piece)
        file.write("A" * (size % len(piece)) + ",7\n")
    return path


def fold(text: str) -> str:
    return " ".join(text.split())


def read_destination(folder: Path) -> dict[str, tuple[str, int]]:
    with (folder / "out.csv").open(newline="", encoding="utf-8") as file:
        return {r["idnumber"]: (r["first"], int(r["grade"])) for r in csv.DictReader(file)}


def try_case(
    case: Case, folder: Path, *, backend: str = "asyncio", source: Path | None = None
) -> Tried:
    """Put ``case`` (or the export at ``source``) into a fresh project; plan, then run."""
    if case.kind == "config":
        config = make_project(folder / "project")
        (folder / "outside").mkdir(exist_ok=True)
        (folder / "outside" / "students.csv").write_text(GOOD_EXPORT)
        shutil.copyfile(CORPUS / case.name, config)
        path = config.parent / "students.csv"
    else:
        path = source if source is not None else CORPUS / case.name
        config = make_project(folder / "project", source=str(path))
    project = config.parent
    before = (project / "out.csv").read_bytes()
    plan_code, plan_output = invoke("plan", str(config), "--backend", backend)
    run_code, run_output = invoke("run", str(config), "--backend", backend)
    replan = None
    if run_code == 0:
        code, out = invoke("plan", str(config), "--json")
        replan = len(json.loads(out)["actions"]) if code == 0 else -1
    errors = [line for line in run_output.splitlines() if "error:" in line.lower()]
    return Tried(
        plan_code=plan_code,
        run_code=run_code,
        plan_output=plan_output,
        run_output=run_output,
        message=fold(run_output.split("rror:", 1)[1]) if errors else "",
        destination_unchanged=(project / "out.csv").read_bytes() == before,
        rows=read_destination(project),
        replan_actions=replan,
        path=path,
        config=config,
    )
