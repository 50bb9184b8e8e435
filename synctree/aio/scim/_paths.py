"""SCIM attribute paths and the mappings built of them.

A *mapping* names, per synctree attribute, the SCIM attribute path it lives at:
``'first': 'name.givenName'``, ``'email': 'emails[type eq "work"].value'``, extension
attributes by their URN (``'urn:...:enterprise:2.0:User:employeeNumber'``).  The key
``'idnumber'`` maps synctree's key (``externalId`` by default); the server's own ``id``
is carried as ``_id``, never compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from synctree.aio import Row

from ._protocol import Resource

__all__ = ["GROUP_MAPPING", "USER_MAPPING", "AttributePath", "ResourceMapping", "scim_string"]

#: The default mapping of users: synctree attribute -> SCIM attribute path.
USER_MAPPING: Mapping[str, str] = MappingProxyType(
    {
        "idnumber": "externalId",
        "username": "userName",
        "first": "name.givenName",
        "last": "name.familyName",
        "email": 'emails[type eq "work"].value',
        "active": "active",
        "display": "displayName",
    }
)
#: The default mapping of groups; ``members`` is the set of member users' keys.
GROUP_MAPPING: Mapping[str, str] = MappingProxyType(
    {
        "idnumber": "externalId",
        "display": "displayName",
        "members": "members",
    }
)


def scim_string(value: str) -> str:
    """``value`` as a SCIM filter string literal: a JSON string, so ``"`` and ``\\`` are
    escaped (RFC 7644 section 3.4.2.2)."""
    return json.dumps(value, ensure_ascii=False)


_NAME = r"[A-Za-z$][\w$-]*"
_PATH = re.compile(
    rf'(?:(?P<urn>urn:[^\[\]"]+):)?(?P<attr>{_NAME})'
    rf'(?:\[\s*(?P<fattr>{_NAME})\s+eq\s+(?P<fvalue>"(?:[^"\\]|\\.)*")\s*\])?'
    rf"(?:\.(?P<sub>{_NAME}))?"
)


@dataclass(frozen=True, slots=True)
class AttributePath:
    """A SCIM attribute path of the forms a mapping may use (see the module docstring)."""

    text: str
    urn: str | None
    attr: str
    select: tuple[str, str] | None  # the value filter ``[type eq "work"]``
    sub: str | None

    @classmethod
    def parse(cls, text: str) -> AttributePath:
        match = _PATH.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"not a SCIM attribute path this mapping supports: {text!r}")
        select = None
        if match["fattr"] is not None:
            if match["sub"] is None:
                raise ValueError(f"a filtered path needs a sub-attribute: {text!r}")
            select = (match["fattr"], json.loads(match["fvalue"]))
        return cls(text, match["urn"], match["attr"], select, match["sub"])

    @property
    def top(self) -> str:
        """The attribute a PATCH ``add`` of a new multi-valued element targets."""
        return f"{self.urn}:{self.attr}" if self.urn else self.attr

    def equals(self, value: str) -> str:
        """A filter matching resources whose value at this path is ``value``."""
        if self.select is None:
            return f"{self.text} eq {scim_string(value)}"
        name, selected = self.select
        return (
            f"{self.top}[{name} eq {scim_string(selected)} and {self.sub} eq {scim_string(value)}]"
        )

    def get(self, resource: Mapping[str, Any]) -> Any:
        """The value at this path in ``resource``, or None."""
        container: Any = resource.get(self.urn) if self.urn else resource
        if not isinstance(container, Mapping):
            return None
        value = container.get(self.attr)
        if self.select is not None:
            value = self._element(value)
        if self.sub is not None:
            return value.get(self.sub) if isinstance(value, Mapping) else None
        return value

    def _element(self, values: Any) -> dict[str, Any] | None:
        assert self.select is not None
        name, selected = self.select
        if isinstance(values, list):
            for element in values:
                if isinstance(element, dict) and element.get(name) == selected:
                    return element
        return None

    def set(self, resource: dict[str, Any], value: Any) -> None:
        """Set (or with None, remove) the value at this path in ``resource``, in place."""
        container = resource
        if self.urn:
            container = resource.setdefault(self.urn, {})
            schemas = resource.setdefault("schemas", [])
            if self.urn not in schemas:
                schemas.append(self.urn)
        if self.select is not None:
            assert self.sub is not None
            element = self._element(container.get(self.attr))
            if value is None:
                if element is not None:
                    container[self.attr].remove(element)
            elif element is not None:
                element[self.sub] = value
            else:
                name, selected = self.select
                container.setdefault(self.attr, []).append({name: selected, self.sub: value})
        elif self.sub is not None:
            parent = container.setdefault(self.attr, {})
            if value is None:
                parent.pop(self.sub, None)
                if not parent:
                    del container[self.attr]
            else:
                parent[self.sub] = value
        elif value is None:
            container.pop(self.attr, None)
        else:
            container[self.attr] = value

    def operation(self, value: Any, old: Any) -> dict[str, Any]:
        """The PATCH operation that changes this path from ``old`` to ``value``.

        A filtered path with no matching element cannot be replaced (RFC 7644 section
        3.5.2.3 answers ``noTarget``), so a first value is added as a new element.
        """
        if value is None:
            if self.select is not None:
                name, selected = self.select
                return {"op": "remove", "path": f"{self.top}[{name} eq {scim_string(selected)}]"}
            return {"op": "remove", "path": self.text}
        if self.select is not None and old is None:
            name, selected = self.select
            return {"op": "add", "path": self.top, "value": [{name: selected, self.sub: value}]}
        return {"op": "replace", "path": self.text, "value": value}


class ResourceMapping:
    """A mapping parsed: the key path, the member attribute, and the other paths."""

    def __init__(self, mapping: Mapping[str, str], resource: Resource) -> None:
        if "idnumber" not in mapping:
            raise ValueError("'mapping' must map 'idnumber' (to 'externalId', say)")
        self.paths: dict[str, AttributePath] = {}
        self.members: str | None = None
        for attribute, text in mapping.items():
            if not isinstance(attribute, str) or not attribute or attribute.startswith("_"):
                raise ValueError(f"'mapping': {attribute!r} is not an attribute name")
            try:
                path = AttributePath.parse(text)
            except ValueError as exc:
                raise ValueError(f"'mapping' {attribute!r}: {exc}") from None
            if resource == "Groups" and text == "members":
                self.members = attribute
            else:
                self.paths[attribute] = path
        self.key = self.paths.pop("idnumber")

    def row(self, resource: Mapping[str, Any]) -> Row | None:
        """The synctree row of a resource, or None when it has no key (not ours)."""
        key = self.key.get(resource)
        if key is None or key == "" or isinstance(key, bool | dict | list):
            return None
        row: Row = {name: path.get(resource) for name, path in self.paths.items()}
        row["idnumber"] = str(key)
        row["_id"] = resource.get("id")
        return row
