"""The ``synctree`` command: plan, run and show a sync described by a config file.

Exit codes: 0 all done, 1 some actions failed (or the run stopped for a failure
of the destination as a whole), 2 bad configuration or input (a run stopped by a
configuration error, such as a missing table, included; or another run of the
config in progress), 3 stopped by a safety limit (or a saved plan that no longer
holds), 130 interrupted.

Everything the command prints or writes (messages, tables, JSON, the run log,
a saved plan) goes through the config's :class:`~synctree._util.redact.Redactor`,
so no value read from a ``${VAR}`` reaches any of them.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import signal
import sys
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import anyio
import click

from synctree._action import Action, Kind
from synctree._cli._config import Config
from synctree._cli._lock import RunLock, RunLocked
from synctree._exceptions import ConfigError, SafetyLimitExceeded, SyncTreeError
from synctree._report import Outcome, Report, failure_lines, shorten
from synctree._util.redact import Redactor, redact

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_SAFETY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_KINDS = (Kind.NEW, Kind.UPDATE, Kind.ADD, Kind.REMOVE, Kind.OLD, Kind.ERROR)
_SHOWN_PER_KIND = 5

T = TypeVar("T")


class _Stop(Exception):
    """Leave the command with an exit code (after printing a message)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code


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


class Output:
    """Where the command writes: rich on a terminal, plain text or JSON otherwise.

    Every byte goes through :attr:`redactor` (the config's secrets, once loaded).
    """

    def __init__(self, *, quiet: bool, verbose: bool, as_json: bool) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.verbose = verbose
        self.json = as_json
        self.redactor = Redactor()
        out = _Masked(lambda: sys.stdout, self.mask)
        err = _Masked(lambda: sys.stderr, self.mask)
        self.out = Console(file=out, highlight=False, soft_wrap=True)  # type: ignore[arg-type]
        self.err = Console(file=err, highlight=False, soft_wrap=True)  # type: ignore[arg-type]

    def mask(self, text: str) -> str:
        """``text`` with the config's secrets (and credentials in URLs) masked."""
        return self.redactor(text)

    @property
    def live(self) -> bool:
        """Whether to draw progress bars (a terminal, and not quiet or JSON)."""
        return self.err.is_terminal and not self.quiet and not self.json

    def info(self, message: str) -> None:
        if not self.quiet and not self.json:
            self.out.print(message)

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]error:[/] {_escape(message)}")

    def data(self, value: Any) -> None:
        click.echo(self.mask(json.dumps(value, indent=2, default=str)))

    def echo(self, text: str) -> None:
        click.echo(self.mask(text), nl=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command takes."""
    options = [
        click.argument("config", type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--quiet", "-q", is_flag=True, help="Print only errors."),
        click.option("--verbose", "-v", is_flag=True, help="Print every action."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts."),
        click.option(
            "--backend",
            type=click.Choice(["asyncio", "trio"]),
            default="asyncio",
            show_default=True,
            help="The async library to run on.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="synctree")
def main() -> None:
    """Fast, safe one-way sync from a source of truth into other systems."""


def _guarded(body: Callable[..., int]) -> Callable[..., NoReturn]:
    """Run a command body, turning synctree's errors into messages and exit codes."""

    @functools.wraps(body)
    def wrapper(**kwargs: Any) -> NoReturn:
        output = Output(quiet=kwargs["quiet"], verbose=kwargs["verbose"], as_json=kwargs["as_json"])
        try:
            code = body(output, **kwargs)
        except _Stop as stop:
            if str(stop):
                output.error(str(stop))
            code = stop.code
        except SafetyLimitExceeded as exc:
            output.error(str(exc))
            code = EXIT_SAFETY
        except SyncTreeError as exc:
            output.error(str(exc))
            code = EXIT_INPUT
        except KeyboardInterrupt:
            output.error("interrupted")
            code = EXIT_INTERRUPTED
        except Exception:  # a bug, or an error nobody translated: its traceback, masked
            output.err.print(traceback.format_exc(), markup=False, end="")
            code = EXIT_FAILED  # as Python's own traceback exit
        sys.exit(code)

    return wrapper


def _load_config(path: Path, output: Output) -> Config:
    config = Config(path)
    output.redactor = config.secrets  # from now on, nothing printed holds a ${VAR} value
    return config


async def _load_tree(config: Config, output: Output) -> Any:
    tree = config.tree()
    await _load_with_progress(tree, config.build_readers(), output)
    # The loaded tree lives until the command ends: freezing it keeps the
    # garbage collector from walking its millions of objects again and again
    # while the sync runs (about 30% of a big run).  The command owns the
    # process, and _run_async unfreezes at the end; the library never does this.
    gc.freeze()
    return tree


async def _load_with_progress(
    tree: Any, readers: dict[str, dict[str, Any]], output: Output
) -> None:
    from synctree.aio._load import load

    if not output.live:
        await load(tree, readers)
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

        await load(tree, readers, progress=progress)


def _diff(config: Config, tree: Any, only: Iterable[str] = ()) -> Any:
    left, right = config.branches
    diff = tree[left] > tree[right]
    wanted = set(only)
    if wanted:
        diff = diff.filter(lambda action: action.idnumber in wanted)
    return diff


def _summary(actions: Iterable[Action], subbranches: list[str]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {name: Counter() for name in subbranches}
    for action in actions:
        counts[action.subbranch][str(action.kind)] += 1
    return counts


def _print_plan(output: Output, config: Config, actions: list[Action]) -> None:
    from rich.table import Table

    counts = _summary(actions, config.subbranches)
    table = Table(title=f"plan: {config.branches[0]} → {config.branches[1]}")
    table.add_column("subbranch")
    for kind in _KINDS:
        table.add_column(str(kind), justify="right")
    for name, counter in counts.items():
        table.add_row(name, *(str(counter[k]) for k in _KINDS))
    table.add_row("total", *(str(sum(c[k] for c in counts.values())) for k in _KINDS), style="bold")
    output.out.print(table)
    by_kind: dict[str, list[Action]] = {}
    for action in actions:
        by_kind.setdefault(str(action.kind), []).append(action)
    for kind_name, some in by_kind.items():
        shown = some if output.verbose else some[:_SHOWN_PER_KIND]
        output.out.print(f"[bold]{kind_name}[/] ({len(some)}):")
        for action in shown:
            output.out.print(f"  {_escape(repr(action))}")
        if len(some) > len(shown):
            output.out.print(f"  … {len(some) - len(shown)} more (--verbose shows all)")
    for note in config.outside_paths:
        output.out.print(f"[yellow]note:[/] outside the config's folder: {_escape(note)}")


def _plan_dicts(actions: Iterable[Action]) -> list[dict[str, Any]]:
    return [action.to_dict() for action in actions]


def _run_async(backend: str, fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return anyio.run(fn, backend=backend)
    finally:
        gc.unfreeze()  # see _load_tree


@main.command()
@_common
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan (JSON)."
)
@_guarded
def plan(output: Output, config: Path, out: Path | None, backend: str, **_: Any) -> int:
    """Show what a run would change."""
    cfg = _load_config(config, output)
    cfg.build_template()  # its options are checked as a run would check them (no I/O)

    async def compute() -> list[Action]:
        tree = await _load_tree(cfg, output)
        return [action async for action in _diff(cfg, tree)]

    actions = _run_async(backend, compute)
    if out is not None:
        _write_json(out, {"config": str(config), "actions": _plan_dicts(actions)}, output.mask)
    if output.json:
        output.data(
            {
                "summary": {k: dict(v) for k, v in _summary(actions, cfg.subbranches).items()},
                "actions": _plan_dicts(actions),
                "outside_paths": cfg.outside_paths,
            }
        )
    elif not output.quiet:
        _print_plan(output, cfg, actions)
    return EXIT_OK


def _write_json(path: Path, value: Any, mask: Callable[[str], str]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(mask(json.dumps(value, indent=1, default=str)), encoding="utf-8")
    temporary.replace(path)


@main.command()
@_common
@click.argument("subbranch", required=False)
@click.argument("idnumber", required=False)
@click.option(
    "--limit", type=int, default=20, show_default=True, help="Objects shown per subbranch."
)
@_guarded
def show(
    output: Output,
    config: Path,
    subbranch: str | None,
    idnumber: str | None,
    limit: int,
    backend: str,
    **_: Any,
) -> int:
    """Print the tree, a subbranch, or one object on every branch side by side."""
    cfg = _load_config(config, output)
    if subbranch is not None and subbranch not in cfg.subbranches:
        known = ", ".join(cfg.subbranches)
        raise _Stop(EXIT_INPUT, f"{config}: unknown subbranch {subbranch!r} (the sync has {known})")
    tree = _run_async(backend, lambda: _load_tree(cfg, output))
    if output.json:
        if idnumber is not None:
            output.data(
                {
                    branch: (
                        leaf.to_dict() if (leaf := tree[branch][subbranch].get(idnumber)) else None
                    )
                    for branch in cfg.branches
                }
            )
        else:
            names = [subbranch] if subbranch else cfg.subbranches
            output.data({b: {n: len(tree[b][n]) for n in names} for b in cfg.branches})
        return EXIT_OK
    if idnumber is not None and all(idnumber not in tree[b][subbranch] for b in cfg.branches):
        raise _Stop(EXIT_INPUT, f"no {subbranch} {idnumber!r} on any branch")
    buffer = _Capture()
    tree.show(subbranch, idnumber, limit=limit, file=buffer)
    output.echo(buffer.text)
    return EXIT_OK


class _Capture:
    """A text sink for ``tree.show``."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


@main.command()
@_common
@click.option(
    "--log", type=click.Path(dir_okay=False, path_type=Path), help="Write a JSON line per action."
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Apply this saved plan, only if planning again gives the same actions.",
)
@click.option("--only", multiple=True, metavar="ID", help="Sync just this object (repeatable).")
@click.option("--max-deletes", help="Most removals per subbranch: a count or 'N%'.")
@click.option("--force", is_flag=True, help="Run even past the safety limits.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Actions in flight at once.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Calls per second.")
@click.option("--dry-run", is_flag=True, help="Plan and report; change nothing.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0,
    metavar="SECONDS",
    help="If another run of this config is in progress, wait this long for it (default: exit 2).",
)
@_guarded
def run(
    output: Output,
    config: Path,
    log: Path | None,
    plan_file: Path | None,
    only: tuple[str, ...],
    max_deletes: str | None,
    force: bool,
    concurrency: int | None,
    rate: float | None,
    dry_run: bool,
    wait: float,
    backend: str,
    **_: Any,
) -> int:
    """Sync: load both sides, then change the destination.

    One run of a config at a time: a run holds a lock on the config until it
    ends (a dry run, like plan and show, needs none).
    """
    cfg = _load_config(config, output)
    overrides: dict[str, Any] = dict(cfg.run)
    if max_deletes is not None:
        from synctree._plan import parse_max_deletes

        limit = int(max_deletes) if max_deletes.isdigit() else max_deletes
        try:
            parse_max_deletes(limit)
        except ValueError as exc:  # a usage error: exit code 2, not a traceback
            raise click.BadParameter(str(exc), param_hint="'--max-deletes'") from None
        overrides["max_deletes"] = limit
    for name, value in (("concurrency", concurrency), ("rate", rate)):
        if value is not None:
            overrides[name] = value
    if force:
        overrides["force"] = True
    if dry_run:
        overrides["dry_run"] = True
    saved = _read_plan(plan_file) if plan_file is not None else None
    template = cfg.build_template()
    lock = None if dry_run else _lock_run(config, wait, output)
    try:
        return _run(output, cfg, template, overrides, log, saved, only, backend)
    finally:
        if lock is not None:
            lock.release()


def _lock_run(config: Path, wait: float, output: Output) -> RunLock:
    """The config's run lock, held; or exit 2 when another run holds it past ``wait``."""
    lock = RunLock(config)

    def waiting(holder: str) -> None:
        if not output.quiet:
            output.err.print(
                f"waiting for another synctree run of {_escape(str(config))}{holder} "
                f"(up to {wait:g}s)"
            )

    try:
        lock.acquire(wait=wait, on_wait=waiting)
    except RunLocked as exc:
        raise _Stop(
            EXIT_INPUT,
            f"another synctree run of {config} is in progress{exc.holder}; nothing was done. "
            "Let it finish, or pass --wait SECONDS to wait for it.",
        ) from None
    return lock


def _run(
    output: Output,
    cfg: Config,
    template: Any,
    overrides: dict[str, Any],
    log: Path | None,
    saved: list[dict[str, Any]] | None,
    only: tuple[str, ...],
    backend: str,
) -> int:
    session = _RunSession(output, cfg, template, overrides, log, saved, only)
    report = _run_async(backend, session.main)
    if report is None:  # interrupted before the run began
        return EXIT_INTERRUPTED
    _print_report(output, report)
    if session.interrupted:
        return EXIT_INTERRUPTED
    if report.stopped is not None and isinstance(report.stop_error, ConfigError):
        return EXIT_INPUT
    return EXIT_OK if report.ok else EXIT_FAILED


def _read_plan(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        actions = data["actions"]
        if not isinstance(actions, list):
            raise TypeError("'actions' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _Stop(EXIT_INPUT, f"{path}: not a saved plan ({exc})") from None
    return actions


def _print_report(output: Output, report: Report) -> None:
    if output.json:
        output.data(report.to_dict())
        return
    if report.stopped is not None:
        output.error(f"the run stopped: {shorten(report.stopped)}")
    if output.quiet:
        for line in failure_lines(report, with_value=True):
            output.err.print(_escape(line))
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
    for line in failure_lines(report, with_value=True):
        output.out.print(f"[red]failed[/] {_escape(line)}")


class _RunSession:
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
        tree = await _load_tree(self.config, self.output)
        diff = _diff(self.config, tree, self.only)
        if self.saved is not None:
            current = _plan_dicts([a async for a in diff])
            _check_saved_plan(self.saved, current)
        for note in self.config.outside_paths:
            self.output.info(f"[yellow]note:[/] outside the config's folder: {_escape(note)}")
        if self.log_path is not None:
            self.log_file = self.log_path.open("w", encoding="utf-8")
        try:
            with _Progress(self.output) as progress:
                observer: Callable[[Any], None] = progress.observe
                if self.log_file is not None:
                    observer = _tee(observer, self._log)
                return await diff.run(self.template, observer=observer, **self.overrides)  # type: ignore[no-any-return]
        finally:
            if self.log_file is not None:
                self.log_file.close()

    def _log(self, event: Any) -> None:
        from synctree.aio._events import EventKind

        if event.kind is EventKind.FINISHED and self.log_file is not None:
            line = json.dumps(event.result.to_dict(), default=str)
            self.log_file.write(self.output.mask(line) + "\n")
            self.log_file.flush()


def _tee(*observers: Callable[[Any], None]) -> Callable[[Any], None]:
    def observe(event: Any) -> None:
        for observer in observers:
            observer(event)

    return observe


def _check_saved_plan(saved: list[dict[str, Any]], current: list[dict[str, Any]]) -> None:
    def key(action: dict[str, Any]) -> str:
        return json.dumps(action, sort_keys=True, default=str)

    before, now = Counter(map(key, saved)), Counter(map(key, current))
    if before == now:
        return
    gone = list((before - now).elements())
    new = list((now - before).elements())
    lines = ["the saved plan no longer holds; nothing was changed. Plan again."]
    lines += [f"  no longer planned: {line}" for line in gone[:10]]
    lines += [f"  newly planned: {line}" for line in new[:10]]
    if len(gone) + len(new) > 20:
        lines.append(f"  … {len(gone) + len(new) - 20} more differences")
    raise _Stop(EXIT_SAFETY, "\n".join(lines))


class _Progress:
    """Progress bars per subbranch, fed by the runner's events."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.bars: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        if self.output.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bars = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[note]}"), console=self.output.err,
            )  # fmt: skip
            self.bars.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def observe(self, event: Any) -> None:
        from synctree.aio._events import EventKind

        kind = event.kind
        if kind is EventKind.PLANNED:
            counts = Counter(action.subbranch for action in event.plan or ())
            if self.bars is not None:
                for name, total in counts.items():
                    self.tasks[name] = self.bars.add_task(name, total=total, note="")
            return
        if self.bars is None:
            if self.output.verbose and kind is EventKind.FINISHED:
                result = event.result
                self.output.out.print(
                    f"{result.outcome}: {_escape(repr(result.action))}"
                    + (f" ({_escape(redact(str(result.error)))})" if result.error else "")
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
            self.bars.update(task, note=f"retrying in {event.delay:.1f}s: {_escape(reason)}")
        elif kind is EventKind.THROTTLED:
            self.bars.update(task, note=f"throttled {event.delay:.1f}s: {_escape(reason)}")
