"""SQL tables (SQLite, PostgreSQL, MySQL/MariaDB) through SQLAlchemy Core."""

from synctree._util import exports

from ._reader import SQLReader
from ._template import SQLTemplate

__all__ = ["SQLReader", "SQLTemplate"]

exports.show_public_module(globals(), __all__)
