"""CSV files as a source or a destination: :class:`CSVReader` and :class:`CSVTemplate`.

:class:`ByteSource` is the seam for data that is not a file on disk
(``CSVReader.from_opener``), such as a member of a zip archive.
"""

from synctree._util import exports

from ._reader import CSVReader
from ._source import ByteSource
from ._template import CSVTemplate

__all__ = ["ByteSource", "CSVReader", "CSVTemplate"]

exports.show_public_module(globals(), __all__)
