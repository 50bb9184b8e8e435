"""The emulator, served on 127.0.0.1, and a sync of the example's OneRoster export into it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synctree import Report, SyncTree
from synctree.aio.google import GoogleReader, GoogleRoster, GoogleTemplate
from tests.google_emulator import GoogleEmulator
from tests.http_server import serve

ROOT = Path(__file__).resolve().parents[3]
EXPORTS = ROOT / "examples" / "oneroster"
DOMAINS = (
    "maplevalley.example.org",
    "students.maplevalley.example.org",
    "groups.maplevalley.example.org",
)
ROSTER: dict[str, Any] = {
    "email": "{first}.{last}@students.maplevalley.example.org",
    "staff_email": "{first}.{last}@maplevalley.example.org",
    "ou": "/Students/{school}/{grade}",
    "staff_ou": "/Staff/{school}",
    "ou_lookup": {
        "school": {"org-ms": "Middle School", "org-hs": "High School", "org-district": "District"}
    },
    "group_email": "{code}@groups.maplevalley.example.org",
}
#: Quotas per second rather than per minute: the tests run in seconds, not minutes.
FAST = {"quota_window": 1.0}


@pytest.fixture
def emulator() -> GoogleEmulator:
    return GoogleEmulator(domains=DOMAINS, window=1.0)


@pytest.fixture
def url(emulator: GoogleEmulator) -> Iterator[str]:
    with serve(emulator.app) as base_url:
        yield base_url


async def load(
    url: str, export: str | Path = "sample", *, roster: dict[str, Any] | None = None, **reader: Any
) -> SyncTree:
    """The tree of the export (source) and the emulator (destination)."""
    tree = SyncTree(["source", "destination"], ["users", "groups", "members", "courses"])
    path = export if isinstance(export, Path) else EXPORTS / export
    source = GoogleRoster(path, **(roster or ROSTER)).readers()
    options = {"groups_domain": "groups.maplevalley.example.org", **FAST, **reader}
    destination = GoogleReader(base_url=url, **options).readers()
    del destination["orgunits"]
    await tree.load(source=source, destination=destination)
    return tree


async def sync(
    url: str,
    export: str | Path = "sample",
    *,
    passwords: Path | None = None,
    roster: dict[str, Any] | None = None,
    dry_run: bool = False,
    run: dict[str, Any] | None = None,
    reader: dict[str, Any] | None = None,
    **template: Any,
) -> Report:
    if "quotas" in template or "rate" in template:  # the reader draws on the same quota
        reader = {**{k: template[k] for k in ("quotas", "rate") if k in template}, **(reader or {})}
    tree = await load(url, export, roster=roster, **(reader or {}))
    options = {**FAST, **template}
    google = GoogleTemplate(base_url=url, password_file=passwords, **options)
    return await (tree.source > tree.destination).run(google, dry_run=dry_run, **(run or {}))


def counts(report: Report) -> dict[str, int]:
    """Actions by message (any outcome)."""
    out: dict[str, int] = {}
    for result in report.results:
        out[result.action.message] = out.get(result.action.message, 0) + 1
    return out
