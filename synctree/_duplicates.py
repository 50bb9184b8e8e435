"""What to do when two rows of one subbranch share a key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeAlias

from ._leaf import Leaf

__all__ = ["DuplicatePolicy", "merge_attributes"]

#: ``'error'`` (the default) raises; ``'skip'`` keeps the first row; ``'replace'``
#: keeps the last; ``'merge'`` accumulates set- and list-valued attributes (one
#: row per enrollment becomes one leaf); a callable ``(leaf, row) -> row | None``
#: returns the attributes to keep (``None`` keeps the leaf as it is).
DuplicatePolicy: TypeAlias = (
    Literal["error", "skip", "replace", "merge"]
    | Callable[[Leaf, dict[str, Any]], dict[str, Any] | None]
)

POLICIES = ("error", "skip", "replace", "merge")


def check_policy(policy: object, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``policy`` is a valid policy."""
    if not (callable(policy) or policy in POLICIES):
        raise ValueError(f"{name!r} must be one of {', '.join(POLICIES)} or a callable")


def merge_attributes(existing: dict[str, Any], row: dict[str, Any]) -> str | None:
    """Merge ``row`` into ``existing`` in place; return a conflict message or None.

    Set- and list-valued attributes accumulate their members; a scalar must be
    equal on both rows (or absent from one).
    """
    for name, value in row.items():
        if name not in existing:
            existing[name] = value
            continue
        old = existing[name]
        if isinstance(old, set) and isinstance(value, set | frozenset | list):
            old.update(value)
        elif isinstance(old, list) and isinstance(value, set | frozenset | list):
            old.extend(member for member in value if member not in old)
        elif old != value:
            return f"conflicting values for {name!r} while merging: {old!r} and {value!r}"
    return None
