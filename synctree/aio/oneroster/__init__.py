"""OneRoster CSV exports (a folder or a zip) and REST services as readers for their subbranches."""

from synctree._util import exports

from ._api import OneRosterAPI, OneRosterAPIReader
from ._reader import OneRoster, OneRosterReader

__all__ = ["OneRoster", "OneRosterAPI", "OneRosterAPIReader", "OneRosterReader"]

exports.show_public_module(globals(), __all__)
