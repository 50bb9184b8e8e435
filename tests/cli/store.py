"""A destination kept in a JSON file, for the CLI tests: its reader and its config.

Each test module writes a module of its own (its ``StoreTemplate`` differs) that
starts with :data:`STORE_READER`, and a config naming it with :func:`write_store_config`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STORE_READER", "write_store_config"]

#: The start of a store module: imports, and ``StoreReader(path)``, the store's records
#: (keyed by ``idnumber``; none while the file does not exist).
STORE_READER = """
import json, pathlib


class StoreReader:
    def __init__(self, path):
        self.path = pathlib.Path(path)

    async def __aiter__(self):
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        for key, attrs in data.items():
            yield {"idnumber": key, **attrs}
"""

_CONFIG = """\
[sync]
subbranches = ["students"]

[source.students]
reader = "csv"
path = "students.csv"
key = "student_id"
types = {{ grade = "int" }}

[destination.students]
reader = "{reader}"
path = "{store}"

[template]
use = "{template}"
path = "{store}"
{template_extra}
{extra}
"""


def write_store_config(
    folder: Path, *, reader: str, template: str, template_extra: str = "", extra: str = ""
) -> Path:
    """``folder/sync.toml``: ``students.csv`` into ``folder/store.json`` through the store
    module's ``reader`` and ``template`` (import strings); ``template_extra`` is added to
    the ``[template]`` table, ``extra`` after it."""
    config = folder / "sync.toml"
    config.write_text(
        _CONFIG.format(
            reader=reader,
            template=template,
            template_extra=template_extra,
            extra=extra,
            store=folder / "store.json",
        )
    )
    return config
