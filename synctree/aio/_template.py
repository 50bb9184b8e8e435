"""Async templates: coroutine methods per action message, run by the runner."""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import TYPE_CHECKING, Any, ClassVar

from .._action import Action
from .._exceptions import NotAwaitedError
from .._report import Report
from .._template import BaseTemplate
from ._markers import batch, idempotent
from ._retry import Verdict
from ._runner import run
from ._settings import DEFAULTS

if TYPE_CHECKING:
    from .._diff import Diff

__all__ = ["AsyncRun", "AsyncTemplate", "batch", "idempotent"]


class AsyncTemplate(BaseTemplate["AsyncRun"]):
    """An async template: ``async def new_students(self, action)`` and so on.

    Settings are class attributes, each overridable per run with
    ``await diff.run(template, concurrency=2, ...)``.  Use it with
    ``await (diff | Template())``.  While and after a run, ``self.diff`` is
    the diff being run (``self.diff.right`` is the destination branch, say, to
    look up what its reader carried) and ``self.report`` the report being
    built (it is there even when the run was cancelled).

    ``observer=`` (a run option: ``await diff.run(template, observer=watch)``)
    is called inline with every :class:`~synctree.aio.Event` of the run:
    ``PLANNED`` (once, with the whole plan), ``STARTED`` (each attempt),
    ``RETRYING``, ``THROTTLED`` and ``FINISHED`` (with the action's
    :class:`~synctree.Result`).  Keep it quick and never raise; the command
    line draws its progress bars and writes its run log from these events.
    The ``synctree`` logger (stdlib ``logging``) records each run phase at
    INFO and each failed action at WARNING.

    A batch method marked ``@batch(size, lazy=True)`` may be given a
    :class:`~synctree.NewActions` for a run of new objects: a sequence whose
    actions are made only when read, and whose ``cells()`` gives the source
    rows as stored, so that a bulk write makes no object per row (what
    ``SQLTemplate.new`` does).  The event's ``plan`` is such a sequence too.
    """

    #: Actions in flight at once.
    concurrency: ClassVar[int] = DEFAULTS.concurrency
    #: At most this many attempts start per second (None: unlimited).
    rate: ClassVar[float | None] = DEFAULTS.rate
    #: Attempts that may start at once after an idle spell.
    burst: ClassVar[int] = DEFAULTS.burst
    #: Attempts after the first, for retryable failures (full-jitter backoff).
    retries: ClassVar[int] = DEFAULTS.retries
    #: Seconds one action may spend waiting out throttles (429 and kin) before it fails.
    max_throttle_time: ClassVar[float] = DEFAULTS.max_throttle_time
    #: Seconds the whole run may spend paused by throttles before it stops (None: no limit).
    max_run_throttle_time: ClassVar[float | None] = DEFAULTS.max_run_throttle_time
    #: Seconds one attempt may take (None: no limit).
    timeout: ClassVar[float | None] = DEFAULTS.timeout

    diff: Diff | None = None
    report: Report | None = None

    async def before_all(self) -> None:
        """Called once before the first action (open clients here)."""

    async def after_all(self, report: Report) -> None:
        """Called once after the last action, even when the run failed or was cancelled."""

    def already_exists(self, action: Action, error: Exception) -> bool:
        """Whether ``error`` on a repeated ``new_`` attempt means the object already exists.

        Override it (for HTTP 409, say) to make creates retryable: an attempt that
        may have reached the server is repeated, and "already exists" counts as done.
        """
        return False

    def classify(self, error: Exception) -> Verdict | None:
        """This destination's judgement of ``error``, or ``None`` to use the built-in rules.

        Override it to say what your API's errors mean: retryable or not, a throttle,
        or ``fatal`` (a failure of the destination as a whole, which stops the run).
        """
        return None

    def _maps_existing(self) -> bool:
        return type(self).already_exists is not AsyncTemplate.already_exists

    def _run(self, diff: Diff, **overrides: Any) -> AsyncRun:
        return AsyncRun(self, diff, overrides)


class AsyncRun(Awaitable[Report]):
    """``diff | AsyncTemplate()``: await it to run and get the :class:`Report`."""

    __slots__ = ("_diff", "_overrides", "_template")

    def __init__(self, template: AsyncTemplate, diff: Diff, overrides: dict[str, Any]) -> None:
        self._template = template
        self._diff = diff
        self._overrides = overrides

    def __await__(self) -> Generator[Any, None, Report]:
        return run(self._template, self._diff, self._overrides).__await__()

    def __getattr__(self, name: str) -> Any:
        raise NotAwaitedError(
            f"an async template's run must be awaited: "
            f"report = await (diff | {type(self._template).__name__}()) "
            f"(got .{name} on the pending run)"
        )

    def __repr__(self) -> str:
        return f"<AsyncRun of {type(self._template).__name__}: await it to get the Report>"

    def __str__(self) -> str:
        self.__getattr__("__str__")
        return ""  # pragma: no cover - __getattr__ raised
