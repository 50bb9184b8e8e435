"""``synctree log RUNLOG``: a run's summary, read back from its run log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synctree._report import shorten

from ._exits import EXIT_INPUT, Stop
from ._output import Output, escape
from ._runlog import Run, read_runs

__all__ = ["pick_run", "print_run", "run_dict"]

_EXAMPLES = 3


def pick_run(path: Path, run_id: str | None) -> Run:
    """The run ``run_id`` of the log at ``path`` (a prefix will do), or its last run."""
    try:
        runs, _ = read_runs(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise Stop(EXIT_INPUT, f"{path}: cannot read the run log: {exc}") from None
    if not runs:
        raise Stop(EXIT_INPUT, f"{path}: no run in this file (is it a synctree run log?)")
    if run_id is None:
        return runs[-1]
    found = [run for run in runs if run.run_id.startswith(run_id)]
    if len(found) != 1:
        known = ", ".join(run.run_id for run in runs[-10:])
        what = "no run" if not found else "several runs"
        raise Stop(EXIT_INPUT, f"{path}: {what} with id {run_id!r} (the last runs: {known})")
    return found[0]


def run_dict(run: Run) -> dict[str, Any]:
    """A run's summary as JSON: header, counts per subbranch and outcome, failure groups."""
    return {
        "run": run.run_id,
        "started": run.header.get("started"),
        "config": run.header.get("config"),
        "version": run.header.get("version"),
        "dry_run": run.header.get("dry_run"),
        "planned": run.header.get("planned"),
        "duration": run.duration,
        "exit": run.end.get("exit") if run.end else None,
        "finished": run.end is not None,
        "stopped": run.end.get("stopped") if run.end else None,
        "error": run.end.get("error") if run.end else None,
        "totals": dict(run.totals()),
        "counts": {name: dict(c) for name, c in run.counts().items()},
        "failures": [
            {
                "message": message,
                "error": error,
                "count": len(lines),
                "examples": [line.get("idnumber") for line in lines[:_EXAMPLES]],
                "status": lines[0].get("status"),
                "response": lines[0].get("response"),
            }
            for message, error, lines in run.failure_groups()
        ],
        "notes": run.header.get("notes") or {},
        "retries": len(run.retries),
        "throttles": len(run.throttles),
        "not_started": run.not_started,
    }


def print_run(output: Output, run: Run) -> None:
    """A run's summary: what ran, the counts per subbranch and outcome, failures grouped."""
    from rich.table import Table

    data = run_dict(run)
    code = data["exit"]
    ended = f"exit {code}" if code is not None else "no end line: the run did not finish"
    output.out.print(
        f"[bold]run {escape(run.run_id)}[/] of {escape(str(data['config']))}, started "
        f"{escape(str(data['started']))}, {data['duration']:.2f}s, {ended}"
        + (" (dry run)" if data["dry_run"] else "")
    )
    totals = run.totals()
    columns = sorted(totals)
    table = Table(title=f"{sum(totals.values())} actions")
    table.add_column("subbranch")
    for outcome in columns:
        table.add_column(outcome, justify="right")
    for name, counter in run.counts().items():
        table.add_row(escape(name), *(str(counter[o]) for o in columns))
    table.add_row("total", *(str(totals[o]) for o in columns), style="bold")
    output.out.print(table)
    for notes in data["notes"].values():
        for note in notes:
            output.out.print(f"[yellow]note:[/] {escape(str(note))}")
    if data["stopped"]:
        output.out.print(f"[red]stopped:[/] {escape(shorten(str(data['stopped'])))}")
    if data["error"]:
        output.out.print(f"[red]error:[/] {escape(shorten(str(data['error'])))}")
    if run.throttles or run.retries:
        output.out.print(f"throttled {len(run.throttles)} times, {len(run.retries)} retries")
    if data["not_started"]:
        output.out.print(f"[yellow]not started:[/] {data['not_started']} planned actions")
    groups = data["failures"] if output.verbose else data["failures"][:20]
    for group in groups:
        ids = ", ".join(repr(i) for i in group["examples"])
        more = f", … {group['count'] - len(group['examples'])} more" if group["count"] > 3 else ""
        count = f"{group['count']} × " if group["count"] > 1 else ""
        said = ""
        if group.get("response"):
            said = f" — the server said ({group['status']}): {shorten(group['response'], 200)}"
        output.out.print(
            f"[red]failed[/] {count}{escape(group['message'])} ({escape(ids)}{more}): "
            f"{escape(shorten(group['error']))}{escape(said)}"
        )
    if len(data["failures"]) > len(groups):
        output.out.print(f"… {len(data['failures']) - len(groups)} more kinds of failure")
