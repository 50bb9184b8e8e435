"""SCIM 2.0 users and groups: :class:`SCIMReader`, :class:`SCIMTemplate`, and the default
mappings (:data:`USER_MAPPING`, :data:`GROUP_MAPPING`) they start from."""

from synctree._util import exports

from ._errors import SCIMError
from ._paths import GROUP_MAPPING, USER_MAPPING, scim_string
from ._reader import SCIMReader
from ._template import SCIMTemplate

__all__ = [
    "GROUP_MAPPING",
    "SCIMError",
    "SCIMReader",
    "SCIMTemplate",
    "USER_MAPPING",
    "scim_string",
]

exports.show_public_module(globals(), __all__)
