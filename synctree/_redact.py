"""Keeping credentials out of what synctree prints: errors, reports, logs, reprs.

URLs are the usual carrier: httpx and SQLAlchemy quote the URL a request was
made to, user info and query tokens included.
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["error_text", "redact", "redact_url"]

#: A URL inside an error message (httpx's and SQLAlchemy's quote the request's URL).
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
#: Query parameters whose values are masked (as ``synctree.aio.HTTPReader`` does).
_SECRET_PARAM = re.compile(r"token|secret|pass|pwd|key|sig|auth|credential|session", re.I)


def redact(text: str) -> str:
    """``text`` with credentials in the URLs it quotes masked: user info dropped,
    token-like query values replaced by ``REDACTED``.

    Errors raised by a template's own calls quote URLs as they were requested
    (``httpx.HTTPStatusError``: "... for url 'https://user:password@host/...'");
    reports, run logs and the command line show them through this.
    """
    return _URL.sub(_redact_match, text) if "://" in text else text


def _redact_match(match: re.Match[str]) -> str:
    return redact_url(match[0])


def redact_url(url: str) -> str:
    """``url`` fit to print: no user info, token-like query values replaced by ``REDACTED``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not a URL after all (an unbalanced IPv6 bracket...)
        return url
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if any(_SECRET_PARAM.search(name) for name, _ in pairs):
        query = urllib.parse.urlencode(
            [(name, "REDACTED" if _SECRET_PARAM.search(name) else v) for name, v in pairs]
        )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def error_text(error: BaseException) -> str:
    """``'TypeName: message'`` with credentials in quoted URLs masked (see :func:`redact`)."""
    return redact(f"{type(error).__name__}: {error}")
