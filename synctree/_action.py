"""Actions: the differences between two branches, one frozen record each."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ._leaf import Leaf

__all__ = ["Action", "Changes", "Kind"]


class Kind(enum.StrEnum):
    """What an action does; compares equal to its string value (``'new'`` ...)."""

    NEW = "new"
    OLD = "old"
    UPDATE = "update"
    ADD = "add"
    REMOVE = "remove"
    ERROR = "error"


class Changes(Mapping[str, Any]):
    """The changed attributes of one object, ``attribute -> new value``; immutable, hashable."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = dict(items)

    def __getitem__(self, attribute: str) -> Any:
        return self._items[attribute]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        # Equal mappings in any order hash alike; values may be unhashable (sets).
        return hash(frozenset(self._items))

    def __repr__(self) -> str:
        return f"Changes({self._items!r})"


_FIELDS = (
    "idnumber", "message", "subbranch", "kind", "attribute", "value", "old_value", "changes",
    "error", "source", "dest",
)  # fmt: skip
_OPTIONAL = ("attribute", "value", "old_value", "changes", "error")
#: How many leading fields ``==`` and ``hash`` look at (not the leaves).
_COMPARED = 9
_new_tuple = tuple.__new__


# The storage: a named tuple of the eleven fields, whose C-level field getters
# read as fast as slots.  Action adds the behaviour.
class _Fields(NamedTuple):
    idnumber: str
    message: str
    subbranch: str
    kind: Kind
    attribute: str | None
    value: Any
    old_value: Any
    changes: Changes | None
    error: str | None
    source: Leaf | None
    dest: Leaf | None


class Action(_Fields):
    """One difference: what to do to the destination for one object.

    ``kind`` and ``subbranch`` are derived from ``message`` when not given, so
    ``Action(idnumber='999', message='new_students')`` equals the diff's action.
    ``source`` and ``dest`` are the leaves involved; they are neither compared
    nor shown.  For a grouped ``update_{subbranch}`` call, ``changes`` maps each
    changed attribute to its new value (the old values are on ``dest``).  An
    action of kind ``error`` is a difference the diff cannot judge; ``error``
    says why and it is never dispatched to a template.

    Actions are immutable: assigning a field raises
    :class:`dataclasses.FrozenInstanceError`.  An action is stored as a tuple of
    its eleven fields (a named tuple: a diff makes one per difference, and a
    tuple is the cheapest record Python has), so it is also a sequence; use the
    named fields.
    """

    __slots__ = ()
    __match_args__ = (
        "idnumber", "message", "subbranch", "kind", "attribute", "value", "old_value",
        "changes", "error", "source", "dest",
    )  # fmt: skip

    def __new__(
        cls,
        idnumber: str,
        message: str,
        subbranch: str = "",
        kind: Kind | str | None = None,
        attribute: str | None = None,
        value: Any = None,
        old_value: Any = None,
        changes: Changes | None = None,
        error: str | None = None,
        source: Leaf | None = None,
        dest: Leaf | None = None,
    ) -> Action:
        if not (subbranch and type(kind) is Kind):  # the diff gives both
            prefix, _, rest = message.partition("_")
            kind = Kind(prefix if kind is None else kind)
            if not subbranch:
                if attribute and rest.endswith("_" + attribute):
                    rest = rest[: -len(attribute) - 1]
                subbranch = rest
        return _new_tuple(
            cls,
            (idnumber, message, subbranch, kind, attribute, value, old_value, changes, error,
             source, dest),
        )  # fmt: skip

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self[:_COMPARED] == other[:_COMPARED]

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self[:_COMPARED])

    # An action is a record, not a tuple to sort: ``a < b`` is a TypeError,
    # as it is for a dataclass (sort by a key you choose).  Raising, not
    # returning NotImplemented, keeps tuple's reflected comparison out too.
    def __lt__(self, other: object) -> bool:
        raise _unordered(self, other, "<")

    def __le__(self, other: object) -> bool:
        raise _unordered(self, other, "<=")

    def __gt__(self, other: object) -> bool:
        raise _unordered(self, other, ">")

    def __ge__(self, other: object) -> bool:
        raise _unordered(self, other, ">=")

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, tuple(self)

    def __replace__(self, **changes: Any) -> Action:
        """A copy with some fields changed: ``copy.replace(action, value=8)`` (Python 3.13+)."""
        unknown = changes.keys() - set(_FIELDS)
        if unknown:
            raise TypeError(f"Action has no field {sorted(unknown)[0]!r}")
        fields: dict[str, Any] = dict(zip(_FIELDS, self, strict=True))
        if "message" in changes and "kind" not in changes:
            fields["kind"] = None  # derived again from the new message
            fields["subbranch"] = changes.get("subbranch", "")
        fields.update(changes)
        return self.__class__(**fields)

    def __repr__(self) -> str:
        parts = [f"idnumber={self.idnumber!r}", f"message={self.message!r}"]
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"Action({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """The set fields as a JSON-friendly dict (sets become sorted lists)."""
        out: dict[str, Any] = {
            "idnumber": self.idnumber,
            "message": self.message,
            "subbranch": self.subbranch,
            "kind": str(self.kind),
        }
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = _jsonable(value)
        return out


def _unordered(left: object, right: object, operator: str) -> TypeError:
    return TypeError(
        f"'{operator}' not supported between instances of "
        f"{type(left).__name__!r} and {type(right).__name__!r} (sort actions by a key)"
    )


def make_action(
    idnumber: str,
    message: str,
    subbranch: str,
    kind: Kind,
    attribute: str | None,
    value: Any,
    old_value: Any,
    changes: Changes | None,
    error: str | None,
    source: Leaf | None,
    dest: Leaf | None,
) -> Action:
    """An :class:`Action` from all eleven fields, nothing derived or checked: the diff's way."""
    return _new_tuple(
        Action,
        (idnumber, message, subbranch, kind, attribute, value, old_value, changes, error,
         source, dest),
    )  # fmt: skip


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [_jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
