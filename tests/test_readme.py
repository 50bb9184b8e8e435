"""The README's code blocks run, and its set-up commands are the ones CI uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_there_are_blocks() -> None:
    """The README has Python examples to test."""
    assert len(PYTHON_BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs(index: int, tmp_path: Path) -> None:
    """Each Python block runs on its own without error."""
    script = tmp_path / f"block{index}.py"
    script.write_text(PYTHON_BLOCKS[index], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr


def test_quickstart_output() -> None:
    """The quickstart prints the actions its comment shows."""
    block = PYTHON_BLOCKS[0]
    result = subprocess.run(
        [sys.executable, "-c", block], capture_output=True, text=True, timeout=60
    )
    first_line = result.stdout.splitlines()[0]
    comment = "".join(
        line.lstrip("# ").rstrip() for line in block.splitlines() if line.startswith("# ")
    )
    assert first_line.replace(" ", "") == comment.replace(" ", "")


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run calls exactly the test command the README gives."""
    commands = re.findall(r"```console\n(.*?)```", README, flags=re.DOTALL)
    test_command = next(c.strip() for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
