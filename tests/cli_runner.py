"""Running the ``synctree`` command in-process, as the CLI tests do."""

from __future__ import annotations

from click.testing import CliRunner

from synctree._cli import main


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``synctree *args`` (with ``env`` added to the environment): (exit code, output)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.output
