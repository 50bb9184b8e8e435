"""The one codec of set and list members in a text cell: ``'art;math'`` <-> ``{'art', 'math'}``.

Destinations without a collection type (a SQL text column, a CSV cell) store a
set or list as its members joined by a separator: set members sorted, list
members in order.  :func:`encode_members` refuses a member that
:func:`decode_members` would not give back, so what is written reads back equal.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection
from typing import Any

__all__ = [
    "Encoding",
    "cells_comparer",
    "decode_members",
    "decode_row",
    "decode_text",
    "encode_members",
    "is_encoded",
    "same_cells",
    "same_values",
]


_STR = {str}


def encode_members(value: Any, separator: str) -> Any:
    """A set or list as one text cell: set members sorted, list members in order.

    Other values pass unchanged.  A member that :func:`decode_members` would not
    give back (not a string, empty, with spaces around it, or holding
    ``separator``) cannot be stored faithfully and raises :class:`ValueError`.
    """
    if type(value) is set or type(value) is frozenset:
        # The common case, checked in C: members all exact strings, none empty,
        # none with spaces around it or holding the separator.
        if value and set(map(type, value)) == _STR and "" not in value:
            members = sorted(value)
            text = separator.join(members)
            if text.count(separator) == len(members) - 1 and all(
                map(str.__eq__, map(str.strip, members), members)
            ):
                return text
        members = sorted(value, key=str)
    elif isinstance(value, set | frozenset):
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


#: How a column's cells are held as text until needed: ``(kind, separator)``.
Encoding = tuple[type, str]

_ABSENT: Any = object()


def decode_text(value: Any, kind: type, separator: str) -> Any:
    """A cell held as its text (or ``None``), as the collection it stands for.

    What ``CSVReader(types={...: set})`` and :func:`decode_members` make of it:
    members stripped, empty ones dropped; ``None`` and ``''`` are empty.
    """
    if value is None:
        return kind()
    if kind is set or kind is frozenset:  # in C: strip every member, then drop ''
        members = set(map(str.strip, value.split(separator)))
        members.discard("")
        return members if kind is set else frozenset(members)
    return kind([part for part in map(str.strip, value.split(separator)) if part])


def is_encoded(value: Any) -> bool:
    """Whether a cell of an encoded column is still its text (not yet decoded)."""
    return value is None or type(value) is str


def decode_row(row: dict[str, Any], encoded: dict[str, Encoding]) -> dict[str, Any]:
    """Decode, in place, the cells of ``row`` that ``encoded`` says are still text."""
    for name, (kind, separator) in encoded.items():
        value = row.get(name, _ABSENT)
        if value is not _ABSENT and (value is None or type(value) is str):
            row[name] = decode_text(value, kind, separator)
    return row


def same_values(
    row: dict[str, Any],
    other: dict[str, Any],
    encoded: dict[str, Encoding],
    other_encoded: dict[str, Encoding],
) -> bool:
    """Whether every value of ``row`` equals ``other``'s, encoded cells compared decoded.

    Nothing is changed and nothing kept: a pair whose cells differ only as text
    (members in another order, spaces around them) is equal.  Two texts under
    the same encoding are equal values when they are equal text; a text under an
    encoding is never equal to a plain string.
    """
    for name, value in row.items():
        theirs = other.get(name, _ABSENT)
        if theirs is _ABSENT:
            return False
        mine_as = encoded.get(name)
        theirs_as = other_encoded.get(name)
        if mine_as == theirs_as and value == theirs:
            continue
        if mine_as is None and theirs_as is None:
            return False
        if mine_as is not None and (value is None or type(value) is str):
            value = decode_text(value, *mine_as)
        if theirs_as is not None and (theirs is None or type(theirs) is str):
            theirs = decode_text(theirs, *theirs_as)
        if type(value) is str or type(theirs) is str or value != theirs:
            return False  # a plain string against a collection: the slow path says why
    return True


def same_cells(
    cells: tuple[Any, ...], other: tuple[Any, ...], encodings: tuple[Encoding | None, ...]
) -> bool:
    """:func:`same_values` for two tuple rows of the same columns, alike encoded.

    ``encodings[i]`` is how both sides encode column ``i`` (``None``: not encoded).
    """
    for value, theirs, encoding in zip(cells, other, encodings, strict=True):
        if value == theirs:
            continue
        if encoding is None:
            return False
        if value is None or type(value) is str:
            value = decode_text(value, *encoding)
        if theirs is None or type(theirs) is str:
            theirs = decode_text(theirs, *encoding)
        if type(value) is str or type(theirs) is str or value != theirs:
            return False
    return True


def cells_comparer(
    encodings: tuple[Encoding | None, ...],
) -> Callable[[tuple[Any, ...], tuple[Any, ...]], bool]:
    """:func:`same_cells` for rows of these ``encodings``, made once for many pairs.

    The plain cells are compared in one go (an ``itemgetter`` each side), then
    the encoded ones as :func:`same_cells` does: a text equal to the other's is
    the same value; otherwise both are decoded and compared.
    """
    width = len(encodings)
    plain = [i for i, encoding in enumerate(encodings) if encoding is None]
    coded = [(i, e) for i, e in enumerate(encodings) if e is not None]
    plain_cells = operator.itemgetter(*plain) if plain else (lambda cells: ())

    def same(cells: tuple[Any, ...], other: tuple[Any, ...]) -> bool:
        if len(cells) != width or len(other) != width:
            raise ValueError("rows of another width than their columns")
        if plain_cells(cells) != plain_cells(other):
            return False
        for i, encoding in coded:
            value, theirs = cells[i], other[i]
            if value == theirs:
                continue
            kind, separator = encoding
            if (
                (kind is set or kind is frozenset)
                and type(value) is str
                and type(theirs) is str
                and set(value.split(separator)) == set(theirs.split(separator))
            ):
                continue  # the same parts, so the same members (in another order)
            if value is None or type(value) is str:
                value = decode_text(value, kind, separator)
            if theirs is None or type(theirs) is str:
                theirs = decode_text(theirs, kind, separator)
            if type(value) is str or type(theirs) is str or value != theirs:
                return False
        return True

    return same
