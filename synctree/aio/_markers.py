"""Markers on template methods: ``@batch(size)`` and ``@idempotent``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["batch", "batch_size", "idempotent", "is_idempotent"]

F = TypeVar("F", bound=Callable[..., Any])


def idempotent(method: F) -> F:
    """Mark a ``new_`` method safe to repeat, so it is retried even when a failed
    attempt may have reached the server (a create by a client-chosen id, an upsert)."""
    method.__synctree_idempotent__ = True  # type: ignore[attr-defined]
    return method


def batch(size: int = 500) -> Callable[[F], F]:
    """Make a method take a list of up to ``size`` actions of one message per call.

    For destinations with bulk calls (SQL executemany, an API creating many
    users per request).  The method returns ``None`` (all succeeded) or one
    outcome per action: an exception instance (that action failed), ``Skip``,
    or anything else (succeeded).  Raising fails or retries the whole batch.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"'size' must be an int >= 1, got {size!r}")

    def mark(method: F) -> F:
        method.__synctree_batch__ = size  # type: ignore[attr-defined]
        return method

    return mark


def batch_size(method: Callable[..., Any]) -> int | None:
    """The batch size a method was marked with, or None."""
    return getattr(method, "__synctree_batch__", None)


def is_idempotent(method: Callable[..., Any]) -> bool:
    """Whether a method was marked :func:`idempotent`."""
    return bool(getattr(method, "__synctree_idempotent__", False))
