"""Google Workspace as a destination: :class:`GoogleReader`, :class:`GoogleTemplate`,
:class:`GoogleRoster` (a OneRoster export as Google objects), and the account rules
(:class:`EmailRule`, :class:`OURule`, :class:`PasswordPolicy`, :class:`PasswordFile`)."""

from synctree._util import exports

from ._errors import GoogleError
from ._quota import DEFAULT_QUOTAS, Quota
from ._reader import GoogleReader
from ._rules import EmailRule, OURule, PasswordFile, PasswordPolicy, fold
from ._source import GoogleRoster
from ._template import GoogleTemplate

__all__ = [
    "DEFAULT_QUOTAS",
    "EmailRule",
    "GoogleError",
    "GoogleReader",
    "GoogleRoster",
    "GoogleTemplate",
    "OURule",
    "PasswordFile",
    "PasswordPolicy",
    "Quota",
    "fold",
]

exports.show_public_module(globals(), __all__)
