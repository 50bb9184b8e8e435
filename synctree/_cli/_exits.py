"""The command's exit codes, and :class:`Stop`, which leaves a command with one.

0 all done, 1 some actions failed (or the run stopped for a failure of the
destination as a whole), 2 bad configuration or input (a run stopped by a
configuration error, such as a missing table, included; or another run of the
config in progress), 3 stopped by a safety limit (or a saved plan that no longer
holds), 130 interrupted.  ``synctree plan`` exits 1 when the plan holds error
actions, and with ``--check`` 3 when a run would stop at a safety limit.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn

__all__ = [
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SAFETY",
    "Stop",
    "end_process",
    "started_as_program",
]

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_SAFETY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class Stop(Exception):
    """Leave the command with an exit code (after printing a message)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code


def started_as_program() -> bool:
    """Whether this process is the ``synctree`` program: its ``__main__`` is the installed
    ``synctree`` script or ``python -m synctree`` (not a test, nor an application
    calling the command in-process)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return bool(spec.name == "synctree.__main__")
    path = getattr(main, "__file__", None)
    return isinstance(path, str) and os.path.basename(path) in ("synctree", "synctree-script.py")


def end_process(code: object) -> NoReturn:
    """End the process with ``code`` (a ``SystemExit`` code), without tearing it down.

    The command owns its process (a library must never do this): once it has
    finished, freeing what a big run made (every row, leaf and action, one by
    one) is work nobody waits for, a fifth of a nightly run.  So the ``atexit``
    handlers run (``logging`` flushes its handlers) and the standard streams are
    flushed, as at a normal exit, and the process ends with ``os._exit``.
    Only the ``synctree`` program does this (:func:`started_as_program`), never
    a command invoked in-process (``CliRunner``, ``main()`` from Python).
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # as Python does for sys.exit("message")
        sys.stderr.write(f"{code}\n")
        status = 1
    try:
        atexit._run_exitfuncs()  # what a normal exit runs first (CPython's own hook)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):  # closed, or no stream at all
                pass
        os._exit(status)
