"""Sync configuration files (TOML): parsed and validated before any I/O.

A config names the tree, each branch's readers, the template and the run's
limits.  Built-in readers and templates are named (``reader = "csv"``);
anything else is an import string (``"mypkg.sync:Template"``), which makes a
config as powerful as code: only run configs you trust.

    [sync]
    subbranches = ["students", "enrollments"]
    duplicates = { enrollments = "merge" }

    [source]                      # a reader giving several subbranches ...
    reader = "oneroster"
    path = "export"

    [systems.school_db]           # what one system's readers and template share
    url = "sqlite+aiosqlite:///school.db"

    [destination]                 # ... or defaults for the subbranch tables
    reader = "sql"
    system = "school_db"
    [destination.students]
    table = "students"

    [template]
    use = "sql"
    system = "school_db"

    [run]
    concurrency = 4
    max_deletes = "10%"

    [log]                         # a run log per run, pruned after keep_days
    dir = "logs"

    [notify]                      # after a failed run (or always)
    webhook = "https://hooks.example.org/synctree"

Import strings are found beside the config too (its folder is on the import
path), and may name factories: functions returning a reader or a template.

``${NAME}`` in a string is read from the environment (``${NAME:-default}``
when it may be unset).  What comes from the environment is a secret: every
error the config raises masks it (``Config.secrets``, which the command line
applies to all it prints), a value with a stray CR, LF or surrounding
whitespace is refused, and so is one with URL-special characters put unencoded
into a URL.  Relative paths (and SQLite database files in URLs) resolve
against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import inspect
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from synctree import ConfigError
from synctree._util.redact import Redactor, error_text

__all__ = ["Config"]


@dataclasses.dataclass(frozen=True, slots=True)
class _Battery:
    """A built-in reader or template: where it lives and which options are paths."""

    target: str
    paths: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    multi: bool = False  # gives a reader per subbranch via ``.readers()``
    subbranch_option: str | None = None  # filled with the subbranch name at branch level
    #: option -> import string of a function turning its TOML value into the argument;
    #: it raises ConfigError naming the key within the option's table.
    convert: tuple[tuple[str, str], ...] = ()
    #: the option a ``[systems.NAME]`` table's ``url`` fills (None: ``url`` itself)
    connection: str | None = None
    #: an import string naming a function that returns the reader (or template)
    factory: bool = False
    #: the battery to build instead when the table gives ``url`` (a REST service)
    by_url: str | None = None


READERS: dict[str, _Battery] = {
    "csv": _Battery("synctree.aio.csv:CSVReader", paths=("path",)),
    "sql": _Battery(
        "synctree.aio.sql:SQLReader", urls=("url",), subbranch_option="table", connection="url"
    ),
    "oneroster": _Battery(
        "synctree.aio.oneroster:OneRoster", paths=("path",), multi=True, by_url="oneroster_api"
    ),
    "oneroster_api": _Battery("synctree.aio.oneroster:OneRosterAPI", multi=True),
    "http": _Battery(
        "synctree.aio.http:HTTPReader",
        convert=(("pagination", "synctree.aio.http:pagination_from_config"),),
        connection="client_or_url",
    ),
    "scim": _Battery("synctree.aio.scim:SCIMReader", connection="client"),
    "google": _Battery("synctree.aio.google:GoogleReader", multi=True, connection="base_url"),
    "google_roster": _Battery("synctree.aio.google:GoogleRoster", paths=("path",), multi=True),
}
TEMPLATES: dict[str, _Battery] = {
    "sql": _Battery("synctree.aio.sql:SQLTemplate", urls=("url",), connection="url"),
    "csv": _Battery("synctree.aio.csv:CSVTemplate", paths=("path",)),
    "scim": _Battery("synctree.aio.scim:SCIMTemplate", connection="client"),
    "google": _Battery(
        "synctree.aio.google:GoogleTemplate", paths=("password_file",), connection="base_url"
    ),
}

#: Run settings a config (or the command line) may set.
RUN_SETTINGS = frozenset(
    {
        "concurrency",
        "rate",
        "burst",
        "retries",
        "timeout",
        "max_deletes",
        "fail_fast",
        "backoff_base",
        "backoff_cap",
        "max_retry_after",
        "max_throttle_time",
        "max_run_throttle_time",
        "grace",
    }
)
_TYPE_NAMES: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "date": datetime.date,
    "set": set,
    "list": list,
}
_SECTIONS = {"sync", "template", "run", "systems", "log", "notify"}
_LOG_KEYS = {"dir", "keep_days"}
_NOTIFY_KEYS = {"command", "webhook", "on", "timeout"}
_SUBBRANCH_HOOKS = ("preprocess", "scope")
#: Options that are tables, allowed in a branch's own table (``[source] auth = {...}``).
_OPTION_TABLES = frozenset({"auth", "headers", "ou_lookup", "quotas"})
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclasses.dataclass(frozen=True, slots=True)
class ReaderSpec:
    """One branch's reader for one subbranch (or for several, when ``multi``)."""

    branch: str
    subbranch: str | None
    battery: str
    options: dict[str, Any] = dataclasses.field(repr=False)  # may hold ${VAR} secrets
    hooks: dict[str, str]
    table: str


class Config:
    """A parsed, validated config file; building readers and templates is lazy.

    :raises ConfigError: naming the file, the table and the key, before any I/O.
    """

    def __init__(self, path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.folder = self.path.resolve().parent
        self._environ = os.environ if environ is None else environ
        #: Paths that point outside the config's folder (allowed; shown in plans).
        self.outside_paths: list[str] = []
        #: Masks the values this config reads from ``${VAR}``s: its own errors go
        #: through it, and the command line applies it to everything it prints.
        self.secrets = Redactor()
        #: one credential object per distinct ``auth`` table, so a system's reader
        #: and template share its OAuth token (fetched once, refreshed once)
        self._auths: dict[str, Any] = {}
        #: ``[log]``: ``dir`` (a Path: one run log per run) and ``keep_days``.
        self.log: dict[str, Any] = {}
        #: ``[notify]``: ``command``, ``webhook``, ``on`` ("failure" or "always"), ``timeout``.
        self.notify: dict[str, Any] = {}
        #: ``[sync] display``: per subbranch, the attribute (or format string) naming an object.
        self.displays: dict[str, str] = {}
        _importable(self.folder)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("config file not found", path=self.path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config: {exc}", path=self.path) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=self.path) from None
        self._parse(data)

    def _error(self, problem: str, table: str | None = None, key: str | None = None) -> ConfigError:
        return ConfigError(self.secrets(problem), path=self.path, table=table, key=key)

    # -- parsing -----------------------------------------------------------

    def _parse(self, data: dict[str, Any]) -> None:
        self._register_secrets(data)
        sync = self._table(data, "sync", required=True)
        self._known(sync, "sync", {"subbranches", "branches", "duplicates", "models", "display"})
        self.subbranches = self._names(sync, "subbranches", None)
        self.branches = self._names(sync, "branches", ["source", "destination"])
        if len(self.branches) != 2:
            raise self._error("a sync has exactly two branches", "sync", "branches")
        self.duplicates = self._mapping_of_str(sync, "duplicates")
        self.models = self._mapping_of_str(sync, "models")
        self.displays = self._displays(sync.get("display"))
        unknown = set(data) - _SECTIONS - set(self.branches)
        if unknown:
            name = sorted(unknown)[0]
            raise self._error(
                f"unknown table [{name}] (expected [sync], [template], [run], [systems.NAME], "
                f"[log], [notify] or a branch: {', '.join(self.branches)})",
                name,
            )
        self.systems = self._systems(self._table(data, "systems", required=False))
        self._system_keys_used: set[tuple[str, str]] = set()
        self.readers = [
            spec for branch in self.branches for spec in self._branch(data.get(branch), branch)
        ]
        self.template = self._template(self._table(data, "template", required=True))
        self._own_csv_file_may_be_missing()
        run = self._table(data, "run", required=False)
        self._known(run, "run", RUN_SETTINGS)
        self.run = {key: self._value(value, "run", key) for key, value in run.items()}
        self._check_run(self.run)
        self._unused_system_keys()
        self.log = self._log_table(self._table(data, "log", required=False))
        self.notify = self._notify_table(self._table(data, "notify", required=False))

    def _displays(self, value: Any) -> dict[str, str]:
        """``[sync] display``: one attribute or format for all subbranches, or a table of them."""
        if value is None:
            return {}
        if isinstance(value, str):
            return dict.fromkeys(self.subbranches, value)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._error(
                'must be an attribute name, a format like "{first} {last}", or a table of '
                "subbranch = either",
                "sync",
                "display",
            )
        for subbranch in value:
            if subbranch not in self.subbranches:
                raise self._error(f"unknown subbranch {subbranch!r}", "sync", "display")
        return dict(value)

    def _systems(self, table: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """``[systems.NAME]`` tables: the options readers and a template of one system share."""
        out = {}
        for name, options in table.items():
            if not isinstance(options, dict):
                raise self._error(
                    "must be a table, like [systems.school_db] with url = ...", f"systems.{name}"
                )
            for key in options:
                if key in ("reader", "use", "system"):
                    raise self._error(
                        "a system table holds the connection (url, headers...), not "
                        f"{key!r}: that belongs to the reader or template table",
                        f"systems.{name}",
                        key,
                    )
            out[name] = dict(options)
        return out

    def _system(self, options: dict[str, Any], table: str) -> tuple[str, dict[str, Any]] | None:
        """The ``[systems.NAME]`` that ``options`` names with ``system = "NAME"``, popped."""
        name = options.pop("system", None)
        if name is None:
            return None
        if not isinstance(name, str) or name not in self.systems:
            known = ", ".join(sorted(self.systems)) or "none: add a [systems.NAME] table"
            raise self._error(f"unknown system {name!r} (the config's systems: {known})", table,
                              "system")  # fmt: skip
        return name, self.systems[name]

    def _merge_system(
        self,
        system: tuple[str, dict[str, Any]] | None,
        battery: _Battery | None,
        options: dict[str, Any],
        accepts: Callable[[str], bool],
    ) -> dict[str, Any]:
        """``options`` over the named system's options that the target takes."""
        if system is None:
            return options
        name, values = system
        merged: dict[str, Any] = {}
        for key, value in values.items():
            option = key
            if key == "url" and battery is not None and battery.connection is not None:
                option = battery.connection
            if accepts(option):
                merged[option] = value
                self._system_keys_used.add((name, key))
        return {**merged, **options}

    def _unused_system_keys(self) -> None:
        for name, values in self.systems.items():
            for key in values:
                if (name, key) not in self._system_keys_used and any(
                    used == name for used, _ in self._system_keys_used
                ):
                    raise self._error(
                        "no reader or template naming this system takes this key",
                        f"systems.{name}",
                        key,
                    )

    def _log_table(self, table: dict[str, Any]) -> dict[str, Any]:
        self._known(table, "log", _LOG_KEYS)
        out: dict[str, Any] = {}
        if "dir" in table:
            out["dir"] = self._path(self._value(table["dir"], "log", "dir"), "log", "dir")
        keep = table.get("keep_days", 30)
        if isinstance(keep, bool) or not isinstance(keep, int | float) or keep <= 0:
            raise self._error(f"must be a number of days > 0, got {keep!r}", "log", "keep_days")
        out["keep_days"] = keep
        if "keep_days" in table and "dir" not in table:
            raise self._error("keep_days prunes a log directory: add dir = ...", "log", "dir")
        return out

    def _notify_table(self, table: dict[str, Any]) -> dict[str, Any]:
        self._known(table, "notify", _NOTIFY_KEYS)
        out: dict[str, Any] = {}
        if "command" in table:
            command = self._value(table["command"], "notify", "command")
            if isinstance(command, str):
                import shlex

                command = shlex.split(command)
            if not (
                isinstance(command, list) and command and all(isinstance(c, str) for c in command)
            ):
                raise self._error(
                    "must be a command line (a string, or a list of strings)", "notify", "command"
                )
            out["command"] = command
        if "webhook" in table:
            url = self._value(table["webhook"], "notify", "webhook")
            if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
                raise self._error("must be an http:// or https:// URL", "notify", "webhook")
            out["webhook"] = url
        on = table.get("on", "failure")
        if on not in ("failure", "always"):
            raise self._error(f'must be "failure" or "always", got {on!r}', "notify", "on")
        out["on"] = on
        timeout = table.get("timeout", 10)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise self._error(f"must be seconds > 0, got {timeout!r}", "notify", "timeout")
        out["timeout"] = float(timeout)
        if table and "command" not in out and "webhook" not in out:
            raise self._error("give a command, a webhook, or both", "notify")
        return out

    def reader_table(self, side: int, subbranch: str) -> str:
        """The config table that reads ``subbranch`` of branch ``side`` (0 or 1)."""
        branch = self.branches[side]
        for spec in self.readers:
            if spec.branch == branch and spec.subbranch in (subbranch, None):
                return spec.table
        return f"{branch}.{subbranch}"

    def _own_csv_file_may_be_missing(self) -> None:
        """A destination csv reader of the file the csv template writes defaults to missing_ok.

        The first run creates that file.  Any other file, above all a source
        export, stays an error when missing: it must never read as empty.
        """
        use, options = self.template
        if use != "csv":
            return
        for spec in self.readers:
            if (
                spec.branch == self.branches[1]
                and spec.battery == "csv"
                and spec.options.get("path") == options.get("path")
            ):
                spec.options.setdefault("missing_ok", True)

    def _check_run(self, run: dict[str, Any]) -> None:
        """Each run setting's type and range, now, rather than as a traceback at run time."""
        from synctree.aio._settings import Settings

        for key, value in run.items():
            try:
                Settings(**{key: value})
            except (TypeError, ValueError) as exc:
                raise self._error(str(exc), "run", key) from None

    def _table(self, data: dict[str, Any], name: str, *, required: bool) -> dict[str, Any]:
        table = data.get(name)
        if table is None:
            if required:
                raise self._error(f"missing table [{name}]", name)
            return {}
        if not isinstance(table, dict):
            raise self._error(f"{name} must be a table", name)
        return table

    def _known(self, table: dict[str, Any], name: str, allowed: set[str] | frozenset[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self._error(
                    f"unknown key (expected one of: {', '.join(sorted(allowed))})", name, key
                )

    def _names(self, table: dict[str, Any], key: str, default: list[str] | None) -> list[str]:
        value = table.get(key, default)
        if value is None:
            raise self._error("missing key", "sync", key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self._error("must be a non-empty list of names", "sync", key)
        return list(value)

    def _mapping_of_str(self, table: dict[str, Any], key: str) -> dict[str, str]:
        value = table.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._error("must be a table of subbranch = string", "sync", key)
        for subbranch in value:
            if subbranch not in self.subbranches:
                raise self._error(f"unknown subbranch {subbranch!r}", "sync", key)
        return dict(value)

    def _branch(self, table: Any, branch: str) -> list[ReaderSpec]:
        if table is None:
            return []
        if not isinstance(table, dict):
            raise self._error("must be a table", branch)
        # a table is a subbranch's, but for the option tables a branch-wide reader takes
        options = {k for k, v in table.items() if not isinstance(v, dict) or k in _OPTION_TABLES}
        defaults = {k: v for k, v in table.items() if k in options}
        subtables = {k: v for k, v in table.items() if k not in options}
        for name in subtables:
            if name not in self.subbranches:
                raise self._error(
                    f"unknown subbranch {name!r} (the sync has {', '.join(self.subbranches)})",
                    f"{branch}.{name}",
                )
        battery_name = defaults.get("reader")
        if battery_name is not None and (
            self._battery(READERS, battery_name, branch).multi
            or (self._battery(READERS, battery_name, branch).factory and not subtables)
        ):
            if subtables:
                name = next(iter(subtables))
                raise self._error(
                    f"reader {battery_name!r} gives every subbranch itself; "
                    "it takes no subbranch tables",
                    f"{branch}.{name}",
                )
            return [self._reader(branch, None, defaults, branch)]
        if battery_name is not None:
            battery = self._battery(READERS, battery_name, branch)
            if battery.subbranch_option is not None:
                # e.g. one SQL table per subbranch: every subbranch gets a reader,
                # and a subbranch table only overrides options.
                subtables = {name: subtables.get(name, {}) for name in self.subbranches}
            elif not subtables:
                raise self._error(
                    f"reader {battery_name!r} needs a table per subbranch, "
                    f"like [{branch}.{self.subbranches[0]}]",
                    branch,
                )
        return [
            self._reader(branch, name, {**defaults, **options}, f"{branch}.{name}")
            for name, options in subtables.items()
        ]

    def _reader(
        self, branch: str, subbranch: str | None, options: dict[str, Any], table: str
    ) -> ReaderSpec:
        options = dict(options)
        name = options.pop("reader", None)
        if name is None:
            raise self._error("missing key", table, "reader")
        battery = self._battery(READERS, name, table)
        system = self._system(options, table)
        if battery.by_url is not None and (
            "url" in options or (system is not None and "url" in system[1])
        ):
            if "path" in options:
                raise self._error("give 'path' (an export) or 'url' (a service), not both", table)
            name, battery = battery.by_url, READERS[battery.by_url]
        hooks = {}
        for hook in _SUBBRANCH_HOOKS:
            if hook in options:
                value = options.pop(hook)
                if not isinstance(value, str):
                    raise self._error("must be an import string", table, hook)
                hooks[hook] = value
        if subbranch is not None and battery.subbranch_option:
            options.setdefault(battery.subbranch_option, subbranch)
        options = self._options(battery, options, table, system)
        return ReaderSpec(branch, subbranch, name, options, hooks, table)

    def _template(self, table: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        options = dict(table)
        use = options.pop("use", None)
        if not isinstance(use, str):
            raise self._error(
                "missing key (a built-in template or an import string)", "template", "use"
            )
        system = self._system(options, "template")
        if use in TEMPLATES:
            options = self._options(TEMPLATES[use], options, "template", system)
        elif ":" not in use and "." not in use:
            raise self._error(
                f"unknown template {use!r} (built-in: {', '.join(TEMPLATES)}; "
                "or an import string like 'mypkg.sync:Template')",
                "template",
                "use",
            )
        else:
            options = {k: self._value(v, "template", k) for k, v in options.items()}
            target = self._template_class(use)
            if system is not None:
                name, values = system
                values = {k: self._value(v, f"systems.{name}", k) for k, v in values.items()}
                options = self._merge_system((name, values), None, options, _accepts(target))
        return use, options

    def _template_class(self, spec: str) -> Callable[..., Any]:
        """The template class an import string names; anything else is refused uncalled."""
        from synctree._template import BaseTemplate

        target = self._import(spec, "template", "use")
        if not (isinstance(target, type) and issubclass(target, BaseTemplate)) and not (
            _is_factory(target)
        ):
            raise self._error(
                f"{spec!r} is not a template class (a DefaultTemplate or AsyncTemplate "
                f"subclass) nor a function returning a template, it is {_kind(target)}",
                "template",
                "use",
            )
        return target  # type: ignore[no-any-return]  # checked above: a class or a function

    def _battery(self, registry: dict[str, _Battery], name: object, table: str) -> _Battery:
        """A built-in reader by name, or a custom one by import string."""
        if isinstance(name, str) and name in registry:
            return registry[name]
        if isinstance(name, str) and (":" in name or "." in name):
            target = self._import(name, table, "reader")
            if not _is_reader_factory(target):
                raise self._error(
                    f"{name!r} is not a reader class (one whose instances are async "
                    f"iterables of rows, or have .batches() or .readers()), an async "
                    f"generator function, nor a function returning a reader; it is "
                    f"{_kind(target)}",
                    table,
                    "reader",
                )
            return _Battery(
                name,
                multi=callable(getattr(target, "readers", None)),
                factory=_is_factory(target),
            )
        raise self._error(
            f"unknown reader {name!r} (built-in: {', '.join(registry)}; "
            "or an import string like 'mypkg.readers:Reader')",
            table,
            "reader",
        )

    def _options(
        self,
        battery: _Battery,
        options: dict[str, Any],
        table: str,
        system: tuple[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Options with ``${VAR}``s, paths and types resolved, checked against the signature;
        the options of the ``system`` it names, where the target takes them, underneath."""
        try:
            target = _import_target(battery.target)
        except ImportError as exc:  # an optional dependency is missing
            raise self._error(f"cannot load {battery.target}: {exc}", table) from exc
        parameters = inspect.signature(target).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        options = self._merge_system(system, battery, options, _accepts(target))
        converters = dict(battery.convert)
        out = {}
        for key, value in options.items():
            if key not in parameters and not takes_any:
                accepted = [n for n, p in parameters.items() if p.kind is not p.VAR_POSITIONAL]
                raise self._error(f"unknown key (accepted: {', '.join(accepted)})", table, key)
            value = self._value(value, table, key)
            if key in battery.paths:
                value = self._path(value, table, key)
            elif key in battery.urls:
                value = self._url(value, table, key)
            elif key == "types" and isinstance(value, dict):
                value = {column: self._type(t, table) for column, t in value.items()}
            elif key in converters:
                value = self._convert(converters[key], value, table, key)
            elif key == "auth" and isinstance(value, dict):
                value = self._auth(value, table)
            out[key] = value
        missing = [
            name
            for name, p in parameters.items()
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and name not in out
        ]
        if missing:
            raise self._error("missing key", table, missing[0])
        return out

    def _convert(self, spec: str, value: Any, table: str, key: str) -> Any:
        """``value`` made into the option's argument (a pagination from its table)."""
        try:
            return _import_target(spec)(value)
        except ConfigError as exc:
            raise self._error(exc.problem, table, f"{key}.{exc.key}" if exc.key else key) from None

    def _auth(self, value: dict[str, Any], table: str) -> Any:
        """An ``auth = {...}`` table made into its ``httpx.Auth``; the secrets it reads
        from files are masked like ``${VAR}`` values."""
        from synctree.aio.http import auth_from_config

        same = json.dumps(value, sort_keys=True, default=repr)
        if same in self._auths:
            return self._auths[same]
        try:
            auth = self._auths[same] = auth_from_config(value, self.folder, secret=self.secrets.add)
            return auth
        except ConfigError as exc:
            key = f"auth.{exc.key}" if exc.key else "auth"
            raise self._error(exc.problem, table, key) from None

    def _register_secrets(self, data: Any) -> None:
        """Every ``${VAR}`` value the file names, masked from the start: an error
        raised before (or without) its substitution may quote it too."""
        if isinstance(data, str):
            for match in _ENV.finditer(data):
                if match[1] in self._environ:
                    self.secrets.add(self._environ[match[1]])
        elif isinstance(data, list | dict):
            for item in data.values() if isinstance(data, dict) else data:
                self._register_secrets(item)

    def _value(self, value: Any, table: str, key: str) -> Any:
        if isinstance(value, str):
            return _ENV.sub(lambda m: self._substitute(m, value, table, key), value)
        if isinstance(value, list):
            return [self._value(v, table, key) for v in value]
        if isinstance(value, dict):
            return {k: self._value(v, table, key) for k, v in value.items()}
        return value

    def _substitute(self, match: re.Match[str], text: str, table: str, key: str) -> str:
        name, default = match[1], match[2]
        if name not in self._environ:
            if default is not None:
                return default  # written in the file: not a secret
            raise self._error(f"environment variable {name} is not set", table, key)
        value = self._environ[name]
        self.secrets.add(value)
        problem = _stray_whitespace(value)
        if problem is None and text != match[0]:
            problem = _unencoded_in_url(value, text[: match.start()], text[match.end() :])
        if problem is not None:  # the message names the variable, never the value
            raise self._error(f"environment variable {name} {problem}", table, key)
        return value

    def _path(self, value: Any, table: str, key: str) -> Path:
        if not isinstance(value, str):
            raise self._error("must be a path (a string)", table, key)
        path = (self.folder / value).resolve()
        if not path.is_relative_to(self.folder):
            self.outside_paths.append(f"[{table}] {key} = {path}")
        return path

    def _url(self, value: Any, table: str, key: str) -> str:
        if not isinstance(value, str):
            raise self._error("must be a URL (a string)", table, key)
        prefix, sep, database = value.partition(":///")
        if sep and prefix.startswith("sqlite") and database and not database.startswith("/"):
            if database != ":memory:":
                path = self._path(database, table, key)
                return f"{prefix}:///{path}"
        return value

    def _type(self, name: Any, table: str) -> Any:
        if name not in _TYPE_NAMES:
            raise self._error(
                f"unknown type {name!r} (known: {', '.join(_TYPE_NAMES)})", table, "types"
            )
        return _TYPE_NAMES[name]

    # -- building ----------------------------------------------------------

    def tree(self) -> Any:
        """A new, empty :class:`~synctree.SyncTree` as the config describes it."""
        from synctree import SyncTree

        models = {}
        for subbranch, spec in self.models.items():
            model = self._import(spec, "sync", "models")
            models[subbranch] = model
        return SyncTree(
            self.branches,
            self.subbranches,
            models={self.branches[0]: models} if models else None,
            duplicates=dict(self.duplicates),  # type: ignore[arg-type]
        )

    def build_readers(self) -> dict[str, dict[str, Any]]:
        """``{branch: {subbranch: reader}}``, ready for ``tree.load(...)``."""
        from synctree.aio import Pipeline

        out: dict[str, dict[str, Any]] = {branch: {} for branch in self.branches}
        for spec in self.readers:
            cls = _import_target(self._battery(READERS, spec.battery, spec.table).target)
            try:
                reader = cls(**spec.options)
            except (TypeError, ValueError) as exc:
                raise self._error(str(exc), spec.table) from exc
            if spec.subbranch is None and not callable(getattr(reader, "readers", None)):
                raise self._error(
                    f"{spec.battery!r} returned {_kind(reader)}, which has no .readers() "
                    "giving a reader per subbranch (give it a table per subbranch instead)",
                    spec.table,
                    "reader",
                )
            if spec.subbranch is not None and not _is_reader(reader):
                raise self._error(
                    f"{spec.battery!r} returned {_kind(reader)}, not a reader (an async "
                    "iterable of rows, or an object with .batches())",
                    spec.table,
                    "reader",
                )
            if spec.subbranch is None:
                readers = reader.readers()
                # A multi-reader may offer more subbranches than the sync uses.
                readers = {k: v for k, v in readers.items() if k in self.subbranches}
            else:
                readers = {spec.subbranch: reader}
            for name, one in readers.items():
                if spec.hooks:
                    hooks = {k: self._import(v, spec.table, k) for k, v in spec.hooks.items()}
                    one = Pipeline(one, **hooks)
                out[spec.branch][name] = one
        return out

    def build_template(self) -> Any:
        """The template instance the config names."""
        use, options = self.template
        if use in TEMPLATES:
            cls = _import_target(TEMPLATES[use].target)
        else:
            cls = self._template_class(use)
        try:
            template = cls(**options)
        except (TypeError, ValueError) as exc:
            raise self._error(str(exc), "template") from exc
        from synctree._template import BaseTemplate

        if not isinstance(template, BaseTemplate):
            raise self._error(
                f"{use!r} returned {_kind(template)}, not a template (a DefaultTemplate or "
                "AsyncTemplate instance)",
                "template",
                "use",
            )
        return template

    def _import(self, spec: str, table: str, key: str) -> Any:
        try:
            return _import_target(spec)
        except (ImportError, AttributeError, ValueError) as exc:
            raise self._error(f"cannot import {spec!r}: {exc}", table, key) from None
        except Exception as exc:  # the module raised, or does not compile: say so, in one line
            raise self._error(f"cannot import {spec!r}: {error_text(exc)}", table, key) from None


def _stray_whitespace(value: str) -> str | None:
    """Why an environment value cannot be meant as it is (a CRLF ``.env`` file), if so."""
    if value.endswith("\r\n") or value.endswith("\r"):
        return "ends with a carriage return (a .env file with Windows line endings?); remove it"
    if "\r" in value or "\n" in value:
        return "contains a line break; remove it"
    if value != value.strip():
        return "starts or ends with whitespace; remove it"
    return None


#: Characters that change how a URL parses, by the part a ``${VAR}`` sits in.
_URL_SPECIAL = {"user info": "@/#?:[]", "host": "@/#?", "path": "#?", "query": "#&+"}


def _unencoded_in_url(value: str, before: str, after: str) -> str | None:
    """Why ``value`` cannot go unencoded between ``before`` and ``after`` in a URL, if so."""
    scheme, sep, rest = before.partition("://")
    if not sep or not scheme or any(c in scheme for c in "/?# "):
        return None  # not a URL
    if "?" in rest:
        part = "query"
    elif "/" in rest:
        part = "path"
    else:  # in the authority: user info when an "@" follows before the path
        part = "user info" if "@" in after.partition("/")[0].partition("?")[0] else "host"
    special = sorted({c for c in value if c in _URL_SPECIAL[part] or c.isspace()})
    if not special:
        return None
    return (
        f"has {' '.join(repr(c) for c in special)} in the {part} of a URL, where it must be "
        "URL-encoded: URL-encode the value (e.g. urllib.parse.quote(value, safe=''))"
    )


def _is_reader_factory(target: object) -> bool:
    """Whether calling ``target`` with a config's options makes a reader.

    Checked before anything is called, so that a config naming, say,
    ``subprocess:Popen`` fails validation instead of running it.  A plain
    function is taken as a factory; what it returns is checked when it is called.
    """
    if inspect.isasyncgenfunction(target) or _is_factory(target):
        return True
    return isinstance(target, type) and any(
        hasattr(target, name) for name in ("__aiter__", "batches", "readers")
    )


def _is_factory(target: object) -> bool:
    """A Python function (not a class, not an async generator function): a factory."""
    return inspect.isfunction(target) and not inspect.isasyncgenfunction(target)


def _is_reader(obj: object) -> bool:
    return any(hasattr(obj, name) for name in ("__aiter__", "batches"))


def _accepts(target: Callable[..., Any]) -> Callable[[str], bool]:
    """Whether ``target`` takes a keyword argument of a given name."""
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return lambda name: True
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return lambda name: True
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {n for n, p in parameters.items() if p.kind in kinds}
    return names.__contains__


def _importable(folder: Path) -> None:
    """Put the config's folder on the import path, after the installed packages (so a
    file beside the config never shadows one of them): its import strings find the
    modules beside it without PYTHONPATH."""
    entry = str(folder)
    if entry not in sys.path:
        sys.path.append(entry)


def _kind(target: object) -> str:
    if isinstance(target, type):
        return f"the class {target.__module__}.{target.__qualname__}"
    return f"{type(target).__name__} {getattr(target, '__qualname__', '')}".rstrip()


def _import_target(spec: str) -> Callable[..., Any]:
    module_name, sep, name = spec.partition(":")
    if not sep:
        module_name, _, name = spec.rpartition(".")
    if not module_name or not name:
        raise ValueError("expected 'package.module:name'")
    obj: Any = importlib.import_module(module_name)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]
