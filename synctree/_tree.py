"""The mirrored tree: branches (sides) of subbranches (kinds) of leaves (objects)."""

from __future__ import annotations

import importlib
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import compress, repeat
from operator import is_, is_not
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from ._duplicates import DuplicatePolicy, check_policy, merge_attributes
from ._exceptions import DuplicateKeyError
from ._leaf import Leaf, view
from ._util.members import Encoding, decode_row

if TYPE_CHECKING:
    from ._action import Action
    from ._diff import Diff

__all__ = ["Branch", "Coverage", "Packing", "Subbranch", "SyncTree"]

#: How much of the truth a subbranch holds: ``"full"`` (all of it, the
#: default), ``"delta"`` (only the objects its rows and ``removed`` name) or
#: ``"absent"`` (nothing: the source does not provide this kind).
Coverage: TypeAlias = Literal["full", "delta", "absent"]
_COVERAGES = ("full", "delta", "absent")

_idnumber = operator.itemgetter("idnumber")


class Packing(Protocol):
    """How a reader packs each row into one text (a CSV line), and back.

    The contract the diff relies on: two texts packed by *equal* packings are
    equal rows when the texts are equal (the converse need not hold).  The
    diff then compares a pair of rows as one string comparison and unpacks
    only the pairs whose texts differ; a row is unpacked for good when a leaf
    of it is made.
    """

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the cells :meth:`unpack` gives, ``'idnumber'`` first."""
        ...

    def unpack(self, texts: Iterable[str]) -> list[tuple[Any, ...]]:
        """The rows of ``texts``: tuples of cells under :attr:`columns`."""
        ...

    # A packing may also have ``pack_rows(columns, rows) -> list[str | None] | None``:
    # another reader's tuple rows (under ``columns``) as texts of this packing, None
    # for a row (or all) it cannot pack exactly.  Then rows read elsewhere (a table
    # synced from a CSV export) are compared with the export's lines as texts too.


class Subbranch:
    """The leaves of one kind on one branch: a read-only mapping ``idnumber -> Leaf``.

    Iterating gives the leaves (not the keys), in the order they were loaded.
    The subbranch keeps each object's row (a dict); a :class:`Leaf` is a view
    of it made on access, so two lookups give equal, not identical, leaves,
    and setting an attribute on a leaf changes the row.  (Rows of plain values
    are invisible to Python's garbage collector; a million leaf objects are
    not, and would cost a large load a third of its time.)

    A source that holds only part of the truth says so with :meth:`mark_delta`
    (its rows are changes, ``removed`` the keys it says are gone) or
    :meth:`mark_absent` (it does not provide this kind at all); the diff then
    removes only what the source names, never what it merely leaves out.
    ``notes`` are lines for the plan (why a subbranch is absent, a reader's
    warnings).

    Two compact forms keep a big load small, and the diff compares them as
    they are; a row takes its plain form for good when a leaf of it is made:

    - A reader of many rows under one header may hand them over as tuples
      (:class:`synctree.aio.Table`): ``(idnumber, value, ...)`` under the
      subbranch's ``_columns``, a third of a dict's size.
    - Set- or list-valued columns may stay their text (``encoded``:
      ``{'classes': (set, ';')}``), a fraction of a set's size and never
      tracked by the collector; the diff compares such cells as text first,
      and decodes only those whose text differs.  In such a column, a string
      is always the encoded text.
    - A reader whose rows pack into one text each (a CSV line) may hand them
      over so (:class:`synctree.aio.PackedTable`, with a :class:`Packing`):
      one string a row, a third of a tuple's size.  Under one packing on both
      sides, a pair of equal texts needs no action, and only the pairs whose
      texts differ are unpacked (into tuples, for good).
    """

    __slots__ = (
        "_columns",
        "_encoded",
        "_packing",
        "_removed",
        "_rows",
        "branch",
        "coverage",
        "model",
        "name",
        "notes",
        "policy",
    )

    def __init__(self, branch: str, name: str, model: type[Leaf], policy: DuplicatePolicy) -> None:
        self.branch = branch
        self.name = name
        self.model = model
        self.policy = policy
        #: ``idnumber -> row``: a dict, a tuple of the cells named by ``_columns``,
        #: or a str that ``_packing`` unpacks into such a tuple.
        self._rows: dict[str, dict[str, Any] | tuple[Any, ...] | str] = {}
        self._columns: tuple[str, ...] | None = None  # of tuple rows; the first is 'idnumber'
        self._packing: Packing | None = None  # of the rows kept as text
        self._encoded: dict[str, Encoding] = {}  # columns whose cells may still be text
        self.coverage: Coverage = "full"
        self._removed: set[str] = set()
        self.notes: list[str] = []

    @property
    def removed(self) -> frozenset[str]:
        """The keys a delta source says are gone (they become ``old_`` actions)."""
        return frozenset(self._removed)

    def mark_absent(self, note: str) -> None:
        """This side does not provide this kind: the diff leaves the subbranch alone.

        ``note`` says why, for the plan (``"courses: not in this export"``).
        """
        if self._rows or self._removed:
            raise ValueError(f"{self.branch} {self.name} has rows; it cannot be absent")
        self.coverage = "absent"
        self.add_note(note)

    def mark_delta(self, removed: Iterable[str] = ()) -> None:
        """This side holds changes only: its rows, and ``removed``, the keys now gone.

        Objects it does not name are left as they are; ``old_`` actions come
        only from ``removed``.  Repeated calls add to ``removed``.
        """
        if self.coverage == "absent":
            raise ValueError(f"{self.branch} {self.name} is absent; it cannot be a delta")
        self.coverage = "delta"
        for key in removed:
            if type(key) is not str:
                raise TypeError(
                    f"{self.branch} {self.name}: a removed key must be a str, got {key!r}"
                )
            self._removed.add(key)

    def add_note(self, text: str) -> None:
        """A line for the plan about this subbranch (a reader's warning, say)."""
        self.notes.append(text)

    def __repr__(self) -> str:
        return f"<Subbranch {self.name} of branch {self.branch}>"

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, idnumber: object) -> bool:
        return idnumber in self._rows

    def __getitem__(self, idnumber: str) -> Leaf:
        return view(self.model, self._row(idnumber))

    def __iter__(self) -> Iterator[Leaf]:
        model = self.model
        self._unpack_all()
        rows, columns, encoded = self._rows, self._columns, self._encoded
        for idnumber, stored in rows.items():
            if isinstance(stored, tuple):
                rows[idnumber] = row = dict(zip(columns or (), stored, strict=True))
            else:
                assert not isinstance(stored, str), "unpacked above"
                row = stored
            if encoded:
                decode_row(row, encoded)
            yield view(model, row)

    def get(self, idnumber: str, default: Leaf | None = None) -> Leaf | None:
        """The leaf with this key, or ``default``."""
        if idnumber not in self._rows:
            return default
        return view(self.model, self._row(idnumber))

    def keys(self) -> Iterable[str]:
        """The keys, in load order."""
        return self._rows.keys()

    def _row(self, idnumber: str) -> dict[str, Any]:
        """The row of ``idnumber`` in its plain form (a dict of values), for good."""
        stored = self._rows[idnumber]
        if isinstance(stored, str):
            stored = self._unpack_text(stored)
        if isinstance(stored, tuple):
            self._rows[idnumber] = row = dict(zip(self._columns or (), stored, strict=True))
        else:
            row = stored
        if self._encoded:
            decode_row(row, self._encoded)
        return row

    def _leaf(self, idnumber: str) -> Leaf:
        """The leaf of ``idnumber`` (the diff's way in)."""
        return view(self.model, self._row(idnumber))

    def _cells(self, row: dict[str, Any] | tuple[Any, ...] | str) -> dict[str, Any]:
        """A stored row's cells by name, without changing its form (a new dict for a tuple)."""
        if type(row) is str:
            row = self._unpack_text(row)
        if type(row) is tuple:
            return dict(zip(self._columns or (), row, strict=True))
        return row  # type: ignore[return-value]  # not a tuple or a str: a dict

    def _unpack_text(self, text: str) -> tuple[Any, ...]:
        assert self._packing is not None, "a row kept as text has a packing"
        return self._packing.unpack((text,))[0]

    def _unpack(self, keys: Iterable[str]) -> None:
        """Unpack the rows of ``keys`` that are still text into tuples, for good, in bulk."""
        packing = self._packing
        if packing is None:
            return
        rows = self._rows
        keys = list(keys)
        stored: list[Any] = list(map(rows.__getitem__, keys))
        texts = list(map(is_, map(type, stored), repeat(str)))  # in C: which are text
        if not all(texts):
            keys, stored = list(compress(keys, texts)), list(compress(stored, texts))
        if keys:
            rows.update(zip(keys, packing.unpack(stored), strict=True))

    def _packed_as(self, packing: Packing) -> dict[str, str | None] | None:
        """``key -> text``: this side's tuple rows as ``packing`` would pack them, if it
        can (an optional ``pack_rows(columns, rows)``; None where a row's text would
        not be exact), or None.  Equal to the other side's text, a row is the same.
        """
        pack_rows = getattr(packing, "pack_rows", None)
        rows, columns = self._rows, self._columns
        if pack_rows is None or columns is None or not rows or self._packing is not None:
            return None
        texts = pack_rows(columns, rows.values())  # (None if a row is a dict)
        return None if texts is None else dict(zip(rows, texts, strict=True))

    def _unpack_all(self) -> None:
        """Unpack every row still kept as text (found in C)."""
        if self._packing is not None:
            rows = self._rows
            self._unpack(compress(rows, map(is_, map(type, rows.values()), repeat(str))))
            self._packing = None  # no text is left to unpack

    def __gt__(self, other: Subbranch) -> Diff:
        from ._diff import Diff

        if not isinstance(other, Subbranch) or other.name != self.name:
            return NotImplemented
        return Diff(_SingleSubbranch(self), _SingleSubbranch(other))

    def __sub__(self, other: Subbranch) -> Iterator[Action]:
        if not isinstance(other, Subbranch) or other.name != self.name:
            return NotImplemented
        return iter(self > other)

    def _add(
        self,
        attributes: dict[str, Any],
        where: Callable[[dict[str, Any]], tuple[Any, Any]] | None = None,
    ) -> None:
        """Add a row, taking ownership of ``attributes`` (which holds ``idnumber``).

        ``where(attributes)`` gives ``(path, line)`` of that row for an error
        message, and is only called then.
        """
        # The loader's hot path (one call per row): kept inline, one dict lookup.
        idnumber = attributes["idnumber"]
        rows = self._rows
        if idnumber not in rows:
            if type(idnumber) is not str:
                raise TypeError(
                    f"{self.branch} {self.name}: idnumber must be a str, "
                    f"got {type(idnumber).__name__} {idnumber!r}"
                )
            if self.coverage == "absent":
                raise ValueError(f"{self.branch} {self.name} is absent; it cannot take rows")
            rows[idnumber] = attributes  # owns the row: no copy
            return
        self._duplicate(self._row(idnumber), attributes, where)

    def _encode(self, encoded: Mapping[str, Encoding] | None) -> dict[str, Encoding] | None:
        """Take on a batch's encoded columns; those the subbranch encodes otherwise, to decode."""
        if not encoded:
            return None
        mine = self._encoded
        clash = {n: e for n, e in encoded.items() if mine.setdefault(n, e) != e}
        return clash or None

    def _add_rows(
        self,
        rows: list[dict[str, Any]],
        where: Callable[[dict[str, Any]], tuple[Any, Any]] | None = None,
        encoded: Mapping[str, Encoding] | None = None,
    ) -> None:
        """:meth:`_add` for a batch of rows: the loader's hot loop, inline.

        ``encoded`` names the columns whose cells the rows hold as text (see the
        class docstring); a column another batch encoded differently is decoded.
        """
        clash = self._encode(encoded)
        if clash:
            for row in rows:
                decode_row(row, clash)
        table = self._rows
        if self.coverage == "absent" and rows:
            raise ValueError(f"{self.branch} {self.name} is absent; it cannot take rows")
        ids = list(map(_idnumber, rows))
        if set(map(type, ids)) <= {str}:
            # All in C, one lookup per row: setdefault adds a new key and gives
            # back the row already there for a key seen before (in the batch too).
            kept = list(map(table.setdefault, ids, rows))
            if any(map(is_not, kept, rows)):
                for idnumber, existing, row in zip(ids, kept, rows, strict=True):
                    if existing is not row:
                        self._duplicate(self._row(idnumber), row, where)
            return
        for row in rows:
            idnumber = row["idnumber"]
            if type(idnumber) is str and idnumber not in table:
                table[idnumber] = row
            else:
                self._add(row, where)

    def _add_tuples(
        self,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        where: Callable[[tuple[Any, ...]], tuple[Any, Any]] | None = None,
        encoded: Mapping[str, Encoding] | None = None,
    ) -> None:
        """Add rows given as tuples of the cells named by ``columns`` (``'idnumber'`` first).

        They are kept as they are when the subbranch's tuple rows have these
        columns (or it has none yet); otherwise they become dicts.
        """
        if self.coverage == "absent" and rows:
            raise ValueError(f"{self.branch} {self.name} is absent; it cannot take rows")
        if self._columns is None and columns[:1] == ("idnumber",):
            self._columns = columns
        clash = self._encode(encoded)
        if columns != self._columns or clash:
            dicts = [dict(zip(columns, row, strict=True)) for row in rows]
            for row in dicts if clash else ():
                decode_row(row, clash or {})
            origin = dict(zip(map(id, dicts), rows, strict=True))
            self._add_rows(dicts, None if where is None else lambda row: where(origin[id(row)]))
            return
        table = self._rows
        ids = [row[0] for row in rows]
        if set(map(type, ids)) <= {str}:
            kept = list(map(table.setdefault, ids, rows))
            if not any(map(is_not, kept, rows)):
                return
            for idnumber, existing, cells in zip(ids, kept, rows, strict=True):
                if existing is not cells:
                    self._duplicate(
                        self._row(idnumber),
                        dict(zip(columns, cells, strict=True)),
                        None if where is None else _where_of(where, cells),
                    )
            return
        for cells in rows:  # a key that is not a str: _add says so
            self._add(
                dict(zip(columns, cells, strict=True)),
                None if where is None else _where_of(where, cells),
            )

    def _add_packed(
        self,
        keys: list[str],
        texts: list[str],
        packing: Packing,
        where: Callable[[int], tuple[Any, Any]] | None = None,
        encoded: Mapping[str, Encoding] | None = None,
    ) -> None:
        """Add rows packed into texts (``keys[i]`` the key of ``texts[i]``).

        They are kept as text when the subbranch's text rows have this packing
        (or it has none yet, and its tuple rows, if any, the same columns);
        otherwise they are unpacked.  ``where(index)`` gives ``(path, line)``
        of ``texts[index]`` for an error message.
        """
        if self.coverage == "absent" and texts:
            raise ValueError(f"{self.branch} {self.name} is absent; it cannot take rows")
        if len(keys) != len(texts):
            raise ValueError(f"{len(keys)} keys for {len(texts)} packed rows")
        columns = packing.columns
        if (
            self._packing is None
            and self._columns in (None, columns)
            and columns[:1] == ("idnumber",)
        ):
            self._packing, self._columns = packing, columns
        clash = self._encode(encoded)
        if packing != self._packing or clash or not set(map(type, keys)) <= {str}:
            rows = packing.unpack(texts)
            index = dict(zip(map(id, rows), range(len(rows)), strict=True))
            self._add_tuples(
                columns, rows, None if where is None else lambda row: where(index[id(row)])
            )
            return
        table = self._rows
        before = len(table)
        # In C, one lookup a row (as _add_tuples); the texts are fresh strings, so
        # one not kept is a key seen before.
        kept = list(map(table.setdefault, keys, texts))
        if len(table) - before == len(keys):
            return
        for at, (idnumber, existing, text) in enumerate(zip(keys, kept, texts, strict=True)):
            if existing is not text:
                self._duplicate(
                    self._row(idnumber),
                    dict(zip(columns, self._unpack_text(text), strict=True)),
                    None if where is None else _where_at(where, at),
                )

    def _duplicate(
        self,
        existing: dict[str, Any],
        attributes: dict[str, Any],
        where: Callable[[dict[str, Any]], tuple[Any, Any]] | None,
    ) -> None:
        """Apply the duplicate policy; the existing row is changed in place."""
        policy = self.policy
        problem: str | None
        idnumber = existing["idnumber"]
        if policy == "skip":
            return
        if self._encoded:  # policies see values, not their text
            decode_row(existing, self._encoded)
            decode_row(attributes, self._encoded)
        if policy == "replace":
            existing.clear()
            existing.update(attributes)
            return
        if policy == "merge":
            problem = merge_attributes(existing, attributes)
        elif callable(policy):
            kept = policy(view(self.model, existing), attributes)
            if kept is not None:
                kept = dict(kept)
                existing.clear()
                existing.update(kept)
                existing["idnumber"] = idnumber
            return
        else:
            problem = "duplicate key"
        if problem is None:
            return
        path, line = where(attributes) if where is not None else (None, None)
        raise DuplicateKeyError(
            f"{self.branch} {self.name} {idnumber!r}: {problem}",
            branch=self.branch,
            subbranch=self.name,
            key=idnumber,
            path=path,
            line=line,
        )


class Branch:
    """One side of the tree; its subbranches are attributes (``branch.students``).

    ``left > right`` is the lazy, dispatchable :class:`Diff`; ``left - right``
    a plain generator of the same actions.
    """

    __slots__ = ("_subbranches", "name")

    def __init__(self, name: str, subbranches: dict[str, Subbranch]) -> None:
        self.name = name
        self._subbranches = subbranches

    def __repr__(self) -> str:
        return f"<Branch {self.name} of {', '.join(self._subbranches)}>"

    def __getattr__(self, name: str) -> Subbranch:
        try:
            return self._subbranches[name]
        except KeyError:
            raise AttributeError(
                f"branch {self.name!r} has no subbranch {name!r} "
                f"(it has {', '.join(self._subbranches)})"
            ) from None

    def __getitem__(self, name: str) -> Subbranch:
        try:
            return self._subbranches[name]
        except KeyError:
            raise KeyError(f"branch {self.name!r} has no subbranch {name!r}") from None

    def __iter__(self) -> Iterator[Subbranch]:
        return iter(self._subbranches.values())

    def __len__(self) -> int:
        return len(self._subbranches)

    @property
    def subbranches(self) -> list[str]:
        """The subbranch names, in declared order."""
        return list(self._subbranches)

    def __gt__(self, other: Branch) -> Diff:
        from ._diff import Diff

        if not isinstance(other, Branch):
            return NotImplemented
        return Diff(self, other)

    def __sub__(self, other: Branch) -> Iterator[Action]:
        from ._diff import Diff

        if not isinstance(other, Branch):
            return NotImplemented
        return iter(Diff(self, other))


class _SingleSubbranch(Branch):
    """A branch view holding one subbranch, for ``left.students > right.students``."""

    __slots__ = ()

    def __init__(self, subbranch: Subbranch) -> None:
        super().__init__(subbranch.branch, {subbranch.name: subbranch})


_RESERVED = frozenset(dir(Branch)) | {"name"}


class SyncTree:
    """A mirrored tree: every branch has the same subbranches.

    :param branches: the sides, e.g. ``['source', 'destination']``.
    :param subbranches: the kinds of object, in dependency order (creates run
        in this order, removals in reverse).
    :param models: ``{branch: {subbranch: LeafSubclass}}``.
    :param duplicates: a :data:`DuplicatePolicy` for every subbranch, or
        ``{subbranch: policy}`` (the rest keep ``'error'``).
    """

    def __init__(
        self,
        branches: Iterable[str],
        subbranches: Iterable[str],
        *,
        models: Mapping[str, Mapping[str, type[Leaf]]] | None = None,
        duplicates: DuplicatePolicy | Mapping[str, DuplicatePolicy] = "error",
    ) -> None:
        branch_names = _names(branches, "branches", frozenset(dir(SyncTree)))
        subbranch_names = _names(subbranches, "subbranches", _RESERVED)
        models = models or {}
        for branch, per_subbranch in models.items():
            if branch not in branch_names:
                raise ValueError(f"'models' names unknown branch {branch!r}")
            for subbranch, model in per_subbranch.items():
                if subbranch not in subbranch_names:
                    raise ValueError(f"'models' names unknown subbranch {subbranch!r}")
                if not (isinstance(model, type) and issubclass(model, Leaf)):
                    raise TypeError(f"model for {branch} {subbranch} must subclass synctree.Leaf")
        if isinstance(duplicates, Mapping):
            for subbranch, policy in duplicates.items():
                if subbranch not in subbranch_names:
                    raise ValueError(f"'duplicates' names unknown subbranch {subbranch!r}")
                check_policy(policy, "duplicates")
            policies = {name: duplicates.get(name, "error") for name in subbranch_names}
        else:
            check_policy(duplicates, "duplicates")
            policies = dict.fromkeys(subbranch_names, duplicates)
        self._policies = policies
        self._branches = {
            branch: Branch(
                branch,
                {
                    name: Subbranch(
                        branch, name, models.get(branch, {}).get(name, Leaf), policies[name]
                    )
                    for name in subbranch_names
                },
            )
            for branch in branch_names
        }

    def __repr__(self) -> str:
        return f"<SyncTree branches={self.branches} subbranches={self.subbranches}>"

    def __getattr__(self, name: str) -> Branch:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._branches[name]
        except KeyError:
            raise AttributeError(
                f"the tree has no branch {name!r} (it has {', '.join(self._branches)})"
            ) from None

    def __getitem__(self, name: str) -> Branch:
        try:
            return self._branches[name]
        except KeyError:
            raise KeyError(f"the tree has no branch {name!r}") from None

    @property
    def branches(self) -> list[str]:
        """The branch names."""
        return list(self._branches)

    @property
    def subbranches(self) -> list[str]:
        """The subbranch names, in declared order."""
        return next(iter(self._branches.values())).subbranches

    def new(self, branch: str, subbranch: str, idnumber: str, **attributes: Any) -> Leaf:
        """Add a leaf and return it (the subbranch's duplicate policy applies)."""
        if "idnumber" in attributes:
            raise TypeError("pass the key as the idnumber argument, not as an attribute")
        attributes["idnumber"] = idnumber
        sub = self[branch][subbranch]
        sub._add(attributes)
        return sub[idnumber]

    async def load(self, **readers: Mapping[str, Any]) -> None:
        """Load every subbranch of every branch from readers, concurrently.

        ``await tree.load(source={'students': reader}, destination={...})``;
        see :func:`synctree.aio.load` for the options.
        """
        # The core never imports the engine: it is found by name when it is
        # needed, as anyio finds its backends (anyio/_core/_eventloop.py).
        engine = importlib.import_module("synctree.aio")
        await engine.load(self, readers)

    def show(
        self,
        subbranch: str | None = None,
        idnumber: str | None = None,
        *,
        limit: int | None = 20,
        file: IO[str] | None = None,
    ) -> None:
        """Print the tree, one subbranch, or one object on every branch with what differs."""
        from ._show import render

        out = file if file is not None else _stdout()
        out.write(render(self, subbranch, idnumber, limit=limit))

    def to_json(self) -> str:
        """The tree's leaves as a JSON snapshot (ints, strings, lists, sets, dates...)."""
        from ._snapshot import dumps

        return dumps(self)

    @classmethod
    def from_json(
        cls,
        text: str,
        *,
        models: Mapping[str, Mapping[str, type[Leaf]]] | None = None,
        duplicates: DuplicatePolicy | Mapping[str, DuplicatePolicy] = "error",
    ) -> SyncTree:
        """Rebuild a tree from :meth:`to_json`'s snapshot."""
        from ._snapshot import loads

        return loads(cls, text, models=models, duplicates=duplicates)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON snapshot to ``path`` (atomically: temporary file, then rename)."""
        from ._snapshot import save

        save(self, path)

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike[str],
        *,
        models: Mapping[str, Mapping[str, type[Leaf]]] | None = None,
        duplicates: DuplicatePolicy | Mapping[str, DuplicatePolicy] = "error",
    ) -> SyncTree:
        """Read a tree saved with :meth:`save`."""
        with open(path, encoding="utf-8") as file:
            return cls.from_json(file.read(), models=models, duplicates=duplicates)


def _where_of(
    where: Callable[[tuple[Any, ...]], tuple[Any, Any]], cells: tuple[Any, ...]
) -> Callable[[dict[str, Any]], tuple[Any, Any]]:
    """``where`` for the dict made of the tuple row ``cells``: where ``cells`` came from."""
    return lambda _: where(cells)


def _where_at(
    where: Callable[[int], tuple[Any, Any]], index: int
) -> Callable[[dict[str, Any]], tuple[Any, Any]]:
    """``where`` for the dict made of the packed row at ``index``."""
    return lambda _: where(index)


def _names(names: Iterable[str], parameter: str, reserved: frozenset[str]) -> list[str]:
    if isinstance(names, str):
        raise TypeError(f"{parameter!r} must be a list of names, not a string")
    out = list(names)
    if not out:
        raise ValueError(f"{parameter!r} must not be empty")
    for name in out:
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"{parameter!r}: {name!r} is not a valid name (an identifier)")
        if name in reserved:
            raise ValueError(f"{parameter!r}: {name!r} is reserved (it is a method name)")
    if len(set(out)) != len(out):
        raise ValueError(f"{parameter!r} has a name twice")
    return out


def _stdout() -> IO[str]:
    import sys

    return sys.stdout
