"""The diff: what must change so that the right branch mirrors the left one."""

from __future__ import annotations

import numbers
import sys
from collections.abc import AsyncIterator, Callable, Container, Iterable, Iterator
from itertools import compress, filterfalse
from operator import ne
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._action import Action, Kind, NewActions, make_action
from ._leaf import Leaf, Missing, attribute_of, compared_values, derived_names
from ._util.members import cells_comparer, same_values

if TYPE_CHECKING:
    from ._template import BaseTemplate, TemplateLike
    from ._tree import Branch, Subbranch

__all__ = ["Diff"]

R = TypeVar("R")
NEW, OLD = Kind.NEW, Kind.OLD


class Diff:
    """The lazy differences ``left > right``: iterate, ``async for``, or dispatch with ``|``.

    Actions come subbranch by subbranch: ``new``/``update``/``add`` (and
    ``error``) in the declared order, then ``remove``/``old`` in reverse
    declared order.  Nothing is computed until iteration starts, and every
    iteration computes afresh.
    """

    def __init__(
        self, left: Branch, right: Branch, where: Callable[[Action], bool] | None = None
    ) -> None:
        if left.subbranches != right.subbranches:
            raise ValueError(
                f"cannot diff {left.name!r} and {right.name!r}: their subbranches differ"
            )
        self.left = left
        self.right = right
        self._where = where

    def __repr__(self) -> str:
        return f"<Diff {self.left.name} > {self.right.name}>"

    def __iter__(self) -> Iterator[Action]:
        actions = _diff_branches(self.left, self.right)
        return actions if self._where is None else filter(self._where, actions)

    def filter(self, predicate: Callable[[Action], bool]) -> Diff:
        """The same diff keeping only the actions ``predicate`` accepts.

        ``diff.filter(lambda a: a.idnumber in {"111", "112"})`` syncs just those objects.
        """
        where = self._where
        if where is not None:
            outer = predicate
            predicate = lambda action: where(action) and outer(action)  # noqa: E731
        return Diff(self.left, self.right, predicate)

    def _items(self) -> Iterator[Action | NewActions]:
        """The actions of ``__iter__``, consecutive ``new`` ones of a subbranch given as one
        :class:`NewActions` (its actions made when read): the async runner's way in."""
        if self._where is not None:  # the filter needs every action made
            return iter(self)
        return _diff_branches(self.left, self.right, runs=True)

    async def __aiter__(self) -> AsyncIterator[Action]:
        """``async for action in diff``: the same actions as ``for``.

        The core has no event loop of its own, so this does not yield to one
        between actions; the awaits in the loop's body do (the runner, which
        computes whole plans, checkpoints by itself).
        """
        for action in self:
            yield action

    @overload
    def __or__(self, template: BaseTemplate[R] | type[BaseTemplate[R]]) -> R: ...
    @overload
    def __or__(self, template: str) -> Any: ...
    def __or__(self, template: TemplateLike) -> Any:
        return self.run(template)

    @overload
    def run(self, template: BaseTemplate[R] | type[BaseTemplate[R]], **options: Any) -> R: ...
    @overload
    def run(self, template: str, **options: Any) -> Any: ...
    def run(self, template: TemplateLike, **options: Any) -> Any:
        """Dispatch every action to ``template`` (a class, an instance or an import string).

        A :class:`~synctree.DefaultTemplate` returns the :class:`~synctree.Report`;
        an async template returns an awaitable of it.  ``options`` override the
        template's settings for this run.
        """
        from ._template import resolve_template

        return resolve_template(template)._run(self, **options)


def _diff_branches(left: Branch, right: Branch, runs: bool = False) -> Iterator[Any]:
    # A subbranch that either side does not provide is left alone.
    pairs = [
        (lsub, rsub)
        for lsub, rsub in zip(left, right, strict=True)
        if lsub.coverage != "absent" and rsub.coverage != "absent"
    ]
    removes: dict[str, list[Action]] = {}
    for lsub, rsub in pairs:
        removes[lsub.name] = deferred = list[Action]()
        yield from _forward(lsub, rsub, deferred, runs)
    for lsub, rsub in reversed(pairs):
        yield from removes[lsub.name]
        yield from _olds(lsub, rsub)


def _forward(
    lsub: Subbranch, rsub: Subbranch, removes: list[Action], runs: bool = False
) -> Iterator[Any]:
    """``new``, ``update``, ``add`` and ``error`` actions; ``remove`` ones go to ``removes``.

    ``runs``: consecutive ``new`` actions come as one :class:`NewActions` of their keys.
    """
    name = lsub.name
    new_message = "new_" + name
    left, right = lsub._rows, rsub._rows
    lleaf, rleaf, lcells, rcells = lsub._leaf, rsub._leaf, lsub._cells, rsub._cells
    # Fast path: when neither model derives attributes, a pair of equal rows
    # needs no action; the pairs that are not equal are found in C (comparing
    # dicts, or tuples of the same columns), so that a million equal pairs cost
    # no Python code at all.  Of those, a pair whose right row holds every
    # (attribute, value) of the left row needs none either.  Cells held as text
    # (Subbranch._encoded) may be compared so only when both sides encode that
    # column alike; otherwise, or when that fails, a pair whose values are
    # equal once such cells are decoded needs no action.
    fast = not derived_names(lsub.model) and not derived_names(rsub.model)
    lenc, renc = lsub._encoded, rsub._encoded
    as_text = fast and all(lenc.get(n) == renc.get(n) for n in lenc.keys() | renc.keys())
    decoded = fast and bool(lenc or renc)
    # Rows packed into texts compare as texts only under one packing; else, or
    # when a derived attribute needs the values, both sides become tuples.
    # A side of tuple rows may be packed as the other side's texts (a CSV export
    # against the table it was synced into): then the texts are compared too.
    lpack, rpack = lsub._packing, rsub._packing
    packed = as_text and lpack is not None and lpack == rpack
    ltexts = rtexts = None
    if as_text and not packed:
        if lpack is not None and rpack is None:
            rtexts = rsub._packed_as(lpack)
        elif rpack is not None and lpack is None:
            ltexts = lsub._packed_as(rpack)
    texts = packed or ltexts is not None or rtexts is not None
    if not texts:
        lsub._unpack_all()
        rsub._unpack_all()
    lcols, rcols = lsub._columns, rsub._columns
    pairs: Iterable[tuple[str, Any]] = left.items()
    if texts:  # the pairs whose texts differ (or with no right row), unpacked in bulk
        lvalues: Iterable[Any] = left.values() if ltexts is None else map(ltexts.get, left)
        rvalues = map(right.get if rtexts is None else rtexts.get, left)
        keys = [key for key, _ in compress(pairs, map(ne, lvalues, rvalues))]
        lsub._unpack(keys)
        rsub._unpack(filter(right.__contains__, keys))
        pairs = zip(keys, map(left.__getitem__, keys), strict=True)
    elif as_text and (lcols is None or rcols is None or lcols == rcols):
        # only the keys whose rows differ (or are missing on the right)
        pairs = compress(pairs, map(ne, left.values(), map(right.get, left)))
    # Two tuples of the same columns are compared cell by cell, as they are.
    encodings = tuple(map(lenc.get, lcols)) if as_text and lcols and lcols == rcols else None
    same_cells = cells_comparer(encodings) if encodings is not None else None
    new_keys: list[str] = []  # of a run not yet given (``runs``)
    for key, row in pairs:
        other = right.get(key)
        if other is None:
            if runs:
                new_keys.append(key)
                continue
            yield make_action(
                key, new_message, name, NEW, None, None, None, None, None, lleaf(key), None
            )
            continue
        if same_cells is not None and type(row) is tuple and type(other) is tuple:
            if same_cells(row, other):
                continue
        elif fast:
            mine, theirs = lcells(row), rcells(other)
            if (as_text and mine.items() <= theirs.items()) or (
                decoded and same_values(mine, theirs, lenc, renc)
            ):
                continue
        for action in _compare(name, key, lleaf(key), rleaf(key), removes):
            if new_keys:
                yield NewActions(lsub, new_message, new_keys)
                new_keys = []
            yield action
    if new_keys:
        yield NewActions(lsub, new_message, new_keys)


def _olds(lsub: Subbranch, rsub: Subbranch) -> Iterator[Action]:
    """``old`` actions: keys only on the right (of a delta left side, the keys it removed)."""
    name = lsub.name
    old_message = "old_" + name
    left, right = lsub._rows, rsub._rows
    rleaf = rsub._leaf
    if lsub.coverage == "delta":
        removed = lsub._removed
        keys = [key for key in right if key in removed and key not in left]
    else:
        keys = list(filterfalse(left.__contains__, right))  # found in C, in order
    rsub._unpack(keys)  # rows kept as text, in bulk
    for key in keys:
        yield make_action(
            key, old_message, name, OLD, None, None, None, None, None, None, rleaf(key)
        )


def _compare(
    subbranch: str, key: str, source: Leaf, dest: Leaf, removes: list[Action]
) -> Iterator[Action]:
    for attribute, value in compared_values(source).items():
        old = attribute_of(dest, attribute)
        problem = None
        if isinstance(value, Missing):
            problem = f"{value.reason} (left side)"
        elif isinstance(old, Missing):
            problem = f"{old.reason} (right side)"
        elif value == old or (_is_nan(value) and _is_nan(old)):
            continue
        elif _is_collection(value) and _is_collection(old):
            for member in _ordered(_missing(value, old)):
                yield make_action(
                    key, f"add_{subbranch}_{attribute}", subbranch, Kind.ADD, attribute,
                    member, None, None, None, source, dest,
                )  # fmt: skip
            for member in _ordered(_missing(old, value)):
                removes.append(
                    make_action(
                        key, f"remove_{subbranch}_{attribute}", subbranch, Kind.REMOVE,
                        attribute, member, None, None, None, source, dest,
                    )
                )  # fmt: skip
            continue
        elif value is None or old is None or _comparable(value, old):
            yield make_action(
                key, f"update_{subbranch}_{attribute}", subbranch, Kind.UPDATE, attribute,
                value, old, None, None, source, dest,
            )  # fmt: skip
            continue
        else:
            problem = (
                f"cannot compare {value!r} ({type(value).__name__}) "
                f"with {old!r} ({type(old).__name__})"
            )
        yield Action(
            key, f"error_{subbranch}_{attribute}", subbranch, Kind.ERROR, attribute,
            None if isinstance(value, Missing) else value,
            None if isinstance(old, Missing) else old,
            error=problem, source=source, dest=dest,
        )  # fmt: skip


def _is_nan(value: object) -> bool:
    """Whether ``value`` is a float (or Decimal) NaN: two NaNs are no change."""
    if isinstance(value, float):
        return value != value
    # A Decimal exists only once its module is loaded: the diff does not load it.
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(value, decimal.Decimal) and value.is_nan()


def _is_collection(value: object) -> bool:
    return isinstance(value, set | frozenset | list)


def _missing(members: Iterable[Any], other: Container[Any]) -> Iterator[Any]:
    """The members not in ``other``; an unhashable member is in no set."""
    for member in members:
        try:
            if member in other:
                continue
        except TypeError:  # ``[1] in {1}``: a list cannot be a set's member
            pass
        yield member


def _comparable(a: object, b: object) -> bool:
    """Whether a difference between ``a`` and ``b`` is a real change, not a type slip."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b)
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        return True
    return isinstance(a, type(b)) or isinstance(b, type(a))


def _ordered(members: Iterator[Any]) -> list[Any]:
    """Members in a deterministic order (sorted when they sort)."""
    items = list(members)
    try:
        return sorted(items)
    except TypeError:
        return items
