"""examples/google: the OneRoster sample into the Google emulator through the CLI, converging."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.google_emulator import GoogleEmulator, make_key, write_key
from tests.http_server import serve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DOMAINS = (
    "maplevalley.example.org",
    "students.maplevalley.example.org",
    "groups.maplevalley.example.org",
)


@pytest.fixture
def google(tmp_path: Path) -> Iterator[tuple[Path, str, GoogleEmulator, dict[str, str]]]:
    """The example copied to tmp, an emulator (the example's 3 s quota window) demanding
    tokens for a key made for it, and that key in the example's folder."""
    shutil.copytree(EXAMPLES / "google", tmp_path / "google")
    shutil.copytree(EXAMPLES / "oneroster", tmp_path / "oneroster")
    emulator = GoogleEmulator(domains=DOMAINS, window=3.0)
    with serve(emulator.app) as url:
        key, public = make_key(f"{url}/token")
        emulator.public_key = public
        write_key(tmp_path / "google" / "emulator-key.json", key)
        yield tmp_path / "google" / "sync.toml", url, emulator, key


def synctree(url: str, *args: str, export: str = "sample") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOOGLE_API": url, "SCHOOL_EXPORT": export}
    return subprocess.run(
        [sys.executable, "-m", "synctree", *args], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip


def planned(url: str, config: Path, export: str = "sample") -> list[object]:
    result = synctree(url, "plan", str(config), "--json", export=export)
    assert result.returncode == 0, result.stderr
    actions: list[object] = json.loads(result.stdout)["actions"]
    return actions


def test_the_example_runs_and_converges(
    google: tuple[Path, str, GoogleEmulator, dict[str, str]],
) -> None:
    """Run, plan (empty), the changed export (its actions), plan (empty); no secret printed."""
    config, url, emulator, key = google
    first = synctree(url, "run", str(config))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "new_users" in first.stdout and "333" in first.stdout
    assert emulator.stats.tokens == 1  # one JWT verified: the reader and template share it
    assert planned(url, config) == []
    changed = synctree(url, "run", str(config), export="changed")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "old_users" in changed.stdout
    assert planned(url, config, "changed") == []
    passwords = config.parent / "passwords.csv"
    assert oct(passwords.stat().st_mode & 0o777) == "0o600"
    with passwords.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 336
    printed = first.stdout + first.stderr + changed.stdout + changed.stderr
    assert not any(row["password"] in printed for row in rows)
    assert key["private_key"].splitlines()[1] not in printed


def test_a_key_file_others_may_read_is_refused(
    google: tuple[Path, str, GoogleEmulator, dict[str, str]],
) -> None:
    """Exit 2 naming the key file and the fix, nothing called, nothing of the key printed."""
    config, url, emulator, key = google
    (config.parent / "emulator-key.json").chmod(0o644)
    result = synctree(url, "run", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "chmod 600" in result.stderr and "emulator-key.json" in result.stderr
    assert sum(emulator.stats.calls.values()) == 0
    assert key["private_key"].splitlines()[1] not in result.stdout + result.stderr


def test_an_existing_teacher_account_is_adopted_through_the_cli(
    google: tuple[Path, str, GoogleEmulator, dict[str, str]],
) -> None:
    """A teacher's hand-made account shows in `synctree plan` as an adoption (counted), an
    admin with another teacher's address as a note; the run adopts, the next plan is empty."""
    config, url, emulator, _ = google
    ben = emulator.add_user("ben.walker@maplevalley.example.org", "Ben", "Walker")
    emulator.add_user("isla.silva@maplevalley.example.org", "Isla", "Silva", isAdmin=True)
    actions = planned(url, config)
    messages = [a["message"] for a in actions]  # type: ignore[index]
    assert messages.count("update_users_external_id") == 1
    assert messages.count("new_users") == 332
    text = synctree(url, "plan", "--verbose", str(config))
    assert text.returncode == 0, text.stderr
    shown = text.stdout + text.stderr
    assert "tch-001 (Ben Walker)  external_id '' → tch-001, ou / → /Staff/Middle School" in shown
    assert "isla.silva@maplevalley.example.org is an admin: never adopted nor changed" in shown
    run = synctree(url, "run", str(config))
    assert run.returncode == 0, run.stdout + run.stderr
    assert {"type": "organization", "value": "tch-001"} in emulator.users[ben["id"]]["externalIds"]
    assert planned(url, config) == []
