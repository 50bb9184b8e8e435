"""Cells a spreadsheet could run as formulas, and the quote that stops it.

One rule for :class:`CSVTemplate` (which adds the quote) and :class:`CSVReader`
(which can take it off again), so that a file written by one reads back exactly
through the other.
"""

from __future__ import annotations

import re

__all__ = ["neutralised", "unneutralised"]

#: A cell starting with one of these may run as a formula in a spreadsheet
#: (OWASP, "CSV Injection").
_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: ... unless it is a plain number such as ``-5`` or ``+3.5e2``: a spreadsheet
#: reads that as the number and runs nothing, and a quote would turn it into
#: text that ``CSVReader(types={...: int})`` could no longer read back.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _needs_quote(text: str) -> bool:
    """Whether ``text``, leading quotes aside, could run as a formula.

    The leading quotes are skipped so that ``'=x`` gets a quote too: written
    ``''=x``, it reads back as ``'=x``, never as ``=x``.
    """
    bare = text.lstrip("'")
    return bare.startswith(_TRIGGERS) and _NUMBER.fullmatch(bare) is None


def neutralised(text: str) -> str:
    """``text`` with a leading ``'`` if a spreadsheet could run it (or it is quoted such text)."""
    return "'" + text if _needs_quote(text) else text


def unneutralised(text: str) -> str:
    """``text`` without the quote :func:`neutralised` added; any other text as it is."""
    if text[:1] == "'" and _needs_quote(text):
        return text[1:]
    return text
