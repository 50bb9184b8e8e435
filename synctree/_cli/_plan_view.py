"""Readable plans: a plan's actions as lines a person reads, grouped by subbranch.

::

    students  stu-0166 (Jin Williams)  grade 09 → 10
    students  stu-0301 (Ann Lee)  new
    enrollments  enr-12  classes + cls-4

One line per object and kind (an object's updates share a line).  The name in
parentheses is the subbranch's *display* (``[sync] display = { students =
"{givenName} {familyName}" }``: an attribute name or a format string), else the
first of a few usual name attributes the object has.  Plan warnings (the safety
limit, error actions with their fix) are worked out here too, so that the text
and the ``--json`` output say the same.
"""

from __future__ import annotations

import datetime
import functools
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from synctree import Action, Kind, Leaf, Missing, derived_names
from synctree._leaf import attribute_of

__all__ = ["PlanLine", "error_fixes", "plan_lines", "render_value"]

#: Attributes (or pairs of them) tried, in order, when a subbranch names no display.
_NAME_GUESSES: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("display_name",),
    ("displayName",),
    ("full_name",),
    ("givenName", "familyName"),
    ("first", "last"),
    ("first_name", "last_name"),
    ("given_name", "family_name"),
    ("first",),
    ("givenName",),
    ("title",),
    ("email",),
    ("username",),
    ("userName",),
)
_ARROW = "→"
_UNKNOWN: Any = object()


class PlanLine(NamedTuple):
    """One line of a readable plan: an object's change of one kind (a tuple: a big
    plan makes one a change)."""

    subbranch: str
    idnumber: str
    display: str | None
    kind: str
    text: str  # what changes: "new", "grade 09 → 10", "classes + c1", "error grade: ..."

    def __str__(self) -> str:
        name = f" ({self.display})" if self.display else ""
        return f"{self.subbranch}  {self.idnumber}{name}  {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "subbranch": self.subbranch,
            "idnumber": self.idnumber,
            "display": self.display,
            "kind": self.kind,
            "text": self.text,
            "line": str(self),
        }


def render_value(value: Any) -> str:
    """A value as a plan line shows it: text bare, ``—`` for None, sets sorted in braces."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value if value and value == value.strip() and "\n" not in value else repr(value)
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(map(render_value, value))) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(render_value, value)) + "]"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return repr(value)


class _Attributes:
    """A leaf's attributes by name, as ``leaf.to_dict()`` has them, without copying them all."""

    __slots__ = ("_leaf", "_stored", "derived")

    def __init__(self, leaf: Leaf) -> None:
        self._leaf = leaf
        self._stored = leaf.__dict__
        self.derived = derived_names(type(leaf))

    def get(self, name: str) -> Any:
        if name in self.derived:
            value = attribute_of(self._leaf, name)
            return "<error>" if isinstance(value, Missing) else value
        if name[:1] == "_" or name == "idnumber":
            return None
        return self._stored.get(name)


def _display_of(action: Action, display: str | None) -> str | None:
    leaf = action.source if action.source is not None else action.dest
    if leaf is None:
        return None
    attrs = _Attributes(leaf)
    if display is not None:
        if "{" in display:
            fields = [name for _, name, _, _ in string.Formatter().parse(display) if name]
            if all(attrs.get(name) in (None, "") for name in fields):
                return None
            values = {name: render_value(attrs.get(name)) for name in fields}
            try:
                return display.format_map(values).strip() or None
            except (ValueError, KeyError, IndexError):
                return None
        value = attrs.get(display)
        return None if value in (None, "") else render_value(value)
    for names in _guesses(tuple(leaf.__dict__), attrs.derived):
        parts = [attrs.get(name) for name in names]
        if all(isinstance(v, str) and v for v in parts):
            return " ".join(v for v in parts if isinstance(v, str))
    return None


@functools.lru_cache(maxsize=64)
def _guesses(stored: tuple[str, ...], derived: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The name guesses a leaf with these attributes can answer (the others give None)."""
    names = {*stored, *derived}
    return [guess for guess in _NAME_GUESSES if names.issuperset(guess)]


def plan_lines(
    actions: Iterable[Action], displays: Mapping[str, str] | None = None
) -> dict[str, list[PlanLine]]:
    """The plan's lines by subbranch, in plan order; an object's updates share a line."""
    displays = displays or {}
    out: dict[str, list[PlanLine]] = {}
    updates: dict[tuple[str, str], list[str]] = {}
    pending: dict[tuple[str, str], int] = {}  # (subbranch, id) -> index of its update line
    displayed: dict[tuple[str, str], Any] = {}
    kinds = {kind: str(kind) for kind in Kind}
    for action in actions:
        lines = out.setdefault(action.subbranch, [])
        kind = action.kind
        if kind is Kind.UPDATE:
            change = (
                f"{action.attribute} {render_value(action.old_value)} {_ARROW} "
                f"{render_value(action.value)}"
            )
            key = (action.subbranch, action.idnumber)
            if key in pending:
                updates[key].append(change)
                at = pending[key]
                old = lines[at]
                lines[at] = old._replace(text=", ".join(updates[key]))
                continue
            updates[key] = [change]
            pending[key] = len(lines)
            text = change
        elif kind is Kind.NEW:
            text = "new"
        elif kind is Kind.OLD:
            text = "remove"
        elif kind is Kind.ADD:
            text = f"{action.attribute} + {render_value(action.value)}"
        elif kind is Kind.REMOVE:
            text = f"{action.attribute} − {render_value(action.value)}"
        else:
            text = f"error {action.attribute}: {action.error}"
        shown = (action.subbranch, action.idnumber)
        display = displayed.get(shown, _UNKNOWN)
        if display is _UNKNOWN:  # an object's actions share its display: made once
            displayed[shown] = display = _display_of(action, displays.get(action.subbranch))
        lines.append(PlanLine(action.subbranch, action.idnumber, display, kinds[kind], text))
    return out


def error_fixes(actions: Iterable[Action], tables: Mapping[tuple[str, str], str]) -> list[str]:
    """One message per kind of error action in a plan, each with the fix.

    ``tables`` maps ``(branch side, subbranch)`` (``"source"``/``"destination"``
    position names: ``"left"``, ``"right"``) to the config table that reads it.
    """
    groups: Counter[tuple[str, str, str, str]] = Counter()
    examples: dict[tuple[str, str, str, str], Action] = {}
    for action in actions:
        if action.kind is not Kind.ERROR:
            continue
        left, right = action.value, action.old_value
        shape = f"{type(left).__name__}/{type(right).__name__}"
        error = action.error or ""
        why = "left" if "(left side)" in error else "right" if "(right side)" in error else ""
        key = (action.subbranch, action.attribute or "", shape, why)
        groups[key] += 1
        examples.setdefault(key, action)
    messages = []
    for key, count in groups.items():
        subbranch, attribute, _, _ = key
        action = examples[key]
        what = (
            f"{count} {subbranch} {'objects' if count > 1 else 'object'} "
            f"(first: {action.idnumber!r}) cannot be compared on {attribute!r}: {action.error}"
        )
        messages.append(f"{what}; {_fix(action, tables)}")
    return messages


def _fix(action: Action, tables: Mapping[tuple[str, str], str]) -> str:
    attribute = action.attribute or "?"
    left, right = action.value, action.old_value
    error = action.error or ""
    if "(left side)" in error or "(right side)" in error:
        side = "left" if "(left side)" in error else "right"
        table = tables.get((side, action.subbranch), action.subbranch)
        return (
            f"give [{table}] a column {attribute!r}, or a model property that derives it "
            f"([sync] models)"
        )
    typed = None
    if isinstance(left, str) and not isinstance(right, str) and right is not None:
        typed, side = right, "left"
    elif isinstance(right, str) and not isinstance(left, str) and left is not None:
        typed, side = left, "right"
    if typed is not None:
        name = _type_name(typed)
        if name is not None:
            table = tables.get((side, action.subbranch), action.subbranch)
            return f'declare types = {{ {attribute} = "{name}" }} in [{table}]'
    return (
        f"make both sides read {attribute!r} as one type: declare types = {{ {attribute} = "
        '"..." }} in the reader table whose values are text'
    )


def _type_name(value: Any) -> str | None:
    for name, kind in (
        ("bool", bool),
        ("int", int),
        ("float", float),
        ("date", datetime.date),
        ("set", set | frozenset),
        ("list", list),
    ):
        if isinstance(value, kind):
            return name
    return None
