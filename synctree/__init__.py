"""synctree: fast, safe one-way sync from a source of truth into other systems."""

from __future__ import annotations

import typing

from ._action import Action, Changes, Kind, NewActions
from ._diff import Diff
from ._duplicates import DuplicatePolicy
from ._exceptions import (
    ConfigError,
    DuplicateKeyError,
    InputError,
    Interrupted,
    NotAwaitedError,
    ReaderError,
    RoundTripError,
    SafetyLimitExceeded,
    SyncTreeError,
    TemplateImportError,
    UncomparableError,
)
from ._leaf import Leaf, Missing, compared_values, derived_names
from ._tree import Branch, Coverage, Subbranch, SyncTree
from ._util import exports

if typing.TYPE_CHECKING:
    from ._report import Outcome, Report, Result
    from ._template import DefaultTemplate, Skip

# What only a run needs is imported when first used: loading and diffing do not.
__getattr__ = exports.lazy_names(
    globals(),
    {
        "DefaultTemplate": "._template",
        "Outcome": "._report",
        "Report": "._report",
        "Result": "._report",
        "Skip": "._template",
    },
)

__version__ = "0.1.0.dev0"

__all__ = [
    "Action",
    "Branch",
    "Changes",
    "ConfigError",
    "Coverage",
    "DefaultTemplate",
    "Diff",
    "DuplicateKeyError",
    "DuplicatePolicy",
    "InputError",
    "Interrupted",
    "Kind",
    "Leaf",
    "Missing",
    "NewActions",
    "NotAwaitedError",
    "Outcome",
    "ReaderError",
    "Report",
    "Result",
    "RoundTripError",
    "SafetyLimitExceeded",
    "Skip",
    "Subbranch",
    "SyncTree",
    "SyncTreeError",
    "TemplateImportError",
    "UncomparableError",
    "__version__",
    "compared_values",
    "derived_names",
]

exports.show_public_module(globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)
