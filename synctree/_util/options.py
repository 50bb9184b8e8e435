"""Checks of keyword options at call time: a ``ValueError`` naming the parameter.

As aiometer's ``_impl/utils.py`` does: the error says which option and what it got,
and :class:`OptionError` carries the name, so a config can point at its key.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["OptionError", "boolean", "non_empty", "one_of", "positive"]


class OptionError(ValueError):
    """A bad option; ``name`` says which (a config names its key after it)."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"{name!r} {problem}")


def positive(value: object, name: str, minimum: int = 1) -> None:
    """``value`` must be an ``int`` (not a ``bool``) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionError(name, f"must be an int >= {minimum}, got {value!r}")


def non_empty(value: object, name: str) -> None:
    """``value`` must be a non-empty string."""
    if not isinstance(value, str) or not value:
        raise OptionError(name, f"must be a non-empty string, got {value!r}")


def boolean(value: object, name: str) -> None:
    """``value`` must be ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise OptionError(name, f"must be True or False, got {value!r}")


def one_of(value: object, name: str, choices: Iterable[str]) -> None:
    """``value`` must be one of ``choices``; the message lists them."""
    known = list(choices)
    if value not in known:
        shown = [repr(choice) for choice in known]
        listed = " or ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)
        raise OptionError(name, f"must be {listed}, got {value!r}")
