"""CSV files as a source or a destination: :class:`CSVReader` and :class:`CSVTemplate`."""

from synctree._util import exports

from ._reader import CSVReader
from ._template import CSVTemplate

__all__ = ["CSVReader", "CSVTemplate"]

exports.show_public_module(globals(), __all__)
