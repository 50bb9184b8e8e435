"""What SQLTemplate writes reads back as the diff compares it, or is refused up front.

Property tests over key strings and attribute values, on every SQL backend the
``db`` fixture of ``conftest.py`` gives (SQLite on asyncio and trio, PostgreSQL and
MariaDB on asyncio): a sync either converges (planning again shows nothing,
every row holds its own object's data) or stops with one :class:`RoundTripError`
before anything is written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from synctree import ConfigError, Report, RoundTripError, SyncTree
from synctree.aio import SQLReader, SQLTemplate

from .database import DB

pytestmark = pytest.mark.anyio

#: Characters that catch lossy columns: digits and signs (integers), letters in two
#: cases, spaces, an accent precomposed and combining, and a few case-folding oddities.
TRICKY = ["0", "7", "1", "+", "-", "_", "a", "A", "k", "K", " ", "é", "e", "\u0301"]
TRICKY += ["ß", "s", "S", "\u212a", "\u0667", "Ω"]
KEYS = st.one_of(
    st.text(st.sampled_from(TRICKY), min_size=1, max_size=4),
    st.integers(0, 999).map(str),
    st.integers(0, 99).map(lambda n: f"{n:03d}"),
)
KEY_SETS = st.sets(KEYS, min_size=1, max_size=6)
EXAMPLES = settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])


def tree_of(source: dict[str, dict[str, Any]]) -> SyncTree:
    tree = SyncTree(["source", "destination"], ["students"])
    for key, attributes in source.items():
        tree.new("source", "students", key, **attributes)
    return tree


async def load(db: DB, table: str, source: dict[str, dict[str, Any]], **reader: Any) -> SyncTree:
    tree = tree_of(source)
    options: dict[str, Any] = {"key": "idnumber", "missing_ok": True, **reader}
    await tree.load(destination={"students": SQLReader(db.url, table=table, **options)})
    return tree


async def sync(
    db: DB, table: str, source: dict[str, dict[str, Any]], create: bool = False, **reader: Any
) -> Report:
    tree = await load(db, table, source, **reader)
    template = SQLTemplate(db.url, tables={"students": table}, create_tables=create)
    report: Report = await (tree.source > tree.destination).run(template, force=True)
    return report


async def converged(db: DB, table: str, source: dict[str, dict[str, Any]], **reader: Any) -> None:
    """Planning again shows nothing, and the table holds exactly the source."""
    tree = await load(db, table, source, **reader)
    assert list(tree.source > tree.destination) == []
    read = {leaf.idnumber: leaf.__dict__ for leaf in tree.destination.students}
    assert set(read) == set(source)
    for key, attributes in source.items():
        for name, value in attributes.items():
            assert read[key][name] == value, (key, name)


def named(keys: set[str]) -> dict[str, dict[str, Any]]:
    """Each key's object holds its own key, so one overwriting another shows."""
    return {key: {"name": f"<{key}>"} for key in keys}


def canonical_int(key: str) -> bool:
    """Whether an integer column gives ``key`` back as it is (``'-1'`` yes, ``'007'`` no)."""
    digits = key[1:] if key.startswith("-") else key
    return (
        key.isascii() and digits.isdigit() and str(int(key)) == key and -(2**63) <= int(key) < 2**63
    )


class TestKeys:
    @EXAMPLES
    @given(first=KEY_SETS, second=KEY_SETS)
    @example(first={"k1", "k1 ", "K1"}, second={"k1 ", "e\u0301", "\u00e9"})
    async def test_created_table_keeps_every_key(
        self, db: DB, first: set[str], second: set[str]
    ) -> None:
        """A table synctree creates stores any keys exactly: two syncs, both converge."""
        table = db.name(f"c{len(db.created)}")
        for keys in (first, second):
            report = await sync(db, table, named(keys), create=True)
            assert report.ok, report.failures
            await converged(db, table, named(keys))

    @EXAMPLES
    @given(first=KEY_SETS, second=KEY_SETS)
    @example(first={"7", "8"}, second={"007", "8"})
    @example(first={"0"}, second={"-1"})  # negative integers round-trip
    async def test_integer_key_column(self, db: DB, first: set[str], second: set[str]) -> None:
        """An integer key column takes only canonical integers; anything else is refused."""
        table = db.name(f"i{len(db.created)}")
        await db.create(
            sa.Column("idnumber", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("name", sa.Text),
            table=table,
        )
        held: set[str] = set()
        for keys in (first, second):
            bad = sorted(k for k in keys if not canonical_int(k))
            if bad:
                with pytest.raises(RoundTripError) as caught:
                    await sync(db, table, named(keys))
                assert caught.value.table == table and caught.value.column == "idnumber"
                assert caught.value.example in bad
                assert table in str(caught.value) and repr(caught.value.example) in str(
                    caught.value
                )
                await converged(db, table, named(held))  # nothing was written
            else:
                report = await sync(db, table, named(keys))
                assert report.ok, report.failures
                await converged(db, table, named(keys))
                held = keys

    @EXAMPLES
    @given(first=KEY_SETS, second=KEY_SETS)
    @example(first={"k1"}, second={"K1", "k1 "})
    @example(first={"k1", "K1"}, second={"k1"})
    async def test_lossy_collation(self, db: DB, first: set[str], second: set[str]) -> None:
        """A case-insensitive (and PAD SPACE) key column: refused before any write, or exact."""
        table = db.name(f"n{len(db.created)}")
        await db.create(
            sa.Column("idnumber", _lossy_text(db), primary_key=True),
            sa.Column("name", sa.Text),
            table=table,
        )
        held: set[str] = set()
        for keys in (first, second):
            try:
                report = await sync(db, table, named(keys))
            except RoundTripError as exc:
                assert exc.table == table and exc.column == "idnumber"
                assert exc.example in keys | held
                await converged(db, table, named(held))  # nothing was written
            else:
                assert report.ok, report.failures
                await converged(db, table, named(keys))
                held = keys

    async def test_lossy_collation_examples(self, db: DB) -> None:
        """``'K1'`` beside ``'k1'`` is refused; so is a trailing space where it is ignored."""
        table = db.name("examples")
        await db.create(
            sa.Column("idnumber", _lossy_text(db), primary_key=True),
            sa.Column("name", sa.Text),
            table=table,
        )
        with pytest.raises(RoundTripError, match="'K1'|'k1'"):
            await sync(db, table, named({"k1", "K1"}))
        if db.dialect in ("mysql", "mariadb"):  # PAD SPACE (NOCASE and ICU do not pad)
            with pytest.raises(RoundTripError, match="trailing spaces"):
                await sync(db, table, named({"k2 "}))
        await converged(db, table, {})
        report = await sync(db, table, named({"k1", "k2"}))
        assert report.ok
        await converged(db, table, named({"k1", "k2"}))
        with pytest.raises(RoundTripError):  # a new key against one the table holds
            await sync(db, table, named({"K1", "k2"}))
        await converged(db, table, named({"k1", "k2"}))

    async def test_refused_is_a_config_error(self, db: DB) -> None:
        """RoundTripError is a ConfigError (exit code 2 through the command line)."""
        table = db.name("cfg")
        await db.create(
            sa.Column("idnumber", sa.Integer, primary_key=True, autoincrement=False),
            table=table,
        )
        with pytest.raises(ConfigError, match="'007'"):
            await sync(db, table, {"007": {}})


def _lossy_text(db: DB) -> sa.types.TypeEngine[Any]:
    if db.dialect == "sqlite":
        return sa.String(64, collation="NOCASE")
    if db.dialect == "postgresql":
        return sa.String(64, collation=_pg_collation)
    return sa.String(64, collation="utf8mb4_general_ci")


#: A nondeterministic ICU collation, case-insensitive (made once per database).
_pg_collation = "synctree_test_ci"


@pytest.fixture(autouse=True)
async def _pg_ci(db: DB) -> None:
    if db.dialect == "postgresql":
        await db.run(
            lambda conn: conn.exec_driver_sql(
                f"CREATE COLLATION IF NOT EXISTS {_pg_collation} "
                f"(provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
            )
        )


# -- values: every type synctree creates reads back as written ---------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8)
MEMBER = st.text(st.sampled_from("abcAB é7"), min_size=1, max_size=4).filter(
    lambda m: m == m.strip()
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "text": TEXT,
    "number": st.integers(-(2**63), 2**63 - 1),
    "ratio": st.floats(allow_nan=False, allow_infinity=False),
    "flag": st.booleans(),
    "born": st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
    "seen": st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 12, 31)),
    "classes": st.sets(MEMBER, max_size=3),
    "order": st.lists(MEMBER, max_size=3),
}
ROW = st.fixed_dictionaries({name: st.none() | values for name, values in VALUES.items()})
#: The first row has every type (create_tables chooses a column's type from its first value).
FIRST = st.fixed_dictionaries(VALUES)
READ_TYPES = {"classes": set, "order": list}


class TestValues:
    @EXAMPLES
    @given(first=FIRST, rows=st.lists(ROW, max_size=4), changed=st.lists(ROW, max_size=4))
    async def test_created_types_read_back(
        self,
        db: DB,
        first: dict[str, Any],
        rows: list[dict[str, Any]],
        changed: list[dict[str, Any]],
    ) -> None:
        """str, int, float, bool, date, datetime, set, list and None, in a created table."""
        table = db.name(f"v{len(db.created)}")
        source = {"1": first} | {str(i): row for i, row in enumerate(rows, 2)}
        for attempt in (source, {"1": first} | {str(i): r for i, r in enumerate(changed, 2)}):
            attempt = {k: {n: _empty(n, v) for n, v in a.items()} for k, a in attempt.items()}
            report = await sync(db, table, attempt, create=True, types=READ_TYPES)
            assert report.ok, report.failures
            await converged(db, table, attempt, types=READ_TYPES)

    async def test_double_reads_back_as_float(self, db: DB) -> None:
        """A float in a created DOUBLE column comes back a float, not a Decimal."""
        table = db.name("double")
        source = {"1": {"ratio": 0.1}, "2": {"ratio": 1e300}}
        assert (await sync(db, table, source, create=True)).ok
        tree = await load(db, table, source)
        assert type(tree.destination.students["1"].ratio) is float
        assert list(tree.source > tree.destination) == []

    async def test_member_that_would_not_read_back(self, db: DB) -> None:
        """A set member with spaces around it fails its action instead of flipping."""
        table = db.name("members")
        assert (await sync(db, table, {"1": {"classes": {"math"}}}, create=True)).ok
        report = await sync(db, table, {"1": {"classes": {" art"}}}, types={"classes": set})
        assert not report.ok
        assert "spaces around it" in str(report.failures[0].error)


def _empty(name: str, value: Any) -> Any:
    """NULL reads back as an empty collection for a set or list column."""
    if value is None and name in READ_TYPES:
        return READ_TYPES[name]()
    return value
