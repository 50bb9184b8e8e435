"""Where third-party test data lives: ``$SYNCTREE_REAL_DATA``, else ``<repo>/../shared/real``.

The files are read in place (never copied into the project); tests that need
them skip, saying where they looked, when the folder is not there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_data_root() -> Path:
    """The folder of real test data (it may not exist)."""
    configured = os.environ.get("SYNCTREE_REAL_DATA")
    return Path(configured) if configured else REPO.parent / "shared" / "real"


def real_data(*parts: str) -> Path:
    """``real_data_root() / parts``, or skip the test with the reason if it is not there."""
    path = real_data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real test data not found at {path} "
            "(set SYNCTREE_REAL_DATA to the folder that holds oneroster/)"
        )
    return path
