"""Google's batch requests: many calls in one multipart/mixed request, answered per part.

As Google documents it ("Sending Batch Requests"): each part is an ``application/http``
request with a ``Content-ID``; the answer holds one ``application/http`` response per
part, whose ``Content-ID`` is ``response-`` and the part's, so every answer maps back to
its call whatever the order.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

__all__ = ["Call", "decode_batch", "encode_batch"]


@dataclass(frozen=True, slots=True)
class Call:
    """One API call: method, path (from the host), query parameters and JSON body."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None

    def target(self) -> str:
        return self.path + (f"?{urlencode(self.params)}" if self.params else "")


def encode_batch(calls: Sequence[Call]) -> tuple[str, bytes]:
    """The content type and body of a batch request for ``calls`` (Content-IDs 0..n-1)."""
    boundary = "synctree_" + secrets.token_hex(12)
    chunks = []
    for index, call in enumerate(calls):
        payload = b"" if call.body is None else json.dumps(call.body).encode()
        head = (
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <item{index}>\r\n\r\n"
            f"{call.method} {call.target()} HTTP/1.1\r\n"
        )
        if payload:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        chunks.append(head.encode() + b"\r\n" + payload + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/mixed; boundary={boundary}", b"".join(chunks)


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_ITEM = re.compile(r"<?response-item(\d+)>?", re.IGNORECASE)


def _split(block: bytes) -> tuple[str, bytes]:
    head, _, rest = block.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def decode_batch(content_type: str, body: bytes, count: int) -> list[tuple[int, bytes] | None]:
    """Per call (by Content-ID): ``(status, body)``, or ``None`` for a call not answered.

    :raises ValueError: the answer is not a multipart/mixed batch answer.
    """
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/mixed") or match is None:
        raise ValueError(f"a batch answer must be multipart/mixed, got {content_type!r}")
    delimiter = b"--" + match[1].encode()
    out: list[tuple[int, bytes] | None] = [None] * count
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        outer, inner = _split(chunk.strip(b"\r\n").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        index = None
        for line in outer.split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-id":
                found = _ITEM.fullmatch(value.strip())
                index = int(found[1]) if found else None
        head, payload = _split(inner)
        status_line = head.split("\r\n", 1)[0].split()
        if index is None or not 0 <= index < count or len(status_line) < 2:
            raise ValueError("a batch answer part has no Content-ID of a call or no status")
        out[index] = (int(status_line[1]), payload.strip(b"\r\n"))
    return out
