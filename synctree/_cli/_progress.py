"""Rich progress bars on a terminal: a spinner per reader while loading, a bar per
subbranch while running with its rate (actions per second) and time remaining
(and, without bars, a line per finished action with ``--verbose``).

The engine is imported when a command runs, not for ``synctree --help``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from synctree._util.redact import redact

from ._output import Output, escape

__all__ = ["RunProgress", "loading"]


@contextlib.contextmanager
def loading(
    output: Output, readers: dict[str, dict[str, Any]]
) -> Iterator[Callable[[str, str, int], None] | None]:
    """A ``progress`` callback for :func:`synctree.aio.load` drawing a spinner per reader,
    or ``None`` when not :attr:`~Output.live`."""
    if not output.live:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} rows"),
        console=output.err, transient=True,
    ) as bars:  # fmt: skip
        tasks = {
            (branch, name): bars.add_task(f"loading {branch} {name}", total=None)
            for branch, per in readers.items()
            for name in per
        }

        def progress(branch: str, subbranch: str, rows: int) -> None:
            bars.update(tasks[branch, subbranch], completed=rows)

        yield progress


def _rate_column() -> Any:
    """A column showing actions per second (rich is imported when bars are drawn)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.1f}/s" if speed else "–/s", style="progress.data.speed")

    return Rate()


class RunProgress:
    """Progress bars per subbranch, fed by the runner's events."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.bars: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> RunProgress:
        if self.output.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bars = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                _rate_column(), TextColumn("eta"), TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"), console=self.output.err,
            )  # fmt: skip
            self.bars.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def kinds(self) -> frozenset[Any]:
        """The kinds of event :meth:`observe` does anything with (once entered)."""
        from synctree.aio import EventKind

        if self.bars is not None:
            return frozenset({EventKind.PLANNED, EventKind.FINISHED, EventKind.RETRYING,
                              EventKind.THROTTLED})  # fmt: skip
        if self.output.verbose:
            return frozenset({EventKind.PLANNED, EventKind.FINISHED})
        return frozenset({EventKind.PLANNED})

    def observe(self, event: Any) -> None:
        from synctree.aio import EventKind

        kind = event.kind
        if kind is EventKind.PLANNED:
            if self.bars is not None:
                from synctree._plan import plan_counts

                counts = {name: n.total() for name, n in plan_counts(event.plan).items()}
                for name, total in counts.items():
                    self.tasks[name] = self.bars.add_task(name, total=total, note="")
            return
        if self.bars is None:
            if self.output.verbose and kind is EventKind.FINISHED:
                result = event.result
                self.output.out.print(
                    f"{result.outcome}: {escape(repr(result.action))}"
                    + (f" ({escape(redact(str(result.error)))})" if result.error else "")
                )
            return
        # a note is cut to the terminal's width: masked before, lest a secret's start shows
        reason = self.output.mask(str(event.reason)) if event.reason is not None else ""
        action = event.action
        task = self.tasks.get(action.subbranch) if action is not None else None
        if task is None:
            return
        if kind is EventKind.FINISHED:
            self.bars.update(task, advance=1)
        elif kind is EventKind.RETRYING:
            self.bars.update(task, note=f"retrying in {event.delay:.1f}s: {escape(reason)}")
        elif kind is EventKind.THROTTLED:
            self.bars.update(task, note=f"throttled {event.delay:.1f}s: {escape(reason)}")
