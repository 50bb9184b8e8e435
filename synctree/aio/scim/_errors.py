"""What a SCIM server's error answer becomes: :class:`SCIMError`."""

from __future__ import annotations

import httpx

from synctree import SyncTreeError
from synctree._util.redact import redact_url

__all__ = ["SCIMError"]


class SCIMError(SyncTreeError, httpx.HTTPStatusError):
    """A SCIM server answered with an error; the message carries its ``scimType`` and
    ``detail``.  It is an :class:`httpx.HTTPStatusError`, so the runner retries 429/5xx."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.scim_type: str | None = None
        self.detail: str | None = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            scim_type, detail = body.get("scimType"), body.get("detail")
            self.scim_type = scim_type if isinstance(scim_type, str) else None
            self.detail = detail if isinstance(detail, str) else None
        request = response.request
        what = " ".join(p for p in (self.scim_type, self.detail) if p) or response.reason_phrase
        message = f"HTTP {self.status} {what} ({request.method} {redact_url(str(request.url))})"
        super().__init__(message, request=request, response=response)
