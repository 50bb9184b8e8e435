from __future__ import annotations

import datetime
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from synctree import Leaf, SyncTree

VALUES: dict[str, Any] = {
    "count": 7,
    "big": 2**70,
    "ratio": 0.5,
    "flag": True,
    "nothing": None,
    "name": "Zoë",
    "codes": [3, "x", None, [1, 2]],
    "groups": {"b", "a"},
    "mixed": {1, "a", (2, 3)},
    "pair": (1, "one"),
    "born": datetime.date(2010, 1, 31),
    "seen": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
    "extra": {"$set": [1], "nested": {"k": (1,)}, "when": datetime.date(2020, 1, 1)},
    "_private": "kept",
}


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def make_tree() -> SyncTree:
    tree = SyncTree(["source", "destination"], ["students", "classes"])
    tree.new("source", "students", "1", **VALUES)
    tree.new("source", "students", "2")
    tree.new("destination", "classes", "c1", room="R1")
    return tree


class TestSnapshot:
    def test_round_trip(self, tmp_path: Path) -> None:
        """``save`` then ``restore`` gives back every leaf with values of the same types."""
        path = tmp_path / "tree.json"
        make_tree().save(path)
        tree = SyncTree.restore(path)
        assert tree.branches == ["source", "destination"]
        assert tree.subbranches == ["students", "classes"]
        assert list(tree.source.students.keys()) == ["1", "2"]
        leaf = tree.source.students["1"]
        assert same({k: v for k, v in vars(leaf).items() if k != "idnumber"}, VALUES)
        assert leaf.idnumber == "1"
        assert tree.destination.classes["c1"].room == "R1"
        assert len(tree.destination.students) == 0

    def test_str_path(self, tmp_path: Path) -> None:
        """Paths may be strings; the file is UTF-8 JSON and no temporary file is left."""
        path = str(tmp_path / "tree.json")
        make_tree().save(path)
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        assert data["synctree"] == 1
        assert data["leaves"]["source"]["students"]["1"]["name"] == "Zoë"
        assert data["leaves"]["source"]["students"]["1"]["groups"] == {"$set": ["a", "b"]}
        assert [p.name for p in tmp_path.iterdir()] == ["tree.json"]

    def test_diff_survives(self, tmp_path: Path) -> None:
        """A restored tree diffs exactly as the original."""
        tree = make_tree()
        tree.new("destination", "students", "1", count=6, groups={"a"})
        path = tmp_path / "tree.json"
        tree.save(path)
        assert list(SyncTree.restore(path).source > SyncTree.restore(path).destination) == list(
            tree.source > tree.destination
        )

    def test_json_text(self) -> None:
        """``to_json``/``from_json`` round-trip through a string."""
        text = make_tree().to_json()
        assert isinstance(text, str)
        assert SyncTree.from_json(text).to_json() == text

    def test_models_on_restore(self, tmp_path: Path) -> None:
        """Models are passed on restore; stored attributes, not derived ones, are saved."""

        class SISStudent(Leaf):
            @property
            def first(self) -> str:
                return str(self._lastfirst.split(",")[1].strip())

        models = {"source": {"students": SISStudent}}
        tree = SyncTree(["source", "destination"], ["students"], models=models)
        tree.new("source", "students", "1", _lastfirst="Shmoe, Joe")
        path = tmp_path / "tree.json"
        tree.save(path)
        assert '"first"' not in path.read_text()
        restored = SyncTree.restore(path, models=models)
        leaf = restored.source.students["1"]
        assert type(leaf) is SISStudent and leaf.first == "Joe"
        assert type(SyncTree.restore(path).source.students["1"]) is Leaf

    def test_duplicates_on_restore(self) -> None:
        """The duplicate policies are passed on restore and apply afterwards."""
        tree = SyncTree.from_json(make_tree().to_json(), duplicates="skip")
        tree.new("source", "students", "1", count=0)
        assert tree.source.students["1"].count == 7

    def test_file_permissions(self, tmp_path: Path) -> None:
        """A new snapshot is private to its owner; saving again keeps the file's mode."""
        path = tmp_path / "tree.json"
        make_tree().save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        path.chmod(0o640)
        make_tree().save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        assert [p.name for p in tmp_path.iterdir()] == ["tree.json"]

    def test_unsupported_value(self, tmp_path: Path) -> None:
        """A value JSON cannot hold is a TypeError naming where it is; no file is written."""
        tree = SyncTree(["source"], ["students"])
        tree.new("source", "students", "1", blob=b"x")
        path = tmp_path / "tree.json"
        with pytest.raises(TypeError, match="cannot snapshot source students '1' 'blob': bytes"):
            tree.save(path)
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("text", ["[]", '{"synctree": 99}', "{}"])
    def test_not_a_snapshot(self, text: str) -> None:
        """Other JSON is refused with a ValueError."""
        with pytest.raises(ValueError, match="not a synctree snapshot"):
            SyncTree.from_json(text)
