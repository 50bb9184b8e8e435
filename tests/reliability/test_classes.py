"""docs/reliability.md's classes of defect name tests that exist."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.reliability.classes import CLASSES

ROOT = Path(__file__).resolve().parents[2]


def defined(path: Path) -> set[str]:
    """``Class``, ``Class::test`` and ``test`` names a test file defines."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    return names


@pytest.mark.parametrize("defect", CLASSES, ids=lambda defect: defect.name)
def test_every_named_test_exists(defect: object) -> None:
    """Each test a class of defect names is in its file, so the page cannot go stale."""
    for node_id in defect.tests:  # type: ignore[attr-defined]
        file, _, name = node_id.partition("::")
        path = ROOT / file
        assert path.is_file(), node_id
        assert name in defined(path), node_id
