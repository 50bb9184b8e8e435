"""Saved plans: ``synctree plan --out`` writes one, ``synctree run --plan`` applies it
only if planning again gives the same actions.

A saved plan is JSON, ``{"config": ..., "actions": [action.to_dict(), ...]}``,
masked like everything else the command writes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from synctree import Action

from ._exits import EXIT_INPUT, EXIT_SAFETY, Stop

__all__ = ["check_saved_plan", "plan_dicts", "read_plan", "write_json"]


def plan_dicts(actions: Iterable[Action]) -> list[dict[str, Any]]:
    """The actions as a saved plan (and ``plan --json``) holds them."""
    return [action.to_dict() for action in actions]


def write_json(path: Path, value: Any, mask: Callable[[str], str]) -> None:
    """Write ``value`` as masked JSON to ``path``, whole or not at all (a temporary file)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(mask(json.dumps(value, indent=1, default=str)), encoding="utf-8")
    temporary.replace(path)


def read_plan(path: Path) -> list[dict[str, Any]]:
    """A saved plan's actions; exit 2 when ``path`` holds none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        actions = data["actions"]
        if not isinstance(actions, list):
            raise TypeError("'actions' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Stop(EXIT_INPUT, f"{path}: not a saved plan ({exc})") from None
    return actions


def check_saved_plan(saved: list[dict[str, Any]], current: list[dict[str, Any]]) -> None:
    """Exit 3, naming the differences, unless ``current`` has the same actions as ``saved``."""

    def key(action: dict[str, Any]) -> str:
        return json.dumps(action, sort_keys=True, default=str)

    before, now = Counter(map(key, saved)), Counter(map(key, current))
    if before == now:
        return
    gone = list((before - now).elements())
    new = list((now - before).elements())
    lines = ["the saved plan no longer holds; nothing was changed. Plan again."]
    lines += [f"  no longer planned: {line}" for line in gone[:10]]
    lines += [f"  newly planned: {line}" for line in new[:10]]
    if len(gone) + len(new) > 20:
        lines.append(f"  … {len(gone) + len(new) - 20} more differences")
    raise Stop(EXIT_SAFETY, "\n".join(lines))
