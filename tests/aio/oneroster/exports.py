"""Small OneRoster exports written by the tests: one school's data in 1.0, 1.1 or 1.2 form.

Rows are kept with the 1.1/1.2 column names; :meth:`Export.write` writes the
files of a version (1.0 spellings, 1.2 ``roles.csv`` instead of ``role`` and
``orgSourcedIds``), with a manifest (1.1 and 1.2), and optionally a BOM, CRLF
line ends, columns in reverse order, or dates written day-first.
"""

from __future__ import annotations

import copy
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

PASSWORD = "Secr3t-Pa55word"
PROFILE_PASSWORD = "Pr0file-Secret9"

HEADERS = {
    "orgs.csv": "sourcedId status dateLastModified name type identifier parentSourcedId",
    "academicSessions.csv": "sourcedId status dateLastModified title type startDate endDate "
    "parentSourcedId schoolYear",
    "courses.csv": "sourcedId status dateLastModified schoolYearSourcedId title courseCode grades "
    "orgSourcedId subjects subjectCodes",
    "classes.csv": "sourcedId status dateLastModified title grades courseSourcedId classCode "
    "classType location schoolSourcedId termSourcedIds subjects subjectCodes periods",
    "users.csv": "sourcedId status dateLastModified enabledUser orgSourcedIds role username "
    "userIds givenName familyName middleName identifier email sms phone agentSourcedIds grades "
    "password",
    "enrollments.csv": "sourcedId status dateLastModified classSourcedId schoolSourcedId "
    "userSourcedId role primary beginDate endDate",
    "demographics.csv": "sourcedId status dateLastModified birthDate sex "
    "americanIndianOrAlaskaNative asian blackOrAfricanAmerican "
    "nativeHawaiianOrOtherPacificIslander white demographicRaceTwoOrMoreRaces "
    "hispanicOrLatinoEthnicity countryOfBirthCode stateOfBirthAbbreviation cityOfBirth "
    "publicSchoolResidenceStatus",
}
HEADERS_1_2 = {
    **HEADERS,
    "users.csv": "sourcedId status dateLastModified enabledUser username userIds givenName "
    "familyName middleName identifier email sms phone agentSourcedIds grades password "
    "userMasterIdentifier resourceSourcedIds preferredGivenName preferredMiddleName "
    "preferredFamilyName primaryOrgSourcedId pronouns",
    "roles.csv": "sourcedId status dateLastModified userSourcedId roleType role beginDate "
    "endDate orgSourcedId userProfileSourcedId",
    "userProfiles.csv": "sourcedId status dateLastModified userSourcedId profileType vendorId "
    "applicationId description credentialType username password",
}
# OneRoster 1.0: other names, fewer columns, no manifest.
HEADERS_1_0 = {
    "orgs.csv": "sourcedId status dateLastModified name type identifier metadata.classification "
    "parentSourcedId",
    "academicSessions.csv": "sourcedId status dateLastModified title type startDate endDate "
    "parentSourcedId",
    "courses.csv": "sourcedId status dateLastModified schoolYearId metadata.duration title "
    "courseCode grade orgSourcedId subjects",
    "classes.csv": "sourcedId status dateLastModified title grade courseSourcedId classCode "
    "classType location schoolSourcedId termSourcedIds subjects",
    "users.csv": "sourcedId status dateLastModified orgSourcedIds role username userId givenName "
    "familyName identifier email sms phone agents",
    "enrollments.csv": "sourcedId classSourcedId schoolSourcedId userSourcedId role status "
    "dateLastModified primary",
    "demographics.csv": "userSourcedId status dateLastModified birthdate sex "
    "americanIndianOrAlaskaNative asian blackOrAfricanAmerican "
    "nativeHawaiianOrOtherPacificIslander white demographicRaceTwoOrMoreRaces "
    "hispanicOrLatinoEthnicity countryOfBirthCode stateOfBirthAbbreviation cityOfBirth "
    "publicSchoolResidenceStatus",
}
RENAMED_1_0 = {
    "courses.csv": {"schoolYearId": "schoolYearSourcedId", "grade": "grades"},
    "classes.csv": {"grade": "grades"},
    "users.csv": {"userId": "userIds", "agents": "agentSourcedIds"},
    "demographics.csv": {"userSourcedId": "sourcedId", "birthdate": "birthDate"},
}
DATE_COLUMNS = ("startDate", "endDate", "beginDate", "birthDate")
MANIFEST_FILES = (
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItems",
    "orgs",
    "resources",
    "results",
    "users",
)

Row = dict[str, str]


def _user(key: str, role: str, orgs: str, first: str, last: str, **more: str) -> Row:
    return {
        "sourcedId": key,
        "enabledUser": "true",
        "orgSourcedIds": orgs,
        "role": role,
        "username": key.replace("-", ""),
        "givenName": first,
        "familyName": last,
        "identifier": key.upper(),
        "email": f"{key}@school.example.org",
        **more,
    }


def school() -> dict[str, list[Row]]:
    """One school's rows, by file (1.1/1.2 column names; 1.2 role data in ``role``)."""
    return {
        "orgs.csv": [
            {"sourcedId": "org-d", "name": "District", "type": "district", "identifier": "D1"},
            {
                "sourcedId": "org-s",
                "name": "North School",
                "type": "school",
                "identifier": "S1",
                "parentSourcedId": "org-d",
            },
            {
                "sourcedId": "org-t",
                "name": "South School",
                "type": "school",
                "identifier": "S2",
                "parentSourcedId": "org-d",
            },
        ],
        "academicSessions.csv": [
            {
                "sourcedId": "as-y",
                "title": "2024-25",
                "type": "schoolYear",
                "startDate": "2024-08-26",
                "endDate": "2025-06-13",
                "schoolYear": "2025",
            },
            {
                "sourcedId": "as-t1",
                "title": "Fall",
                "type": "term",
                "startDate": "2024-08-26",
                "endDate": "2025-01-17",
                "parentSourcedId": "as-y",
                "schoolYear": "2025",
            },
        ],
        "courses.csv": [
            {
                "sourcedId": "crs-m",
                "schoolYearSourcedId": "as-y",
                "title": "Mathematics",
                "courseCode": "MATH",
                "grades": "07,08",
                "orgSourcedId": "org-s",
                "subjects": "Mathematics",
            },
            {
                "sourcedId": "crs-e",
                "schoolYearSourcedId": "as-y",
                "title": "English",
                "courseCode": "ENG",
                "grades": "07",
                "orgSourcedId": "org-s",
                "subjects": "English,Literature",
            },
        ],
        "classes.csv": [
            {
                "sourcedId": "cls-m1",
                "title": "Mathematics (A)",
                "grades": "07,08",
                "courseSourcedId": "crs-m",
                "classCode": "MATH-A",
                "classType": "scheduled",
                "location": "Room 101",
                "schoolSourcedId": "org-s",
                "termSourcedIds": "as-t1",
                "subjects": "Mathematics",
                "periods": "1,2",
            },
            {
                "sourcedId": "cls-e1",
                "title": "English (A)",
                "grades": "07",
                "courseSourcedId": "crs-e",
                "classCode": "ENG-A",
                "classType": "scheduled",
                "location": "Room 102",
                "schoolSourcedId": "org-s",
                "termSourcedIds": "as-t1",
                "subjects": "English",
                "periods": "3",
            },
        ],
        "users.csv": [
            _user(
                "stu-1",
                "student",
                "org-s",
                "Ann",
                "Lee",
                grades="07",
                agentSourcedIds="par-1",
                userIds="{LDAP:1}",
                password=PASSWORD,
            ),
            _user("stu-2", "student", "org-s", "Bob", "Ito", grades="08,09"),
            _user("stu-3", "student", "org-s,org-t", "Cid", "Diaz", grades="07"),
            _user("tch-1", "teacher", "org-s,org-t", "Tess", "Kim", userIds="{LDAP:9},{LTI:4}"),
            _user("aid-1", "aide", "org-s", "Abe", "Cruz"),
            _user("adm-1", "administrator", "org-d", "Ada", "Wong"),
            _user("par-1", "parent", "org-s", "Pat", "Lee", agentSourcedIds="stu-1"),
        ],
        "enrollments.csv": [
            _enrollment("enr-1", "cls-m1", "stu-1", "student"),
            _enrollment("enr-2", "cls-m1", "stu-2", "student"),
            _enrollment("enr-3", "cls-e1", "stu-3", "student"),
            _enrollment("enr-4", "cls-m1", "tch-1", "teacher", primary="true"),
            _enrollment("enr-5", "cls-e1", "tch-1", "teacher", primary="false"),
            _enrollment("enr-6", "cls-m1", "aid-1", "aide"),
        ],
        "demographics.csv": [
            {
                "sourcedId": "stu-1",
                "birthDate": "2012-04-17",
                "sex": "female",
                "asian": "true",
                "white": "false",
                "hispanicOrLatinoEthnicity": "false",
                "cityOfBirth": "Lyon",
            }
        ],
    }


def _enrollment(key: str, klass: str, user: str, role: str, primary: str = "false") -> Row:
    return {
        "sourcedId": key,
        "classSourcedId": klass,
        "schoolSourcedId": "org-s",
        "userSourcedId": user,
        "role": role,
        "primary": primary,
        "beginDate": "2024-08-26",
        "endDate": "2025-01-17",
    }


@dataclass
class Export:
    """An export to write: rows by file, the version, and the manifest's modes."""

    version: str = "1.1"
    files: dict[str, list[Row]] = field(default_factory=school)
    modes: dict[str, str] = field(default_factory=dict)  # file stem -> mode (default bulk)
    roles: list[Row] | None = None  # 1.2: roles.csv rows (default: from each user's role)
    profiles: list[Row] = field(default_factory=list)  # 1.2: userProfiles.csv rows
    status: str = "active"

    def copy(self) -> Export:
        return copy.deepcopy(self)

    def find(self, file: str, key: str) -> Row:
        return next(row for row in self.files[file] if row["sourcedId"] == key)

    def write(
        self,
        folder: Path,
        *,
        bom: bool = False,
        crlf: bool = False,
        reverse: bool = False,
        day_first: bool = False,
    ) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.csv"):
            old.unlink()
        files = self._files()
        for file, (header, rows) in files.items():
            if day_first:
                rows = [_day_first(row) for row in rows]
            if reverse:
                header = header[::-1]
            _write(folder / file, header, rows, bom=bom, crlf=crlf)
        if self.version != "1.0":
            stems = [*MANIFEST_FILES, *(("roles", "userProfiles") if self.version == "1.2" else ())]
            manifest = [("manifest.version", "1.0"), ("oneroster.version", self.version)]
            for stem in stems:
                default = "bulk" if f"{stem}.csv" in files else "absent"
                manifest.append((f"file.{stem}", self.modes.get(stem, default)))
            _write(
                folder / "manifest.csv",
                ["propertyName", "value"],
                [dict(zip(["propertyName", "value"], pair, strict=True)) for pair in manifest],
                bom=bom,
                crlf=crlf,
            )
        return folder

    def _files(self) -> dict[str, tuple[list[str], list[Row]]]:
        out: dict[str, tuple[list[str], list[Row]]] = {}
        headers = {"1.0": HEADERS_1_0, "1.1": HEADERS, "1.2": HEADERS_1_2}[self.version]
        for file, rows in self.files.items():
            if self.modes.get(file.removesuffix(".csv")) == "absent":
                continue
            header = headers[file].split()
            renamed = {v: k for k, v in RENAMED_1_0.get(file, {}).items()}
            written = []
            for row in rows:
                row = {**row, "status": row.get("status") or self.status}
                row.setdefault("dateLastModified", "2024-08-19T06:00:00.000Z")
                if self.version == "1.0":
                    row = {renamed.get(k, k): v for k, v in row.items()}
                if self.version == "1.2" and file == "users.csv":
                    orgs = row.get("orgSourcedIds", "").split(",")
                    row["primaryOrgSourcedId"] = orgs[0]
                written.append(row)
            out[file] = (header, written)
        if self.version == "1.2" and "users.csv" in out:
            roles = self.roles if self.roles is not None else self._roles()
            out["roles.csv"] = (HEADERS_1_2["roles.csv"].split(), roles)
            if self.profiles:
                out["userProfiles.csv"] = (HEADERS_1_2["userProfiles.csv"].split(), self.profiles)
        return out

    def _roles(self) -> list[Row]:
        roles = []
        for user in self.files["users.csv"]:
            if user.get("status") == "tobedeleted":
                continue
            for number, org in enumerate(user["orgSourcedIds"].split(",")):
                roles.append(
                    {
                        "sourcedId": f"rol-{user['sourcedId']}-{org}",
                        "status": "active",
                        "dateLastModified": "2024-08-19T06:00:00.000Z",
                        "userSourcedId": user["sourcedId"],
                        "roleType": "primary" if number == 0 else "secondary",
                        "role": user["role"],
                        "orgSourcedId": org,
                    }
                )
        return roles


def _day_first(row: Row) -> Row:
    out = dict(row)
    for column in DATE_COLUMNS:
        value = out.get(column, "")
        if value:
            year, month, day = value.split("-")
            out[column] = f"{int(day)}/{month}/{year}"
    return out


def _write(path: Path, header: list[str], rows: list[Row], *, bom: bool, crlf: bool) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(
        text, header, extrasaction="ignore", lineterminator="\r\n" if crlf else "\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


#: The destination column types a SQLite destination needs to give the rows back.
SQL_TYPES = {
    "sessions": {"start": "date", "end": "date"},
    "courses": {"grades": "set", "subjects": "set"},
    "classes": {"terms": "set", "grades": "set", "subjects": "set", "periods": "set"},
    **{
        name: {
            "user_ids": "set",
            "roles": "set",
            "orgs": "set",
            "grades": "set",
            "agents": "set",
            "enabled": "bool",
        }
        for name in ("students", "staff", "guardians")
    },
    "enrollments": {"primary": "bool", "begin": "date", "end": "date"},
    "demographics": {"races": "set", "hispanic": "bool", "birth_date": "date"},
}
#: Every subbranch, in dependency order (as written here, not read from the library).
SUBBRANCHES = (
    "orgs",
    "sessions",
    "courses",
    "classes",
    "students",
    "staff",
    "guardians",
    "enrollments",
    "demographics",
    "user_profiles",
)


def write_config(folder: Path, export: Path, source_options: str = "") -> Path:
    """A config syncing ``export`` (every subbranch) into ``folder/school.db``."""
    url = f"sqlite+aiosqlite:///{folder / 'school.db'}"
    lines = [
        "[sync]",
        f"subbranches = {list(SUBBRANCHES)!r}".replace("'", '"'),
        "",
        "[source]",
        'reader = "oneroster"',
        f'path = "{export}"',
        source_options,
        "",
        "[destination]",
        'reader = "sql"',
        f'url = "{url}"',
        'key = "idnumber"',
        "missing_ok = true",
        "",
    ]
    for name, types in SQL_TYPES.items():
        shown = ", ".join(f'{column} = "{kind}"' for column, kind in types.items())
        lines += [f"[destination.{name}]", f"types = {{ {shown} }}", ""]
    lines += [
        "[template]",
        'use = "sql"',
        f'url = "{url}"',
        "create_tables = true",
        'on_old = "delete"',
        "",
        "[run]",
        "max_deletes = 1000",
    ]
    config = folder / "sync.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config
