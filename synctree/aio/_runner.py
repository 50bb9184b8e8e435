"""The runner: a plan executed with bounded concurrency, a rate limit and retries.

The plan runs in *phases* (one per subbranch and direction, in the order the
diff gives them: creates and updates in declared order, removals in reverse),
each phase finishing before the next begins.  Inside a phase, the actions on
one object form a *chain* run in order, one at a time; chains run
concurrently.  A failed action fails its object: the rest of that object's
actions, in this phase and later ones, are skipped ("dependency failed")
while unrelated work goes on.

Concurrency slots and rate tokens are taken per attempt, so a chain sleeping
in backoff holds neither.  On cancellation (or ``fail_fast``), no new attempt
starts; attempts in flight get ``grace`` seconds to finish and be recorded.
"""

from __future__ import annotations

import inspect
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import anyio

from .._action import Action, Kind
from .._exceptions import Interrupted, SafetyLimitExceeded
from .._report import Outcome, Report, Result
from .._template import call, outcome_of, route
from ._events import Event, EventKind
from ._limiter import RateLimiter
from ._retry import RetryPolicy, Verdict, classify
from ._settings import Settings

if TYPE_CHECKING:
    from .._diff import Diff
    from ._template import AsyncTemplate

__all__ = ["check_safety", "run"]

Step = tuple[Action, Callable[[Action], Any] | None]
ObjectKey = tuple[str, str]


async def run(template: AsyncTemplate, diff: Diff, overrides: dict[str, Any]) -> Report:
    """Compute the plan, check it against the safety limits, and execute it."""
    settings = Settings.of(template, overrides)
    report = Report()
    template.report = report
    actions = [action async for action in diff]
    if not settings.dry_run:
        check_safety(diff, actions, settings)
    steps = list(route(actions, template))
    emit = settings.observer or _ignore
    emit(Event(EventKind.PLANNED, total=len(steps)))
    if settings.dry_run:
        for action, method in steps:
            result = call(action, method, dry_run=True)
            report.record(result)
            emit(Event(EventKind.FINISHED, action=action, result=result))
        report.finish()
        return report
    await template.before_all()
    try:
        await _Execution(template, settings, report).run(steps)
    finally:
        report.finish()
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + settings.grace
            await template.after_all(report)
    return report


def check_safety(diff: Diff, actions: list[Action], settings: Settings) -> None:
    """Raise :class:`SafetyLimitExceeded` if the plan removes too much of a subbranch."""
    if settings.force:
        return
    olds = Counter(action.subbranch for action in actions if action.kind is Kind.OLD)
    for name, deletes in olds.items():
        total = len(diff.right[name])
        if len(diff.left[name]) == 0:
            raise SafetyLimitExceeded(
                f"{diff.left.name} {name} is empty but {diff.right.name} {name} has {total}: "
                f"refusing to remove all of them (an empty export?); force=True to allow",
                subbranch=name,
                deletes=deletes,
                total=total,
            )
        allowed = settings.deletes_allowed(total)
        if deletes > allowed:
            raise SafetyLimitExceeded(
                f"the plan removes {deletes} of {total} {name} from {diff.right.name}, more "
                f"than max_deletes={settings.max_deletes!r} allows ({math.floor(allowed)}); "
                f"nothing was changed; force=True to allow",
                subbranch=name,
                deletes=deletes,
                total=total,
            )


def _ignore(event: Event) -> None:
    pass


def _phases(steps: list[Step]) -> Iterator[list[Step]]:
    """Consecutive steps of one subbranch and direction."""
    phase: list[Step] = []
    key: tuple[str, bool] | None = None
    for step in steps:
        action = step[0]
        step_key = (action.subbranch, action.kind in (Kind.REMOVE, Kind.OLD))
        if step_key != key and phase:
            yield phase
            phase = []
        key = step_key
        phase.append(step)
    if phase:
        yield phase


class _Execution:
    """One run's mutable state: limits, in-flight attempts, failed objects."""

    def __init__(self, template: AsyncTemplate, settings: Settings, report: Report) -> None:
        self.template = template
        self.settings = settings
        self.report = report
        self.emit = settings.observer or _ignore
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
        )
        self.failed: set[ObjectKey] = set()
        self.in_flight: set[anyio.CancelScope] = set()
        self.grace_deadline = math.inf
        self.stopped = False
        self.chains_scope: anyio.CancelScope | None = None
        self.recorded: set[int] = set()

    async def run(self, steps: list[Step]) -> None:
        for phase in _phases(steps):
            if self.stopped:
                break
            await self._run_phase(phase)
        if self.stopped:
            for action, _ in steps:
                if id(action) not in self.recorded:
                    self._record(Result(action, Outcome.SKIPPED, reason="fail_fast", attempts=0))

    async def _run_phase(self, phase: list[Step]) -> None:
        chains: dict[ObjectKey, list[Step]] = {}
        for step in phase:
            chains.setdefault((step[0].subbranch, step[0].idnumber), []).append(step)
        # Chains waiting to run are not tasks yet; a few more than the slots keeps
        # every slot busy while some chains sleep in backoff.
        room = anyio.Semaphore(self.settings.concurrency * 4)
        async with anyio.create_task_group() as guarded:
            guarded.start_soon(self._guard)
            async with anyio.create_task_group() as group:
                self.chains_scope = group.cancel_scope
                for key, chain in chains.items():
                    await room.acquire()
                    group.start_soon(self._chain, key, chain, room)
            guarded.cancel_scope.cancel()

    async def _guard(self) -> None:
        """Sleeps until the run is cancelled, then gives in-flight attempts their grace."""
        try:
            await anyio.sleep_forever()
        finally:
            self._start_grace()

    def _start_grace(self) -> None:
        if self.grace_deadline == math.inf:
            self.grace_deadline = anyio.current_time() + self.settings.grace
        for scope in self.in_flight:
            scope.deadline = min(scope.deadline, self.grace_deadline)

    def stop(self) -> None:
        """``fail_fast``: start no new attempt, let in-flight ones finish."""
        self.stopped = True
        self._start_grace()
        if self.chains_scope is not None:
            self.chains_scope.cancel()

    async def _chain(self, key: ObjectKey, chain: list[Step], room: anyio.Semaphore) -> None:
        try:
            for action, method in chain:
                if key in self.failed:
                    self._record(
                        Result(action, Outcome.SKIPPED, reason="dependency failed", attempts=0)
                    )
                    continue
                if action.kind is Kind.ERROR or method is None:
                    result = call(action, method)
                else:
                    result = await self._attempts(action, method)
                if result.outcome is Outcome.FAILED:
                    self.failed.add(key)
                self._record(result)
                if result.outcome is Outcome.FAILED and self.settings.fail_fast:
                    self.stop()
        finally:
            room.release()

    def _record(self, result: Result) -> None:
        self.recorded.add(id(result.action))
        self.report.record(result)
        self.emit(Event(EventKind.FINISHED, action=result.action, result=result))

    async def _attempts(self, action: Action, method: Callable[[Action], Any]) -> Result:
        """Run ``method(action)`` until it succeeds, fails for good, or runs out of retries."""
        started = time.perf_counter()
        attempt = 0
        error: Exception | None = None

        def result(outcome: Outcome, reason: str | None = None) -> Result:
            return Result(
                action, outcome, error=error, reason=reason, attempts=attempt,
                elapsed=time.perf_counter() - started,
            )  # fmt: skip

        while True:
            try:
                await self._acquire()
            except BaseException:
                # Cancelled while waiting for a slot: an attempt already made is
                # recorded (its effect may be real), a chain never begun is not.
                if attempt and not self.stopped:
                    self._record(result(Outcome.FAILED, "interrupted before its next attempt"))
                raise
            if self.stopped:  # fail_fast fired while we waited for the slot
                self.slots.release()
                return result(Outcome.SKIPPED, "fail_fast")
            attempt += 1
            error, returned, interrupted = await self._attempt(action, method, attempt)
            if interrupted:
                error = Interrupted("the run was cancelled while this call was in flight")
                return result(Outcome.FAILED, "interrupted: its effect is unknown")
            if error is None:
                return outcome_of(action, returned, time.perf_counter() - started, attempt)
            verdict = classify(error)
            if attempt > 1 and action.kind is Kind.NEW and self._exists(action, error):
                return result(
                    Outcome.SUCCEEDED, "already existed (an earlier attempt reached the server)"
                )
            delay, why_not = self._retry_delay(action, method, verdict, attempt)
            if delay is None:
                return result(Outcome.FAILED, why_not)
            reason = verdict.reason or type(error).__name__
            if verdict.throttle:
                self.limiter.pause_until(self.clock() + delay)
                self.emit(Event(EventKind.THROTTLED, action=action, delay=delay, reason=reason))
            self.emit(
                Event(
                    EventKind.RETRYING, action=action, attempt=attempt, delay=delay, reason=reason
                )
            )
            if not verdict.throttle and delay > 0:
                try:
                    await self.sleep(delay)
                except BaseException:
                    if not self.stopped:
                        self._record(result(Outcome.FAILED, "interrupted before its next attempt"))
                    raise

    async def _acquire(self) -> None:
        """Take a concurrency slot, then a rate token (released by :meth:`_attempt`)."""
        await self.slots.acquire()
        try:
            if self.limiter.rate is not None or self.limiter.paused_until > -math.inf:
                await self.limiter.acquire()
        except BaseException:
            self.slots.release()
            raise

    async def _attempt(
        self, action: Action, method: Callable[[Action], Any], attempt: int
    ) -> tuple[Exception | None, Any, bool]:
        """One attempt in the slot :meth:`_acquire` took: ``(error, returned, interrupted)``."""
        try:
            self.emit(Event(EventKind.STARTED, action=action, attempt=attempt))
            timeout = self.settings.timeout
            with anyio.CancelScope(shield=True) as scope:
                scope.deadline = self.grace_deadline
                self.in_flight.add(scope)
                try:
                    with anyio.fail_after(timeout) if timeout is not None else nullcontext():
                        returned = method(action)
                        if inspect.isawaitable(returned):
                            returned = await returned
                except Exception as exc:
                    return exc, None, False
                finally:
                    self.in_flight.discard(scope)
            return None, returned, scope.cancelled_caught
        finally:
            self.slots.release()

    def _exists(self, action: Action, error: Exception) -> bool:
        try:
            return bool(self.template.already_exists(action, error))
        except Exception:
            return False

    def _retry_delay(
        self,
        action: Action,
        method: Callable[[Action], Any],
        verdict: Verdict,
        attempt: int,
    ) -> tuple[float | None, str]:
        """Seconds to wait before the next attempt, or ``(None, why not)``."""
        if not verdict.retryable:
            return None, "not retryable"
        if (
            action.kind is Kind.NEW
            and verdict.sent != "no"
            and not _is_idempotent(method)
            and not self.template._maps_existing()
        ):
            return None, (
                "not retried: the create may have reached the server; mark the method "
                "@idempotent or override already_exists() to allow retries"
            )
        delay = self.policy.delay(attempt, verdict.retry_after, self.settings.random)
        if delay is None:
            if attempt > self.policy.retries:
                return None, f"gave up after {attempt} attempts"
            return (
                None,
                f"the server asked to wait {verdict.retry_after}s, more than max_retry_after",
            )
        return delay, ""


def _is_idempotent(method: Callable[[Action], Any]) -> bool:
    return bool(getattr(method, "__synctree_idempotent__", False))
