"""The ``synctree`` command line: the click commands ``plan``, ``run``, ``show``, ``log``
and ``report``.

Each command is a thin layer over :mod:`._session` (loading, running), printing
through :mod:`._output`; synctree's errors become messages and the exit codes
of :mod:`._exits`.

Everything the command prints or writes (messages, tables, JSON, the run log,
a saved plan) goes through the config's :class:`~synctree._util.redact.Redactor`,
so no value read from a ``${VAR}`` reaches any of them.
"""

from __future__ import annotations

import functools
import gc
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from synctree import Action, SafetyLimitExceeded, SyncTreeError

from ._exits import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SAFETY,
    Stop,
    end_process,
    started_as_program,
)
from ._output import Capture, Output, escape, print_plan, summary
from ._saved_plan import plan_dicts, read_plan, write_json

__all__ = ["main"]


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


_EPILOG = """\b
Exit codes:
  0    all done (plan: the plan is fine)
  1    some actions failed, or the run stopped for a failure of the destination
       (plan: the plan holds differences it cannot judge)
  2    bad configuration or input, or another run of the config in progress
  3    stopped by a safety limit or a stale saved plan (plan --check: would stop)
  130  interrupted
"""


class _Command(click.Group):
    """The ``synctree`` group; run as the program (the ``synctree`` script, ``python -m
    synctree``), it ends its process without tearing it down
    (:func:`._exits.end_process`).

    ``CliRunner``, and Python code calling ``main()`` in-process, get ``SystemExit``
    as usual.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not started_as_program():
            return self.main(*args, **kwargs)
        try:
            self.main(*args, **kwargs)
        except SystemExit as done:
            end_process(done.code)
        end_process(0)  # pragma: no cover - main() always raises SystemExit standalone


@click.group(
    cls=_Command,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_EPILOG,
)
@click.version_option(package_name="synctree")
def main() -> None:
    """Fast, safe one-way sync from a source of truth into other systems."""


def _guarded(body: Callable[..., int]) -> Callable[..., NoReturn]:
    """Run a command body, turning synctree's errors into messages and exit codes."""

    @functools.wraps(body)
    def wrapper(**kwargs: Any) -> NoReturn:
        output = Output(quiet=kwargs["quiet"], verbose=kwargs["verbose"], as_json=kwargs["as_json"])
        # The command owns the process: it runs the collector less often (a run
        # makes hundreds of thousands of long-lived actions, leaves and rows,
        # which CPython's default thresholds would walk again and again; about
        # 40% of a 100,000-row initial sync).  Put back when the command ends.
        thresholds = gc.get_threshold()
        gc.set_threshold(50_000, 20, 10)
        try:
            code = body(output, **kwargs)
        except Stop as stop:
            if str(stop):
                output.error(str(stop))
            code = stop.code
        except SafetyLimitExceeded as exc:
            from . import _session

            output.error(_session.safety_message(exc))
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
        finally:
            gc.set_threshold(*thresholds)
        sys.exit(code)

    return wrapper


@main.command()
@_common
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan (JSON)."
)
@click.option("--only", multiple=True, metavar="ID", help="Plan just this object (repeatable).")
@click.option("--max-deletes", help="Most removals per subbranch: a count or 'N%'.")
@click.option(
    "--check", is_flag=True, help="Exit 3 if a run would stop at a safety limit (max_deletes)."
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Lines shown per subbranch (0: all; --verbose shows all).",
)
@_guarded
def plan(
    output: Output,
    config: Path,
    out: Path | None,
    only: tuple[str, ...],
    max_deletes: str | None,
    check: bool,
    limit: int,
    backend: str,
    **_: Any,
) -> int:
    """Show what a run would change, a line per object grouped by subbranch.

    Exits 1 when the plan holds differences synctree cannot judge (error
    actions, with the fix), and with --check 3 when a run would stop at a
    safety limit.
    """
    from . import _session  # the engine and the config reader: not for --help

    cfg = _session.load_config(config, output)
    template = cfg.build_template()  # its options are checked as a run would check them
    limit_value = _max_deletes_option(max_deletes)
    if limit_value is None:
        limit_value = cfg.run.get("max_deletes")

    async def compute() -> tuple[Any, Any, list[Action]]:
        tree = await _session.load_tree(cfg, output)
        changes = _session.diff(cfg, tree, only)
        return tree, changes, [action async for action in changes]

    tree, changes, actions = _session.run_async(backend, compute)
    warnings = _session.unknown_ids(cfg, tree, only)
    safety = _session.safety_warning(template, changes, actions, limit_value)
    if safety is not None:
        warnings.append(safety)
    errors = _session.error_messages(cfg, actions)
    notes = _session.subbranch_notes(cfg, tree)
    if out is not None:
        write_json(out, {"config": str(config), "actions": plan_dicts(actions)}, output.mask)
    if output.json:
        from ._plan_view import plan_lines

        lines = plan_lines(actions, cfg.displays)
        counts = summary(actions, cfg.subbranches)
        output.data(
            {
                "summary": {k: dict(v) for k, v in counts.items()},
                "subbranches": {
                    name: {
                        "counts": dict(counts[name]),
                        "notes": notes.get(name, []),
                        "lines": [line.to_dict() for line in lines.get(name, [])],
                    }
                    for name in cfg.subbranches
                },
                "actions": plan_dicts(actions),
                "notes": _session.notes(tree),
                "outside_paths": cfg.outside_paths,
                "warnings": warnings,
                "errors": errors,
            }
        )
    elif not output.quiet:
        print_plan(output, cfg, actions, warnings=warnings, notes=notes, limit=limit)
    else:
        for warning in warnings:
            output.err.print(f"[yellow]warning:[/] {escape(warning)}")
    for message in errors:
        output.error(message)
    if check and safety is not None:
        return EXIT_SAFETY
    return EXIT_FAILED if errors else EXIT_OK


def _max_deletes_option(max_deletes: str | None) -> int | str | None:
    """``--max-deletes`` as ``max_deletes``: a count or ``'N%'``; a usage error otherwise."""
    if max_deletes is None:
        return None
    from synctree._plan import parse_max_deletes

    limit = int(max_deletes) if max_deletes.isdigit() else max_deletes
    try:
        parse_max_deletes(limit)
    except ValueError as exc:  # a usage error: exit code 2, not a traceback
        raise click.BadParameter(str(exc), param_hint="'--max-deletes'") from None
    return limit


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
    from . import _session

    cfg = _session.load_config(config, output)
    if subbranch is not None and subbranch not in cfg.subbranches:
        known = ", ".join(cfg.subbranches)
        raise Stop(EXIT_INPUT, f"{config}: unknown subbranch {subbranch!r} (the sync has {known})")
    tree = _session.run_async(backend, lambda: _session.load_tree(cfg, output))
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
        raise Stop(EXIT_INPUT, f"no {subbranch} {idnumber!r} on any branch")
    buffer = Capture()
    tree.show(subbranch, idnumber, limit=limit, file=buffer)
    output.echo(buffer.text)
    return EXIT_OK


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
    from . import _session

    cfg = _session.load_config(config, output)
    overrides: dict[str, Any] = dict(cfg.run)
    limit = _max_deletes_option(max_deletes)
    if limit is not None:
        overrides["max_deletes"] = limit
    for name, value in (("concurrency", concurrency), ("rate", rate)):
        if value is not None:
            overrides[name] = value
    if force:
        overrides["force"] = True
    if dry_run:
        overrides["dry_run"] = True
    saved = read_plan(plan_file) if plan_file is not None else None
    template = cfg.build_template()
    lock = None if dry_run else _session.hold_lock(config, wait, output)
    try:
        session = _session.RunSession(output, cfg, template, overrides, log, saved, only)
        return _session.run_and_report(session, backend)
    finally:
        if lock is not None:
            lock.release()


def _log_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the commands that read a run log."""
    options = [
        click.argument("runlog", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option("--run", "run_id", metavar="ID", help="This run of the log (default: last)."),
        click.option("--quiet", "-q", is_flag=True, help="Print only errors."),
        click.option("--verbose", "-v", is_flag=True, help="Print every failure."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command(name="log")
@_log_options
@_guarded
def log_command(output: Output, runlog: Path, run_id: str | None, **_: Any) -> int:
    """Print a run's summary from its run log (--log FILE, or one in [log] dir)."""
    from ._log_view import pick_run, print_run, run_dict

    run = pick_run(runlog, run_id)
    if output.json:
        output.data(run_dict(run))
    elif not output.quiet:
        print_run(output, run)
    return EXIT_OK


@main.command()
@_log_options
@click.option(
    "--html",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write the run as one self-contained HTML page.",
)
@_guarded
def report(output: Output, runlog: Path, run_id: str | None, html: Path, **_: Any) -> int:
    """Draw a run from its run log as one HTML page: counts, failures, a timeline."""
    from ._html import render
    from ._log_view import pick_run

    run = pick_run(runlog, run_id)
    text = output.mask(render(run))
    html.write_text(text, encoding="utf-8")
    output.info(f"wrote {escape(str(html))}")
    return EXIT_OK
