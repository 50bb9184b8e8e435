"""JSON snapshots of a tree: ``save``/``restore`` and ``to_json``/``from_json``.

Plain JSON values are stored as they are; other values are tagged objects with
one key: ``{"$set": [...]}``, ``{"$tuple": [...]}``, ``{"$date": "2024-01-31"}``,
``{"$datetime": "..."}``, ``{"$dict": {...}}`` (every dict is tagged, so a
user's dict never looks like a tag).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._duplicates import DuplicatePolicy
from ._leaf import Leaf
from ._util.atomic import atomic_write

if TYPE_CHECKING:
    from ._tree import SyncTree

__all__ = ["dumps", "loads", "save"]

FORMAT = 1


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, where) for v in value]}
    if isinstance(value, set | frozenset):
        items = [_encode(v, where) for v in value]
        try:
            items.sort()
        except TypeError:
            pass
        return {"$set": items}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        return {"$dict": {str(k): _encode(v, where) for k, v in value.items()}}
    raise TypeError(f"cannot snapshot {where}: {type(value).__name__} values are not supported")


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$tuple": lambda v: tuple(_decode(x) for x in v),
    "$set": lambda v: {_decode(x) for x in v},
    "$date": datetime.date.fromisoformat,
    "$datetime": datetime.datetime.fromisoformat,
    "$dict": lambda v: {k: _decode(x) for k, x in v.items()},
}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        ((tag, inner),) = value.items()
        return _DECODERS[tag](inner)
    return value


def dumps(tree: SyncTree) -> str:
    """The snapshot of ``tree`` as JSON text."""
    leaves: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    coverage: dict[str, dict[str, dict[str, Any]]] = {}
    for branch in tree.branches:
        leaves[branch] = {}
        for sub in tree[branch]:
            leaves[branch][sub.name] = {
                leaf.idnumber: {
                    name: _encode(value, f"{branch} {sub.name} {leaf.idnumber!r} {name!r}")
                    for name, value in leaf.__dict__.items()
                    if name != "idnumber"
                }
                for leaf in sub
            }
            if sub.coverage != "full" or sub.notes:
                coverage.setdefault(branch, {})[sub.name] = {
                    "coverage": sub.coverage,
                    "removed": sorted(sub.removed),
                    "notes": sub.notes,
                }
    return json.dumps(
        {
            "synctree": FORMAT,
            "branches": tree.branches,
            "subbranches": tree.subbranches,
            "leaves": leaves,
            "coverage": coverage,
        },
        ensure_ascii=False,
    )


def loads(
    cls: type[SyncTree],
    text: str,
    *,
    models: Mapping[str, Mapping[str, type[Leaf]]] | None,
    duplicates: DuplicatePolicy | Mapping[str, DuplicatePolicy],
) -> SyncTree:
    """A tree rebuilt from :func:`dumps`' text."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("synctree") != FORMAT:
        raise ValueError("not a synctree snapshot (or one of an unknown format)")
    tree = cls(data["branches"], data["subbranches"], models=models, duplicates=duplicates)
    for branch, subbranches in data["leaves"].items():
        for name, leaves in subbranches.items():
            sub = tree[branch][name]
            for idnumber, attributes in leaves.items():
                row = {key: _decode(value) for key, value in attributes.items()}
                row["idnumber"] = idnumber
                sub._add(row)
    for branch, subbranches in data.get("coverage", {}).items():
        for name, held in subbranches.items():
            sub = tree[branch][name]
            if held["coverage"] == "delta":
                sub.mark_delta(held["removed"])
            sub.notes.extend(held["notes"])
            if held["coverage"] == "absent":
                sub.coverage = "absent"
    return tree


def save(tree: SyncTree, path: str | os.PathLike[str]) -> None:
    """Write the snapshot to ``path`` atomically (a new file is private to its owner)."""
    text = dumps(tree)
    with atomic_write(path, encoding="utf-8", new_mode=0o600) as file:
        file.write(text)
