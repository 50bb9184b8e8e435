"""A command's session with a config: loading it and its tree, planning, and one
``synctree run`` (the run lock, the saved-plan check, Ctrl-C, the run log).

The engine (:mod:`synctree.aio`) is imported when a command runs, not for
``synctree --help``.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from synctree import ConfigError, Report
from synctree._util.redact import error_text

from ._config import Config
from ._exits import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_SAFETY, Stop
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
    "error_messages",
    "run_and_report",
    "run_async",
    "safety_message",
    "safety_warning",
    "subbranch_notes",
    "unknown_ids",
]

if TYPE_CHECKING:
    from ._runlog import RunLog

T = TypeVar("T")


def load_config(path: Path, output: Output) -> Config:
    """The config at ``path``; from now on, nothing ``output`` prints holds a ``${VAR}`` value."""
    config = Config(path)
    output.redactor = config.secrets
    _MaskLogs.install(output.mask)
    return config


class _MaskLogs(logging.Filter):
    """Masks the config's secrets in the records of the ``synctree`` logger, like
    everything else the command writes (an application's handlers may print them)."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.mask(record.getMessage())
        record.args = None
        return True

    @classmethod
    def install(cls, mask: Callable[[str], str]) -> None:
        logger = logging.getLogger("synctree")
        for old in [f for f in logger.filters if isinstance(f, cls)]:
            logger.removeFilter(old)
        logger.addFilter(cls(mask))


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


def unknown_ids(config: Config, tree: Any, only: Iterable[str]) -> list[str]:
    """A warning per ``--only`` id that no subbranch of either branch holds."""
    out = []
    for idnumber in only:
        if not any(idnumber in tree[b][s] for b in config.branches for s in config.subbranches):
            out.append(
                f"--only {idnumber!r}: no object has this id on either branch "
                f"({', '.join(config.subbranches)}); nothing is planned for it"
            )
    return out


def safety_warning(
    template: Any, changes: Any, actions: list[Any], max_deletes: int | str | None
) -> str | None:
    """What a run of ``actions`` would stop at (the ``max_deletes`` limit), if anything."""
    from synctree import SafetyLimitExceeded
    from synctree._plan import DEFAULT_MAX_DELETES, check_safety

    if max_deletes is None:
        max_deletes = getattr(template, "max_deletes", DEFAULT_MAX_DELETES)
    try:
        check_safety(changes, actions, max_deletes=max_deletes)
    except SafetyLimitExceeded as exc:
        return "a run would stop here: " + safety_message(exc)
    return None


def safety_message(error: Exception) -> str:
    """A safety stop's message, its hint in command-line words (not Python keywords)."""
    text = str(error).replace("; force=True to allow", "")
    if " is empty but " in text:
        return f"{text}. If the export really is empty, run with --force."
    return (
        f"{text}. If these removals are meant, run with --force, or raise the limit: "
        '--max-deletes 25% (or max_deletes = "25%" in [run]).'
    )


def error_messages(config: Config, actions: list[Any]) -> list[str]:
    """The plan's error actions, grouped, each with its fix."""
    from ._plan_view import error_fixes

    tables = {}
    for action in actions:
        if str(action.kind) == "error":
            for side, name in ((0, "left"), (1, "right")):
                tables[name, action.subbranch] = config.reader_table(side, action.subbranch)
    return error_fixes(actions, tables)


def subbranch_notes(config: Config, tree: Any) -> dict[str, list[str]]:
    """Each subbranch's notes (coverage of the export, reader warnings), both branches'."""
    out: dict[str, list[str]] = {}
    for name in config.subbranches:
        lines: list[str] = []
        for branch in config.branches:
            for note in tree[branch][name].notes:
                line = f"{branch} {name}: {note.removeprefix(name + ': ')}"
                if line not in lines:
                    lines.append(line)
        if lines:
            out[name] = lines
    return out


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
    """Run ``session`` on ``backend``, print its report, and give the exit code.

    Whatever the ending (a load error or a safety stop included), the run log
    gets its last line and the notifications go out, before the error is raised.
    """
    from synctree import SafetyLimitExceeded, SyncTreeError

    try:
        report = run_async(backend, session.main)
    except Stop as stop:
        session.finish(None, stop.code, str(stop))
        raise
    except SafetyLimitExceeded as exc:
        session.finish(None, EXIT_SAFETY, safety_message(exc))
        raise
    except SyncTreeError as exc:
        session.finish(None, EXIT_INPUT, str(exc))
        raise
    except BaseException as exc:
        session.finish(None, EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else
                       EXIT_FAILED, error_text(exc))  # fmt: skip
        raise
    if report is None:  # interrupted before the run began
        session.finish(None, EXIT_INTERRUPTED, "interrupted before the run began")
        return EXIT_INTERRUPTED
    print_report(session.output, report, not_started=session.not_started(report))
    if session.interrupted:
        code = EXIT_INTERRUPTED
    elif report.stopped is not None and isinstance(report.stop_error, ConfigError):
        code = EXIT_INPUT
    else:
        code = EXIT_OK if report.ok else EXIT_FAILED
    session.finish(report, code, None)
    return code


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
        self.planned: int | None = None
        self.runlog: RunLog | None = None
        # ``[log] dir``: a file per run there (named when the run starts), unless --log
        self._log_dir: Path | None = config.log.get("dir") if log is None else None

    def not_started(self, report: Report) -> int | None:
        """How many planned actions never started (an interrupted or stopped run)."""
        if self.planned is None:
            return None
        return max(0, self.planned - len(report))

    def _open_log(self) -> None:
        from ._runlog import RunLog, log_file_for

        dry_run = bool(self.overrides.get("dry_run"))
        if self.log_path is not None:
            self.runlog = RunLog(self.log_path, config=self.config.path, mask=self.output.mask,
                                 dry_run=dry_run)  # fmt: skip
        elif self._log_dir is not None:
            runlog = RunLog(self._log_dir, config=self.config.path, mask=self.output.mask,
                            dry_run=dry_run)  # fmt: skip
            runlog.path = log_file_for(self._log_dir, runlog.run_id, runlog.started)
            self.runlog = runlog
        if self.runlog is not None:
            try:
                self.runlog.open()
            except OSError as exc:
                raise Stop(
                    EXIT_INPUT, f"cannot write the run log {self.runlog.path}: {exc}"
                ) from None

    def finish(self, report: Report | None, code: int, error: str | None) -> None:
        """The run log's last line, the log folder pruned, the notifications sent."""
        if self.runlog is not None:
            try:
                self.runlog.close(report, exit_code=code, planned=self.planned, error=error)
            except OSError as exc:
                self.output.error(f"cannot write the run log {self.runlog.path}: {exc}")
        if self._log_dir is not None:
            from ._runlog import prune

            prune(self._log_dir, float(self.config.log.get("keep_days", 30)))
        settings = self.config.notify
        if ("command" in settings or "webhook" in settings) and not (
            settings.get("on", "failure") == "failure" and code == 0
        ):  # the summary is made only when it is sent (``ok`` is ``code == 0``)
            from ._notify import notify, run_summary

            summary = run_summary(
                self.config,
                report,
                code=code,
                error=error,
                log=self.runlog.path if self.runlog is not None else None,
                run_id=self.runlog.run_id if self.runlog is not None else None,
                not_started=self.not_started(report) if report is not None else None,
            )
            notify(self.config.notify, summary, self.output)

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
                    if self.runlog is not None and self.runlog.file is not None:
                        self.runlog.file.flush()
                    os._exit(EXIT_INTERRUPTED)

    async def _sync(self) -> Report:
        self._open_log()
        tree = await load_tree(self.config, self.output)
        for warning in unknown_ids(self.config, tree, self.only):
            if not self.output.quiet:
                self.output.err.print(f"[yellow]warning:[/] {escape(warning)}")
        changes = diff(self.config, tree, self.only)
        if self.saved is not None:
            current = plan_dicts([a async for a in changes])
            check_saved_plan(self.saved, current)
        for note in notes(tree):
            self.output.info(f"[yellow]note:[/] {escape(note)}")
        if self.runlog is not None:
            self.runlog.notes = subbranch_notes(self.config, tree)
        for note in self.config.outside_paths:
            self.output.info(f"[yellow]note:[/] outside the config's folder: {escape(note)}")
        with RunProgress(self.output) as progress:
            from synctree.aio import EventKind

            observers: list[Callable[[Any], None]] = [self._planned, progress.observe]
            kinds = {EventKind.PLANNED, *progress.kinds()}
            if self.runlog is not None:
                observers.append(self.runlog.observe)
                kinds.update(EventKind)
            observer = _tee(frozenset(kinds), *observers)
            return await changes.run(self.template, observer=observer, **self.overrides)  # type: ignore[no-any-return]

    def _planned(self, event: Any) -> None:
        from synctree.aio import EventKind

        if event.kind is EventKind.PLANNED:
            self.planned = event.total


def _tee(kinds: frozenset[Any], *observers: Callable[[Any], None]) -> Callable[[Any], None]:
    """One observer calling each of ``observers``, taking only events of ``kinds``
    (the runner makes no other: a quiet run without a log makes none per action)."""

    def observe(event: Any) -> None:
        for observer in observers:
            observer(event)

    observe.synctree_kinds = kinds  # type: ignore[attr-defined]
    return observe
