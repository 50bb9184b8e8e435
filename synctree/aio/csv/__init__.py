"""CSV files as a source or a destination: :class:`CSVReader` and :class:`CSVTemplate`.

:class:`ByteSource` is the seam for data that is not a file on disk
(``CSVReader.from_opener``), such as a member of a zip archive; :func:`open_file`
opens a file on disk as one.
"""

import typing

from synctree._util import exports

from ._reader import CSVReader
from ._source import ByteSource, open_file

if typing.TYPE_CHECKING:
    from ._template import CSVTemplate

__all__ = ["ByteSource", "CSVReader", "CSVTemplate", "open_file"]

exports.show_public_module(globals(), __all__)
# A reader's load need not import the template (nor what it imports).
__getattr__ = exports.lazy_names(globals(), {"CSVTemplate": "._template"})
