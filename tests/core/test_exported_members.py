from __future__ import annotations

import subprocess
import sys
import types

import synctree

PUBLIC = [
    "Action",
    "Branch",
    "Changes",
    "ConfigError",
    "Coverage",
    "DefaultTemplate",
    "Diff",
    "DuplicateKeyError",
    "DuplicatePolicy",
    "InputError",
    "Interrupted",
    "Kind",
    "Leaf",
    "Missing",
    "NewActions",
    "NotAwaitedError",
    "Outcome",
    "ReaderError",
    "Report",
    "Result",
    "RoundTripError",
    "SafetyLimitExceeded",
    "Skip",
    "Subbranch",
    "SyncTree",
    "SyncTreeError",
    "TemplateImportError",
    "UncomparableError",
    "__version__",
    "compared_values",
    "derived_names",
]

#: Modules that a bare ``import synctree`` must not pull in: I/O and async machinery
#: load only when a program uses them.
HEAVY = ["anyio", "click", "httpx", "rich", "sqlalchemy", "synctree.aio", "trio"]


class TestExportedMembers:
    def test_all_is_the_public_api(self) -> None:
        """``__all__`` is exactly the intended public API, sorted."""
        assert synctree.__all__ == PUBLIC
        assert synctree.__all__ == sorted(synctree.__all__)

    def test_all_importable(self) -> None:
        """Every name in ``__all__`` is importable from the package."""
        namespace: dict[str, object] = {}
        exec(f"from synctree import {', '.join(synctree.__all__)}", namespace)
        for name in synctree.__all__:
            assert namespace[name] is getattr(synctree, name)

    def test_nothing_else_public(self) -> None:
        """No public name outside ``__all__`` (submodules aside)."""
        names = {
            name
            for name, value in vars(synctree).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
        }
        assert names - {"annotations"} == set(PUBLIC) - {"__version__"}

    def test_version(self) -> None:
        """``__version__`` is the package's version (pyproject reads it from here)."""
        from importlib.metadata import version

        assert synctree.__version__ == version("synctree")

    def test_public_classes_show_their_public_module(self) -> None:
        """Public classes and functions name ``synctree`` as their module."""
        for name in PUBLIC:
            value = getattr(synctree, name)
            if isinstance(value, type | types.FunctionType):
                assert value.__module__ == "synctree", name

    def test_errors_share_a_root(self) -> None:
        """Every exported exception derives from SyncTreeError."""
        for name in PUBLIC:
            value = getattr(synctree, name)
            if isinstance(value, type) and issubclass(value, BaseException):
                assert issubclass(value, synctree.SyncTreeError), name


class TestImports:
    def test_no_heavy_imports(self) -> None:
        """A fresh ``import synctree`` loads no I/O-heavy module."""
        code = f"import sys, synctree; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
        loaded = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        assert loaded == []

    def test_no_output(self) -> None:
        """Importing prints nothing and warns nothing."""
        done = subprocess.run(
            [sys.executable, "-W", "error", "-c", "import synctree"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert (done.stdout, done.stderr) == ("", "")
