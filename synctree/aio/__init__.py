"""Async loading and running: readers, async templates and the runner."""

from __future__ import annotations

from ._events import Event, EventKind, Observer
from ._limiter import RateLimiter
from ._load import Derived, Pipeline, Reader, load
from ._retry import Retry
from ._template import AsyncRun, AsyncTemplate, batch, idempotent

__all__ = [
    "AsyncRun",
    "AsyncTemplate",
    "Derived",
    "Event",
    "EventKind",
    "Observer",
    "Pipeline",
    "RateLimiter",
    "Reader",
    "Retry",
    "batch",
    "idempotent",
    "load",
]
