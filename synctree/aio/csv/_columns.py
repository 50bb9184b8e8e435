"""From a header to a plan: which column becomes which key of the row dicts.

The plan is made once per file.  Its ``build`` is generated code: one list
comprehension that turns parsed rows into dicts, a few thousand at a time
(unpacking checks the field count, a dict display builds a presized dict), so
there is no per-row Python function call.  It raises on anything unusual, and
the parser then takes the careful path, :meth:`Plan.careful_row`, which either
copes or says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from synctree import InputError

from ._convert import Conversion
from ._formulas import unneutralised

__all__ = ["KEY", "Column", "Columns", "Plan", "compile_build"]

#: Where a row dict holds its key.
KEY = "idnumber"

Row = dict[str, Any]


class _SlowPath(Exception):
    """Raised inside the generated code to hand a block to the careful path."""


def _empty_key() -> bool:
    raise _SlowPath


@dataclass(frozen=True, slots=True)
class Column:
    """A column that becomes an attribute."""

    index: int  # column in the file
    name: str  # key in the row dict
    label: str  # column name as the file spells it, for messages
    conversion: Conversion | None


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with each column of one file."""

    labels: list[str]  # column names as the file spells them
    keys: list[int]  # key columns, in key order
    attrs: list[Column]
    key_separator: str
    unquote: bool  # take off the quote against formulas
    build: Callable[[Iterable[list[str]]], list[Row]]
    #: ``build`` making tuples of the cells named by :attr:`names` (``Table`` rows).
    build_tuples: Callable[[Iterable[list[str]]], list[tuple[Any, ...]]]

    @property
    def width(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of a row's cells, in order: the key first."""
        return (KEY, *(attr.name for attr in self.attrs))

    def careful_row(self, row: list[str], line: int, path: object) -> Row:
        """The dict for a row of the right width with a key, or an error naming the field."""
        try:
            return self.build([row])[0]
        except Exception:
            pass
        if self.unquote:
            row = [unneutralised(cell) for cell in row]
        out: Row = {KEY: self.key_separator.join(row[k] for k in self.keys)}
        for attr in self.attrs:
            value = row[attr.index]
            if attr.conversion is not None and attr.conversion.encoding is None:
                try:
                    value = attr.conversion.careful(value)
                except ValueError as exc:
                    raise InputError(str(exc), path=path, line=line, field=attr.label) from exc
            out[attr.name] = value
        return out


def compile_build(
    width: int,
    keys: list[int],
    attrs: list[Column],
    key_sep: str,
    unquote: bool,
    tuples: bool = False,
) -> Callable[[Iterable[list[str]]], list[Any]]:
    """Generate ``build(rows)``: one list comprehension that makes every row dict.

    With ``unquote``, every cell starting with ``'`` goes through
    :func:`unneutralised` first; without, the generated code has no such check.
    With ``tuples``, it makes tuples of the same values in the same order.
    """
    names = [f"_{i}" for i in range(width)]
    env: dict[str, Any] = {"_empty_key": _empty_key, "_ks": key_sep}
    cells = names
    if unquote:
        env["_u"] = unneutralised
        cells = [f'(_u({v}) if {v}[:1] == "\'" else {v})' for v in names]
    key_expr = " + _ks + ".join(cells[k] for k in keys)
    items = [f"{KEY!r}: {key_expr}"]
    values = [key_expr]
    for n, attr in enumerate(attrs):
        value = cells[attr.index]
        if attr.conversion is not None and attr.conversion.encoding is None:
            env[f"_c{n}"] = attr.conversion.fast
            value = "(" + attr.conversion.expr.format(v=value, f=f"_c{n}") + ")"
        items.append(f"{attr.name!r}: {value}")
        values.append(value)
    if tuples:  # the same values, without their names
        made = "(" + "".join(value + ", " for value in values) + ")"
    else:
        made = "{" + ", ".join(items) + "}"
    check = " and ".join(names[k] for k in keys)
    source = (
        "def build(rows):\n"
        f"    return [{made}\n"
        f"            for ({', '.join(names)},) in rows\n"
        f"            if ({check}) or _empty_key()]\n"
    )
    exec(compile(source, "<synctree CSVReader>", "exec"), env)  # names are only repr()'d
    build: Callable[[Iterable[list[str]]], list[Any]] = env["build"]
    return build


@dataclass(frozen=True, slots=True)
class Columns:
    """The reader's column options, checked already; :meth:`plan` applies them to a header."""

    keys: list[str]
    rename: Mapping[str, str]
    columns: list[str] | None
    types: Mapping[str, Conversion | None]
    key_separator: str
    keep_key: bool
    unquote: bool
    fieldnames: list[str] | None  # the file has no header; these are its columns

    def plan(self, raw: Sequence[str], line: int | None, path: PurePath) -> Plan:
        """Work out, from the header, what to do with each column."""
        labels = [name.strip() for name in raw]
        if self.fieldnames is None:
            missing = [old for old in self.rename if old not in labels]
            if missing:
                raise self._header_error(
                    f"no column {missing[0]!r} to rename", labels, line, missing[0], path
                )
        names = [self.rename.get(label, label) for label in labels]

        keys: list[int] = []
        for key in self.keys:
            found = [i for i, name in enumerate(names) if name == key]
            if not found:
                problem = f"the key column {key!r} is missing"
                raise self._header_error(problem, labels, line, key, path)
            if len(found) > 1:
                problem = f"the key column {key!r} appears twice"
                raise self._header_error(problem, labels, line, key, path)
            keys.extend(found)
        for param, wanted in (("columns", self.columns or []), ("types", list(self.types))):
            for name in wanted:
                if name not in names:
                    problem = f"column {name!r} (named in {param!r}) is missing"
                    raise self._header_error(problem, labels, line, name, path)

        attrs: list[Column] = []
        seen: set[str] = set()
        for index, name in enumerate(names):
            if index in keys:
                if not self.keep_key or name == KEY:
                    continue
            elif not name or (self.columns is not None and name not in self.columns):
                continue
            if name == KEY:
                problem = f"column {KEY!r} clashes with the key; rename it"
                raise self._header_error(problem, labels, line, labels[index], path)
            if name in seen:
                problem = f"column {name!r} appears twice"
                raise self._header_error(problem, labels, line, labels[index], path)
            seen.add(name)
            attrs.append(Column(index, name, labels[index], self.types.get(name)))

        build = compile_build(len(labels), keys, attrs, self.key_separator, self.unquote)
        build_tuples = compile_build(
            len(labels), keys, attrs, self.key_separator, self.unquote, tuples=True
        )
        return Plan(labels, keys, attrs, self.key_separator, self.unquote, build, build_tuples)

    def _header_error(
        self, problem: str, labels: list[str], line: int | None, field: str, path: PurePath
    ) -> InputError:
        shown = ", ".join(repr(label) for label in labels[:12])
        more = ", ..." if len(labels) > 12 else ""
        where = "the header" if self.fieldnames is None else "'fieldnames'"
        return InputError(
            f"{problem} ({where} has {shown}{more})", path=path, line=line, field=field
        )
