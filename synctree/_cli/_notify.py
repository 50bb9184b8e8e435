"""Notifications after a run: ``[notify]`` runs a command and/or POSTs to a webhook.

::

    [notify]
    command = "/usr/local/bin/page-the-admin"   # gets the summary as JSON on stdin
    webhook = "https://hooks.example.org/synctree"  # gets it as a JSON POST body
    on = "failure"                              # or "always"

The summary (:func:`run_summary`) holds the run's id, config, exit code, counts,
grouped failures (first examples only), why it stopped, and the path of its run
log; it is masked like everything the command writes.  The command also gets
``SYNCTREE_EXIT_CODE``, ``SYNCTREE_OK`` (``1``/``0``) and ``SYNCTREE_LOG`` in its
environment.  A notification that fails is a warning; it never changes the exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synctree._report import group_failures, shorten
from synctree._util.redact import error_text

if TYPE_CHECKING:
    from synctree import Report

    from ._config import Config
    from ._output import Output

__all__ = ["notify", "run_summary"]

#: Failure groups (and examples per group) a summary carries.
_GROUPS, _EXAMPLES = 10, 3


def run_summary(
    config: Config,
    report: Report | None,
    *,
    code: int,
    error: str | None,
    log: Path | None,
    run_id: str | None,
    not_started: int | None,
) -> dict[str, Any]:
    """What a notification says about a run (not yet masked)."""
    from synctree import __version__

    counts: dict[str, Counter[str]] = {}
    failures = []
    if report is not None:
        counts = report._subbranch_counts()
        groups = group_failures(report.failures)
        for text, results in groups[:_GROUPS]:
            from ._runlog import mask_body, response_of

            first = results[0]
            group: dict[str, Any] = {
                "message": first.action.message,
                "error": shorten(mask_body(text)),
                "count": len(results),
                "examples": [r.action.idnumber for r in results[:_EXAMPLES]],
            }
            response = response_of(first.error)
            if response is not None:
                group["status"] = response[0]
                group["response"] = shorten(mask_body(response[1]))
            failures.append(group)
    return {
        "run": run_id,
        "config": str(config.path),
        "version": __version__,
        "exit": code,
        "ok": code == 0,
        "error": error,
        "stopped": report.stopped if report is not None else None,
        "totals": {str(k): v for k, v in report.totals.items()} if report is not None else {},
        "counts": {name: dict(c) for name, c in counts.items()},
        "failures": failures,
        "failed": report.totals.get("failed", 0) if report is not None else 0,  # type: ignore[call-overload]
        "not_started": not_started,
        "duration": round(report.duration, 3) if report is not None else None,
        "log": str(log) if log is not None else None,
    }


def notify(settings: dict[str, Any], summary: dict[str, Any], output: Output) -> None:
    """Send ``summary`` as ``settings`` (the config's ``[notify]``) say, masked."""
    if settings.get("on", "failure") == "failure" and summary["ok"]:
        return
    body = output.mask(json.dumps(summary, indent=1, default=str))
    timeout = float(settings.get("timeout", 10.0))
    if "command" in settings:
        _run_command(settings["command"], body, summary, timeout, output)
    if "webhook" in settings:
        _post(settings["webhook"], body, timeout, output)


def _run_command(
    command: list[str], body: str, summary: dict[str, Any], timeout: float, output: Output
) -> None:
    env = {
        **os.environ,
        "SYNCTREE_EXIT_CODE": str(summary["exit"]),
        "SYNCTREE_OK": "1" if summary["ok"] else "0",
        "SYNCTREE_LOG": summary["log"] or "",
    }
    try:
        done = subprocess.run(
            command, input=body, text=True, env=env, timeout=timeout, capture_output=True,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        output.error(f"[notify] command {command[0]!r} failed: {error_text(exc)}")
        return
    if done.returncode != 0:
        output.error(
            f"[notify] command {command[0]!r} exited {done.returncode}: "
            f"{shorten(done.stderr.strip() or done.stdout.strip(), 200)}"
        )


def _post(url: str, body: str, timeout: float, output: Output) -> None:
    import httpx

    try:
        response = httpx.post(
            url, content=body.encode(), headers={"Content-Type": "application/json"},
            timeout=timeout,
        )  # fmt: skip
        response.raise_for_status()
    except httpx.HTTPError as exc:
        output.error(f"[notify] webhook failed: {error_text(exc)}")
