"""What a run means, whoever runs it: steps, phases, chains and the safety limit.

:class:`~synctree.DefaultTemplate` and :class:`~synctree.aio.AsyncTemplate`
share these rules, so the same diff gives the same outcomes through either:

- The plan runs in *phases*, one per subbranch and direction, in the diff's
  order (creates and updates in declared order, removals in reverse).
- Inside a phase, the actions on one object form a *chain*, run in order; the
  async runner runs chains concurrently, a *wave* (every chain's next action)
  at a time.
- A failed action fails its object: the object's later actions, in this phase
  and later ones, are skipped ("dependency failed").
- Before anything runs, a plan whose ``old_`` actions would remove more than
  ``max_deletes`` of a destination subbranch, or all of it because the source
  side is empty, is refused with :class:`~synctree.SafetyLimitExceeded`.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, overload

from ._action import Action, Kind, NewActions, message_of
from ._exceptions import SafetyLimitExceeded

if TYPE_CHECKING:
    from ._diff import Diff
    from ._template import Method, Router

__all__ = [
    "DEFAULT_MAX_DELETES",
    "DEPENDENCY_FAILED",
    "PlanView",
    "Step",
    "actions_of",
    "check_safety",
    "count",
    "parse_max_deletes",
    "phases",
    "plan_counts",
    "steps",
    "waves",
]

#: The default ``max_deletes``: a run may remove at most a tenth of a subbranch.
DEFAULT_MAX_DELETES = "10%"
#: The reason recorded for an action skipped because its object failed before.
DEPENDENCY_FAILED = "dependency failed"

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class Step:
    """What a runner executes: actions of one message, and their method (None: none).

    A *run* (``chained`` False) is consecutive ``new`` (or ``old``) actions: they
    need neither waves nor dependency checks (an object created or removed has
    no other action in its phase, nor one in an earlier phase), so a runner may
    handle them a batch at a time.  A *chained* step is one action of an object's
    chain (``actions`` holds just it): it waits for the object's earlier actions
    and is skipped if one of them failed.  A run's ``actions`` may be a
    :class:`~synctree.NewActions`, whose actions are made when read.
    """

    __slots__ = ("actions", "chained", "method")

    def __init__(self, actions: Sequence[Action], method: Method | None, *, chained: bool) -> None:
        self.actions = actions
        self.method = method
        self.chained = chained

    def __repr__(self) -> str:
        what = "chained" if self.chained else f"run of {len(self.actions)}"
        return f"<Step {what} {message_of(self.actions)}>"


def steps(actions: Sequence[Action | NewActions], router: Router) -> list[Step]:
    """The plan's steps: runs of ``new``/``old`` actions, the others one by one.

    ``actions`` may hold :class:`~synctree.NewActions` (the diff's runs of new
    objects, ``Diff._items()``); such a run stays one, its actions not made.
    """
    out: list[Step] = []
    others: list[Action] = []
    for _, group in itertools.groupby(actions, _message_of_item):
        items = list(group)
        if len(items) == 1 and isinstance(items[0], NewActions):
            run: Sequence[Action] = items[0]
        else:
            run = [a for item in items for a in (item if isinstance(item, NewActions) else [item])]
        if isinstance(items[0], NewActions) or run[0].kind in (Kind.NEW, Kind.OLD):
            if others:
                out += _chained(router, others)
                others = []
            first = run if isinstance(run, NewActions) else run[0]  # a run's: not made
            out.append(Step(run, router.method(first), chained=False))
        else:
            others += run
    out += _chained(router, others)
    return out


def _message_of_item(item: Action | NewActions) -> str:
    return item.message


def _chained(router: Router, actions: list[Action]) -> list[Step]:
    return [Step([action], method, chained=True) for action, method in router.steps(actions)]


def actions_of(plan: Iterable[Step]) -> Iterator[Action]:
    """Every action of the steps, in order."""
    for step in plan:
        yield from step.actions


def count(items: Iterable[Action | NewActions]) -> Counter[Kind]:
    """How many actions of each kind ``items`` holds (a run's actions not made)."""
    counts: Counter[Kind] = Counter()
    for item in items:
        if isinstance(item, NewActions):
            counts[Kind.NEW] += len(item)
        else:
            counts[item.kind] += 1
    return counts


class PlanView(Sequence[Action]):
    """Every action of the steps, in order, as a sequence: a run's actions are made
    when read (what the ``PLANNED`` event carries)."""

    __slots__ = ("_ends", "_parts")

    def __init__(self, plan: Iterable[Step]) -> None:
        self._parts = [step.actions for step in plan]
        self._ends = list(itertools.accumulate(map(len, self._parts)))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> Action: ...
    @overload
    def __getitem__(self, index: slice) -> list[Action]: ...
    def __getitem__(self, index: int | slice) -> Action | list[Action]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("plan index out of range")
        part = bisect.bisect_right(self._ends, index)
        start = self._ends[part - 1] if part else 0
        return self._parts[part][index - start]

    def __iter__(self) -> Iterator[Action]:
        for part in self._parts:
            yield from part

    def __repr__(self) -> str:
        return f"<PlanView of {len(self)} actions>"

    def counts(self) -> dict[str, Counter[str]]:
        """``{subbranch: Counter({kind: n})}`` in plan order, a run's actions not made."""
        out: dict[str, Counter[str]] = {}
        for part in self._parts:
            if isinstance(part, NewActions):
                out.setdefault(part.subbranch, Counter())[str(Kind.NEW)] += len(part)
                continue
            for action in part:
                out.setdefault(action.subbranch, Counter())[str(action.kind)] += 1
        return out


def plan_counts(plan: Sequence[Action] | None) -> dict[str, Counter[str]]:
    """:meth:`PlanView.counts` of any sequence of actions (a ``PLANNED`` event's plan)."""
    if isinstance(plan, PlanView):
        return plan.counts()
    out: dict[str, Counter[str]] = {}
    for action in plan or ():
        out.setdefault(action.subbranch, Counter())[str(action.kind)] += 1
    return out


def phases(plan: list[Step]) -> Iterator[list[Step]]:
    """Consecutive steps of one subbranch and direction."""
    phase: list[Step] = []
    key: tuple[str, bool] | None = None
    for step in plan:
        actions = step.actions
        if isinstance(actions, NewActions):
            step_key = (actions.subbranch, False)
        else:
            step_key = (actions[0].subbranch, actions[0].kind in (Kind.REMOVE, Kind.OLD))
        if step_key != key and phase:
            yield phase
            phase = []
        key = step_key
        phase.append(step)
    if phase:
        yield phase


def waves(phase: list[Step]) -> list[list[Step]]:
    """The phase as waves: the first action of every object, then the second, and so on.

    Each wave finishes before the next starts, so one object's actions stay in
    order while the actions of a wave run (and batch) together.  A phase holds
    one subbranch, so the idnumber names the object.
    """
    out: list[list[Step]] = [[]]
    depth_of: dict[str, int] = {}
    first = out[0]
    for step in phase:
        if not step.chained:
            first.append(step)
            continue
        idnumber = step.actions[0].idnumber
        depth = depth_of.get(idnumber, 0)
        depth_of[idnumber] = depth + 1
        if not depth:
            first.append(step)
        else:
            if depth == len(out):
                out.append([])
            out[depth].append(step)
    return out


def check_safety(
    diff: Diff,
    actions: Iterable[Action | NewActions],
    *,
    max_deletes: int | str | None,
    force: bool = False,
) -> None:
    """Raise :class:`SafetyLimitExceeded` if the plan removes too much of a subbranch."""
    if force:
        return
    allowed_of = parse_max_deletes(max_deletes)
    olds = Counter(
        action.subbranch
        for action in actions
        if not isinstance(action, NewActions) and action.kind is Kind.OLD
    )
    for name, deletes in olds.items():
        total = len(diff.right[name])
        if len(diff.left[name]) == 0 and diff.left[name].coverage == "full":
            raise SafetyLimitExceeded(
                f"{diff.left.name} {name} is empty but {diff.right.name} {name} has {total}: "
                f"refusing to remove all of them (an empty export?); force=True to allow",
                subbranch=name,
                deletes=deletes,
                total=total,
            )
        allowed = allowed_of(total)
        if deletes > allowed:
            raise SafetyLimitExceeded(
                f"the plan removes {deletes} of {total} {name} from {diff.right.name}, more "
                f"than max_deletes={max_deletes!r} allows ({math.floor(allowed)}); "
                f"nothing was changed; force=True to allow",
                subbranch=name,
                deletes=deletes,
                total=total,
            )


def parse_max_deletes(value: int | str | None) -> Callable[[int], float]:
    """``max_deletes`` as ``total -> allowed``.

    A count, ``'N%'`` of the subbranch (but at least 1), or None (no limit).
    """
    if value is None:
        return lambda total: math.inf
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return lambda total: value
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match and float(match[1]) <= 100:
            share = float(match[1]) / 100
            return lambda total: max(1.0, share * total)
    raise ValueError(
        f"'max_deletes' must be a count >= 0, a percentage like '10%' or None, got {value!r}"
    )
