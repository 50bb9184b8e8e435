"""The exceptions synctree raises.

Every error derives from :class:`SyncTreeError`, and also from the built-in it
resembles, so ``except KeyError`` or ``except ValueError`` keep working::

    SyncTreeError
    ├── InputError (ValueError) ............ bad input: file, line and field
    │   ├── DuplicateKeyError (KeyError)
    │   └── ReaderError ................... a reader failed while loading
    ├── ConfigError (ValueError) ........... bad configuration
    │   └── RoundTripError ................ a destination would not store a key back exactly
    ├── TemplateImportError (ImportError) .. a template import string did not import
    ├── UncomparableError (TypeError) ...... the diff cannot judge a difference
    ├── SafetyLimitExceeded ................ a run would delete more than allowed
    ├── Interrupted ........................ an action cut short by cancellation
    └── NotAwaitedError (TypeError, AttributeError) .. an async run used without ``await``
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DuplicateKeyError",
    "InputError",
    "Interrupted",
    "NotAwaitedError",
    "ReaderError",
    "RoundTripError",
    "SafetyLimitExceeded",
    "SyncTreeError",
    "TemplateImportError",
    "UncomparableError",
]


class SyncTreeError(Exception):
    """The root of every error synctree raises."""


def _where(path: object, line: int | None, field: str | None) -> str:
    parts = []
    if path is not None:
        parts.append(str(path))
    if line is not None:
        parts.append(f"line {line}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ", ".join(parts)


class InputError(SyncTreeError, ValueError):
    """Bad input: the message names the file (or reader), line and field.

    :param path: the file, URL or reader the input came from, if known.
    :param line: the 1-based line (or row, or page) number, if known.
    :param field: the column or attribute, if known.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: object = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = path
        self.line = line
        self.field = field
        where = _where(path, line, field)
        super().__init__(f"{where}: {problem}" if where else problem)


class DuplicateKeyError(InputError, KeyError):
    """Two rows of one subbranch share a key and the duplicate policy is ``'error'``."""

    def __init__(
        self,
        problem: str,
        *,
        branch: str,
        subbranch: str,
        key: str,
        path: object = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.branch = branch
        self.subbranch = subbranch
        self.key = key
        super().__init__(problem, path=path, line=line, field=field)

    def __str__(self) -> str:  # KeyError would repr() the message
        return InputError.__str__(self)


class ReaderError(InputError):
    """A reader failed while loading; names the branch, subbranch and reader."""

    def __init__(
        self,
        problem: str,
        *,
        branch: str,
        subbranch: str,
        reader: str,
        path: object = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.branch = branch
        self.subbranch = subbranch
        self.reader = reader
        super().__init__(problem, path=path, line=line, field=field)
        self.args = (f"loading {branch} {subbranch} from {reader}: {self.args[0]}",)


class ConfigError(SyncTreeError, ValueError):
    """Bad configuration; names the file, the table and the key where known."""

    def __init__(
        self,
        problem: str,
        *,
        path: object = None,
        table: str | None = None,
        key: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = path
        self.table = table
        self.key = key
        where = ", ".join(
            p
            for p in (
                str(path) if path is not None else None,
                f"[{table}]" if table else None,
                f"key {key!r}" if key else None,
            )
            if p
        )
        super().__init__(f"{where}: {problem}" if where else problem)


class RoundTripError(ConfigError):
    """A destination column would not give a key back as the diff compares it.

    Raised before anything is written, for one example key: an integer column
    and ``'007'``, a case-insensitive or PAD SPACE collation and ``'K1'`` beside
    ``'k1'`` or ``'k1 '``...  Writing it would overwrite another object's row
    or change the key on every run.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: object = None,
        table: str,
        column: str,
        example: str,
    ) -> None:
        super().__init__(f"column {column!r}, key {example!r}: {problem}", path=path, table=table)
        self.problem = problem
        self.column = column
        self.example = example


class TemplateImportError(SyncTreeError, ImportError):
    """A template given as an import string could not be imported."""

    def __init__(self, spec: str, reason: str) -> None:
        self.spec = spec
        super().__init__(f"cannot import template {spec!r}: {reason}")


class UncomparableError(SyncTreeError, TypeError):
    """The diff cannot judge a difference: a missing attribute or a type mismatch."""

    def __init__(self, problem: str, *, subbranch: str, key: str, attribute: str) -> None:
        self.subbranch = subbranch
        self.key = key
        self.attribute = attribute
        super().__init__(f"{subbranch} {key!r}, attribute {attribute!r}: {problem}")


class SafetyLimitExceeded(SyncTreeError):
    """A run's removals exceed ``max_deletes``; nothing was changed."""

    def __init__(self, problem: str, *, subbranch: str, deletes: int, total: int) -> None:
        self.subbranch = subbranch
        self.deletes = deletes
        self.total = total
        super().__init__(problem)


class Interrupted(SyncTreeError):
    """An action was cut short because the run was cancelled; its effect is unknown."""


class NotAwaitedError(SyncTreeError, TypeError, AttributeError):
    """An async template's run was used without being awaited.

    Also an :class:`AttributeError`, so ``hasattr(pending_run, name)`` is False.
    """
