"""Google's batch format on the server side: a multipart/mixed body of HTTP requests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ._discovery import ApiError

__all__ = ["Part", "encode_responses", "parse_batch"]


@dataclass
class Part:
    """One request of a batch: its Content-ID, method, path with query, headers, body."""

    content_id: str
    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def _headers(block: bytes) -> dict[str, str]:
    out = {}
    for line in block.decode("utf-8").split("\r\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ApiError(400, f"Invalid header line in batch part: {line[:40]!r}")
        out[name.strip().lower()] = value.strip()
    return out


def _split(block: bytes) -> tuple[bytes, bytes]:
    block = block.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, sep, rest = block.partition(b"\r\n\r\n")
    if not sep:
        return block, b""
    return head, rest


def parse_batch(content_type: str, body: bytes) -> list[Part]:
    """The parts of a batch request; 400 when it is not multipart/mixed or a part is bad."""
    if not content_type.lower().startswith("multipart/mixed"):
        raise ApiError(400, "Batch requests must be multipart/mixed.", "badContent")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise ApiError(400, "Missing boundary in multipart/mixed content type.", "badContent")
    delimiter = b"--" + match[1].encode()
    chunks = body.split(delimiter)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.strip(b"\r\n")
        outer, inner = _split(chunk)
        outer_headers = _headers(outer)
        if outer_headers.get("content-type", "").split(";")[0].strip() != "application/http":
            raise ApiError(400, "Each batch part must be application/http.", "badContent")
        head, payload = _split(inner)
        lines = head.decode("utf-8").split("\r\n")
        request_line = lines[0].split()
        if len(request_line) < 2:
            raise ApiError(400, "Invalid request line in batch part.", "badContent")
        parts.append(
            Part(
                outer_headers.get("content-id", ""),
                request_line[0].upper(),
                request_line[1],
                _headers("\r\n".join(lines[1:]).encode()),
                payload.rstrip(b"\r\n"),
            )
        )
    return parts


def encode_responses(answers: list[tuple[str, int, Any]]) -> tuple[str, bytes]:
    """``(content_id, status, json body or None)`` per part: content type and body."""
    boundary = "batch_synctree_emulator"
    out = []
    for content_id, status, body in answers:
        payload = b"" if body is None else json.dumps(body).encode()
        response_id = f"<response-{content_id.strip('<>')}>" if content_id else ""
        out.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: {response_id}\r\n\r\n"
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
            f"Content-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
            + b"\r\n"
        )
    out.append(f"--{boundary}--\r\n".encode())
    return f"multipart/mixed; boundary={boundary}", b"".join(out)


_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
