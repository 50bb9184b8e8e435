"""The ``synctree`` command (private: its interface is the command line)."""

from ._commands import main

__all__ = ["main"]
