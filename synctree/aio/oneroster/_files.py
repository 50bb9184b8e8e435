"""Where an export's bytes come from: files of a folder or members of a zip, and their headers.

Every file is read through a :class:`~synctree.aio.csv.ByteSource` opened
afresh for each pass: a file of a folder by :func:`synctree.aio.csv.open_file`, a
member of a zip by :class:`ZipMember` (in worker threads).
:func:`peek` reads a file's header (and first row) before the real pass, so the
reader can check and rename columns; :class:`Trimmed` hides the empty trailing
header columns some exports write when their rows are narrower
(``sourcedId,...,orgSourcedId,,`` above 9-field rows).
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import IO

import anyio
import anyio.to_thread

from synctree import InputError
from synctree.aio.csv import ByteSource

__all__ = ["Header", "Opener", "Trimmed", "ZipMember", "peek"]

Opener = Callable[[], Awaitable[ByteSource]]

_BOM = codecs.BOM_UTF8
_PEEK = 1 << 16  # bytes read to find the header and the first row


class ZipMember:
    """One file of a zip archive, read in worker threads (a fresh one for each pass)."""

    def __init__(self, archive: Path, member: str, shown: PurePath) -> None:
        self._archive = archive
        self._member = member
        self._shown = shown
        self._zip: zipfile.ZipFile | None = None
        self._file: IO[bytes] | None = None

    async def open(self) -> ZipMember:
        def open_member() -> tuple[zipfile.ZipFile, IO[bytes]]:
            archive = zipfile.ZipFile(self._archive)
            try:
                return archive, archive.open(self._member)
            except BaseException:
                archive.close()
                raise

        try:
            self._zip, self._file = await anyio.to_thread.run_sync(open_member)
        except KeyError:
            raise InputError("file not found in the zip archive", path=self._shown) from None
        except FileNotFoundError:
            raise InputError("file not found", path=self._archive) from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"cannot read the zip archive: {exc}", path=self._archive) from exc
        return self

    @classmethod
    async def opened(cls, archive: Path, member: str, shown: PurePath) -> ByteSource:
        """A new member, open: the opener of a :class:`CSVReader` over it."""
        return await cls(archive, member, shown).open()

    async def read(self, size: int) -> bytes:
        assert self._file is not None
        try:
            return await anyio.to_thread.run_sync(self._file.read, size)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise InputError(f"corrupt zip archive: {exc}", path=self._shown) from exc

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.close)

    def close(self) -> None:
        file, archive, self._file, self._zip = self._file, self._zip, None, None
        if file is not None:
            file.close()
        if archive is not None:
            archive.close()


@dataclass(frozen=True, slots=True)
class Header:
    """A file's header as peeked: its column names, and how to trim empty trailing ones."""

    labels: list[str]  # stripped, as the file spells them
    empty: bool  # the file has no header at all (no bytes, or blank lines only)
    trim_to: int | None = None  # keep only this many header columns
    header_bytes: int = 0  # bytes of the header line (BOM and line ending included)
    line_end: str = "\n"


async def peek(open_source: Opener, path: PurePath) -> Header:
    """The header of the file ``open_source()`` gives (one small read, then closed)."""
    source = await open_source()
    try:
        data = b""
        while len(data) < _PEEK:
            chunk = await source.read(_PEEK)
            if not chunk:
                break
            data += chunk
    finally:
        await source.aclose()
    bom = len(_BOM) if data.startswith(_BOM) else 0
    text = data[bom:].decode("utf-8", errors="replace")
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
        while header is not None and not header:  # blank lines before the header
            header = next(reader, None)
        header_end = stream.tell()
        first = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"malformed CSV header: {exc}", path=path, line=1) from None
    if not header:
        return Header([], empty=True)
    labels = [label.strip() for label in header]
    named = len(labels)
    while named and not labels[named - 1]:
        named -= 1
    trim_to = None
    if named < len(labels) and first and named <= len(first) < len(labels):
        trim_to = len(first)
    raw_header = text[:header_end]
    line_end = "\r\n" if raw_header.endswith("\r\n") else raw_header[-1:] or "\n"
    if line_end not in ("\r\n", "\n", "\r"):
        line_end = "\n"
    return Header(
        labels,
        empty=False,
        trim_to=trim_to,
        header_bytes=bom + len(raw_header.encode("utf-8")),
        line_end=line_end,
    )


class Trimmed:
    """A source whose header line is replaced by ``head`` (the first ``skip`` bytes go)."""

    def __init__(self, inner: ByteSource, skip: int, head: bytes) -> None:
        self._inner = inner
        self._skip = skip
        self._head: bytes | None = head

    @classmethod
    async def opened(cls, open_source: Opener, header: Header) -> ByteSource:
        assert header.trim_to is not None
        out = io.StringIO()
        csv.writer(out, lineterminator=header.line_end).writerow(header.labels[: header.trim_to])
        return cls(await open_source(), header.header_bytes, out.getvalue().encode("utf-8"))

    async def read(self, size: int) -> bytes:
        while self._skip:
            chunk = await self._inner.read(min(self._skip, 1 << 16))
            if not chunk:
                break
            self._skip -= len(chunk)
        if self._head is not None:
            head, self._head = self._head, None
            return head
        return await self._inner.read(size)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def close(self) -> None:
        self._inner.close()
