"""Dotted key paths into JSON bodies (``'data.items'``, ``'profile.first'``)."""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "dig"]

#: What :func:`dig` gives for a path that is not there (``None`` may be a value).
MISSING: Any = object()


def dig(body: Any, path: str) -> Any:
    """The value at a dotted key path (``'data.items'``), or :data:`MISSING`.

    A key holding the whole path (dots included) wins over the nested lookup.
    """
    if isinstance(body, dict) and path in body:
        return body[path]
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            return MISSING
        body = body[part]
    return body
