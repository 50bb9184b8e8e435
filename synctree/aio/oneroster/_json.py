"""OneRoster REST JSON objects in the CSV binding's column form, for the shapers of ``_shape``.

The REST and CSV bindings carry the same fields under two spellings: a GUIDRef
``{"sourcedId": ...}`` is a ``<name>SourcedId`` column, a list of them
``<name>SourcedIds``, a list of strings comma-joined text, ``userIds``
``{type:identifier}`` items.  :func:`record_of` makes the CSV record of one object, so
that one set of shaping functions gives the same rows whichever binding was read; 1.2
users also give their embedded ``roles`` (:func:`roles_of`) and ``userProfiles``
(:func:`profiles_of`) as roles.csv and userProfiles.csv records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["profiles_of", "record_of", "roles_of"]

#: A GUIDRef field -> its CSV column.
_ONE = {
    "parent": "parentSourcedId",
    "org": "orgSourcedId",
    "course": "courseSourcedId",
    "school": "schoolSourcedId",
    "class": "classSourcedId",
    "user": "userSourcedId",
    "primaryOrg": "primaryOrgSourcedId",
    "userProfile": "userProfileSourcedId",
}
#: A list-of-GUIDRefs field -> its CSV column.
_MANY = {
    "orgs": "orgSourcedIds",
    "terms": "termSourcedIds",
    "agents": "agentSourcedIds",
    "resources": "resourceSourcedIds",
}
#: REST names that the CSV binding spells otherwise (1.2 users).
_RENAMES = {"preferredFirstName": "preferredGivenName", "preferredLastName": "preferredFamilyName"}
#: Fields that are no column: links to children, and what users embed (read apart).
_SKIPPED = frozenset({"children", "roles", "userProfiles", "href"})


def _text(value: Any) -> str:
    """A scalar as the CSV binding writes it (``true``/``false`` for booleans)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return _text(value.get("sourcedId"))
    if isinstance(value, list):
        return ",".join(_text(item) for item in value)
    return str(value)


def _user_id(value: Any) -> str:
    """``{type:identifier}``, as the CSV binding writes a userId (the identifier alone
    when it has no type)."""
    if isinstance(value, Mapping):
        kind, identifier = _text(value.get("type")), _text(value.get("identifier"))
        return f"{{{kind}:{identifier}}}" if kind else identifier
    return _text(value)


def record_of(collection: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The CSV record (column name -> text) of one object of ``collection``."""
    record: dict[str, str] = {}
    for name, value in obj.items():
        if name in _SKIPPED:
            continue
        if name == "schoolYear" and collection == "courses":
            record["schoolYearSourcedId"] = _text(value)  # a GUIDRef in courses
        elif name in _ONE:
            record[_ONE[name]] = _text(value)
        elif name in _MANY:
            items = value if isinstance(value, list) else []
            record[_MANY[name]] = ",".join(_text(item) for item in items)
        elif name == "userIds":
            items = value if isinstance(value, list) else []
            record["userIds"] = ",".join(_user_id(item) for item in items)
        elif name == "metadata" and isinstance(value, Mapping):
            for key, item in value.items():
                record[f"metadata.{key}"] = _text(item)
        else:
            record[_RENAMES.get(name, name)] = _text(value)
    return record


def roles_of(user: Mapping[str, Any]) -> list[dict[str, str]]:
    """A 1.2 user's embedded ``roles`` as roles.csv records, in their order."""
    roles = user.get("roles")
    if not isinstance(roles, list):
        return []
    out = []
    for role in roles:
        if isinstance(role, Mapping):
            record = record_of("roles", role)
            record["userSourcedId"] = _text(user.get("sourcedId"))
            out.append(record)
    return out


def profiles_of(user: Mapping[str, Any]) -> list[dict[str, str]]:
    """A 1.2 user's embedded ``userProfiles`` as userProfiles.csv records (a profile's
    first credential gives ``credentialType``, ``username`` and ``password``)."""
    profiles = user.get("userProfiles")
    if not isinstance(profiles, list):
        return []
    out = []
    for profile in profiles:
        if not isinstance(profile, Mapping):
            continue
        credentials = profile.get("credentials")
        first = credentials[0] if isinstance(credentials, list) and credentials else {}
        first = first if isinstance(first, Mapping) else {}
        record = {
            "sourcedId": _text(profile.get("profileId") or profile.get("sourcedId")),
            "userSourcedId": _text(user.get("sourcedId")),
            "profileType": _text(profile.get("profileType")),
            "vendorId": _text(profile.get("vendorId")),
            "applicationId": _text(profile.get("applicationId")),
            "description": _text(profile.get("description")),
            "credentialType": _text(first.get("type")),
            "username": _text(first.get("username")),
        }
        if "password" in first:
            record["password"] = _text(first.get("password"))
        out.append(record)
    return out
