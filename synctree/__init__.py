"""synctree: fast, safe one-way sync from a source of truth into other systems."""

from __future__ import annotations

from ._exceptions import (
    ConfigError,
    DuplicateKeyError,
    InputError,
    NotAwaitedError,
    ReaderError,
    SafetyLimitExceeded,
    SyncTreeError,
    TemplateImportError,
    UncomparableError,
)

__all__ = [
    "ConfigError",
    "DuplicateKeyError",
    "InputError",
    "NotAwaitedError",
    "ReaderError",
    "SafetyLimitExceeded",
    "SyncTreeError",
    "TemplateImportError",
    "UncomparableError",
]
