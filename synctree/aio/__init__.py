"""Async loading and running: readers, async templates and the runner."""

from __future__ import annotations

__all__: list[str] = []
