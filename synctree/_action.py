"""Actions: the differences between two branches, one frozen record each."""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from ._leaf import derived_names

if TYPE_CHECKING:
    from ._leaf import Leaf
    from ._tree import Subbranch

__all__ = ["Action", "Changes", "Kind", "NewActions"]


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


class _Run:
    """What the views of one run share: the source subbranch, the keys, the actions made."""

    __slots__ = ("keys", "made", "message", "source")

    def __init__(self, source: Subbranch, message: str, keys: list[str]) -> None:
        self.source = source
        self.message = message
        self.keys = keys
        self.made: list[Action | None] | None = None


#: The cells of a run's source rows: ``(names, rows, encodings)``, see :meth:`NewActions.cells`.
Cells = tuple[tuple[str, ...], list[tuple[Any, ...]], dict[str, tuple[type, str]]]


class NewActions(Sequence[Action]):
    """Consecutive ``new_`` actions of one subbranch, each made when it is first read.

    The diff of a big initial sync finds a key per new object; this sequence
    holds those keys, and makes the :class:`Action` (with its source leaf) of
    one only when it is read, once: reading it again gives the same object.  A
    slice is a view sharing them.  The async runner hands it to a batch method
    marked ``@batch(lazy=True)``, which may write the rows in bulk with
    :meth:`cells`, never making an action, a leaf or a row dict per object.
    """

    __slots__ = ("_run", "_start", "_stop")

    def __init__(self, source: Subbranch, message: str, keys: list[str]) -> None:
        self._run = _Run(source, message, keys)
        self._start = 0
        self._stop = len(keys)

    @property
    def message(self) -> str:
        """Every action's message (``new_{subbranch}``)."""
        return self._run.message

    @property
    def subbranch(self) -> str:
        """Every action's subbranch."""
        return str(self._run.source.name)

    @property
    def kind(self) -> Kind:
        """Every action's kind: :attr:`Kind.NEW`."""
        return Kind.NEW

    @property
    def keys(self) -> list[str]:
        """The idnumbers, in order (a new list)."""
        return self._run.keys[self._start : self._stop]

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> Action: ...
    @overload
    def __getitem__(self, index: slice) -> NewActions: ...
    def __getitem__(self, index: int | slice) -> Action | NewActions:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("NewActions takes slices of consecutive actions only")
            return self._run_view(self._start + start, self._start + max(start, stop))
        length = len(self)
        if index < 0:
            index += length
        if not 0 <= index < length:
            raise IndexError("NewActions index out of range")
        return self._action(self._start + index)

    def __iter__(self) -> Iterator[Action]:
        for position in range(self._start, self._stop):
            yield self._action(position)

    def __repr__(self) -> str:
        return f"<NewActions {len(self)} × {self.message}>"

    def _run_view(self, start: int, stop: int) -> NewActions:
        view = NewActions.__new__(NewActions)
        view._run = self._run
        view._start = start
        view._stop = stop
        return view

    def _action(self, position: int) -> Action:
        run = self._run
        made = run.made
        if made is None:
            made = run.made = [None] * len(run.keys)
        action = made[position]
        if action is None:
            key = run.keys[position]
            action = made[position] = make_action(
                key, run.message, run.source.name, Kind.NEW, None, None, None, None, None,
                run.source._leaf(key), None,
            )  # fmt: skip
        return action

    def cells(self) -> Cells | None:
        """The source rows as they are stored, without making leaves: ``(names, rows,
        encodings)``, or None when they are not alike (see below).

        ``rows`` holds a tuple of cells per action, in ``names`` order (``'idnumber'``
        among them, and the ``_``-prefixed attributes the diff does not compare).
        A cell of a column in ``encodings`` (``{'classes': (set, ';')}``) may still
        be its text (or None), to decode as :func:`synctree.aio.Batch` says, or be
        the decoded collection already.  None when the model derives attributes or
        the rows do not all have the same attribute names.
        """
        source = self._run.source
        if derived_names(source.model):
            return None
        keys = self.keys
        source._unpack(keys)  # rows kept as text become tuples, in bulk
        stored = list(map(source._rows.__getitem__, keys))
        encodings = dict(source._encoded)
        columns = source._columns
        forms = set(map(type, stored))
        if columns is not None and forms == {tuple}:
            return columns, stored, encodings  # type: ignore[return-value]  # all tuples
        if columns is not None and tuple in forms:
            # Mostly tuples: the other rows (a leaf of them was made) read by name.
            wanted = set(columns)
            get = operator.itemgetter(*columns)
            rows: list[tuple[Any, ...]] = []
            for row in stored:
                if type(row) is tuple:
                    rows.append(row)
                    continue
                cells = source._cells(row)
                if cells.keys() != wanted:
                    return None
                rows.append(get(cells) if len(columns) > 1 else (cells[columns[0]],))
            return columns, rows, encodings
        dicts = list(map(source._cells, stored))
        if not dicts:
            return (), [], encodings
        names = tuple(dicts[0])
        if any(map(operator.ne, map(dict.keys, dicts), [dicts[0].keys()] * len(dicts))):
            return None
        if len(names) == 1:
            only = names[0]
            return names, [(row[only],) for row in dicts], encodings
        return names, list(map(operator.itemgetter(*names), dicts)), encodings


def joined(first: Sequence[Action], then: Sequence[Action]) -> Sequence[Action]:
    """``first`` followed by ``then``: one :class:`NewActions` when they are adjacent views
    of one run, else a list (``first`` itself, extended, if it is one)."""
    if (
        isinstance(first, NewActions)
        and isinstance(then, NewActions)
        and first._run is then._run
        and first._stop == then._start
    ):
        return first._run_view(first._start, then._stop)
    if isinstance(first, list):
        first += then  # in place: a batch grows an action at a time
        return first
    return [*first, *then]


def message_of(actions: Sequence[Action]) -> str:
    """The message of the first of ``actions`` (without making a lazy one)."""
    return actions.message if isinstance(actions, NewActions) else actions[0].message


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
