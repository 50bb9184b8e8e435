"""The runner: a plan executed with bounded concurrency, a rate limit and retries.

What a run means (phases, chains, the dependency skip, the safety limit) is
``synctree._plan``, shared with the synchronous template; this module runs it.
Each phase finishes before the next begins; inside a phase, the chains of
different objects run concurrently, a wave at a time.

Concurrency slots and rate tokens are taken per attempt, so a chain sleeping
in backoff holds neither.  On cancellation (or ``fail_fast``), no new attempt
starts; attempts in flight get ``grace`` seconds to finish and be recorded.

A failure the classifier chain (the template's :meth:`AsyncTemplate.classify`,
then :func:`classify`) calls ``fatal`` is about the destination as a whole (a
401, a table it cannot create, a server refusing connections): the run stops
as under ``fail_fast``, once, with ``Report.stopped`` saying why; so does a run
throttled longer than ``max_run_throttle_time`` in all.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled

from .._action import Action, Kind, NewActions, joined, message_of
from .._exceptions import Interrupted
from .._plan import (
    DEPENDENCY_FAILED,
    PlanView,
    Step,
    actions_of,
    check_safety,
    count,
    phases,
    steps,
    waves,
)
from .._report import Outcome, Report, Result, shorten
from .._template import Method, Router, call, outcome_of
from .._util.redact import error_text
from ._events import Event, EventKind
from ._limiter import RateLimiter
from ._markers import batch_size, is_idempotent, is_lazy
from ._retry import Backoff, RetryPolicy, ThrottleBudget, Verdict, classify
from ._settings import Settings

if TYPE_CHECKING:
    from .._diff import Diff
    from ._template import AsyncTemplate

__all__ = ["run"]

#: The ``synctree`` logger: a record per run phase (INFO) and per failed action (WARNING).
logger = logging.getLogger("synctree")
# As the logging HOWTO advises a library: nothing is printed unless the
# application configures logging (no "last resort" lines on stderr).
logger.addHandler(logging.NullHandler())

#: How many actions the plan is computed in between two checkpoints.
_CHECKPOINT_EVERY = 1000

ObjectKey = tuple[str, str]


async def run(template: AsyncTemplate, diff: Diff, overrides: dict[str, Any]) -> Report:
    """Compute the plan, check it against the safety limits, and execute it."""
    settings = Settings.of(template, overrides)
    report = Report()
    template.diff = diff
    template.report = report
    actions = await _compute(diff)
    if not settings.dry_run:
        check_safety(diff, actions, max_deletes=settings.max_deletes, force=settings.force)
    plan = steps(actions, Router(template))
    if logger.isEnabledFor(logging.INFO):
        kinds = count(actions)
        logger.info(
            "plan: %d actions (%s)%s",
            kinds.total(),
            ", ".join(f"{kind} {n}" for kind, n in kinds.items()),
            " (dry run)" if settings.dry_run else "",
        )
    observer = settings.observer
    on_planned = _wanting(observer, EventKind.PLANNED)
    if on_planned is not None:
        planned = PlanView(plan)
        on_planned(Event(EventKind.PLANNED, total=len(planned), plan=planned))
    if settings.dry_run:
        _plan_only(plan, report, observer)
        return report
    await template.before_all()
    execution = _Execution(template, settings, report)
    try:
        await execution.run(plan)
    finally:
        report.throttles = execution.throttling.count
        report.throttle_wait = execution.throttling.waited
        report.finish()
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "done: %d actions in %.2fs (%s)%s",
                len(report),
                report.duration,
                ", ".join(f"{outcome} {n}" for outcome, n in report.totals.items()),
                f"; stopped: {report.stopped}" if report.stopped else "",
            )
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + settings.grace
            await template.after_all(report)
    return report


class _Ended(NamedTuple):
    """The actions of one step or call that ended the same way: recorded compactly."""

    actions: Sequence[Action]
    outcome: Outcome
    error: BaseException | None
    reason: str | None
    attempts: int
    elapsed: float

    def results(self) -> list[Result]:
        """A :class:`Result` per action (for observers)."""
        return [
            Result(a, self.outcome, self.error, self.reason, self.attempts, self.elapsed)
            for a in self.actions
        ]

    def record(self, report: Report) -> None:
        report.record_batch(
            self.actions,
            self.outcome,
            error=self.error,
            reason=self.reason,
            attempts=self.attempts,
            elapsed=self.elapsed,
        )


def _wanting(observer: Callable[[Event], Any] | None, kind: EventKind) -> Any:
    """``observer`` if it takes events of ``kind``, else ``None``.

    An observer may say which kinds it takes with a ``synctree_kinds`` attribute
    (a collection of :class:`EventKind`); the runner then makes no event of the
    other kinds for it (the command's observers, when it shows nothing per
    action, take the plan only).  Without the attribute it takes every kind.
    """
    if observer is None:
        return None
    kinds = getattr(observer, "synctree_kinds", None)
    return observer if kinds is None or kind in kinds else None


def _plan_only(plan: list[Step], report: Report, observer: Callable[[Event], Any] | None) -> None:
    """A dry run: record every action as planned (or not implemented, or failed)."""
    observer = _wanting(observer, EventKind.FINISHED)
    for step in plan:
        if not step.chained:
            outcome = Outcome.PLANNED if step.method else Outcome.NOT_IMPLEMENTED
            same = _Ended(step.actions, outcome, None, None, 0, 0.0)
            same.record(report)
            results = same.results() if observer is not None else []
        else:
            results = [call(step.actions[0], step.method, dry_run=True)]
            report.record(results[0])
        if observer is not None:
            for result in results:
                observer(Event(EventKind.FINISHED, action=result.action, result=result))
    report.finish()


async def _compute(diff: Diff) -> list[Action | NewActions]:
    """Every action of ``diff``, with a checkpoint now and then (a big diff takes a while).

    A run of new objects comes as one :class:`NewActions`, its actions not made.
    """
    actions: list[Action | NewActions] = []
    iterator = diff._items()
    while chunk := list(itertools.islice(iterator, _CHECKPOINT_EVERY)):
        actions += chunk
        await checkpoint()
    return actions


_BETWEEN = "interrupted before its next attempt"


def _batch_results(
    actions: Sequence[Action], returned: object, elapsed: float, attempts: int
) -> list[Result] | _Ended:
    """Per-action results of a batch call that returned ``returned``.

    ``None`` means every action succeeded; otherwise a sequence with one entry
    per action: an exception (that action failed), :class:`Skip`, or anything
    else (succeeded).
    """
    if returned is None or (
        isinstance(returned, list | tuple)
        and len(returned) == len(actions)
        and all(outcome is None for outcome in returned)
    ):
        return _Ended(actions, Outcome.SUCCEEDED, None, None, attempts, elapsed)
    if not isinstance(returned, list | tuple) or len(returned) != len(actions):
        error = TypeError(
            f"a batch method must return None or one outcome per action "
            f"({len(actions)}), got {type(returned).__name__}"
        )
        return _Ended(actions, Outcome.FAILED, error, None, attempts, elapsed)
    out = []
    for action, outcome in zip(actions, returned, strict=True):
        if isinstance(outcome, BaseException):
            out.append(
                Result(action, Outcome.FAILED, error=outcome, attempts=attempts, elapsed=elapsed)
            )
        else:
            out.append(outcome_of(action, outcome, elapsed, attempts))
    return out


def _log_failure(result: Result) -> None:
    action = result.action
    error = error_text(result.error) if result.error is not None else "failed"
    logger.warning(
        "failed: %s %r: %s%s",
        action.message,
        action.idnumber,
        shorten(error),
        f" ({result.reason})" if result.reason else "",
        extra={"synctree_action": action.to_dict(), "synctree_outcome": str(result.outcome)},
    )


class _Unit:
    """What one call handles: one action, or a batch of actions of one message."""

    __slots__ = ("actions", "batched", "method")

    def __init__(
        self, method: Callable[..., Any], batched: bool, actions: Sequence[Action]
    ) -> None:
        self.method = method
        self.batched = batched
        self.actions = actions


def _key(action: Action) -> ObjectKey:
    return action.subbranch, action.idnumber


class _Execution:
    """One run's mutable state: limits, in-flight attempts, failed objects."""

    def __init__(self, template: AsyncTemplate, settings: Settings, report: Report) -> None:
        self.template = template
        self.settings = settings
        self.report = report
        self.observer = settings.observer
        #: The observer if it takes STARTED (FINISHED) events, else None.
        self.on_started = _wanting(self.observer, EventKind.STARTED)
        self.on_finished = _wanting(self.observer, EventKind.FINISHED)
        self.clock = settings.clock or anyio.current_time
        self.sleep = settings.sleep or anyio.sleep
        self.slots = anyio.CapacityLimiter(settings.concurrency)
        self.limiter = RateLimiter(
            settings.rate, burst=settings.burst, clock=settings.clock, sleep=settings.sleep
        )
        self.policy = RetryPolicy(
            retries=settings.retries,
            base=settings.backoff_base,
            cap=settings.backoff_cap,
            max_retry_after=settings.max_retry_after,
            max_throttle_time=settings.max_throttle_time,
        )
        self.throttling = ThrottleBudget(settings.max_run_throttle_time)
        self.failed: set[ObjectKey] = set()
        self.in_flight: set[anyio.CancelScope] = set()
        self.grace_deadline = math.inf
        self.stopped = False
        self.stop_reason = "fail_fast"
        self.units_scope: anyio.CancelScope | None = None

    async def run(self, plan: list[Step]) -> None:
        for phase in phases(plan):
            if self.stopped:
                break
            first = phase[0].actions  # a run's first action not made for this
            kind = first.kind if isinstance(first, NewActions) else first[0].kind
            direction = "removals" if kind in (Kind.REMOVE, Kind.OLD) else "changes"
            logger.info(
                "phase: %s %s, %d actions",
                first.subbranch if isinstance(first, NewActions) else first[0].subbranch,
                direction,
                sum(len(step.actions) for step in phase),
            )
            for wave in waves(phase):
                if self.stopped:
                    break
                await self._run_wave(wave)
        if self.stopped:
            recorded = {id(result.action) for result in self.report.results}
            for action in actions_of(plan):
                if id(action) not in recorded:
                    self._record(
                        Result(action, Outcome.SKIPPED, reason=self.stop_reason, attempts=0)
                    )

    def _units(self, wave: list[Step]) -> list[_Unit]:
        """Record what needs no call; group the rest into single and batched calls."""
        units: list[_Unit] = []
        batches: dict[str, _Unit] = {}
        failed = self.failed
        template = self.template

        def batched(method: Method, size: int, actions: Sequence[Action]) -> None:
            """Add ``actions`` (one message) to the open batch, then to new ones.

            A :class:`NewActions` stays one (sliced) for a ``@batch(lazy=True)``
            method; any other method gets lists.
            """
            if not isinstance(actions, list) and not is_lazy(method):
                actions = list(actions)
            message = message_of(actions)
            unit = batches.get(message)
            start = 0
            if unit is not None and len(unit.actions) < size:
                start = size - len(unit.actions)
                unit.actions = joined(unit.actions, actions[:start])
            for at in range(start, len(actions), size):
                unit = batches[message] = _Unit(method, True, actions[at : at + size])
                units.append(unit)

        for step in wave:
            method = step.method
            if not step.chained:
                if method is None:
                    self._finished(_Ended(step.actions, Outcome.NOT_IMPLEMENTED, None, None, 0, 0))
                elif (size := batch_size(method, template)) is None:
                    units += [_Unit(method, False, [action]) for action in step.actions]
                else:
                    batched(method, size, step.actions)
                continue
            action = step.actions[0]
            if failed and _key(action) in failed:
                self._record(Result(action, Outcome.SKIPPED, reason=DEPENDENCY_FAILED, attempts=0))
            elif action.kind is Kind.ERROR or method is None:
                self._finished([call(action, method)])
            elif (size := batch_size(method, template)) is None:
                units.append(_Unit(method, False, [action]))
            else:
                batched(method, size, [action])
        return units

    async def _run_wave(self, wave: list[Step]) -> None:
        units = self._units(wave)
        # Units waiting to run are not tasks yet; a few more tasks than slots keep
        # every slot busy while some units sleep in backoff.
        room = anyio.Semaphore(self.settings.concurrency * 4)
        done = False

        async def guard() -> None:
            """Sleeps until the run is cancelled, then gives in-flight attempts their grace."""
            try:
                await anyio.sleep_forever()
            finally:
                if not done:
                    self._start_grace()

        async with anyio.create_task_group() as guarded:
            guarded.start_soon(guard)
            async with anyio.create_task_group() as group:
                self.units_scope = group.cancel_scope
                for unit in units:
                    try:
                        room.acquire_nowait()
                    except anyio.WouldBlock:
                        await room.acquire()
                    group.start_soon(self._unit, unit, room)
            done = True
            guarded.cancel_scope.cancel()

    def _start_grace(self) -> None:
        if self.grace_deadline == math.inf:
            self.grace_deadline = anyio.current_time() + self.settings.grace
        for scope in self.in_flight:
            scope.deadline = min(scope.deadline, self.grace_deadline)

    def stop(self) -> None:
        """``fail_fast``: start no new attempt, let in-flight ones finish."""
        if self.stopped:
            return
        self.stopped = True
        self._start_grace()
        if self.units_scope is not None:
            self.units_scope.cancel()

    async def _unit(self, unit: _Unit, room: anyio.Semaphore) -> None:
        try:
            self._finished(await self._attempts(unit))
        finally:
            room.release()

    def _finished(self, done: list[Result] | _Ended) -> None:
        """Record results; a failure fails its object (and stops the run under fail_fast)."""
        failed = False
        if isinstance(done, _Ended):
            if done.outcome is Outcome.FAILED:
                self.failed.update(map(_key, done.actions))
                failed = True
            done.record(self.report)
        else:
            for result in done:
                if result.outcome is Outcome.FAILED:
                    self.failed.add(_key(result.action))
                    failed = True
                self.report.record(result)
        if self.on_finished is not None:
            self._emit_finished(done.results() if isinstance(done, _Ended) else done)
        if failed and logger.isEnabledFor(logging.WARNING):
            for result in done.results() if isinstance(done, _Ended) else done:
                if result.outcome is Outcome.FAILED:
                    _log_failure(result)
        if failed and self.settings.fail_fast and not self.stopped:
            self.stop()

    def halt(self, why: str, error: BaseException | None) -> None:
        """Stop the run for a failure of the destination as a whole: said once, in the report."""
        if self.stopped:
            return
        self.report.stopped = why
        self.report.stop_error = error
        logger.error("the run stopped: %s", why)
        self.stop_reason = f"not run: the run stopped ({shorten(why, 200)})"
        self.stop()

    def _emit_finished(self, results: list[Result]) -> None:
        observer = self.on_finished
        if observer is not None:
            for result in results:
                observer(Event(EventKind.FINISHED, action=result.action, result=result))

    def _emit(self, event: Event) -> None:
        observer = _wanting(self.observer, event.kind)
        if observer is not None:
            observer(event)

    def _record(self, result: Result) -> None:
        self.report.record(result)
        if self.on_finished is not None:
            self.on_finished(Event(EventKind.FINISHED, action=result.action, result=result))

    async def _attempts(self, unit: _Unit) -> list[Result] | _Ended:
        """Call until it succeeds, fails for good, or runs out of retries; a result per action."""
        started = time.perf_counter()
        attempt = 0
        error: Exception | None = None
        if not unit.batched:
            first = unit.actions[0]
        backoff = Backoff(self.policy, self.settings.random, self.throttling)

        def results(outcome: Outcome, reason: str | None = None) -> _Ended:
            elapsed = time.perf_counter() - started
            return _Ended(unit.actions, outcome, error, reason, attempt, elapsed)

        def interrupted_between_attempts() -> None:
            # An attempt already made may have had its effect: record it.  A unit
            # never begun is left out, as is everything after fail_fast (it is
            # recorded as skipped at the end).
            if attempt and not self.stopped:
                same = results(Outcome.FAILED, _BETWEEN)
                self.failed.update(map(_key, same.actions))
                same.record(self.report)
                self._emit_finished(same.results())

        while True:
            try:
                await self._acquire()
            except BaseException:
                interrupted_between_attempts()
                raise
            if self.stopped:  # fail_fast fired while we waited for the slot
                self.slots.release()
                return results(Outcome.SKIPPED, self.stop_reason)
            attempt += 1
            error, returned, interrupted = await self._attempt(unit, attempt)
            if interrupted:
                error = Interrupted("the run was cancelled while this call was in flight")
                return results(Outcome.FAILED, "interrupted: its effect is unknown")
            if error is None:
                elapsed = time.perf_counter() - started
                if not unit.batched:
                    return [outcome_of(first, returned, elapsed, attempt)]
                return _batch_results(unit.actions, returned, elapsed, attempt)
            verdict = self._classify(error)
            first = unit.actions[0]
            if attempt > 1 and first.kind is Kind.NEW and self._exists(first, error):
                return results(
                    Outcome.SUCCEEDED, "already existed (an earlier attempt reached the server)"
                )
            why_not = self._unsafe_to_repeat(first, unit.method, verdict)
            delay = None if why_not else backoff.after(verdict)
            if delay is None:
                why = why_not or backoff.stopped_because
                if backoff.run_exhausted:
                    self.halt(f"{why}; stopping", error)
                elif verdict.fatal and not why_not:
                    self.halt(
                        f"{first.message} {first.idnumber!r} failed with "
                        f"{verdict.reason or type(error).__name__}, a failure of the "
                        f"destination as a whole, not of this action; the actions "
                        f"not yet run were skipped",
                        error,
                    )
                return results(Outcome.FAILED, why)
            reason = verdict.reason or type(error).__name__
            if verdict.throttle:
                self.limiter.pause_until(self.throttling.pause(self.clock(), delay))
                self._emit(Event(EventKind.THROTTLED, action=first, delay=delay, reason=reason))
            for action in unit.actions:
                self._emit(
                    Event(
                        EventKind.RETRYING,
                        action=action,
                        attempt=attempt,
                        delay=delay,
                        reason=reason,
                    )
                )
            if not verdict.throttle and delay > 0:
                try:
                    await self.sleep(delay)
                except BaseException:
                    interrupted_between_attempts()
                    raise

    async def _acquire(self) -> None:
        """Take a concurrency slot, then a rate token (the slot is released by :meth:`_attempt`)."""
        # Fast paths: acquire_nowait() skips the shielded checkpoint that
        # acquire() makes, a large share of the per-action cost.
        await checkpoint_if_cancelled()
        try:
            self.slots.acquire_nowait()
        except anyio.WouldBlock:
            await self.slots.acquire()
        try:
            if self.limiter.rate is not None or self.limiter.paused_until > -math.inf:
                await self.limiter.acquire()
        except BaseException:
            self.slots.release()
            raise

    async def _attempt(self, unit: _Unit, attempt: int) -> tuple[Exception | None, Any, bool]:
        """One call in the slot :meth:`_acquire` took: ``(error, returned, interrupted)``."""
        try:
            observer = self.on_started
            if observer is not None:
                for action in unit.actions:
                    observer(Event(EventKind.STARTED, action=action, attempt=attempt))
            timeout = self.settings.timeout
            with anyio.CancelScope(shield=True) as scope:
                scope.deadline = self.grace_deadline
                self.in_flight.add(scope)
                try:
                    with anyio.fail_after(timeout) if timeout is not None else nullcontext():
                        returned = unit.method(unit.actions if unit.batched else unit.actions[0])
                        if inspect.isawaitable(returned):
                            returned = await returned
                except Exception as exc:
                    return exc, None, False
                finally:
                    self.in_flight.discard(scope)
            return None, returned, scope.cancelled_caught
        finally:
            self.slots.release()

    def _classify(self, error: Exception) -> Verdict:
        """The classifier chain: the template's (its connector's) judgement, then the built-in."""
        try:
            verdict = self.template.classify(error)
        except Exception:  # a broken hook must not hide the error it was asked about
            verdict = None
        return verdict if isinstance(verdict, Verdict) else classify(error)

    def _exists(self, action: Action, error: Exception) -> bool:
        try:
            return bool(self.template.already_exists(action, error))
        except Exception:
            return False

    def _unsafe_to_repeat(
        self, action: Action, method: Callable[[Action], Any], verdict: Verdict
    ) -> str:
        """Why a failed create must not be repeated, or ``""`` when it may be."""
        if (
            verdict.retryable
            and action.kind is Kind.NEW
            and verdict.sent != "no"
            and not is_idempotent(method)
            and not self.template._maps_existing()
        ):
            return (
                "not retried: the create may have reached the server; mark the method "
                "@idempotent or override already_exists() to allow retries"
            )
        return ""
