"""The command's exit codes, and :class:`Stop`, which leaves a command with one.

0 all done, 1 some actions failed (or the run stopped for a failure of the
destination as a whole), 2 bad configuration or input (a run stopped by a
configuration error, such as a missing table, included; or another run of the
config in progress), 3 stopped by a safety limit (or a saved plan that no longer
holds), 130 interrupted.  ``synctree plan`` exits 1 when the plan holds error
actions, and with ``--check`` 3 when a run would stop at a safety limit.
"""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_SAFETY", "Stop"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_SAFETY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class Stop(Exception):
    """Leave the command with an exit code (after printing a message)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
