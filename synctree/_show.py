"""Text renderings of a tree for ``SyncTree.show``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._leaf import Leaf, Missing, attribute_of, compared_values

if TYPE_CHECKING:
    from ._tree import SyncTree

__all__ = ["render"]


def render(
    tree: SyncTree, subbranch: str | None, idnumber: str | None, *, limit: int | None
) -> str:
    """The tree (or one subbranch) as an outline, or one object side by side."""
    if subbranch is not None and subbranch not in tree.subbranches:
        raise KeyError(f"the tree has no subbranch {subbranch!r}")
    if idnumber is not None:
        if subbranch is None:
            raise ValueError("show(subbranch, idnumber): an idnumber needs its subbranch")
        return _side_by_side(tree, subbranch, idnumber)
    lines: list[str] = []
    names = [subbranch] if subbranch else tree.subbranches
    for branch in tree.branches:
        lines.append(branch)
        for i, name in enumerate(names):
            sub = tree[branch][name]
            last_sub = i == len(names) - 1
            lines.append(f"{'└──' if last_sub else '├──'} {name} ({len(sub):,})")
            stem = "    " if last_sub else "│   "
            shown = list(_first(sub, limit))
            more = len(sub) - len(shown)
            for j, leaf in enumerate(shown):
                last_leaf = j == len(shown) - 1 and not more
                lines.append(f"{stem}{'└──' if last_leaf else '├──'} {_describe(leaf)}")
            if more:
                lines.append(f"{stem}└── … {more:,} more")
    return "\n".join(lines) + "\n"


def _first(leaves: Any, limit: int | None) -> Any:
    for count, leaf in enumerate(leaves):
        if limit is not None and count >= limit:
            return
        yield leaf


def _describe(leaf: Leaf) -> str:
    values = compared_values(leaf)
    shown = " ".join(f"{name}={_fmt(value)}" for name, value in values.items())
    return f"{leaf.idnumber}  {shown}".rstrip()


def _fmt(value: Any) -> str:
    if isinstance(value, Missing):
        return f"<error: {value.reason}>"
    if isinstance(value, set | frozenset):
        try:
            return "{" + ", ".join(map(repr, sorted(value))) + "}" if value else "set()"
        except TypeError:
            return repr(value)
    return repr(value)


_ABSENT = "—"


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, Missing) or isinstance(b, Missing):
        return not (isinstance(a, Missing) and isinstance(b, Missing))
    collections = (set, frozenset, list)
    if isinstance(a, collections) and isinstance(b, collections):
        try:
            return any(m not in b for m in a) or any(m not in a for m in b)
        except TypeError:  # an unhashable member (a list) looked up in a set
            return bool(a != b)
    return bool(a != b)


def _side_by_side(tree: SyncTree, subbranch: str, idnumber: str) -> str:
    leaves = {branch: tree[branch][subbranch].get(idnumber) for branch in tree.branches}
    names: dict[str, None] = {}
    for leaf in leaves.values():
        if leaf is not None:
            names.update(dict.fromkeys(compared_values(leaf)))
    # The first branch is the source of truth: its attributes are the compared
    # ones, and "differs" means what the diff means (== on values, members of
    # collections), not a different repr.
    first = next((leaf for leaf in leaves.values() if leaf is not None), None)
    compared = compared_values(first) if first is not None else {}
    header = ["attribute", *tree.branches, ""]
    rows = [["(present)", *("yes" if leaf is not None else "no" for leaf in leaves.values()), ""]]
    for name in names:
        cells, values = [], []
        for leaf in leaves.values():
            value = attribute_of(leaf, name) if leaf is not None else Missing("absent")
            values.append(value)
            cells.append(_ABSENT if isinstance(value, Missing) else _fmt(value))
        if name not in compared:
            note = "(not compared)"
        else:
            note = "← differs" if any(_differs(values[0], v) for v in values[1:]) else ""
        rows.append([name, *cells, note])
    if len({cell for cell in rows[0][1:-1]}) > 1:
        rows[0][-1] = "← differs"
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    out = [f"{subbranch} {idnumber}"]
    for row in [header, *rows]:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(out) + "\n"
