"""Replacing a file atomically: readers see the old file or the new one, never half of one.

The text goes to a temporary file in the same folder, which is flushed and
fsynced, given the old file's permissions, and renamed over the old file with
``os.replace``; then the folder is fsynced, so the rename survives a crash.
A symlink is written through (the link stays a link).  On any error the
temporary file is removed and the old file is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    *,
    encoding: str,
    newline: str | None = None,
    new_mode: int = 0o666,
) -> Iterator[TextIO]:
    """A text file to write ``path``'s new content into; it replaces ``path`` on success.

    :param new_mode: the permissions of a file that did not exist (less the
        umask); an existing file's are kept.
    """
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    import secrets  # (with hashlib and hmac: only when a file is written)

    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temp, flags, new_mode if mode is None else mode)
    try:
        with open(fd, "w", encoding=encoding, newline=newline) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temp, mode)  # the same mode as the file it replaces, whatever the umask
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); best effort where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
