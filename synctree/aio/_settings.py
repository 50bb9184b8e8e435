"""A run's settings: the template's class attributes, overridden per run, validated."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

from .._plan import DEFAULT_MAX_DELETES, parse_max_deletes
from ._events import Observer

__all__ = ["DEFAULTS", "TEMPLATE_SETTINGS", "Settings"]

#: The settings a template may declare as class attributes; the others
#: (``force``, ``grace``, backoff, and the test hooks ``observer``, ``clock``,
#: ``sleep``, ``random``) are run options only, so that a template's helper
#: method that happens to share a name never becomes a setting.
TEMPLATE_SETTINGS = (
    "concurrency",
    "rate",
    "burst",
    "retries",
    "timeout",
    "max_throttle_time",
    "max_run_throttle_time",
    "max_deletes",
    "dry_run",
    "fail_fast",
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a run needs to know besides the plan; see ``AsyncTemplate``."""

    concurrency: int = 8
    rate: float | None = None
    burst: int = 1
    retries: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 32.0
    max_retry_after: float = 300.0
    max_throttle_time: float = 300.0
    max_run_throttle_time: float | None = 3600.0
    timeout: float | None = None
    max_deletes: int | str | None = DEFAULT_MAX_DELETES
    force: bool = False
    dry_run: bool = False
    fail_fast: bool = False
    grace: float = 10.0
    observer: Observer | None = None
    clock: Callable[[], float] | None = None
    sleep: Callable[[float], Awaitable[None]] | None = None
    random: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        _positive_int(self.concurrency, "concurrency")
        _positive_int(self.burst, "burst")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"'retries' must be an int >= 0, got {self.retries!r}")
        value = self.max_run_throttle_time
        if value is not None and not (isinstance(value, int | float) and value >= 0):
            raise ValueError(f"'max_run_throttle_time' must be >= 0 or None, got {value!r}")
        for name in ("rate", "timeout"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name!r} must be > 0 or None, got {value!r}")
        for name in (
            "backoff_base",
            "backoff_cap",
            "max_retry_after",
            "max_throttle_time",
            "grace",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and not math.isnan(value)):
                raise ValueError(f"{name!r} must be >= 0, got {value!r}")
        parse_max_deletes(self.max_deletes)

    @classmethod
    def of(cls, template: object, overrides: dict[str, Any]) -> Settings:
        """The template's declared settings (:data:`TEMPLATE_SETTINGS`), ``overrides`` on top."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown run setting(s): {', '.join(map(repr, unknown))}")
        values = {name: getattr(template, name) for name in TEMPLATE_SETTINGS}
        values.update(overrides)
        return cls(**values)

    def deletes_allowed(self, total: int) -> float:
        """How many objects of a ``total``-strong subbranch a run may remove."""
        return parse_max_deletes(self.max_deletes)(total)


def _positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name!r} must be an int >= 1, got {value!r}")


#: Every setting's default: the one place they are written down.
DEFAULTS = Settings()
