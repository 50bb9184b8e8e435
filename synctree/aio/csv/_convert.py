"""Typed columns: how a cell's text becomes a value (``types={'grade': int, ...}``).

Each conversion comes twice: a Python expression for the generated fast path,
which may raise on any value it does not like, and a careful function that is
the authority: it converts, or raises :class:`ValueError` saying why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Conversion", "Converter", "conversion"]

#: What ``types`` maps a column to: a known type, or any callable given the raw text.
Converter = type | Callable[[str], Any]

_STRING_TYPES = (str,)
_COLLECTION_TYPES: tuple[type, ...] = (set, frozenset, list, tuple)
_BOOL_WORDS = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "t": True,
    "f": False,
    "1": True,
    "0": False,
}
#: The words in the spellings files use, for a dict lookup in the fast path.
_FAST_BOOLS: dict[str, bool | None] = {"": None}
for _word, _value in _BOOL_WORDS.items():
    for _variant in (_word, _word.upper(), _word.capitalize()):
        _FAST_BOOLS[_variant] = _value
del _word, _value, _variant


@dataclass(frozen=True, slots=True)
class Conversion:
    """How one typed column is converted.

    ``expr`` is a Python expression (with ``{v}`` for the raw value and ``{f}``
    for ``fast``) used by the generated fast path; it may raise on any value it
    does not like. ``careful`` is the authority: it converts or raises
    :class:`ValueError` with an explanation.  A set- or list-valued column has
    an ``encoding`` instead, ``(kind, separator)``: its cells stay text in the
    rows, which the batches declare (``Batch.encoded``) for the tree to decode.
    """

    expr: str
    fast: Any
    careful: Callable[[str], Any]
    encoding: tuple[type, str] | None = None


def _scalar(kind: Callable[[str], Any], label: str) -> Conversion:
    def careful(value: str) -> Any:
        text = value.strip()
        if not text:
            return None
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"cannot convert {value!r} to {label}") from None

    return Conversion("{f}({v}) if {v} else None", kind, careful)


def _parse_bool(value: str) -> bool | None:
    text = value.strip().lower()
    if not text:
        return None
    try:
        return _BOOL_WORDS[text]
    except KeyError:
        raise ValueError(
            f"cannot convert {value!r} to bool (expected true/false, yes/no, y/n, t/f or 1/0)"
        ) from None


def _custom(func: Callable[[str], Any]) -> Callable[[str], Any]:
    name = getattr(func, "__name__", repr(func))

    def careful(value: str) -> Any:
        try:
            return func(value)
        except Exception as exc:
            raise ValueError(f"{name}({value!r}) failed: {exc}") from exc

    return careful


def conversion(kind: Converter, separator: str) -> Conversion | None:
    """The conversion for a ``types`` entry; None for ``str`` (no conversion)."""
    if kind in _STRING_TYPES:
        return None
    if kind is bool:
        return Conversion("{f}[{v}]", _FAST_BOOLS, _parse_bool)
    if kind is int or kind is float:
        return _scalar(kind, kind.__name__)
    if kind is dt.datetime:
        return _scalar(dt.datetime.fromisoformat, "datetime (ISO 8601)")
    if kind is dt.date:
        return _scalar(dt.date.fromisoformat, "date (ISO 8601, YYYY-MM-DD)")
    if isinstance(kind, type) and kind in _COLLECTION_TYPES:
        return Conversion("{v}", None, str, (kind, separator))
    return Conversion("{f}({v})", kind, _custom(kind))
