"""Actions: the differences between two branches, one frozen record each."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

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
        return hash(tuple(self._items))

    def __repr__(self) -> str:
        return f"Changes({self._items!r})"


_OPTIONAL = ("attribute", "value", "old_value", "changes", "error")


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Action:
    """One difference: what to do to the destination for one object.

    ``kind`` and ``subbranch`` are derived from ``message`` when not given, so
    ``Action(idnumber='999', message='new_students')`` equals the diff's action.
    ``source`` and ``dest`` are the leaves involved; they are neither compared
    nor shown.  For a grouped ``update_{subbranch}`` call, ``changes`` maps each
    changed attribute to its new value (the old values are on ``dest``).  An
    action of kind ``error`` is a difference the diff cannot judge; ``error``
    says why and it is never dispatched to a template.
    """

    idnumber: str
    message: str
    subbranch: str = ""
    kind: Kind = dataclasses.field(default=None)  # type: ignore[assignment]  # derived
    attribute: str | None = None
    value: Any = None
    old_value: Any = None
    changes: Changes | None = None
    error: str | None = None
    source: Leaf | None = dataclasses.field(default=None, compare=False)
    dest: Leaf | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.subbranch and type(self.kind) is Kind:  # the diff gives both
            return
        prefix, _, rest = self.message.partition("_")
        if self.kind is None:
            object.__setattr__(self, "kind", Kind(prefix))
        elif not isinstance(self.kind, Kind):
            object.__setattr__(self, "kind", Kind(self.kind))
        if not self.subbranch:
            if self.attribute and rest.endswith("_" + self.attribute):
                rest = rest[: -len(self.attribute) - 1]
            object.__setattr__(self, "subbranch", rest)

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
