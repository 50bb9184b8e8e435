"""The report of a run: every action's outcome, counts, failures and time taken."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import operator
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ._action import Action, NewActions, message_of
from ._util.redact import error_text, redact

__all__ = ["Outcome", "Report", "Result", "group_failures", "shorten"]

#: How much of an error's text a summary line shows.
SHOWN_CHARS = 300


class Outcome(enum.StrEnum):
    """How one action ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_IMPLEMENTED = "not implemented"
    PLANNED = "planned"  # a dry run: computed, not executed


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """One action's outcome; ``error`` is the exception of a failure."""

    action: Action
    outcome: Outcome
    error: BaseException | None = None
    reason: str | None = None
    attempts: int = 1
    elapsed: float = 0.0

    @property
    def traceback(self) -> str | None:
        """The failure's formatted traceback, if it has one."""
        if self.error is None or self.error.__traceback__ is None:
            return None
        return redact("".join(traceback.format_exception(self.error)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (the action's set fields, outcome, error text)."""
        out = self.action.to_dict()
        out["outcome"] = str(self.outcome)
        if self.error is not None:
            out["error"] = error_text(self.error)
        if self.reason is not None:
            out["reason"] = self.reason
        out["attempts"] = self.attempts
        out["elapsed"] = round(self.elapsed, 6)
        return out


_subbranch = operator.attrgetter("subbranch")


class _Same:
    """The results of several actions of one message that ended the same way, kept compact.

    A batch call of thousands of actions records one of these rather than a
    :class:`Result` each; :attr:`Report.results` makes the Results on demand.
    """

    __slots__ = ("actions", "attempts", "elapsed", "error", "message", "outcome", "reason")

    def __init__(
        self,
        actions: Sequence[Action],
        outcome: Outcome,
        error: BaseException | None,
        reason: str | None,
        attempts: int,
        elapsed: float,
    ) -> None:
        self.actions = actions  # a NewActions stays one: its actions made when read
        self.message = message_of(actions)
        self.outcome = outcome
        self.error = error
        self.reason = reason
        self.attempts = attempts
        self.elapsed = elapsed

    def results(self) -> list[Result]:
        outcome, error, reason = self.outcome, self.error, self.reason
        attempts, elapsed = self.attempts, self.elapsed
        return [Result(a, outcome, error, reason, attempts, elapsed) for a in self.actions]


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` on one line, cut to about ``limit`` characters, saying how much was left out."""
    if len(text) > limit or "\n" in text:
        text = " ".join(text[: limit * 4].split()) + text[limit * 4 :]
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def group_failures(failures: list[Result]) -> list[tuple[str, list[Result]]]:
    """Failures that read alike (message, error text, reason) together, first seen first.

    Each group is ``(error text, results)``: a summary prints one line per group
    ("300 × new_users ...") instead of one per action.
    """
    texts: dict[int, str] = {}  # one error object is often shared by a batch's results
    groups: dict[tuple[str, str, str | None], tuple[str, list[Result]]] = {}
    for result in failures:
        error = result.error
        if error is None:
            text = "None"
        else:
            text = texts.get(id(error)) or texts.setdefault(id(error), error_text(error))
        key = (result.action.message, text, result.reason)
        group = groups.get(key)
        if group is None:
            groups[key] = (text, [result])
        else:
            group[1].append(result)
    return list(groups.values())


def _failure_line(text: str, results: list[Result], *, with_value: bool) -> str:
    """One summary line for a group of failures that read alike."""
    first = results[0]
    action = first.action
    if with_value:
        what = f" {action.attribute}={action.value!r}" if action.attribute else ""
    else:
        what = f" {action.attribute}" if action.attribute else ""
    reason = f" ({shorten(first.reason)})" if first.reason else ""
    if len(results) == 1:
        return f"{action.message} {action.idnumber!r}{what}: {shorten(text)}{reason}"
    keys = ", ".join(repr(r.action.idnumber) for r in results[:3])
    more = f", … {len(results) - 3} more" if len(results) > 3 else ""
    return f"{len(results)} × {action.message} ({keys}{more}){what}: {shorten(text)}{reason}"


def failure_lines(report: Report, *, with_value: bool = False) -> list[str]:
    """The report's failures as summary lines, alike ones grouped with a count."""
    return [
        _failure_line(text, results, with_value=with_value)
        for text, results in group_failures(report.failures)
    ]


class Report:
    """What a run did: one :class:`Result` per action, in the order they finished.

    ``stopped`` says why the run stopped early (a failure of the destination as a
    whole, or the run's throttle budget spent), ``None`` when it did not;
    ``throttles`` and ``throttle_wait`` count the throttling answers and the seconds
    the run was paused by them.
    """

    def __init__(self) -> None:
        self.stopped: str | None = None
        self.stop_error: BaseException | None = None
        self.throttles = 0
        self.throttle_wait = 0.0
        self._entries: list[Result | _Same] = []
        self._results: list[Result] | None = []
        self.started_at = datetime.datetime.now(datetime.UTC)
        self._start = time.perf_counter()
        self._end: float | None = None

    @property
    def results(self) -> list[Result]:
        """One :class:`Result` per action, in the order they finished."""
        if self._results is None:
            results: list[Result] = []
            for entry in self._entries:
                if isinstance(entry, _Same):
                    results += entry.results()
                else:
                    results.append(entry)
            self._results = results
        return self._results

    def record(self, result: Result) -> None:
        """Add one action's result."""
        self._add(result)

    def record_batch(
        self,
        actions: Sequence[Action],
        outcome: Outcome,
        *,
        error: BaseException | None = None,
        reason: str | None = None,
        attempts: int = 1,
        elapsed: float = 0.0,
    ) -> None:
        """Add many actions that ended the same way, kept compact.

        For a batch call of thousands of actions: one entry, not a
        :class:`Result` each (:attr:`results` makes those when read).  Actions
        of several messages are recorded one by one.
        """
        if not actions:
            return
        message = message_of(actions)
        if isinstance(actions, NewActions) or all(action.message == message for action in actions):
            self._add(_Same(actions, outcome, error, reason, attempts, elapsed))
            return
        for action in actions:
            self._add(Result(action, outcome, error, reason, attempts, elapsed))

    def _add(self, entry: Result | _Same) -> None:
        self._entries.append(entry)
        if self._results is None:
            return
        if isinstance(entry, _Same):
            self._results = None  # made again when read
        else:
            self._results.append(entry)

    def finish(self) -> None:
        """Stop the clock (called by the runner at the end of a run)."""
        self._end = time.perf_counter()

    @property
    def duration(self) -> float:
        """Seconds from the start of the run to its end (or to now, while running)."""
        end = self._end if self._end is not None else time.perf_counter()
        return end - self._start

    @property
    def counts(self) -> dict[str, Counter[Outcome]]:
        """``{message: Counter({outcome: n})}``, messages in first-seen order."""
        counts: dict[str, Counter[Outcome]] = {}
        for entry in self._entries:
            if isinstance(entry, _Same):
                counter = counts.setdefault(entry.message, Counter())
                counter[entry.outcome] += len(entry.actions)
            else:
                counts.setdefault(entry.action.message, Counter())[entry.outcome] += 1
        return counts

    def _subbranch_counts(self) -> dict[str, Counter[str]]:
        """``{subbranch: Counter({outcome text: n})}``, subbranches in first-seen order
        (what counting :attr:`results` gives, without making a Result per action)."""
        counts: dict[str, Counter[str]] = {}
        for entry in self._entries:
            if isinstance(entry, _Same):
                outcome = str(entry.outcome)
                actions = entry.actions
                if isinstance(actions, NewActions):
                    counts.setdefault(actions.subbranch, Counter())[outcome] += len(actions)
                    continue
                for name, n in Counter(map(_subbranch, actions)).items():
                    counts.setdefault(name, Counter())[outcome] += n
            else:
                counts.setdefault(entry.action.subbranch, Counter())[str(entry.outcome)] += 1
        return counts

    @property
    def totals(self) -> Counter[Outcome]:
        """How many actions ended each way."""
        totals: Counter[Outcome] = Counter()
        for counter in self.counts.values():
            totals.update(counter)
        return totals

    @property
    def failures(self) -> list[Result]:
        """The failed results, with their exceptions."""
        if not any(entry.outcome is Outcome.FAILED for entry in self._entries):
            return []
        return [r for r in self.results if r.outcome is Outcome.FAILED]

    @property
    def ok(self) -> bool:
        """True when no action failed (and the run was not stopped)."""
        return self.stopped is None and not any(
            entry.outcome is Outcome.FAILED for entry in self._entries
        )

    def __len__(self) -> int:
        return sum(len(e.actions) if isinstance(e, _Same) else 1 for e in self._entries)

    def __repr__(self) -> str:
        totals = ", ".join(f"{o}={n}" for o, n in sorted(self.totals.items()))
        return f"<Report {len(self)} actions ({totals}) in {self.duration:.3f}s>"

    def __str__(self) -> str:
        columns = [o for o in Outcome if any(o in c for c in self.counts.values())]
        header = ["message", *map(str, columns)]
        rows = [
            [message, *(str(counter[o]) for o in columns)]
            for message, counter in self.counts.items()
        ]
        rows.append(["total", *(str(self.totals[o]) for o in columns)])
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

        def line(row: list[str]) -> str:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            return "  ".join(cells).rstrip()

        out = [line(header), line(["-" * w for w in widths]), *map(line, rows[:-1])]
        out += [line(["-" * w for w in widths]), line(rows[-1])]
        out.append(f"{len(self)} actions in {self.duration:.2f}s")
        if self.throttles:
            out.append(f"throttled {self.throttles} times, paused {self.throttle_wait:.1f}s")
        if self.stopped is not None:
            out.append(f"STOPPED {shorten(self.stopped)}")
        out += [f"FAILED {line}" for line in failure_lines(self)]
        return "\n".join(out) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Counts, totals, failures and timing as a JSON-friendly dict."""
        return {
            "started_at": self.started_at.isoformat(),
            "duration": round(self.duration, 6),
            "ok": self.ok,
            "totals": {str(o): n for o, n in self.totals.items()},
            "counts": {m: {str(o): n for o, n in c.items()} for m, c in self.counts.items()},
            "failures": [r.to_dict() for r in self.failures],
            "stopped": self.stopped,
            "throttles": {"count": self.throttles, "seconds": round(self.throttle_wait, 6)},
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)
