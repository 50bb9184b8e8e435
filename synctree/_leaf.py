"""Leaves: the objects to sync, and models that derive attributes."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

__all__ = ["Leaf", "view"]


class Leaf:
    """An object to sync, keyed by ``idnumber`` inside its subbranch.

    Attributes are whatever the reader gave.  Subclass it to make a *model*:
    properties derive attributes so that differently shaped sides compare, and
    attributes whose names start with ``_`` are carried but never compared::

        class SISStudent(Leaf):
            @property
            def first(self) -> str:
                return self._lastfirst.split(",")[1].strip()

    Models must not define ``__slots__`` or ``__init__``: leaves are built by
    the tree straight from the reader's row.
    """

    idnumber: str

    if TYPE_CHECKING:
        # Attributes come from the reader's row: let type checkers accept any.
        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, idnumber: str, **attributes: Any) -> None:
        self.__dict__.update(attributes)
        self.idnumber = idnumber

    def __eq__(self, other: object) -> bool:
        """Leaves are equal when they are views of the same object's row."""
        if not isinstance(other, Leaf):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ is other.__dict__

    def __hash__(self) -> int:
        return id(self.__dict__)

    def __repr__(self) -> str:
        shown = " ".join(f"{name}={value!r}" for name, value in _public_items(self))
        name = type(self).__name__
        return f"<{name} {self.idnumber!r} {shown}>" if shown else f"<{name} {self.idnumber!r}>"

    def to_dict(self) -> dict[str, Any]:
        """The compared attributes (stored and derived), in a new dict."""
        out: dict[str, Any] = {}
        for name, value in _public_items(self):
            out[name] = value
        return out


def view(model: type[Leaf], row: dict[str, Any]) -> Leaf:
    """A leaf of class ``model`` over ``row`` (shared, not copied)."""
    leaf = model.__new__(model)
    leaf.__dict__ = row
    return leaf


class Missing:
    """A compared attribute that one side cannot give; ``reason`` says why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return "<missing>"


_derived: dict[type[Leaf], tuple[str, ...]] = {}


def derived_names(cls: type[Leaf]) -> tuple[str, ...]:
    """The public properties a model class defines (its derived attributes)."""
    try:
        return _derived[cls]
    except KeyError:
        _derived[cls] = names = _derived_names(cls)
        return names


def _derived_names(cls: type[Leaf]) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        if klass is Leaf or klass is object:
            continue
        for name, member in vars(klass).items():
            if not name.startswith("_") and isinstance(
                member, property | functools.cached_property
            ):
                names[name] = None
    return tuple(names)


def compared_values(leaf: Leaf) -> dict[str, Any]:
    """The attributes a diff compares, ``name -> value`` or ``Missing``."""
    out = {
        name: value
        for name, value in leaf.__dict__.items()
        if name[0] != "_" and name != "idnumber"
    }
    for name in derived_names(type(leaf)):
        out[name] = attribute_of(leaf, name)
    return out


def attribute_of(leaf: Leaf, name: str) -> Any:
    """``leaf.name``, or ``Missing`` saying why it cannot be had."""
    try:
        return getattr(leaf, name)
    except Exception as exc:  # a model property may fail on this leaf's data
        model = type(leaf).__name__
        if isinstance(exc, AttributeError) and name not in derived_names(type(leaf)):
            return Missing(f"{model} has no attribute {name!r}")
        return Missing(f"{model}.{name} raised {type(exc).__name__}: {exc}")


def _public_items(leaf: Leaf) -> Iterator[tuple[str, Any]]:
    for name, value in compared_values(leaf).items():
        yield name, ("<error>" if isinstance(value, Missing) else value)
