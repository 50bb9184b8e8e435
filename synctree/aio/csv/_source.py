"""Where a CSV reader's bytes come from: the :class:`ByteSource` seam, and files on disk.

A reader opens a fresh source for each pass over the file (through an
*opener*, ``async () -> ByteSource``), so two passes never share one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal, Protocol, overload

import anyio

from synctree import InputError

__all__ = ["ByteSource", "Opener", "open_file"]


class ByteSource(Protocol):
    """Bytes to parse, read in chunks: a file, a zip member, an upload, ...

    ``read`` raises :class:`~synctree.InputError` for a source it cannot read.
    """

    async def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; ``b''`` at the end."""
        ...

    async def aclose(self) -> None:
        """Close the source (the pass is over, or was abandoned)."""
        ...

    def close(self) -> None:
        """Close without awaiting, when an abandoned pass is garbage collected."""
        ...


#: Opens a fresh source for one pass; ``None``: the file is missing, and that is fine.
Opener = Callable[[], Awaitable[ByteSource | None]]


class _FileSource:
    """A file on disk, read through :func:`anyio.open_file`."""

    def __init__(self, file: anyio.AsyncFile[bytes], path: Path) -> None:
        self._file = file
        self._path = path

    async def read(self, size: int) -> bytes:
        try:
            return await self._file.read(size)
        except OSError as exc:
            raise InputError(
                f"cannot read the file: {exc.strerror or exc}", path=self._path
            ) from exc

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._file.aclose()

    def close(self) -> None:
        self._file.wrapped.close()


@overload
async def open_file(path: Path, missing_ok: Literal[False] = False) -> ByteSource: ...
@overload
async def open_file(path: Path, missing_ok: bool) -> ByteSource | None: ...
async def open_file(path: Path, missing_ok: bool = False) -> ByteSource | None:
    """The file at ``path``, open for one pass: a :class:`ByteSource` for
    ``CSVReader.from_opener`` (an opener is ``partial(open_file, path)``).

    Raises :class:`~synctree.InputError` for a file that is missing (``None`` instead
    with ``missing_ok``), a directory, or one it cannot open.
    """
    try:
        return _FileSource(await anyio.open_file(path, "rb"), path)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise InputError("file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a CSV file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot open the file: {exc.strerror or exc}", path=path) from exc
