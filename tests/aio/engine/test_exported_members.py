"""``synctree.aio``'s public API is exactly what it means to export."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

import synctree.aio

PUBLIC = [
    "AsyncRun",
    "AsyncTemplate",
    "Backoff",
    "Batch",
    "BatchReader",
    "CSVReader",
    "CSVTemplate",
    "Cursor",
    "Derived",
    "Event",
    "EventKind",
    "HTTPReader",
    "LinkHeader",
    "ListingError",
    "NextLink",
    "Observer",
    "Offset",
    "OneRoster",
    "OneRosterReader",
    "PackedTable",
    "Packing",
    "PageError",
    "PageNumber",
    "Pagination",
    "Pipeline",
    "RateLimiter",
    "Reader",
    "Retry",
    "RetryPolicy",
    "Row",
    "SCIMError",
    "SCIMReader",
    "SCIMTemplate",
    "SQLReader",
    "SQLTemplate",
    "Sent",
    "Table",
    "TableReader",
    "Verdict",
    "batch",
    "classify",
    "idempotent",
    "load",
    "retrying",
    "rows_of",
]

#: Each connector's own ``__all__``; its names are also importable from ``synctree.aio``.
CONNECTORS = {
    "csv": ["ByteSource", "CSVReader", "CSVTemplate", "open_file"],
    "google": [
        "DEFAULT_QUOTAS",
        "EmailRule",
        "GoogleError",
        "GoogleReader",
        "GoogleRoster",
        "GoogleTemplate",
        "OURule",
        "PasswordFile",
        "PasswordPolicy",
        "Quota",
        "fold",
    ],
    "http": [
        "AuthError",
        "BearerAuth",
        "Cursor",
        "GoogleServiceAccount",
        "HTTPReader",
        "HeaderAuth",
        "LinkHeader",
        "ListingError",
        "NextLink",
        "OAuth1Auth",
        "OAuth2ClientCredentials",
        "Offset",
        "Page",
        "PageError",
        "PageNumber",
        "Pagination",
        "TokenAuth",
        "auth_from_config",
        "classify_error",
        "classify_response",
        "pagination_from_config",
        "parse_retry_after",
    ],
    "oneroster": ["OneRoster", "OneRosterAPI", "OneRosterAPIReader", "OneRosterReader"],
    "scim": [
        "GROUP_MAPPING",
        "SCIMError",
        "SCIMReader",
        "SCIMTemplate",
        "USER_MAPPING",
        "scim_string",
    ],
    "sql": ["SQLReader", "SQLTemplate"],
}

#: What importing each package may not load: a connector's library loads with it only.
NOT_LOADED = {
    "synctree.aio": ["click", "httpx", "rich", "sqlalchemy", "synctree._cli"],
    "synctree.aio.csv": ["click", "httpx", "rich", "sqlalchemy"],
    "synctree.aio.oneroster": ["click", "httpx", "rich", "sqlalchemy"],
    # httpx's own __init__ imports its command line (click, rich) when they are installed.
    # google-auth (and cryptography) load at a Google account's first token, never before.
    "synctree.aio.http": ["sqlalchemy", "synctree._cli", "google.auth", "oauthlib", "cryptography"],
    "synctree.aio.scim": ["sqlalchemy", "synctree._cli"],
    "synctree.aio.google": ["google.auth", "sqlalchemy", "synctree._cli"],
    "synctree.aio.sql": ["click", "httpx", "rich"],
}


def loaded_after(statement: str, modules: list[str]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has loaded after ``statement``."""
    code = f"import sys; {statement}; print(' '.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


class TestExportedMembers:
    def test_all_is_the_public_api(self) -> None:
        """``__all__`` is exactly the intended public API."""
        assert synctree.aio.__all__ == PUBLIC

    def test_nothing_else_public(self) -> None:
        """No public name outside ``__all__`` (submodules aside; connector names load lazily)."""
        names = {
            name
            for name, value in vars(synctree.aio).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
        }
        assert names - {"annotations"} <= set(PUBLIC)

    def test_dir_lists_the_public_api(self) -> None:
        """``dir(synctree.aio)`` shows the lazily exported names too."""
        assert set(PUBLIC) <= set(dir(synctree.aio))

    def test_unknown_name(self) -> None:
        """A name the package does not have is an AttributeError naming it."""
        with pytest.raises(AttributeError, match="'NoSuchReader'"):
            _ = synctree.aio.NoSuchReader  # type: ignore[attr-defined]

    def test_public_classes_show_their_public_module(self) -> None:
        """``repr`` of a public class names the package it is imported from."""
        assert synctree.aio.AsyncTemplate.__module__ == "synctree.aio"
        assert synctree.aio.SQLTemplate.__module__ == "synctree.aio.sql"
        assert synctree.aio.CSVReader.__module__ == "synctree.aio.csv"


class TestConnectors:
    @pytest.mark.parametrize("name", sorted(CONNECTORS))
    def test_all_is_the_public_api(self, name: str) -> None:
        """Each connector's ``__all__`` is its API, sorted, and ``synctree.aio`` re-exports it."""
        module = importlib.import_module(f"synctree.aio.{name}")
        assert module.__all__ == CONNECTORS[name] == sorted(CONNECTORS[name])
        for each in module.__all__:
            if each in PUBLIC:
                assert getattr(synctree.aio, each) is getattr(module, each)


class TestImports:
    @pytest.mark.parametrize("package", sorted(NOT_LOADED))
    def test_heavy_dependencies_load_with_their_connector(self, package: str) -> None:
        """``import synctree.aio`` loads neither SQLAlchemy nor httpx; a connector loads its own."""
        assert loaded_after(f"import {package}", NOT_LOADED[package]) == []

    def test_a_connector_name_loads_its_connector_only(self) -> None:
        """``from synctree.aio import CSVReader`` loads the CSV connector, not SQL or HTTP."""
        assert loaded_after("from synctree.aio import CSVReader", ["httpx", "sqlalchemy"]) == []
        assert loaded_after("from synctree.aio import SQLReader", ["sqlalchemy"]) == ["sqlalchemy"]

    def test_a_plan_loads_no_runner(self, tmp_path: Path) -> None:
        """Loading a tree from CSV and diffing it imports neither the runner nor templates."""
        (tmp_path / "a.csv").write_text("id,name\n1,Ann\n")
        (tmp_path / "b.csv").write_text("id,name\n1,Bob\n")
        a, b = str(tmp_path / "a.csv"), str(tmp_path / "b.csv")
        plan = (
            "import anyio; from synctree import SyncTree; from synctree.aio import CSVReader; "
            "t = SyncTree(['s', 'd'], ['x']); "
            f"anyio.run(lambda: t.load(s={{'x': CSVReader({a!r}, key='id')}}, "
            f"d={{'x': CSVReader({b!r}, key='id')}})); "
            "assert [a.value for a in t.s > t.d] == ['Ann']"
        )
        modules = [
            "synctree._template",
            "synctree._report",
            "synctree.aio._runner",
            "synctree.aio._template",
            "synctree.aio.csv._template",
            "decimal",
        ]
        assert loaded_after(plan, modules) == []
        assert loaded_after("import synctree; synctree.Report", modules) == ["synctree._report"]

    def test_import_has_no_side_effects(self) -> None:
        """Importing synctree.aio configures no logging and starts no thread."""
        code = (
            "import logging, threading, synctree.aio; "
            "assert not logging.getLogger().handlers; "
            "assert threading.active_count() == 1"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
