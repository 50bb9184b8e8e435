"""OneRoster CSV exports (a folder or a zip) as readers for their subbranches."""

from synctree._util import exports

from ._reader import OneRoster, OneRosterReader

__all__ = ["OneRoster", "OneRosterReader"]

exports.show_public_module(globals(), __all__)
