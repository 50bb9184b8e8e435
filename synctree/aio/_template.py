"""Async templates: coroutine methods per action message, run by the runner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .._action import Action
from .._exceptions import NotAwaitedError
from .._report import Report
from .._template import _Template
from ._retry import Verdict

if TYPE_CHECKING:
    from .._diff import Diff

__all__ = ["AsyncRun", "AsyncTemplate", "batch", "batch_size", "idempotent"]

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


class AsyncTemplate(_Template):
    """An async template: ``async def new_students(self, action)`` and so on.

    Settings are class attributes, each overridable per run with
    ``await diff.run(template, concurrency=2, ...)``.  Use it with
    ``await (diff | Template())``.  While and after a run, ``self.diff`` is
    the diff being run (``self.diff.right`` is the destination branch, say, to
    look up what its reader carried) and ``self.report`` the report being
    built (it is there even when the run was cancelled).
    """

    #: Actions in flight at once.
    concurrency: ClassVar[int] = 8
    #: At most this many attempts start per second (None: unlimited).
    rate: ClassVar[float | None] = None
    #: Attempts that may start at once after an idle spell.
    burst: ClassVar[int] = 1
    #: Attempts after the first, for retryable failures (full-jitter backoff).
    retries: ClassVar[int] = 5
    #: Seconds one action may spend waiting out throttles (429 and kin) before it fails.
    max_throttle_time: ClassVar[float] = 300.0
    #: Seconds the whole run may spend paused by throttles before it stops (None: no limit).
    max_run_throttle_time: ClassVar[float | None] = 3600.0
    #: Seconds one attempt may take (None: no limit).
    timeout: ClassVar[float | None] = None
    #: Most removals (``old_``) per destination subbranch: a count, ``'N%'`` or None.
    max_deletes: ClassVar[int | str | None] = "10%"
    #: Compute and report the plan, change nothing.
    dry_run: ClassVar[bool] = False
    #: Stop starting new actions after the first failure.
    fail_fast: ClassVar[bool] = False

    diff: Diff | None = None
    report: Report | None = None

    async def before_all(self) -> None:  # type: ignore[override]
        """Called once before the first action (open clients here)."""

    async def after_all(self, report: Report) -> None:  # type: ignore[override]
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
        from ._runner import run

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
