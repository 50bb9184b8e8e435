"""The ``synctree`` command (private: its interface is the command line).

``_commands`` (the click commands) drives ``_session`` (loading and running a
config), which prints through ``_output``, ``_plan_view`` (readable plans) and
``_progress``; ``_config`` reads the TOML config, ``_lock`` holds the run lock,
``_saved_plan`` writes and checks saved plans, ``_runlog`` writes and reads run
logs (for ``_log_view``, ``synctree log``, and ``_html``, ``synctree report``),
``_notify`` sends notifications, ``_exits`` names the exit codes.
"""

from ._commands import main

__all__ = ["main"]
