from __future__ import annotations

import copy
import datetime
import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from synctree import Action, DefaultTemplate, Leaf, Outcome, SyncTree

SUBBRANCHES = ["people", "groups"]
COLLECTIONS = ("tags", "codes")

Model = dict[str, dict[str, dict[str, Any]]]  # subbranch -> key -> attributes

# Each attribute keeps one comparable type on both sides, so every difference is
# an action a template can apply (type mismatches are tested in test_diff.py).
numbers = st.none() | st.integers(-3, 3) | st.floats(-3, 3, allow_nan=False)
records = st.fixed_dictionaries(
    {
        "n": numbers,
        "name": st.none() | st.text(max_size=3),
        "tags": st.none() | st.sets(st.integers(0, 4)),
        "codes": st.lists(st.sampled_from("abcde"), unique=True),
        "_private": st.integers(),
    }
)
sides = st.fixed_dictionaries(
    {
        sub: st.dictionaries(st.text("abcdef", min_size=1, max_size=2), records)
        for sub in SUBBRANCHES
    }
)


def load(source: Model, destination: Model) -> SyncTree:
    tree = SyncTree(["source", "destination"], SUBBRANCHES)
    for branch, side in (("source", source), ("destination", destination)):
        for sub, leaves in side.items():
            for key, attributes in leaves.items():
                tree.new(branch, sub, key, **copy.deepcopy(attributes))
    return tree


class Applier(DefaultTemplate):
    """Applies actions to a plain dict model of the destination."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def new(self, action: Action) -> None:
        assert action.source is not None
        attributes = {k: v for k, v in vars(action.source).items() if k != "idnumber"}
        self.model[action.subbranch][action.idnumber] = copy.deepcopy(attributes)

    def old(self, action: Action) -> None:
        del self.model[action.subbranch][action.idnumber]

    def add(self, action: Action) -> None:
        members = self.model[action.subbranch][action.idnumber][action.attribute]
        members.add(action.value) if isinstance(members, set) else members.append(action.value)

    def remove(self, action: Action) -> None:
        self.model[action.subbranch][action.idnumber][action.attribute].remove(action.value)


class PerAttribute(Applier):
    """Updates through one method per subbranch and attribute."""


for _sub in SUBBRANCHES:
    for _attribute in ("n", "name", *COLLECTIONS):

        def _update(self: Applier, action: Action) -> None:
            value = copy.deepcopy(action.value)
            self.model[action.subbranch][action.idnumber][action.attribute] = value

        setattr(PerAttribute, f"update_{_sub}_{_attribute}", _update)


class Grouped(Applier):
    """Updates through one grouped call per object."""

    def update(self, action: Action) -> None:
        assert action.changes is not None
        self.model[action.subbranch][action.idnumber].update(copy.deepcopy(dict(action.changes)))


def public(model: Model) -> Model:
    """The compared part of a model; lists as sorted lists (their order is not synced)."""
    return {
        sub: {
            key: {
                name: sorted(value) if isinstance(value, list) else value
                for name, value in attributes.items()
                if not name.startswith("_") and name != "idnumber"
            }
            for key, attributes in leaves.items()
        }
        for sub, leaves in model.items()
    }


class TestConvergence:
    @given(source=sides, destination=sides, grouped=st.booleans())
    def test_applying_the_diff_mirrors_the_source(
        self, source: Model, destination: Model, grouped: bool
    ) -> None:
        """Applying every action to the destination makes it equal to the source."""
        tree = load(source, destination)
        model = copy.deepcopy(destination)
        template = Grouped(model) if grouped else PerAttribute(model)
        # Any removals at all: the safety limit is not what this test is about.
        report = (tree.source > tree.destination).run(template, force=True)
        assert report.totals.keys() <= {Outcome.SUCCEEDED}, str(report)
        assert public(model) == public(source)
        assert list(load(source, model).source > load(source, model).destination) == []

    @given(side=sides)
    def test_equal_sides_have_no_diff(self, side: Model) -> None:
        """The diff of two equal sides is empty."""
        tree = load(side, side)
        assert list(tree.source > tree.destination) == []
        assert list(tree.destination > tree.source) == []

    @given(source=sides, destination=sides)
    def test_each_key_once(self, source: Model, destination: Model) -> None:
        """New and old actions name exactly the keys on one side only."""
        tree = load(source, destination)
        actions = list(tree.source - tree.destination)
        for sub in SUBBRANCHES:
            new = {a.idnumber for a in actions if a.subbranch == sub and a.kind == "new"}
            old = {a.idnumber for a in actions if a.subbranch == sub and a.kind == "old"}
            assert new == source[sub].keys() - destination[sub].keys()
            assert old == destination[sub].keys() - source[sub].keys()
            assert len(actions) == len(set(map(repr, actions)))


members = st.integers(0, 3) | st.text("ab", max_size=1) | st.lists(st.integers(0, 2), max_size=2)
collections = st.lists(members, max_size=4) | st.sets(st.integers(0, 3) | st.text("ab", max_size=1))


def contains(collection: Any, member: Any) -> bool:
    return any(member == item for item in collection)


class TestCollectionProperties:
    @given(left=collections, right=collections)
    def test_member_by_member(self, left: Any, right: Any) -> None:
        """Any two collections diff member by member, each member once, without raising."""
        tree = SyncTree(["source", "destination"], ["people"])
        tree.new("source", "people", "1", members=left)
        tree.new("destination", "people", "1", members=right)
        actions = list(tree.source > tree.destination)
        added = [a.value for a in actions if a.kind == "add"]
        removed = [a.value for a in actions if a.kind == "remove"]
        assert [a.kind for a in actions] == ["add"] * len(added) + ["remove"] * len(removed)
        assert all(contains(left, m) and not contains(right, m) for m in added)
        assert all(contains(right, m) and not contains(left, m) for m in removed)
        assert all(contains(right, m) or contains(added, m) for m in left)
        assert all(contains(left, m) or contains(removed, m) for m in right)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.dates()
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC))
)
hashables = st.recursive(scalars, lambda inner: st.tuples(inner, inner), max_leaves=4)
values = st.recursive(
    scalars | st.sets(hashables, max_size=3) | st.tuples(hashables),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
attributes = st.dictionaries(
    st.from_regex(r"_?[ab]{1,2}", fullmatch=True),
    values,
    max_size=4,
)
trees = st.fixed_dictionaries(
    {
        branch: st.fixed_dictionaries(
            {
                sub: st.dictionaries(st.text("ab", min_size=1, max_size=2), attributes, max_size=3)
                for sub in SUBBRANCHES
            }  # fmt: skip
        )
        for branch in ("source", "destination")
    }
)


def build(
    data: dict[str, Model], models: dict[str, dict[str, type[Leaf]]] | None = None
) -> SyncTree:
    tree = SyncTree(["source", "destination"], SUBBRANCHES, models=models)
    for branch in tree.branches:
        for sub, leaves in data[branch].items():
            for key, attrs in leaves.items():
                tree.new(branch, sub, key, **attrs)
    return tree


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types, all the way down (a frozenset may come back a set)."""
    if isinstance(a, set | frozenset) and isinstance(b, set | frozenset):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class TestSnapshotProperties:
    @given(data=trees)
    def test_round_trip(self, data: dict[str, Model]) -> None:
        """A snapshot restores every leaf's attributes with their types."""
        tree = build(data)
        restored = SyncTree.from_json(tree.to_json())
        assert restored.branches == tree.branches
        for branch in tree.branches:
            for sub in SUBBRANCHES:
                before, after = tree[branch][sub], restored[branch][sub]
                assert list(before.keys()) == list(after.keys())
                for leaf in before:
                    assert same(vars(leaf), vars(after[leaf.idnumber]))


class Flaky(Leaf):
    """A model whose derived attribute fails on some leaves."""

    @property
    def initial(self) -> str:
        return str(self.name[0])


class TestShowProperties:
    @given(data=trees, key=st.text(min_size=1, max_size=3), limit=st.none() | st.integers(0, 3))
    def test_show_never_fails(self, data: dict[str, Model], key: str, limit: int | None) -> None:
        """``show`` renders any tree, subbranch and object, even with failing properties."""
        tree = build(data, models={"source": {"people": Flaky}})
        out = io.StringIO()
        tree.show(limit=limit, file=out)
        for sub in SUBBRANCHES:
            tree.show(sub, limit=limit, file=out)
            tree.show(sub, key, file=out)
            for leaf in tree.source[sub]:
                tree.show(sub, leaf.idnumber, file=out)
        assert out.getvalue().startswith("source\n")

    @given(data=trees)
    def test_diff_never_fails(self, data: dict[str, Model]) -> None:
        """The diff of any two sides runs to the end; it reports, it does not raise."""
        tree = build(data, models={"source": {"people": Flaky}})
        for action in tree.source > tree.destination:
            assert action.kind != "error" or action.error
