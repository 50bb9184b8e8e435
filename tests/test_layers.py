"""The dependency rule of docs/architecture.md holds: import-linter's contracts are kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class TestLayers:
    def test_contracts_are_kept(self) -> None:
        """Every layer imports only the layers below it, connectors only public names."""
        command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
        assert command is not None, "import-linter is a test dependency"
        done = subprocess.run(
            [command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def test_contracts_name_every_connector(self) -> None:
        """A new connector folder cannot slip past the rule: each has its own contract."""
        config = (ROOT / "pyproject.toml").read_text()
        connectors = sorted(
            path.name
            for path in (ROOT / "synctree" / "aio").iterdir()
            if path.is_dir() and (path / "__init__.py").exists()
        )
        assert connectors == ["csv", "google", "http", "oneroster", "scim", "sql"]
        for name in connectors:
            assert f'name = "the {name} connector uses public names only"' in config, name
