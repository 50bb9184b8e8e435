"""Templates: the methods that change a destination, one per action message."""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias, TypeVar

from ._action import Action, Changes, Kind, NewActions
from ._exceptions import TemplateImportError, UncomparableError
from ._plan import (
    DEFAULT_MAX_DELETES,
    DEPENDENCY_FAILED,
    Step,
    check_safety,
    parse_max_deletes,
    steps,
)
from ._report import Outcome, Report, Result

if TYPE_CHECKING:
    from ._diff import Diff

__all__ = ["BaseTemplate", "DefaultTemplate", "Skip", "TemplateLike", "resolve_template"]


@dataclasses.dataclass(frozen=True, slots=True)
class Skip:
    """Return ``Skip("why")`` from a template method to record the action as skipped."""

    reason: str = ""


#: The run options of a synchronous template.
_SYNC_OPTIONS = frozenset({"dry_run", "fail_fast", "force", "max_deletes"})

R = TypeVar("R", covariant=True)


class BaseTemplate(Generic[R]):
    """What every template shares: the plan settings and the method lookup.

    It has no hooks: :class:`DefaultTemplate` declares synchronous ones and
    :class:`synctree.aio.AsyncTemplate` coroutine ones, so that a user's
    ``async def before_all(self) -> None`` type-checks.  ``R`` is what
    ``diff | template`` gives: a :class:`Report`, or an awaitable of one.
    """

    #: Most removals (``old_``) per destination subbranch: a count, ``'N%'`` or None.
    max_deletes: ClassVar[int | str | None] = DEFAULT_MAX_DELETES
    #: Compute and report the plan, change nothing.
    dry_run: ClassVar[bool] = False
    #: Stop starting new actions after the first failure.
    fail_fast: ClassVar[bool] = False

    def _run(self, diff: Diff, **options: Any) -> R:
        raise NotImplementedError  # pragma: no cover - abstract


class DefaultTemplate(BaseTemplate[Report]):
    """A synchronous template: define a method per action message.

    ``new_students(action)``, ``update_students_grade(action)``, or
    ``update_students(action)`` to get every changed attribute of one object
    in ``action.changes`` at once.  Returning normally is success, raising
    fails that action only (and skips that object's later actions), returning
    :class:`Skip` records a skip; an action without a method is counted as not
    implemented.  The plan's rules are the async runner's (``synctree._plan``):
    ``max_deletes`` is checked before the first call unless ``force=True``.
    """

    def before_all(self) -> None:
        """Called once before the first action."""

    def after_all(self, report: Report) -> None:
        """Called once after the last action, with the report so far."""

    def _run(self, diff: Diff, **options: Any) -> Report:
        unknown = options.keys() - _SYNC_OPTIONS
        if unknown:
            raise TypeError(f"{type(self).__name__} has no option {sorted(unknown)[0]!r}")
        dry_run = bool(options.get("dry_run", self.dry_run))
        fail_fast = bool(options.get("fail_fast", self.fail_fast))
        force = bool(options.get("force", False))
        limit = options.get("max_deletes", self.max_deletes)
        parse_max_deletes(limit)  # a bad setting fails before the plan is computed
        actions = list(diff)
        if not dry_run:
            check_safety(diff, actions, max_deletes=limit, force=force)
        report = Report()
        pairs = _pairs(steps(actions, Router(self)))
        if dry_run:
            for action, method in pairs:
                report.record(call(action, method, dry_run=True))
            report.finish()
            return report
        self.before_all()
        failed: set[tuple[str, str]] = set()
        for action, method in pairs:
            key = (action.subbranch, action.idnumber)
            if key in failed or (fail_fast and failed):
                reason = DEPENDENCY_FAILED if key in failed else "fail_fast"
                report.record(Result(action, Outcome.SKIPPED, reason=reason, attempts=0))
                continue
            result = call(action, method)
            if result.outcome is Outcome.FAILED:
                failed.add(key)
            report.record(result)
        report.finish()
        self.after_all(report)
        return report


def _pairs(plan: Iterable[Step]) -> Iterator[tuple[Action, Method | None]]:
    for step in plan:
        for action in step.actions:
            yield action, step.method


TemplateLike: TypeAlias = "BaseTemplate[Any] | type[BaseTemplate[Any]] | str"


def resolve_template(template: TemplateLike) -> BaseTemplate[Any]:
    """An instance from a template class, an instance, or an import string.

    The string is ``'pkg.mod:Class'`` or ``'pkg.mod.Class'``.
    """
    if isinstance(template, str):
        template = _import(template)
    if isinstance(template, type) and issubclass(template, BaseTemplate):
        return template()
    if isinstance(template, BaseTemplate):
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

    def method(self, action: Action | NewActions) -> Method | None:
        """The method for ``action`` (None: not implemented), grouped updates aside;
        for a :class:`NewActions`, its actions' method."""
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
