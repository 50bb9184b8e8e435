"""Where the command writes: :class:`Output`, and how plans and reports are printed.

Rich on a terminal, plain text or JSON otherwise.  Every byte goes through the
config's :class:`~synctree._util.redact.Redactor` (:meth:`Output.mask`), so no
value read from a ``${VAR}`` reaches the screen.
"""

from __future__ import annotations

import functools
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

import click

from synctree import Action, Kind, Outcome, Report
from synctree._report import failure_lines, shorten
from synctree._util.redact import Redactor

if TYPE_CHECKING:
    from rich.console import Console

    from ._config import Config

__all__ = ["Capture", "Output", "escape", "print_plan", "print_report", "summary"]

_KINDS = (Kind.NEW, Kind.UPDATE, Kind.ADD, Kind.REMOVE, Kind.OLD, Kind.ERROR)
#: How a subbranch's heading in a plan names each kind's count.
_HEADING = {
    Kind.NEW: "new",
    Kind.UPDATE: "updated",
    Kind.ADD: "members added",
    Kind.REMOVE: "members removed",
    Kind.OLD: "to remove",
    Kind.ERROR: "errors",
}


class _Masked:
    """A text stream (stdout or stderr, looked up when written to, as click's test
    runner swaps them) that masks secrets in everything written to it."""

    def __init__(self, stream: Callable[[], IO[str]], mask: Callable[[str], str]) -> None:
        self._stream = stream
        self._mask = mask

    def write(self, text: str) -> int:
        return self._stream().write(self._mask(text))

    def __getattr__(self, name: str) -> Any:  # isatty, flush, encoding, fileno...
        return getattr(self._stream(), name)


def _console(stream: _Masked) -> Console:
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=True)  # type: ignore[arg-type]


class Output:
    """Where the command writes: rich on a terminal, plain text or JSON otherwise.

    Every byte goes through :attr:`redactor` (the config's secrets, once loaded).
    """

    def __init__(self, *, quiet: bool, verbose: bool, as_json: bool) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.json = as_json
        self.redactor = Redactor()

    # The consoles are made when first written to: a --json or --quiet command that
    # prints nothing through rich need not import it.
    @functools.cached_property
    def out(self) -> Console:
        """Standard output, through rich, masked."""
        return _console(_Masked(lambda: sys.stdout, self.mask))

    @functools.cached_property
    def err(self) -> Console:
        """Standard error, through rich, masked."""
        return _console(_Masked(lambda: sys.stderr, self.mask))

    def mask(self, text: str) -> str:
        """``text`` with the config's secrets (and credentials in URLs) masked."""
        return self.redactor(text)

    @property
    def live(self) -> bool:
        """Whether to draw progress bars (a terminal, and not quiet or JSON)."""
        return not self.quiet and not self.json and self.err.is_terminal

    def info(self, message: str) -> None:
        if not self.quiet and not self.json:
            self.out.print(message)

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]error:[/] {escape(message)}")

    def data(self, value: Any) -> None:
        # Indented only when small: indenting takes json's pure-Python encoder,
        # several times slower than its C one on a big plan's thousands of lines.
        compact = json.dumps(value, default=str)
        if len(compact) <= _INDENTED_UP_TO:
            compact = json.dumps(value, indent=2, default=str)
        click.echo(self.mask(compact))

    def echo(self, text: str) -> None:
        click.echo(self.mask(text), nl=False)


#: JSON output up to this size is indented for people to read.
_INDENTED_UP_TO = 100_000


def escape(text: str) -> str:
    """``text`` safe to print through rich (its ``[`` no markup)."""
    from rich.markup import escape

    return escape(text)


class Capture:
    """A text sink for ``tree.show``."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def summary(actions: Iterable[Action], subbranches: list[str]) -> dict[str, Counter[str]]:
    """How many actions of each kind a plan has, per subbranch."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in subbranches}
    for (subbranch, kind), n in Counter((a.subbranch, a.kind) for a in actions).items():
        counts[subbranch][str(kind)] += n
    return counts


def print_plan(
    output: Output,
    config: Config,
    actions: list[Action],
    *,
    warnings: Iterable[str] = (),
    notes: dict[str, list[str]] | None = None,
    limit: int = 50,
) -> None:
    """The plan as a table of counts, then its lines grouped by subbranch, then warnings."""
    from rich.table import Table

    from ._plan_view import plan_lines

    counts = summary(actions, config.subbranches)
    table = Table(title=f"plan: {config.branches[0]} → {config.branches[1]}")
    table.add_column("subbranch")
    for kind in _KINDS:
        table.add_column(str(kind), justify="right")
    for name, counter in counts.items():
        table.add_row(name, *(str(counter[k]) for k in _KINDS))
    table.add_row("total", *(str(sum(c[k] for c in counts.values())) for k in _KINDS), style="bold")
    output.out.print(table)
    lines = plan_lines(actions, config.displays)
    notes = notes or {}
    for name in config.subbranches:
        some = lines.get(name, [])
        if not some and not notes.get(name):
            continue
        counter = counts[name]
        said = ", ".join(f"{counter[k]} {_HEADING[k]}" for k in _KINDS if counter[k])
        said = said or "no changes"
        output.out.print(f"[bold]{escape(name)}[/] ({said})")
        for note in notes.get(name, []):
            output.out.print(f"  [yellow]note:[/] {escape(note)}")
        shown = some if output.verbose or limit <= 0 else some[:limit]
        for line in shown:
            output.out.print(f"  {escape(str(line))}")
        if len(some) > len(shown):
            output.out.print(
                f"  … {len(some) - len(shown)} more {name} lines (--verbose shows all)"
            )
    if not actions:
        output.out.print("nothing to do: the destination matches the source")
    for note in config.outside_paths:
        output.out.print(f"[yellow]note:[/] outside the config's folder: {escape(note)}")
    for warning in warnings:
        output.err.print(f"[yellow]warning:[/] {escape(warning)}")


def report_failure_lines(report: Report) -> list[str]:
    """The report's failures, alike ones grouped with a count; an HTTP error's line ends
    with the server's answer (its status and body, cut short, secret fields masked)."""
    from synctree import SyncTreeError
    from synctree._report import group_failures

    from ._runlog import mask_body, response_of

    lines = failure_lines(report, with_value=True)
    out = []
    for line, (_, results) in zip(lines, group_failures(report.failures), strict=True):
        error = results[0].error
        # A connector's own error (SCIMError...) already says what the server said.
        response = None if isinstance(error, SyncTreeError) else response_of(error)
        if response is not None and response[1].strip() and response[1].strip() not in line:
            status, body = response
            line += f" — the server said ({status}): {shorten(mask_body(body), 300)}"
        out.append(line)
    return out


def print_report(output: Output, report: Report, *, not_started: int | None = None) -> None:
    """A run's report: JSON, only its failures (quiet), or a table of outcomes."""
    if output.json:
        data = report.to_dict()
        if not_started is not None:
            data["not_started"] = not_started
        output.data(data)
        return
    if report.stopped is not None:
        output.error(f"the run stopped: {shorten(report.stopped)}")
    if output.quiet:
        for line in report_failure_lines(report):
            output.err.print(escape(line))
        return
    from rich.table import Table

    columns = [o for o in Outcome if report.totals[o]]
    table = Table(title=f"{len(report)} actions in {report.duration:.2f}s")
    table.add_column("message")
    for outcome in columns:
        table.add_column(str(outcome), justify="right")
    for message, counter in report.counts.items():
        table.add_row(message, *(str(counter[o]) for o in columns))
    table.add_row("total", *(str(report.totals[o]) for o in columns), style="bold")
    output.out.print(table)
    if report.throttles:
        output.out.print(
            f"[yellow]throttled[/] {report.throttles} times, paused {report.throttle_wait:.1f}s"
        )
    for line in report_failure_lines(report):
        output.out.print(f"[red]failed[/] {escape(line)}")
    if not_started:
        output.out.print(
            f"[yellow]not started:[/] {not_started} planned actions never began "
            "(run again to do them)"
        )
