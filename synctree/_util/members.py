"""The one codec of set and list members in a text cell: ``'art;math'`` <-> ``{'art', 'math'}``.

Destinations without a collection type (a SQL text column, a CSV cell) store a
set or list as its members joined by a separator: set members sorted, list
members in order.  :func:`encode_members` refuses a member that
:func:`decode_members` would not give back, so what is written reads back equal.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = ["decode_members", "encode_members"]


def encode_members(value: Any, separator: str) -> Any:
    """A set or list as one text cell: set members sorted, list members in order.

    Other values pass unchanged.  A member that :func:`decode_members` would not
    give back (not a string, empty, with spaces around it, or holding
    ``separator``) cannot be stored faithfully and raises :class:`ValueError`.
    """
    if isinstance(value, set | frozenset):
        members = sorted(value, key=str)
    elif isinstance(value, list | tuple):
        members = list(value)
    else:
        return value
    for member in members:
        if not isinstance(member, str):
            raise ValueError(
                f"member {member!r} is not a string; it would read back as {str(member)!r}"
            )
        if separator in member:
            raise ValueError(
                f"member {member!r} holds the separator {separator!r}, so it cannot be "
                f"stored in a text column; choose another separator"
            )
        if not member or member.strip() != member:
            raise ValueError(
                f"member {member!r} is empty or has spaces around it, which reading "
                f"the text column back drops"
            )
    return separator.join(members)


def decode_members(value: Any, kind: type[Collection[Any]], separator: str) -> Any:
    """The inverse of :func:`encode_members`: ``None`` and ``''`` give an empty collection."""
    if value is None:
        return kind()
    if not isinstance(value, str):
        raise ValueError(f"expected text holding {separator!r}-separated members, got {value!r}")
    return kind([part for part in map(str.strip, value.split(separator)) if part])  # type: ignore[call-arg]
