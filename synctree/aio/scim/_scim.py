"""The CLI registry's old import strings (``synctree.aio.scim._scim:SCIMReader``).

Delete this module once the registry names ``synctree.aio.scim:SCIMReader`` (and
``:SCIMTemplate``), as the CLI's split does; nothing else imports it.
"""

from ._reader import SCIMReader as SCIMReader
from ._template import SCIMTemplate as SCIMTemplate
