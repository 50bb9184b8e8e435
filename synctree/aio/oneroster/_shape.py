"""The normalised shape of OneRoster records: one pure function per kind of record.

Every function takes one *record*, a mapping keyed by the OneRoster **CSV column
names** of its file (``sourcedId``, ``givenName``, ``orgSourcedIds`` ...), with
multi-value fields as the comma-separated text the CSV files hold
(``"09,10,11"``), and returns the normalised row (``idnumber`` is the
``sourcedId``).  The CSV reader calls them on each parsed row; a reader of the
OneRoster REST API turns each JSON object into that column form first and calls
the same functions, so both give the same rows whatever the version.

``options`` (a :class:`Shaping`) carries the version, the order of slash dates
and whether passwords are kept.  A value that cannot be read (a date, a
boolean) raises :class:`ShapeError` naming the column; the caller adds where the
record came from (file and line, or URL).

Rules every shaper follows:

- values are stripped; a missing optional column reads as empty;
- multi-value fields become sets (``grade`` and ``school`` keep the first item
  in file order, for syncs that want one value);
- dates become :class:`datetime.date` (a datetime such as
  ``2023-05-01T18:25:43.511Z`` gives its date as written), empty dates ``None``;
- booleans accept ``true``/``false``, ``1``/``0``, ``yes``/``no`` in any case;
- columns the table does not map (``ext_*``, ``metadata.*``, vendor columns,
  ``subjectCodes`` ...) are carried as ``_<column>`` attributes, which a diff
  never compares; ``status`` and ``dateLastModified`` are the reader's business
  and not carried;
- a column whose name contains ``password`` is dropped, unless
  ``keep_passwords`` is set: then it is carried as ``_<column>`` (``_password``),
  which is never compared and so never shows in a plan.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = [
    "ALIASES",
    "DEFAULT",
    "GUARDIAN_ROLES",
    "RACES",
    "SHAPERS",
    "DateOrder",
    "Record",
    "ShapeError",
    "Shaping",
    "Version",
    "is_deleted",
    "mapped_columns",
    "parse_bool",
    "parse_date",
    "primary_role",
    "role_subbranch",
    "shape_class",
    "shape_course",
    "shape_demographics",
    "shape_enrollment",
    "shape_org",
    "shape_session",
    "shape_user",
    "shape_user_profile",
    "split",
    "user_subbranch",
]

Version: TypeAlias = Literal["1.0", "1.1", "1.2"]
DateOrder: TypeAlias = Literal["DMY", "MDY"]
#: One record: CSV column name -> its text.
Record: TypeAlias = Mapping[str, str]
Row: TypeAlias = dict[str, Any]

#: Roles whose users form the ``guardians`` subbranch; ``student`` makes
#: ``students``; every other role (teacher, aide, administrator, proctor, ...)
#: makes ``staff``.
GUARDIAN_ROLES = frozenset({"parent", "guardian", "relative"})

#: Column names seen in real exports, by file, for the specification's names:
#: OneRoster 1.0 spellings and common misspellings.  A reader renames them
#: (when the right name is not there too) before shaping.
ALIASES: dict[str, dict[str, str]] = {
    "*": {"dataLastModified": "dateLastModified"},
    "courses.csv": {"schoolYearId": "schoolYearSourcedId", "grade": "grades"},
    "classes.csv": {"grade": "grades"},
    "users.csv": {
        "userId": "userIds",
        "agents": "agentSourcedIds",
        "prefferedGivenName": "preferredGivenName",
        "prefferedMiddleName": "preferredMiddleName",
        "prefferedFamilyName": "preferredFamilyName",
    },
    "demographics.csv": {"birthdate": "birthDate", "stateOfBirthCode": "stateOfBirthAbbreviation"},
}


class ShapeError(ValueError):
    """A value of a record that cannot be read; ``column`` names its column."""

    def __init__(self, column: str, problem: str) -> None:
        self.column = column
        self.problem = problem
        super().__init__(f"{column}: {problem}")


@dataclass(frozen=True, slots=True)
class Shaping:
    """How records are read.

    :param version: the OneRoster version of the export (``"1.0"``, ``"1.1"``, ``"1.2"``).
    :param date_order: how to read a date such as ``1/05/2023``: ``"DMY"`` (day
        first) or ``"MDY"`` (month first); ``None`` (the default) accepts ISO
        dates only, and a slash date is a :class:`ShapeError` naming this option.
    :param keep_passwords: carry password columns as ``_password`` (never
        compared, never in a plan) instead of dropping them.
    """

    version: Version = "1.1"
    date_order: DateOrder | None = None
    keep_passwords: bool = False


#: The default :class:`Shaping`: OneRoster 1.1, ISO dates only, passwords dropped.
DEFAULT = Shaping()

# -- values -----------------------------------------------------------------------


def _text(record: Record, column: str) -> str:
    value = record.get(column, "")
    if type(value) is str:
        return value.strip()
    return "" if value is None else str(value).strip()


def split(text: str) -> list[str]:
    """The items of a multi-value field, in order: ``"09, 10,"`` gives ``['09', '10']``."""
    if "," not in text:  # the usual case: one item, or none
        item = text.strip()
        return [item] if item else []
    return [item for item in (part.strip() for part in text.split(",")) if item]


def _set(record: Record, column: str) -> set[str]:
    return set(split(_text(record, column)))


_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})


def parse_bool(text: str, column: str, *, default: bool) -> bool:
    """``TRUE``/``true``/``1``/``yes`` (any case) and their opposites; empty is ``default``."""
    value = text.strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ShapeError(column, f"{text!r} is not a boolean (true or false)")


_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{2}):(\d{2})(?::\d{2}(?:[.,]\d+)?)?)?")
_ISO_ZONE = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)?", re.IGNORECASE)
_YMD = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_SLASH = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})")


def parse_date(text: str, column: str, order: DateOrder | None = None) -> dt.date | None:
    """A date as real exports write it; empty gives ``None``.

    ISO dates (``2023-05-01``) and datetimes (``2023-05-01T18:25:43.511Z``,
    ``2017-05-06 08:01:05``: the date as written) are always read, and so is
    ``2023/05/01``.  ``1/05/2023`` needs ``order``: ``"DMY"`` or ``"MDY"``.
    """
    value = text.strip()
    if not value:
        return None
    if len(value) == 10 and value[4] == "-":  # the usual YYYY-MM-DD, at C speed
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass  # the careful path below says what is wrong
    parts: tuple[str, str, str] | None = None
    iso = _ISO.match(value)
    if iso is not None and _ISO_ZONE.fullmatch(value, iso.end()):
        parts = (iso[1], iso[2], iso[3])
        if iso[4] is not None and (int(iso[4]) > 23 or int(iso[5]) > 59):
            raise ShapeError(column, f"{text!r} is not a valid date and time")
    elif (ymd := _YMD.fullmatch(value)) is not None:
        parts = (ymd[1], ymd[2], ymd[3])
    elif (slash := _SLASH.fullmatch(value)) is not None:
        if order is None:
            raise ShapeError(
                column,
                f"{text!r} may be day-first or month-first: set the option "
                'date_order = "DMY" (day first) or "MDY" (month first)',
            )
        first, second, year = slash[1], slash[2], slash[3]
        parts = (year, second, first) if order == "DMY" else (year, first, second)
    if parts is None:
        raise ShapeError(column, f"{text!r} is not a date (expected YYYY-MM-DD)")
    try:
        return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        hint = f" (read as {order})" if order is not None and parts is not None else ""
        raise ShapeError(column, f"{text!r} is not a valid date{hint}") from None


def _date(record: Record, column: str, options: Shaping) -> dt.date | None:
    return parse_date(_text(record, column), column, options.date_order)


def _bool(record: Record, column: str, default: bool) -> bool:
    return parse_bool(_text(record, column), column, default=default)


def is_deleted(record: Record) -> bool:
    """Whether the record's ``status`` is ``tobedeleted`` (in any case)."""
    return _text(record, "status").lower() == "tobedeleted"


# -- extras -----------------------------------------------------------------------

#: Columns a reader consumes itself and never carries ("" is an unnamed column).
_CONSUMED = ("status", "dateLastModified", "idnumber", "")


def _extras(record: Record, mapped: frozenset[str], options: Shaping, row: Row) -> Row:
    """Add ``_<column>`` for every column the table does not map; passwords only if kept."""
    if mapped.issuperset(record):  # the usual case, decided in C
        return row
    for column in record:  # in the file's order
        if column in mapped:
            continue
        if "password" in column.lower() and not options.keep_passwords:
            continue
        value = record[column]
        row["_" + column] = "" if value is None else str(value).strip()
    return row


def _mapped(*columns: str) -> frozenset[str]:
    """The columns a shaper maps, and those the reader consumes (never extras)."""
    return frozenset(("sourcedId", *_CONSUMED, *columns))


# -- the shapers --------------------------------------------------------------------

_ORG = _mapped("name", "type", "identifier", "parentSourcedId")


def shape_org(record: Record, options: Shaping = DEFAULT) -> Row:
    """orgs.csv: ``name, type, identifier, parent``."""
    row: Row = {
        "idnumber": _text(record, "sourcedId"),
        "name": _text(record, "name"),
        "type": _text(record, "type"),
        "identifier": _text(record, "identifier"),
        "parent": _text(record, "parentSourcedId"),
    }
    return _extras(record, _ORG, options, row)


_SESSION = _mapped("title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear")


def shape_session(record: Record, options: Shaping = DEFAULT) -> Row:
    """academicSessions.csv: ``title, type, start, end`` (dates), ``parent, school_year``."""
    row: Row = {
        "idnumber": _text(record, "sourcedId"),
        "title": _text(record, "title"),
        "type": _text(record, "type"),
        "start": _date(record, "startDate", options),
        "end": _date(record, "endDate", options),
        "parent": _text(record, "parentSourcedId"),
        "school_year": _text(record, "schoolYear"),
    }
    return _extras(record, _SESSION, options, row)


_COURSE = _mapped(
    "title", "courseCode", "schoolYearSourcedId", "orgSourcedId", "grades", "subjects"
)


def shape_course(record: Record, options: Shaping = DEFAULT) -> Row:
    """courses.csv: ``title, code, school_year, org, grades`` (set), ``subjects`` (set)."""
    row: Row = {
        "idnumber": _text(record, "sourcedId"),
        "title": _text(record, "title"),
        "code": _text(record, "courseCode"),
        "school_year": _text(record, "schoolYearSourcedId"),
        "org": _text(record, "orgSourcedId"),
        "grades": _set(record, "grades"),
        "subjects": _set(record, "subjects"),
    }
    return _extras(record, _COURSE, options, row)


_CLASS = _mapped(
    "title",
    "classCode",
    "classType",
    "courseSourcedId",
    "schoolSourcedId",
    "termSourcedIds",
    "grades",
    "subjects",
    "periods",
    "location",
)


def shape_class(record: Record, options: Shaping = DEFAULT) -> Row:
    """classes.csv: ``title, code, type, course, school, terms, grades, subjects, periods,
    location`` (the plural ones are sets)."""
    row: Row = {
        "idnumber": _text(record, "sourcedId"),
        "title": _text(record, "title"),
        "code": _text(record, "classCode"),
        "type": _text(record, "classType"),
        "course": _text(record, "courseSourcedId"),
        "school": _text(record, "schoolSourcedId"),
        "terms": _set(record, "termSourcedIds"),
        "grades": _set(record, "grades"),
        "subjects": _set(record, "subjects"),
        "periods": _set(record, "periods"),
        "location": _text(record, "location"),
    }
    return _extras(record, _CLASS, options, row)


_USER = _mapped(
    "enabledUser",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "preferredGivenName",
    "preferredFamilyName",
    "pronouns",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "userMasterIdentifier",
    "primaryOrgSourcedId",
    "role",
    "orgSourcedIds",
)


def shape_user(record: Record, options: Shaping = DEFAULT, roles: Sequence[Record] = ()) -> Row:
    """users.csv (and, for 1.2, the user's active roles.csv records, in file order).

    ``role`` is the primary role, lower-case: the first role whose ``roleType``
    is ``primary`` (else the first role) in 1.2, the ``role`` column before.
    ``roles`` is the set of ``"role@orgSourcedId"``; ``orgs`` every org of the
    user; ``school`` the primary org (1.2 ``primaryOrgSourcedId``, else the
    primary role's org; before 1.2 the first of ``orgSourcedIds``).  A user
    without any role gets ``role = ""`` (:func:`user_subbranch` gives ``None``).
    """
    grades = split(_text(record, "grades"))
    org_list = split(_text(record, "orgSourcedIds"))
    role = _text(record, "role").lower()
    pairs = [(role, org) for org in org_list] if role else []
    school = org_list[0] if org_list else ""
    if roles:
        primary = next((r for r in roles if _text(r, "roleType").lower() == "primary"), roles[0])
        role = _text(primary, "role").lower()
        pairs = [(_text(r, "role").lower(), _text(r, "orgSourcedId")) for r in roles]
        school = _text(primary, "orgSourcedId")
        org_list = [org for _role, org in pairs if org]
    primary_org = _text(record, "primaryOrgSourcedId")
    if primary_org:
        school = primary_org
        org_list.append(primary_org)
    row: Row = {
        "idnumber": _text(record, "sourcedId"),
        "username": _text(record, "username"),
        "first": _text(record, "givenName"),
        "last": _text(record, "familyName"),
        "middle": _text(record, "middleName"),
        "preferred_first": _text(record, "preferredGivenName"),
        "preferred_last": _text(record, "preferredFamilyName"),
        "pronouns": _text(record, "pronouns"),
        "email": _text(record, "email"),
        "sms": _text(record, "sms"),
        "phone": _text(record, "phone"),
        "identifier": _text(record, "identifier"),
        "user_ids": _set(record, "userIds"),
        "master_id": _text(record, "userMasterIdentifier"),
        "enabled": _bool(record, "enabledUser", True),
        "role": role,
        "roles": {f"{name}@{org}" for name, org in pairs if name},
        "school": school,
        "orgs": set(org_list),
        "grades": set(grades),
        "grade": grades[0] if grades else "",
        "agents": _set(record, "agentSourcedIds"),
    }
    return _extras(record, _USER, options, row)


def primary_role(record: Record, roles: Sequence[Record] = ()) -> str:
    """A user's primary role, lower-case, as :func:`shape_user` finds it (cheaply)."""
    if roles:
        primary = next((r for r in roles if _text(r, "roleType").lower() == "primary"), roles[0])
        return _text(primary, "role").lower()
    return _text(record, "role").lower()


def user_subbranch(row: Row) -> Literal["students", "staff", "guardians"] | None:
    """Where a shaped user belongs, by primary role; ``None`` for a user without a role."""
    return role_subbranch(row.get("role", ""))


def role_subbranch(role: str) -> Literal["students", "staff", "guardians"] | None:
    """The subbranch of a primary role (lower-case); ``None`` for no role."""
    if not role:
        return None
    if role == "student":
        return "students"
    if role in GUARDIAN_ROLES:
        return "guardians"
    return "staff"


_ENROLLMENT = _mapped(
    "userSourcedId",
    "classSourcedId",
    "schoolSourcedId",
    "role",
    "primary",
    "beginDate",
    "endDate",
)


def shape_enrollment(record: Record, options: Shaping = DEFAULT) -> Row:
    """enrollments.csv, one row per enrollment: ``user, class, school, role`` (lower-case),
    ``primary`` (bool, empty is false), ``begin, end`` (dates)."""
    row: Row = {
        "idnumber": _text(record, "sourcedId"),
        "user": _text(record, "userSourcedId"),
        "class": _text(record, "classSourcedId"),
        "school": _text(record, "schoolSourcedId"),
        "role": _text(record, "role").lower(),
        "primary": _bool(record, "primary", False),
        "begin": _date(record, "beginDate", options),
        "end": _date(record, "endDate", options),
    }
    return _extras(record, _ENROLLMENT, options, row)


#: The race flags of demographics.csv, in the specification's order.
RACES = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
    "demographicRaceTwoOrMoreRaces",
)
_DEMOGRAPHICS = _mapped(
    "userSourcedId",
    "birthDate",
    "sex",
    *RACES,
    "hispanicOrLatinoEthnicity",
    "countryOfBirthCode",
    "stateOfBirthAbbreviation",
    "cityOfBirth",
    "publicSchoolResidenceStatus",
)


def shape_demographics(record: Record, options: Shaping = DEFAULT) -> Row:
    """demographics.csv, keyed by the user's sourcedId (1.0: ``userSourcedId``):
    ``birth_date`` (date), ``sex``, ``races`` (set of the race columns that are
    true), ``hispanic`` (bool, empty is false), ``country_of_birth``,
    ``state_of_birth``, ``city_of_birth``, ``residence_status``."""
    key = _text(record, "sourcedId") or _text(record, "userSourcedId")
    row: Row = {
        "idnumber": key,
        "birth_date": _date(record, "birthDate", options),
        "sex": _text(record, "sex"),
        "races": {race for race in RACES if _bool(record, race, False)},
        "hispanic": _bool(record, "hispanicOrLatinoEthnicity", False),
        "country_of_birth": _text(record, "countryOfBirthCode"),
        "state_of_birth": _text(record, "stateOfBirthAbbreviation"),
        "city_of_birth": _text(record, "cityOfBirth"),
        "residence_status": _text(record, "publicSchoolResidenceStatus"),
    }
    return _extras(record, _DEMOGRAPHICS, options, row)


_PROFILE = _mapped(
    "userSourcedId",
    "profileType",
    "vendorId",
    "applicationId",
    "description",
    "credentialType",
    "username",
)


def shape_user_profile(record: Record, options: Shaping = DEFAULT) -> Row:
    """userProfiles.csv (1.2): ``user, type, vendor, application, description,
    credential_type, username``; its ``password`` only as ``_password``, if kept."""
    row: Row = {
        "idnumber": _text(record, "sourcedId"),
        "user": _text(record, "userSourcedId"),
        "type": _text(record, "profileType"),
        "vendor": _text(record, "vendorId"),
        "application": _text(record, "applicationId"),
        "description": _text(record, "description"),
        "credential_type": _text(record, "credentialType"),
        "username": _text(record, "username"),
    }
    return _extras(record, _PROFILE, options, row)


#: The shaper of each file whose records need no other file (users need roles).
SHAPERS: dict[str, Callable[[Record, Shaping], Row]] = {
    "orgs.csv": shape_org,
    "academicSessions.csv": shape_session,
    "courses.csv": shape_course,
    "classes.csv": shape_class,
    "enrollments.csv": shape_enrollment,
    "demographics.csv": shape_demographics,
    "userProfiles.csv": shape_user_profile,
}


def mapped_columns(file: str) -> Iterable[str]:
    """The columns of ``file`` that the normalised shape maps (the rest are extras)."""
    return {
        "orgs.csv": _ORG,
        "academicSessions.csv": _SESSION,
        "courses.csv": _COURSE,
        "classes.csv": _CLASS,
        "users.csv": _USER,
        "enrollments.csv": _ENROLLMENT,
        "demographics.csv": _DEMOGRAPHICS,
        "userProfiles.csv": _PROFILE,
    }.get(file, frozenset())
