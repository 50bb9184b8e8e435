"""Account rules: the primary email from a pattern, the OU from a rule, initial passwords.

- :class:`EmailRule`: ``'{first}.{last}@students.example.org'``, lower-cased, accents
  folded to ASCII, characters Google refuses in an address removed; conflicts get a
  digit (``ann.lee2``) against every address taken, the run's new ones included.
- :class:`OURule`: ``'/Students/{school}/{grade}'``, each field through an optional
  lookup table (``{'school': {'org-ms': 'Middle School'}}``).
- :class:`PasswordPolicy`: an initial password drawn with :mod:`secrets`.
- :class:`PasswordFile`: where they are written: a CSV file created with mode 0600,
  appended to, never printed.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import re
import secrets
import stat
import string
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["EmailRule", "OURule", "PasswordFile", "PasswordPolicy", "fold"]

# Letters that do not decompose into ASCII plus accents.
_SPECIAL = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE", "ł": "l",
     "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D", "ı": "i"}
)  # fmt: skip
# What Google allows in the local part of an address: letters, digits, - _ ' and dots.
_REFUSED = re.compile(r"[^a-z0-9._'-]")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fold(text: str) -> str:
    """``text`` in ASCII, accents dropped: ``'Zoë Ñúñez'`` gives ``'Zoe Nunez'``."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL))
    return (
        "".join(c for c in decomposed if not unicodedata.combining(c))
        .encode("ascii", "ignore")
        .decode()
    )


def _fields(pattern: str, what: str) -> list[str]:
    names = _FIELD.findall(pattern)
    leftover = _FIELD.sub("", pattern)
    if "{" in leftover or "}" in leftover:
        raise ValueError(f"{what} {pattern!r} has a brace that is not a {{field}}")
    return names


def _value(row: Mapping[str, Any], name: str, what: str) -> str:
    value = row.get(name)
    if value is None or value == "":
        key = row.get("idnumber")
        raise ValueError(f"{what}: {key!r} has no {name!r} for the pattern")
    return str(value)


class EmailRule:
    """Primary addresses from a pattern such as ``'{first}.{last}@students.example.org'``."""

    def __init__(self, pattern: str) -> None:
        if not isinstance(pattern, str) or pattern.count("@") != 1:
            raise ValueError(
                f"'email' must be a pattern like '{{first}}.{{last}}@domain', got {pattern!r}"
            )
        local, domain = pattern.split("@")
        if not local or "{" in domain or not re.fullmatch(r"[a-z0-9.-]+\.[a-z]+", domain.lower()):
            raise ValueError(f"'email' pattern {pattern!r}: its domain must be written out")
        _fields(local, "'email' pattern")
        self.pattern = pattern
        self.local = local
        self.domain = domain.lower()

    def __repr__(self) -> str:
        return f"EmailRule({self.pattern!r})"

    def address(self, row: Mapping[str, Any]) -> str:
        """The address the pattern gives for ``row`` (before any conflict digit)."""

        def one(match: re.Match[str]) -> str:
            return _REFUSED.sub("", fold(_value(row, match[1], "email")).lower())

        local = _FIELD.sub(one, self.local)
        local = _REFUSED.sub("", fold(local).lower())
        local = re.sub(r"\.{2,}", ".", local).strip(".-'_")
        if not local:
            raise ValueError(f"email: the pattern gives {row.get('idnumber')!r} an empty address")
        return f"{local}@{self.domain}"

    @staticmethod
    def candidates(address: str) -> Iterator[str]:
        """``address``, then ``local2@``, ``local3@``... for conflicts."""
        local, _, domain = address.partition("@")
        yield address
        number = 2
        while True:
            yield f"{local}{number}@{domain}"
            number += 1

    @classmethod
    def unique(cls, address: str, taken: set[str]) -> str:
        """The first candidate not in ``taken``, which it is added to (no await between)."""
        for candidate in cls.candidates(address.lower()):
            if candidate not in taken:
                taken.add(candidate)
                return candidate
        raise AssertionError("unreachable")  # pragma: no cover


class OURule:
    """The organisational unit of a row: ``'/Students/{school}/{grade}'`` and lookups."""

    def __init__(self, pattern: str, lookup: Mapping[str, Mapping[str, str]] | None = None) -> None:
        if not isinstance(pattern, str) or not pattern.startswith("/"):
            raise ValueError(f"'ou' must be a path like '/Students/{{grade}}', got {pattern!r}")
        self.fields = _fields(pattern, "'ou'")
        lookup = dict(lookup or {})
        for name, table in lookup.items():
            if not isinstance(table, Mapping):
                raise ValueError(f"'ou_lookup' of {name!r} must be a table of value = name")
        self.pattern = pattern
        self.lookup = {
            name: {str(k): str(v) for k, v in table.items()} for name, table in lookup.items()
        }

    def __repr__(self) -> str:
        return f"OURule({self.pattern!r})"

    def path(self, row: Mapping[str, Any]) -> str:
        """The OU path for ``row``; empty fields drop their level, never leave ``//``."""

        def one(match: re.Match[str]) -> str:
            name = match[1]
            value = row.get(name)
            text = "" if value is None else str(value)
            table = self.lookup.get(name)
            if table is not None and text:
                if text not in table:
                    raise ValueError(
                        f"ou: {row.get('idnumber')!r} has {name} {text!r}, which ou_lookup.{name} "
                        f"does not name"
                    )
                text = table[text]
            return text.replace("/", "-").strip()

        parts = [part.strip() for part in _FIELD.sub(one, self.pattern).split("/")]
        return "/" + "/".join(part for part in parts if part)


class PasswordPolicy:
    """Initial passwords drawn with :mod:`secrets`: ``length`` characters, at least one of
    each class asked for (lower, upper, digits, symbols)."""

    def __init__(
        self, length: int = 16, *, upper: bool = True, digits: bool = True, symbols: bool = False
    ) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or not 8 <= length <= 100:
            raise ValueError(f"'password.length' must be an int from 8 to 100, got {length!r}")
        self.length = length
        self.classes = [string.ascii_lowercase]
        if upper:
            self.classes.append(string.ascii_uppercase)
        if digits:
            self.classes.append(string.digits)
        if symbols:
            self.classes.append("!#$%&*+-=?@^_~")
        self.alphabet = "".join(self.classes)

    def __repr__(self) -> str:
        return f"PasswordPolicy(length={self.length}, classes={len(self.classes)})"

    @classmethod
    def from_config(cls, value: Mapping[str, Any] | None) -> PasswordPolicy:
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ValueError(
                f"'password' must be a table (length, upper, digits, symbols), got {value!r}"
            )
        unknown = set(value) - {"length", "upper", "digits", "symbols"}
        if unknown:
            raise ValueError(
                f"'password' has unknown key {sorted(unknown)[0]!r} "
                "(length, upper, digits, symbols)"
            )
        return cls(**dict(value))

    def generate(self) -> str:
        """A new password (rejection sampling until every class is present)."""
        while True:
            password = "".join(secrets.choice(self.alphabet) for _ in range(self.length))
            if all(any(c in chars for c in password) for chars in self.classes):
                return password


class PasswordFile:
    """The CSV file initial passwords go to: created with mode 0600, appended per run.

    Columns: ``time, idnumber, email, password``.  A file that its group or others may
    read is refused before anything is created.
    """

    COLUMNS = ("time", "idnumber", "email", "password")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"PasswordFile({str(self.path)!r})"

    def check(self) -> None:
        """Refuse a file others may read, or a folder that does not exist."""
        if not self.path.parent.is_dir():
            raise ValueError(
                f"'password_file': the folder {str(self.path.parent)!r} does not exist"
            )
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return
        if mode & 0o077:
            raise ValueError(
                f"'password_file' {str(self.path)!r} may be read by others "
                f"(mode {stat.filemode(mode)}): chmod 600 {self.path}"
            )

    def append(self, idnumber: str, email: str, password: str) -> None:
        """Append one row (and the header to a new file), flushed to disk."""
        self.check()
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            out = io.StringIO()
            writer = csv.writer(out)
            if new:
                writer.writerow(self.COLUMNS)
            when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            writer.writerow((when, idnumber, email, password))
            handle.write(out.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
