"""Public usage of ``synctree.aio.google`` that must type-check under ``mypy --strict``.

Never called; see ``api.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

from synctree import Report, SyncTree
from synctree.aio.google import (
    EmailRule,
    GoogleError,
    GoogleReader,
    GoogleRoster,
    GoogleTemplate,
    OURule,
    PasswordFile,
    PasswordPolicy,
    Quota,
)
from synctree.aio.http import GoogleServiceAccount


async def sync_to_google(key: Path) -> Report:
    auth = GoogleServiceAccount(key, subject="admin@school.example", scopes=["s"])
    tree = SyncTree(["source", "destination"], ["users", "groups", "members", "courses"])
    roster = GoogleRoster(
        "export", email="{first}.{last}@students.example.org", teachers_own_groups=False
    )
    source = roster.readers()
    reader = GoogleReader(auth=auth, query="orgUnitPath='/Students'", adopt="sis_email")
    destination = reader.readers(source=source)
    GoogleReader(auth=auth, adopt=False)
    await tree.load(source=source, destination=destination)
    template = GoogleTemplate(auth=auth, password_file=Path("passwords.csv"), rate="90%")
    return await ((tree.source > tree.destination) | template)


async def sync_right(template: GoogleTemplate, tree: SyncTree) -> Report:
    return await ((tree.source > tree.destination) | template)


def rules() -> None:
    address = EmailRule("{first}.{last}@example.org").address({"first": "A", "last": "B"})
    assert_type(address, str)
    assert_type(EmailRule.unique(address, set()), str)
    assert_type(OURule("/Students/{grade}").path({"grade": "7"}), str)
    assert_type(PasswordPolicy(12).generate(), str)
    PasswordFile("passwords.csv").append("1", address, "pw")
    assert_type(Quota(rate="90%").per_second("directory"), float)
    GoogleTemplate(on_old="archive")  # type: ignore[arg-type]


def errors(error: GoogleError) -> bool:
    return error.duplicate or error.reason == "quotaExceeded"
