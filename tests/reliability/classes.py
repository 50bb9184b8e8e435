"""The classes of defect the reliability work closed, each with the tests that prove it.

``bench/reliability.py`` writes them into ``docs/reliability.md``;
``test_classes.py`` checks that every test named here exists, so the page stays true.
"""

from __future__ import annotations

from typing import NamedTuple


class DefectClass(NamedTuple):
    """One class of defect: what went wrong, the rule now, and the tests."""

    name: str
    rule: str
    tests: tuple[str, ...]


CLASSES = (
    DefectClass(
        "A key the destination's key column changes",
        "Before the first write, SQLTemplate checks every key of the run against the key "
        "column's type and collation (integer canonical form, CHAR padding, character set, "
        "PAD SPACE, case- and accent-insensitive or nondeterministic collations, asked of "
        "the server itself); a lossy key stops the run with one RoundTripError naming the "
        "table, column and an example key. Tables synctree creates keep every key exactly.",
        (
            "tests/aio/sql/test_sql_roundtrip.py::TestKeys::test_integer_key_column",
            "tests/aio/sql/test_sql_roundtrip.py::TestKeys::test_refused_is_a_config_error",
            "tests/aio/sql/test_sql_roundtrip.py::TestKeys::test_lossy_collation",
            "tests/aio/sql/test_sql_roundtrip.py::TestKeys::test_lossy_collation_examples",
            "tests/aio/sql/test_sql_roundtrip.py::TestKeys::test_created_table_keeps_every_key",
        ),
    ),
    DefectClass(
        "A value that reads back as another type",
        "Columns synctree creates read back as the type written, on every backend "
        "(MariaDB DOUBLE no longer reads as Decimal; datetimes keep microseconds); "
        "a set or list member that would not read back fails its own action.",
        (
            "tests/aio/sql/test_sql_roundtrip.py::TestValues::test_created_types_read_back",
            "tests/aio/sql/test_sql_roundtrip.py::TestValues::test_double_reads_back_as_float",
            "tests/aio/sql/test_sql_roundtrip.py::TestValues::test_member_that_would_not_read_back",
        ),
    ),
    DefectClass(
        "A CSV cell that does not read back",
        "Whatever CSVTemplate writes reads back through CSVReader as the same value "
        "(line breaks of any kind are quoted); what a CSV file cannot hold (NUL, a member "
        "holding the separator, a column name with edge spaces, an update that would "
        "write the same text) fails that action before the file changes.",
        (
            "tests/aio/csv/test_csv_roundtrip.py::TestText::test_any_text_reads_back_or_is_refused",
            "tests/aio/csv/test_csv_roundtrip.py::TestTyped::test_typed_values_read_back_or_are_refused",
            "tests/aio/csv/test_csv_roundtrip.py::TestRefused::test_nul_is_refused_naming_subbranch_key_and_attribute",
            "tests/aio/csv/test_csv_roundtrip.py::TestRefused::test_update_that_would_repeat_is_refused",
        ),
    ),
    DefectClass(
        "A destination that does not exist yet",
        "CSVReader(missing_ok=True) reads a missing file as empty; a CSV destination "
        "written by the csv template works on its first run; a missing source is still "
        "an error.",
        (
            "tests/aio/csv/test_csv_reader.py::TestOptions::test_missing_ok",
            "tests/cli/test_cli.py::TestCSVDestination",
        ),
    ),
    DefectClass(
        "A short read taken as complete",
        "A listing that ends before (or past) the total it announced (a body field, "
        "X-Total-Count, SCIM totalResults), whose total changes, or that repeats a key on "
        "a later page, fails the load with ListingError: a short read never becomes "
        "removals. A config names the total (pagination = { ..., total = ... }).",
        (
            "tests/aio/http/test_reader.py::TestTotals::test_listing_that_ends_before_its_total_fails",
            "tests/aio/http/test_reader.py::TestTotals::test_short_listing_never_reaches_the_tree",
            "tests/aio/http/test_reader.py::TestTotals::test_shifted_offset_listing_fails_on_a_repeated_key",
            "tests/aio/scim/test_scim.py::TestReader::test_listing_short_of_total_results_fails",
            "tests/cli/test_cli.py::TestHTTPSource::test_whole_listing_then_short_listing",
        ),
    ),
    DefectClass(
        "A throttle loop that never ends",
        "Throttles back off even at Retry-After: 0 (the wait grows within a streak); "
        "an action gives up after max_throttle_time, a run stops after "
        "max_run_throttle_time; the report counts throttles and the time waited. The "
        "HTTP reader follows the same policy.",
        (
            "tests/reliability/test_runaway.py::TestZeroRetryAfter::test_runner_is_bounded",
            "tests/reliability/test_runaway.py::TestZeroRetryAfter::test_reader_is_bounded",
            "tests/reliability/test_runaway.py::TestZeroRetryAfter::test_waits_grow_in_a_streak",
            "tests/reliability/test_runaway.py::TestZeroRetryAfter::test_run_budget_stops_the_run",
        ),
    ),
    DefectClass(
        "A failure of the whole destination, repeated per row",
        "401/403, DDL the database refuses, a missing table, a refused connection (after "
        "its retries) stop the run once with one message; alike per-row errors are printed "
        "once with a count, and long texts are cut short.",
        (
            "tests/reliability/test_runaway.py::TestDestinationFailure::test_401_stops_the_run_once",
            "tests/reliability/test_runaway.py::TestDestinationFailure::test_sqlite_ddl_failure_prints_once",
            "tests/reliability/test_runaway.py::TestGrouping::test_identical_row_errors_grouped",
        ),
    ),
    DefectClass(
        "A config whose code fails to import",
        "A template or reader module that raises at import or does not compile is a "
        "ConfigError naming the config file, table and key (exit 2).",
        ("tests/cli/test_cli.py::TestBadConfig::test_import_string_whose_module_fails",),
    ),
    DefectClass(
        "A secret quoted by someone else's error",
        "Every ${VAR} value is a secret: it, its encoded forms and its fragments between "
        "URL delimiters are masked in every output; a value with stray whitespace or an "
        "unencoded URL character is refused, naming the variable, not the value.",
        ("tests/reliability/test_secrets.py::test_config_secrets_masked_in_every_output",),
    ),
    DefectClass(
        "Two runs of one config at once",
        "synctree run holds a lock next to the config; a second run exits 2 at once, or "
        "waits with --wait SECONDS.",
        (
            "tests/cli/test_cli.py::TestOneRunAtATime::test_a_second_run_exits_2_at_once",
            "tests/cli/test_cli.py::TestOneRunAtATime::test_wait_runs_after_the_first",
        ),
    ),
    DefectClass(
        "The same plan, different outcomes sync and async",
        "One planning semantics (synctree._plan): DefaultTemplate checks max_deletes and "
        "the empty-source rule and skips a failed object's later actions, as the async "
        "runner does.",
        (
            "tests/core/test_plan.py::TestSameOutcomes::test_dependency_skip",
            "tests/core/test_plan.py::TestSameOutcomes::test_max_deletes",
        ),
    ),
)
