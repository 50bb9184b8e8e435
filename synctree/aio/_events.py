"""Progress events the runner emits to an observer (the CLI draws bars from them)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from typing import TypeAlias

from .._action import Action
from .._report import Result

__all__ = ["Event", "EventKind", "Observer"]


class EventKind(enum.StrEnum):
    """What happened."""

    PLANNED = "planned"  # the plan is known: ``total`` actions, the sequence ``plan``
    STARTED = "started"  # an attempt of ``action`` began
    RETRYING = "retrying"  # ``action`` will be tried again after ``delay`` for ``reason``
    THROTTLED = "throttled"  # every worker pauses ``delay`` seconds for ``reason``
    FINISHED = "finished"  # ``result`` is recorded (succeeded, failed, skipped, ...)


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One progress event; only the fields that fit ``kind`` are set."""

    kind: EventKind
    action: Action | None = None
    attempt: int = 0
    delay: float | None = None
    reason: str | None = None
    result: Result | None = None
    total: int | None = None
    #: The whole plan, in order: a sequence whose actions of a run of new objects
    #: are made when read (a big plan's ``total`` costs nothing; reading it does).
    plan: Sequence[Action] | None = None


#: Called inline for every event; keep it quick and do not raise.  An observer
#: with a ``synctree_kinds`` attribute (a collection of :class:`EventKind`) is
#: given only events of those kinds; the runner makes no others for it.
Observer: TypeAlias = Callable[[Event], None]
