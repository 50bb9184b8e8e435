"""Public names show their public module, as httpx does in its ``__init__``."""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable, Iterable, Mapping, MutableMapping
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


def lazy_names(
    namespace: MutableMapping[str, Any], modules: Mapping[str, str], *, show: bool = True
) -> Callable[[str], Any]:
    """A package's ``__getattr__`` (PEP 562): ``name`` imported from ``modules[name]`` on use.

    ``modules`` maps a public name to the module holding it, relative to the package
    (``'._report'``).  So ``import synctree`` need not load what only a run uses.
    With ``show``, the value shows the package as its module (see above).
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        try:
            module = modules[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, package), name)
        if show and isinstance(value, type | types.FunctionType):
            value.__module__ = package
        namespace[name] = value  # the next lookup is a plain one
        return value

    return __getattr__
