"""What a Google API's error answer becomes: :class:`GoogleError`."""

from __future__ import annotations

import json
from typing import Any

import httpx

from synctree import SyncTreeError
from synctree._util.redact import redact_url

__all__ = ["GoogleError"]


class GoogleError(SyncTreeError, httpx.HTTPStatusError):
    """A Google API answered with an error (a whole call, or one part of a batch).

    ``status`` is the HTTP status, ``reason`` Google's first ``errors[].reason``
    (``duplicate``, ``rateLimitExceeded``, ``quotaExceeded``...), ``message`` its text.
    It is an :class:`httpx.HTTPStatusError`, so the runner retries 429, 5xx and
    Google's rate-limit 403s.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.reason: str | None = None
        self.google_message: str | None = None
        body: Any
        try:
            body = json.loads(response.content or b"null")
        except (ValueError, httpx.ResponseNotRead):
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            message = error.get("message")
            self.google_message = message if isinstance(message, str) else None
            details = error.get("errors")
            if isinstance(details, list) and details and isinstance(details[0], dict):
                reason = details[0].get("reason")
                self.reason = reason if isinstance(reason, str) else None
            if self.reason is None and isinstance(error.get("status"), str):
                self.reason = error["status"]
        request = response.request
        what = " ".join(p for p in (self.reason, self.google_message) if p)
        text = f"HTTP {self.status} {what or response.reason_phrase}"
        message = f"{text} ({request.method} {redact_url(str(request.url))})"
        super().__init__(message, request=request, response=response)

    @property
    def duplicate(self) -> bool:
        """Whether Google said the object exists already (409)."""
        return self.status == 409

    @property
    def not_found(self) -> bool:
        return self.status == 404
