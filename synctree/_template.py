"""Templates: the methods that change a destination, one per action message."""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

from ._action import Action, Changes, Kind
from ._exceptions import TemplateImportError, UncomparableError
from ._report import Outcome, Report, Result

if TYPE_CHECKING:
    from ._diff import Diff

__all__ = ["DefaultTemplate", "Skip", "TemplateLike", "resolve_template"]


@dataclasses.dataclass(frozen=True, slots=True)
class Skip:
    """Return ``Skip("why")`` from a template method to record the action as skipped."""

    reason: str = ""


class _Template:
    """What every template shares: hooks and the method lookup."""

    def before_all(self) -> None:
        """Called once before the first action."""

    def after_all(self, report: Report) -> None:
        """Called once after the last action, with the report so far."""

    def _run(self, diff: Diff, *, dry_run: bool = False, **options: Any) -> Any:
        raise NotImplementedError  # pragma: no cover - abstract


class DefaultTemplate(_Template):
    """A synchronous template: define a method per action message.

    ``new_students(action)``, ``update_students_grade(action)``, or
    ``update_students(action)`` to get every changed attribute of one object
    in ``action.changes`` at once.  Returning normally is success, raising
    fails that action only, returning :class:`Skip` records a skip; an action
    without a method is counted as not implemented.
    """

    def _run(self, diff: Diff, *, dry_run: bool = False, **options: Any) -> Report:
        if options:
            raise TypeError(f"{type(self).__name__} has no option {next(iter(options))!r}")
        report = Report()
        self.before_all()
        for action, method in route(diff, self):
            report.record(call(action, method, dry_run=dry_run))
        report.finish()
        self.after_all(report)
        return report


TemplateLike: TypeAlias = "_Template | type[_Template] | str"


def resolve_template(template: TemplateLike) -> _Template:
    """An instance from a template class, an instance, or an import string.

    The string is ``'pkg.mod:Class'`` or ``'pkg.mod.Class'``.
    """
    if isinstance(template, str):
        template = _import(template)
    if isinstance(template, type) and issubclass(template, _Template):
        return template()
    if isinstance(template, _Template):
        return template
    raise TypeError(
        f"a template must be a DefaultTemplate or AsyncTemplate (class or instance) "
        f"or an import string, not {template!r}"
    )


def _import(spec: str) -> Any:
    module_name, sep, name = spec.partition(":")
    if not sep:
        module_name, _, name = spec.rpartition(".")
    if not module_name or not name:
        raise TemplateImportError(spec, "expected 'package.module:Class' or 'package.module.Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TemplateImportError(spec, f"{type(exc).__name__}: {exc}") from exc
    try:
        obj = module
        for part in name.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise TemplateImportError(spec, f"module {module_name!r} has no {name!r}") from None
    return obj


Method: TypeAlias = Callable[[Action], Any]


def route(actions: Iterable[Action], template: object) -> Iterator[tuple[Action, Method | None]]:
    """Pair each action with the template method that handles it (or None).

    The method named after the message wins.  Otherwise a generic one serves:
    ``add_{subbranch}`` then ``add`` (likewise ``remove``), ``new`` and ``old``
    for any subbranch, so built-in templates can serve every subbranch.  For
    updates, an ``update_{subbranch}`` (then ``update``) method receives one
    grouped action per object with all its other changed attributes in
    ``changes``, in the place of the object's first update; the object's
    other actions met meanwhile follow it.
    """
    return Router(template).steps(actions)


class Router:
    """:func:`route` for one template, remembering its methods across calls."""

    def __init__(self, template: object) -> None:
        self.template = template
        self._methods: dict[str, Method | None] = {}  # attribute name -> method
        self._resolved: dict[str, Method | None] = {}  # message -> method, fallbacks applied

    def _lookup(self, name: str) -> Method | None:
        try:
            return self._methods[name]
        except KeyError:
            method = getattr(self.template, name, None) if not name.startswith("_") else None
            self._methods[name] = method = method if callable(method) else None
            return method

    def method(self, action: Action) -> Method | None:
        """The method for ``action`` (None: not implemented), grouped updates aside."""
        message = action.message
        try:
            return self._resolved[message]
        except KeyError:
            pass
        kind = action.kind
        lookup = self._lookup
        method = None if kind is Kind.ERROR else lookup(message)
        if method is None and kind in (Kind.ADD, Kind.REMOVE):
            method = lookup(f"{kind.value}_{action.subbranch}") or lookup(kind.value)
        elif method is None and kind in (Kind.NEW, Kind.OLD):
            method = lookup(kind.value)
        self._resolved[message] = method
        return method

    def steps(self, actions: Iterable[Action]) -> Iterator[tuple[Action, Method | None]]:
        """Each action (updates grouped where a template wants) and its method."""
        resolve = self.method
        group: list[Action] = []  # the updates of one object for ``grouped``
        held: list[tuple[Action, Method | None]] = []  # that object's other actions
        grouped: Method | None = None
        for action in actions:
            if group and (
                action.idnumber != group[0].idnumber or action.subbranch != group[0].subbranch
            ):
                yield _grouped(group), grouped
                yield from held
                group, held = [], []
            method = resolve(action)
            if method is None and action.kind is Kind.UPDATE:
                grouped = self._lookup("update_" + action.subbranch) or self._lookup("update")
                if grouped is not None:
                    group.append(action)
                    continue
            if group:
                held.append((action, method))
            else:
                yield action, method
        if group:
            yield _grouped(group), grouped
            yield from held


def _grouped(updates: list[Action]) -> Action:
    first = updates[0]
    return Action(
        first.idnumber,
        "update_" + first.subbranch,
        first.subbranch,
        Kind.UPDATE,
        changes=Changes({a.attribute: a.value for a in updates if a.attribute is not None}),
        source=first.source,
        dest=first.dest,
    )


def call(action: Action, method: Method | None, *, dry_run: bool = False) -> Result:
    """Run one action's method and say how it ended (exceptions are caught, not raised)."""
    if action.kind is Kind.ERROR:
        error = UncomparableError(
            action.error or "cannot compare",
            subbranch=action.subbranch,
            key=action.idnumber,
            attribute=action.attribute or "",
        )
        return Result(action, Outcome.FAILED, error=error, attempts=0)
    if method is None:
        return Result(action, Outcome.NOT_IMPLEMENTED, attempts=0)
    if dry_run:
        return Result(action, Outcome.PLANNED, attempts=0)
    start = time.perf_counter()
    try:
        returned = method(action)
    except Exception as exc:
        return Result(action, Outcome.FAILED, error=exc, elapsed=time.perf_counter() - start)
    return outcome_of(action, returned, time.perf_counter() - start)


def outcome_of(action: Action, returned: object, elapsed: float, attempts: int = 1) -> Result:
    """The result of a method that returned ``returned`` (``Skip`` or anything else)."""
    if isinstance(returned, Skip):
        return Result(
            action, Outcome.SKIPPED, reason=returned.reason, attempts=attempts, elapsed=elapsed
        )
    return Result(action, Outcome.SUCCEEDED, attempts=attempts, elapsed=elapsed)
