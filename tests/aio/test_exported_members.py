"""``synctree.aio``'s public API is exactly what it means to export."""

from __future__ import annotations

import subprocess
import sys
import types

import synctree.aio

PUBLIC = [
    "AsyncRun",
    "AsyncTemplate",
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
    "PageError",
    "PageNumber",
    "Pagination",
    "Pipeline",
    "RateLimiter",
    "Reader",
    "Retry",
    "SCIMError",
    "SCIMReader",
    "SCIMTemplate",
    "SQLReader",
    "SQLTemplate",
    "Verdict",
    "batch",
    "idempotent",
    "load",
]


class TestExportedMembers:
    def test_all_is_the_public_api(self) -> None:
        """``__all__`` is exactly the intended public API."""
        assert synctree.aio.__all__ == PUBLIC

    def test_nothing_else_public(self) -> None:
        """No public name outside ``__all__`` (submodules aside)."""
        names = {
            name
            for name, value in vars(synctree.aio).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
        }
        assert names - {"annotations"} == set(PUBLIC)

    def test_import_has_no_side_effects(self) -> None:
        """Importing synctree.aio configures no logging and starts no thread."""
        code = (
            "import logging, threading, synctree.aio; "
            "assert not logging.getLogger().handlers; "
            "assert threading.active_count() == 1"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
