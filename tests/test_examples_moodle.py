"""The Moodle example runs as documented: ``python examples/moodle/sync.py``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "moodle" / "sync.py"


def run_example(token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOODLE_TOKEN": token}
    return subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_moodle_example_syncs_and_converges() -> None:
    """It exits 0, reports the creates (one batch), the update and the leaver, retries
    the "database busy" errors, and plans nothing on a second look."""
    token = "tok-" + os.urandom(6).hex()
    done = run_example(token)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    counts = dict(re.findall(r"^(\w+_students)\s+(\d+)$", out, re.MULTILINE))
    assert counts == {"new_students": "3", "update_students": "1", "old_students": "1"}
    assert re.search(r"^total\s+5$", out, re.MULTILINE)
    assert "FAILED" not in out
    retried = re.findall(r"^retried: (\w+) ", out, re.MULTILINE)
    assert sorted(set(retried)) == ["new_students", "old_students", "update_students"]
    assert "planned again: 0 actions" in out
    assert "moodle users: alee, bstone, cdiaz, dokafor, evu" in out
    assert token not in out + done.stderr
