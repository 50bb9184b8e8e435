"""The run log: an audit trail of ``synctree run`` as JSON lines, appended, never overwritten.

One run writes, in order (every line has ``"type"`` and the run's id as ``"run"``)::

    {"type": "run", "run": "…", "started": "2026-12-02T01:00:00+00:00", "config": "…",
     "version": "…", "dry_run": false, "planned": 3, "counts": {"students": {"new": 3}},
     "notes": {"courses": ["source courses: not in this export; left untouched"]}}
    {"type": "action", "run": "…", "time": "…", "start": 0.012, "end": 0.020,
     "calls": [0.012], "subbranch": "students", "idnumber": "1", "message": "new_students",
     "kind": "new", "outcome": "succeeded", "attempts": 1, "elapsed": 0.008,
     "record": {…}}                                  # creates and removals: the whole record
    {"type": "retry", "run": "…", "t": 0.5, "idnumber": "2", "message": "…", "attempt": 1,
     "delay": 1.0, "reason": "HTTP 503"}
    {"type": "throttle", "run": "…", "t": 0.6, "delay": 2.0, "reason": "HTTP 429"}
    {"type": "end", "run": "…", "ended": "…", "duration": 1.5, "exit": 0, "ok": true,
     "totals": {…}, "counts": {"students": {"succeeded": 3}}, "not_started": 0, …}

Updates carry ``"changes": {"grade": {"old": 7, "new": 8}}``; adds and removes their
``"attribute"`` and ``"value"``; failures ``"error"`` and, for an HTTP error, the
server's ``"status"`` and ``"response"`` (its body, cut to :data:`BODY_CHARS`).
Times ``t``, ``start``, ``end`` and ``calls`` (each attempt's start) are seconds since
the run began.  Attributes whose names look like secrets (password, token...) and
``_``-attributes are written as ``"***"``; then the whole line goes through the
config's redactor, like everything the command writes.

:func:`read_runs` reads a log back (for ``synctree log`` and ``synctree report``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from synctree._util.redact import MASK, error_text, redact_body

__all__ = [
    "BODY_CHARS",
    "Run",
    "RunLog",
    "log_file_for",
    "mask_record",
    "prune",
    "read_runs",
    "response_of",
]

#: How much of a server's response body a log line (and a failure line) keeps.
BODY_CHARS = 2000
#: Attribute names whose values are secrets in any record.
SECRET_NAME = re.compile(
    r"pass(word)?|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|credential|auth", re.I
)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with secret-looking and ``_``-attributes masked."""
    return {
        key: MASK if key.startswith("_") or SECRET_NAME.search(key) else value
        for key, value in record.items()
    }


def mask_body(text: str, secrets: Iterable[str] = ()) -> str:
    """A response body fit to log: secret-looking fields masked, known secret values too."""
    for value in secrets:
        if isinstance(value, str) and len(value) >= 3:
            text = text.replace(value, MASK)
    return redact_body(text)


def response_of(error: BaseException | None) -> tuple[int, str] | None:
    """``(status, body)`` of an HTTP error's response (httpx's and others alike), if any."""
    seen = 0
    while error is not None and seen < 5:
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            try:
                body = str(response.text)  # type: ignore[union-attr]
            except Exception:  # not read (a streamed response): no body to show
                body = ""
            if len(body) > BODY_CHARS:
                body = f"{body[:BODY_CHARS]}… ({len(body) - BODY_CHARS:,} more characters)"
            return status, body
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def _leaf_record(leaf: Any) -> dict[str, Any]:
    record = {key: value for key, value in vars(leaf).items() if key.startswith("_")}
    record.update(leaf.to_dict())
    return mask_record(record)


def _secret_values(action: Any) -> list[str]:
    values = []
    for leaf in (action.source, action.dest):
        if leaf is not None:
            for key, value in vars(leaf).items():
                if (key.startswith("_") or SECRET_NAME.search(key)) and isinstance(value, str):
                    values.append(value)
    return values


def action_line(result: Any, run_id: str, mask: Callable[[str], str], **times: Any) -> str:
    """One finished action as a masked JSON line."""
    action = result.action
    line: dict[str, Any] = {
        "type": "action",
        "run": run_id,
        "time": datetime.datetime.now(datetime.UTC).isoformat(),
        **times,
        "subbranch": action.subbranch,
        "idnumber": action.idnumber,
        "message": action.message,
        "kind": str(action.kind),
        "outcome": str(result.outcome),
        "attempts": result.attempts,
        "elapsed": round(result.elapsed, 6),
    }
    kind = str(action.kind)
    secret = bool(action.attribute and SECRET_NAME.search(action.attribute))
    if kind == "update":
        if action.changes is not None:
            old = action.dest.to_dict() if action.dest is not None else {}
            line["changes"] = {
                name: {"old": old.get(name), "new": value}
                for name, value in mask_record(dict(action.changes)).items()
            }
            for name in line["changes"]:
                if name.startswith("_") or SECRET_NAME.search(name):
                    line["changes"][name] = {"old": MASK, "new": MASK}
        else:
            line["attribute"] = action.attribute
            line["old"] = MASK if secret else action.old_value
            line["new"] = MASK if secret else action.value
    elif kind in ("add", "remove", "error"):
        line["attribute"] = action.attribute
        line["value"] = MASK if secret else action.value
        if kind == "error":
            line["old"] = MASK if secret else action.old_value
    if kind == "new" and action.source is not None:
        line["record"] = _leaf_record(action.source)
    elif kind == "old" and action.dest is not None:
        line["record"] = _leaf_record(action.dest)
    if result.reason is not None:
        line["reason"] = result.reason
    error = result.error
    if error is not None:
        secrets = _secret_values(action)
        line["error"] = mask_body(error_text(error), secrets)
        response = response_of(error)
        if response is not None:
            line["status"], body = response
            line["response"] = mask_body(body, secrets)
    elif kind == "error" and action.error:
        line["error"] = action.error
    return mask(json.dumps(line, default=_jsonable, ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value)


def log_file_for(folder: Path, run_id: str, started: datetime.datetime) -> Path:
    """The run log of one run in a configured log directory."""
    return folder / f"run-{started:%Y%m%dT%H%M%SZ}-{run_id}.jsonl"


def prune(folder: Path, keep_days: float, *, now: float | None = None) -> list[Path]:
    """Delete the run logs (``run-*.jsonl``) in ``folder`` older than ``keep_days``."""
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    removed = []
    for path in folder.glob("run-*.jsonl"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


class RunLog:
    """Writes one run's lines to its log file (appending): an observer of the run's events."""

    def __init__(
        self, path: Path, *, config: Path, mask: Callable[[str], str], dry_run: bool = False
    ) -> None:
        from synctree import __version__

        self.path = path
        self.mask = mask
        self.run_id = new_run_id()
        self.started = datetime.datetime.now(datetime.UTC)
        self._t0 = time.monotonic()
        self._calls: dict[tuple[str, str, str], list[float]] = {}
        self._header: dict[str, Any] = {
            "type": "run",
            "run": self.run_id,
            "started": self.started.isoformat(),
            "config": str(config.resolve()),
            "version": __version__,
            "dry_run": dry_run,
        }
        self._wrote_header = False
        self.file: IO[str] | None = None
        #: The subbranches' notes (an absent kind, a reader's warnings), for the header.
        self.notes: dict[str, list[str]] = {}

    def open(self) -> RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("a", encoding="utf-8")
        return self

    def now(self) -> float:
        return round(time.monotonic() - self._t0, 6)

    def _write(self, line: str) -> None:
        if self.file is not None:
            self.file.write(line + "\n")
            self.file.flush()

    def _write_dict(self, value: dict[str, Any]) -> None:
        self._write(self.mask(json.dumps(value, default=_jsonable, ensure_ascii=False)))

    def header(self, planned: int | None, counts: dict[str, dict[str, int]] | None) -> None:
        if not self._wrote_header:
            self._wrote_header = True
            header = {**self._header, "planned": planned, "counts": counts, "notes": self.notes}
            self._write_dict(header)

    def observe(self, event: Any) -> None:
        """The run's events: the plan (the header), attempts, retries, throttles, results."""
        from synctree.aio import EventKind

        kind = event.kind
        if kind is EventKind.PLANNED:
            from synctree._plan import plan_counts

            counts = plan_counts(event.plan)
            self.header(event.total, {k: dict(v) for k, v in counts.items()})
            return
        action = event.action
        if action is None:
            return
        key = (action.subbranch, action.idnumber, action.message)
        if kind is EventKind.STARTED:
            self._calls.setdefault(key, []).append(self.now())
        elif kind is EventKind.FINISHED:
            calls = self._calls.pop(key, [])
            end = self.now()
            start = calls[0] if calls else end
            self._write(
                action_line(
                    event.result, self.run_id, self.mask, start=start, end=end, calls=calls
                )  # fmt: skip
            )
        elif kind is EventKind.RETRYING:
            self._write_dict(
                {
                    "type": "retry",
                    "run": self.run_id,
                    "t": self.now(),
                    "subbranch": action.subbranch,
                    "idnumber": action.idnumber,
                    "message": action.message,
                    "attempt": event.attempt,
                    "delay": event.delay,
                    "reason": event.reason,
                }
            )
        elif kind is EventKind.THROTTLED:
            self._write_dict(
                {
                    "type": "throttle",
                    "run": self.run_id,
                    "t": self.now(),
                    "delay": event.delay,
                    "reason": event.reason,
                }
            )

    def close(self, report: Any, *, exit_code: int, planned: int | None, error: str | None) -> None:
        """The run's last line: its outcome in counts; then the file is closed."""
        if self.file is None:
            return
        self.header(planned, None)
        counts: dict[str, Counter[str]] = {}
        totals: Counter[str] = Counter()
        if report is not None:
            for entry in report.results:
                counts.setdefault(entry.action.subbranch, Counter())[str(entry.outcome)] += 1
                totals[str(entry.outcome)] += 1
        done = len(report) if report is not None else 0
        self._write_dict(
            {
                "type": "end",
                "run": self.run_id,
                "ended": datetime.datetime.now(datetime.UTC).isoformat(),
                "duration": self.now(),
                "exit": exit_code,
                "ok": exit_code == 0,
                "totals": dict(totals),
                "counts": {k: dict(v) for k, v in counts.items()},
                "planned": planned,
                "not_started": max(0, planned - done) if planned is not None else None,
                "stopped": report.stopped if report is not None else None,
                "error": error,
                "throttles": report.throttles if report is not None else 0,
                "throttle_wait": round(report.throttle_wait, 3) if report is not None else 0,
            }
        )
        self.file.close()
        self.file = None


# -- reading ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """One run as its log lines tell it."""

    run_id: str
    header: dict[str, Any] = dataclasses.field(default_factory=dict)
    actions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    retries: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    throttles: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    end: dict[str, Any] | None = None

    def counts(self) -> dict[str, Counter[str]]:
        """``{subbranch: Counter({outcome: n})}`` of the actions logged."""
        out: dict[str, Counter[str]] = {}
        for line in self.actions:
            out.setdefault(str(line.get("subbranch")), Counter())[str(line.get("outcome"))] += 1
        return out

    def totals(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for counter in self.counts().values():
            totals.update(counter)
        return totals

    def failure_groups(self) -> list[tuple[str, str, list[dict[str, Any]]]]:
        """Failures that read alike: ``(message, error, lines)``, first seen first."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for line in self.actions:
            if line.get("outcome") == "failed":
                error = str(line.get("error") or line.get("reason") or "")
                groups.setdefault((str(line.get("message")), error), []).append(line)
        return [(message, error, lines) for (message, error), lines in groups.items()]

    @property
    def duration(self) -> float:
        if self.end is not None and isinstance(self.end.get("duration"), int | float):
            return float(self.end["duration"])
        return max((float(line.get("end") or 0) for line in self.actions), default=0.0)

    @property
    def not_started(self) -> int | None:
        if self.end is not None:
            value = self.end.get("not_started")
            return value if isinstance(value, int) else None
        planned = self.header.get("planned")
        return planned - len(self.actions) if isinstance(planned, int) else None


def read_runs(path: Path) -> tuple[list[Run], int]:
    """The runs in a log file, oldest first, and how many lines were not JSON (a crash's
    half-written last line).  Lines of the older format (no ``type``) are one run's actions."""
    runs: dict[str, Run] = {}
    bad = 0
    with path.open(encoding="utf-8") as file:
        for text in file:
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                bad += 1
                continue
            if not isinstance(line, dict):
                bad += 1
                continue
            run_id = str(line.get("run", "(unnamed)"))
            run = runs.get(run_id)
            if run is None:
                run = runs[run_id] = Run(run_id)
            kind = line.get("type", "action")
            if kind == "run":
                run.header = line
            elif kind == "action":
                run.actions.append(line)
            elif kind == "retry":
                run.retries.append(line)
            elif kind == "throttle":
                run.throttles.append(line)
            elif kind == "end":
                run.end = line
    return list(runs.values()), bad
