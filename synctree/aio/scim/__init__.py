"""SCIM 2.0 users and groups: :class:`SCIMReader` and :class:`SCIMTemplate`."""

from synctree._util import exports

from ._scim import SCIMError, SCIMReader, SCIMTemplate

__all__ = ["SCIMError", "SCIMReader", "SCIMTemplate"]

exports.show_public_module(globals(), __all__)
