"""Bad input: one clear error naming file, line and field, exit code 2, and no change anywhere.

One test per file of the corpus in ``tests/data/bad/`` (see ``corpus.py``); the 100 MB
single-field export is generated into ``tmp_path``.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from tests.reliability.corpus import CASES, CORPUS, Case, big_field_csv, fold, try_case


def test_every_corpus_file_has_a_case() -> None:
    """No file in the corpus goes untried, and no case names a missing file."""
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(case.name for case in CASES)


def check_rejected(case: Case, tried_message: str, path: Path, config: Path) -> None:
    for fragment in case.expect:
        assert fold(fragment.format(path=path, config=config)) in tried_message, tried_message


@pytest.mark.parametrize("case", [c for c in CASES if not c.loads], ids=lambda c: c.name)
def test_rejected(case: Case, tmp_path: Path) -> None:
    """plan and run exit 2 with one error naming where; the destination keeps its bytes."""
    # plan on asyncio, run on trio: the messages must not depend on the backend
    tried = try_case(case, tmp_path, backend="trio" if case.kind == "csv" else "asyncio")
    assert (tried.plan_code, tried.run_code) == (2, 2), tried.run_output
    for output in (tried.plan_output, tried.run_output):
        assert output.lower().count("error:") == 1, output
        assert "Traceback" not in output
    check_rejected(case, tried.message, tried.path, tried.config)
    assert fold(tried.plan_output.split("rror:", 1)[1]) == tried.message
    assert tried.destination_unchanged
    assert not (tried.config.parent / "PWNED").exists()  # nothing named was ever called


@pytest.mark.parametrize("case", [c for c in CASES if c.loads], ids=lambda c: c.name)
def test_loaded(case: Case, tmp_path: Path) -> None:
    """BOM, CRLF, lone CR, quoted line ends and an outside path load; a rerun plans nothing."""
    tried = try_case(case, tmp_path)
    assert (tried.plan_code, tried.run_code) == (0, 0), tried.run_output
    assert tried.rows == case.rows
    assert tried.replan_actions == 0


def test_outside_path_is_shown(tmp_path: Path) -> None:
    """A path out of the config's folder via '..' is allowed, and plan and run say so."""
    (case,) = [c for c in CASES if c.name == "outside_path.toml"]
    tried = try_case(case, tmp_path)
    outside = (tmp_path / "outside" / "students.csv").resolve()
    note = f"note: outside the config's folder: [source.students] path = {outside}"
    assert note in fold(tried.plan_output)
    assert note in fold(tried.run_output)


def test_100_mb_field(tmp_path: Path) -> None:
    """A 100 MB field fails fast, in bounded memory, naming file, line and the field limit."""
    path = big_field_csv(tmp_path / "big.csv")
    case = Case(
        "big.csv",
        "a 100 MB field",
        ("{path}, line 2: malformed CSV: field larger than field limit",),
    )
    tracemalloc.start()
    started = time.perf_counter()
    try:
        tried = try_case(case, tmp_path, source=path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    assert (tried.plan_code, tried.run_code) == (2, 2), tried.run_output
    check_rejected(case, tried.message, tried.path, tried.config)
    assert "(131072)" in tried.message  # csv.field_size_limit(), named in the message
    assert tried.destination_unchanged
    assert peak < 32_000_000, f"peak {peak / 1e6:.0f} MB while reading a 100 MB field"
    assert elapsed < 10
