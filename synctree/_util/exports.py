"""Public names show their public module, as httpx does in its ``__init__``."""

from __future__ import annotations

import types
from collections.abc import Iterable, MutableMapping
from typing import Any


def show_public_module(namespace: MutableMapping[str, Any], names: Iterable[str]) -> None:
    """Set ``__module__`` of the classes and functions ``names`` to the package's name.

    ``synctree.Action`` rather than ``synctree._action.Action``, in reprs, docs and
    pickles alike (each is importable from there).
    """
    module = namespace["__name__"]
    for name in names:
        value = namespace.get(name)
        if isinstance(value, type | types.FunctionType):
            value.__module__ = module
