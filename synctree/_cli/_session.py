"""A command's session with a config: loading it and its tree, planning, and one
``synctree run`` (the run lock, the saved-plan check, Ctrl-C, the run log).

The engine (:mod:`synctree.aio`) is imported when a command runs, not for
``synctree --help``.
"""

from __future__ import annotations

import gc
import json
import os
import signal
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import IO, Any, TypeVar

import anyio

from synctree import ConfigError, Report

from ._config import Config
from ._exits import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, Stop
from ._lock import RunLock, RunLocked
from ._output import Output, escape, print_report
from ._progress import RunProgress, loading
from ._saved_plan import check_saved_plan, plan_dicts

__all__ = [
    "RunSession",
    "diff",
    "hold_lock",
    "load_config",
    "load_tree",
    "run_and_report",
    "run_async",
]

T = TypeVar("T")


def load_config(path: Path, output: Output) -> Config:
    """The config at ``path``; from now on, nothing ``output`` prints holds a ``${VAR}`` value."""
    config = Config(path)
    output.redactor = config.secrets
    return config


async def load_tree(config: Config, output: Output) -> Any:
    """The config's tree, loaded by its readers (with spinners on a terminal)."""
    from synctree.aio import load

    tree = config.tree()
    readers = config.build_readers()
    # The command owns the process, so it tunes the collector (the library never
    # does): what exists now (modules, the config) is frozen, and no collection
    # runs while the readers fill the tree, which makes no reference cycles
    # worth collecting.  The loaded tree lives until the command ends: freezing
    # it keeps the collector from walking its objects again and again while the
    # sync runs (about 30% of a big run).  run_async unfreezes at the end.
    gc.freeze()
    enabled = gc.isenabled()
    gc.disable()
    try:
        with loading(output, readers) as progress:
            await load(tree, readers, progress=progress)
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    return tree


def notes(tree: Any) -> list[str]:
    """The subbranches' notes (absent kinds, readers' warnings), each naming its side."""
    return [
        f"{branch} {subbranch.name}: {note.removeprefix(subbranch.name + ': ')}"
        for branch in tree.branches
        for subbranch in tree[branch]
        for note in subbranch.notes
    ]


def diff(config: Config, tree: Any, only: Iterable[str] = ()) -> Any:
    """The diff from the config's first branch to its second, of ``only`` these idnumbers if any."""
    left, right = config.branches
    changes = tree[left] > tree[right]
    wanted = set(only)
    if wanted:
        changes = changes.filter(lambda action: action.idnumber in wanted)
    return changes


def run_async(backend: str, fn: Callable[[], Awaitable[T]]) -> T:
    """``fn()`` run on ``backend``; the tree :func:`load_tree` froze is unfrozen after."""
    try:
        return anyio.run(fn, backend=backend)
    finally:
        gc.unfreeze()


def hold_lock(config: Path, wait: float, output: Output) -> RunLock:
    """The config's run lock, held; or exit 2 when another run holds it past ``wait``."""
    lock = RunLock(config)

    def waiting(holder: str) -> None:
        if not output.quiet:
            output.err.print(
                f"waiting for another synctree run of {escape(str(config))}{holder} "
                f"(up to {wait:g}s)"
            )

    try:
        lock.acquire(wait=wait, on_wait=waiting)
    except RunLocked as exc:
        raise Stop(
            EXIT_INPUT,
            f"another synctree run of {config} is in progress{exc.holder}; nothing was done. "
            "Let it finish, or pass --wait SECONDS to wait for it.",
        ) from None
    return lock


def run_and_report(session: RunSession, backend: str) -> int:
    """Run ``session`` on ``backend``, print its report, and give the exit code."""
    report = run_async(backend, session.main)
    if report is None:  # interrupted before the run began
        return EXIT_INTERRUPTED
    print_report(session.output, report)
    if session.interrupted:
        return EXIT_INTERRUPTED
    if report.stopped is not None and isinstance(report.stop_error, ConfigError):
        return EXIT_INPUT
    return EXIT_OK if report.ok else EXIT_FAILED


class RunSession:
    """One ``synctree run``: loading, the saved-plan check, progress, Ctrl-C and the log."""

    def __init__(
        self,
        output: Output,
        config: Config,
        template: Any,
        overrides: dict[str, Any],
        log: Path | None,
        saved: list[dict[str, Any]] | None,
        only: tuple[str, ...],
    ) -> None:
        self.output = output
        self.config = config
        self.template = template
        self.overrides = overrides
        self.log_path = log
        self.saved = saved
        self.only = only
        self.interrupted = False
        self.log_file: IO[str] | None = None

    async def main(self) -> Report | None:
        """The run's report (so far, when interrupted); ``None`` if interrupted before it began."""
        report: Report | None = None
        error: Exception | None = None
        async with anyio.create_task_group() as group:
            run_scope = anyio.CancelScope()
            group.start_soon(self._signals, run_scope)
            with run_scope:
                try:
                    report = await self._sync()
                except Exception as exc:  # raised below, outside the task group
                    error = exc
            if run_scope.cancelled_caught:
                self.interrupted = True
                report = getattr(self.template, "report", None)
            group.cancel_scope.cancel()
        if error is not None:
            raise error
        return report

    async def _signals(self, run_scope: anyio.CancelScope) -> None:
        """First Ctrl-C: stop new actions and finish in-flight ones; second: quit now."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            count = 0
            async for _ in signals:
                count += 1
                if count == 1:
                    self.output.err.print(
                        "[yellow]stopping:[/] finishing the actions in flight "
                        "(Ctrl-C again to quit at once)"
                    )
                    run_scope.cancel()
                else:
                    self.output.err.print("[red]quitting[/]")
                    if self.log_file is not None:
                        self.log_file.flush()
                    os._exit(EXIT_INTERRUPTED)

    async def _sync(self) -> Report:
        tree = await load_tree(self.config, self.output)
        changes = diff(self.config, tree, self.only)
        if self.saved is not None:
            current = plan_dicts([a async for a in changes])
            check_saved_plan(self.saved, current)
        for note in notes(tree):
            self.output.info(f"[yellow]note:[/] {escape(note)}")
        for note in self.config.outside_paths:
            self.output.info(f"[yellow]note:[/] outside the config's folder: {escape(note)}")
        if self.log_path is not None:
            self.log_file = self.log_path.open("w", encoding="utf-8")
        try:
            with RunProgress(self.output) as progress:
                observer: Callable[[Any], None] = progress.observe
                if self.log_file is not None:
                    observer = _tee(observer, self._log)
                return await changes.run(self.template, observer=observer, **self.overrides)  # type: ignore[no-any-return]
        finally:
            if self.log_file is not None:
                self.log_file.close()

    def _log(self, event: Any) -> None:
        """The run log: a masked JSON line per finished action."""
        from synctree.aio import EventKind

        if event.kind is EventKind.FINISHED and self.log_file is not None:
            line = json.dumps(event.result.to_dict(), default=str)
            self.log_file.write(self.output.mask(line) + "\n")
            self.log_file.flush()


def _tee(*observers: Callable[[Any], None]) -> Callable[[Any], None]:
    def observe(event: Any) -> None:
        for observer in observers:
            observer(event)

    return observe
