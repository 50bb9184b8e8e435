"""One ``synctree run`` of a config at a time: an OS advisory lock held for the run.

The lock is a file next to the config, ``.{config name}.lock``, taken with
``flock`` (``msvcrt.locking`` on Windows).  The operating system drops it when
the process ends, however it ends (a crash, ``kill -9``), so a stale lock file
never blocks a later run; the file is left in place (deleting it would let a
third run lock a new file while the second still holds the old one).  Where
the config's folder is read-only, the config file itself is locked instead.

Why per config, not per destination: the config is what names the destination,
and a lock on it needs no knowledge of what a custom template writes to.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["RunLock", "RunLocked"]

#: How often a waiting run tries the lock again.
_POLL = 0.1


class RunLocked(Exception):
    """Another process holds the lock; ``holder`` is ``' (pid N)'`` when known, else ``''``."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"locked{holder}")
        self.holder = holder


class RunLock:
    """An exclusive lock on a config's runs; :meth:`acquire`, then :meth:`release`."""

    def __init__(self, config: Path) -> None:
        config = config.resolve()
        self.path = config.with_name(f".{config.name}.lock")
        self._config = config
        self._fd: int | None = None

    def acquire(self, *, wait: float = 0.0, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lock, waiting up to ``wait`` seconds for another run to end.

        :raises RunLocked: when it is still held after ``wait`` seconds.
        """
        fd, writable = self._open()
        deadline = time.monotonic() + wait
        try:
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise RunLocked(self._holder())
                if on_wait is not None:
                    on_wait(self._holder())
                    on_wait = None  # say it once
                time.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))
        except BaseException:
            os.close(fd)
            raise
        if writable:  # who holds it, for the message another run prints
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Let the next run go (closing the file drops the lock)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _open(self) -> tuple[int, bool]:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), True
        except OSError:  # a read-only folder: lock the config itself
            return os.open(self._config, os.O_RDONLY), False

    def _holder(self) -> str:
        try:
            pid = self.path.read_text(encoding="ascii").strip()
        except (OSError, ValueError):
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
