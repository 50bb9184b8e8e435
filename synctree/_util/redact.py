"""Keeping credentials out of what synctree prints: errors, reports, logs, reprs.

URLs are the usual carrier: httpx and SQLAlchemy quote the URL a request was
made to, user info and query tokens included.  :func:`redact` masks what looks
like a credential in any URL; a :class:`Redactor` also masks values known to be
secret (those a config read from ``${VAR}``), in whatever text carries them.
A redactor is owned by whoever registered the values (a ``Config``, and the
command-line session that prints through it): the library keeps no global
registry.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable

__all__ = [
    "MASK",
    "Redactor",
    "error_text",
    "redact",
    "redact_body",
    "redact_url",
    "secret_pieces",
]

#: What a secret value (or a piece of one) is replaced by.
MASK = "***"
#: Pieces shorter than this are not masked: they identify nothing, and masking
#: them would garble every message ("ab" inside words).
MIN_PIECE = 3
#: Where a value is cut into fragments: URL delimiters, whitespace, quotes and
#: backslashes (a parser or a repr may print any run of the pieces in between).
_DELIMITERS = re.compile(r"""[@/#?:&\s'"\\]+""")

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


#: A ``"password": "..."``-like field in a response body (JSON, form or text).
_SECRET_FIELD = re.compile(
    r"""(["']?[\w-]*(?:pass(?:word)?|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|"""
    r"""credential|authorization)[\w-]*["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,&}]+)""",
    re.I,
)


def redact_body(text: str, limit: int | None = None) -> str:
    """A server's response body fit to print: secret-looking fields (``"token": "..."``)
    masked, credentials in quoted URLs too, cut to about ``limit`` characters."""
    text = redact(_SECRET_FIELD.sub(lambda m: f"{m[1]}{MASK}", text))
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit:,} more characters)"
    return text


def error_text(error: BaseException) -> str:
    """``'TypeName: message'`` with credentials in quoted URLs masked (see :func:`redact`)."""
    return redact(f"{type(error).__name__}: {error}")


def secret_pieces(value: str) -> set[str]:
    """The substrings of a secret ``value`` that identify it, so none may be printed.

    The value as it is, stripped, URL-encoded and -decoded, escaped as JSON and as
    a Python repr show it; and every fragment of those between URL delimiters
    (``@ / # ? : &``, whitespace, quotes), since a URL parser splits an unencoded
    password there and prints the parts (``dor/3`` of ``p@ss@dor/3``).  A value
    that is itself a URL (``${DATABASE_URL}``) is secret in its password and query
    values only: its scheme, host and path are what error messages need to say.
    Pieces shorter than :data:`MIN_PIECE` are left out.
    """
    secrets = _url_secrets(value) if "://" in value else [value]
    forms: set[str] = {value}
    for secret in secrets:
        decoded = {secret, secret.strip(), urllib.parse.unquote(secret)}
        decoded.add(urllib.parse.unquote_plus(secret))
        for one in list(decoded):
            forms |= {one, urllib.parse.quote(one, safe=""), urllib.parse.quote_plus(one)}
            forms |= {json.dumps(one)[1:-1], repr(one)[1:-1]}
            forms |= set(_DELIMITERS.split(one))
    return {form for form in forms if len(form) >= MIN_PIECE}


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable: all of it is secret
        return [url]
    values = [v for _, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    return [p for p in (password, *values) if p]


class Redactor:
    """Masks registered secret values, and the pieces of them that identify them
    (see :func:`secret_pieces`), in any text; then credentials in URLs (:func:`redact`).

    >>> mask = Redactor(["p@ss/word"])
    >>> mask("login failed for 'p@ss/word' at host/word")
    "login failed for '***' at host/***"
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._pieces: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Mask ``value`` (and its pieces) from now on."""
        new = secret_pieces(value) - self._pieces
        if new:
            self._pieces |= new
            # longest first, so a whole value is masked before its fragments
            ordered = sorted(self._pieces, key=lambda piece: (-len(piece), piece))
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return redact(text)

    def __repr__(self) -> str:  # never the values
        return f"<Redactor of {len(self._pieces)} pieces>"
