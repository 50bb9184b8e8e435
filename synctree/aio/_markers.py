"""Markers on template methods: ``@batch(size)`` and ``@idempotent``.

A marker is an attribute of the function, set once at class creation; the
runner reads it through the template instance's method.  A batch size that
depends on the instance (an option of the template's constructor) is named,
not rebound: ``@batch(size="batch_size")`` reads ``self.batch_size`` of the
template being run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["batch", "batch_size", "idempotent", "is_idempotent", "is_lazy"]

F = TypeVar("F", bound=Callable[..., Any])


def idempotent(method: F) -> F:
    """Mark a ``new_`` method safe to repeat, so it is retried even when a failed
    attempt may have reached the server (a create by a client-chosen id, an upsert)."""
    method.__synctree_idempotent__ = True  # type: ignore[attr-defined]
    return method


def batch(size: int | str = 500, *, lazy: bool = False) -> Callable[[F], F]:
    """Make a method take a list of up to ``size`` actions of one message per call.

    For destinations with bulk calls (SQL executemany, an API creating many
    users per request).  The method returns ``None`` (all succeeded) or one
    outcome per action: an exception instance (that action failed), ``Skip``,
    or anything else (succeeded).  Raising fails or retries the whole batch.

    ``size`` is an int, or the name of an attribute of the template instance
    that holds it (``@batch(size="batch_size")``), read by the runner for each
    template it runs, so two instances may batch differently.

    ``lazy=True``: the method takes any sequence of actions, not only a list.  A
    run of ``new_`` actions then comes as a :class:`synctree.NewActions`, whose
    actions (and their leaves) are made only when read, and whose ``cells()``
    gives the source rows as stored, for writing them in bulk.
    """
    if not isinstance(lazy, bool):
        raise ValueError(f"'lazy' must be a bool, got {lazy!r}")
    if isinstance(size, str):
        if not size.isidentifier():
            raise ValueError(f"'size' must be an attribute name, got {size!r}")
    elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"'size' must be an int >= 1 or an attribute name, got {size!r}")

    def mark(method: F) -> F:
        method.__synctree_batch__ = size  # type: ignore[attr-defined]
        method.__synctree_lazy__ = lazy  # type: ignore[attr-defined]
        return method

    return mark


def batch_size(method: Callable[..., Any], template: object = None) -> int | None:
    """The batch size a method was marked with, or None.

    A size given as an attribute name is read off ``template``, the instance
    being run.
    """
    size = getattr(method, "__synctree_batch__", None)
    if not isinstance(size, str):
        return size
    value = getattr(template, size, None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"@batch(size={size!r}): {type(template).__name__}.{size} must be an int >= 1, "
            f"not {value!r}"
        )
    return value


def is_idempotent(method: Callable[..., Any]) -> bool:
    """Whether a method was marked :func:`idempotent`."""
    return bool(getattr(method, "__synctree_idempotent__", False))


def is_lazy(method: Callable[..., Any]) -> bool:
    """Whether a batch method was marked ``@batch(lazy=True)``."""
    return bool(getattr(method, "__synctree_lazy__", False))
