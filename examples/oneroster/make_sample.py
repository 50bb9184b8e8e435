"""Write a small, realistic OneRoster 1.1 bulk CSV export, and a changed copy of it.

    python examples/oneroster/make_sample.py

- ``sample/``: a district with a middle school and a high school, the 2024-25
  school year, 28 courses, 42 classes, 300 students, 30 teachers,
  3 administrators and their enrollments.
- ``changed/``: the same export a few weeks later: a few students left, a few
  joined, a few changed grade, a few moved to another section of a course, and
  one is marked ``tobedeleted``. ``changed/CHANGES.md`` lists every difference
  by id.

Everything is made from fixed seeds, so running it again writes the same files.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
SEED = 20240819
CHANGE_SEED = 20240916

VERSION_DATE = "2024-08-19T06:00:00.000Z"
CHANGE_DATE = "2024-09-16T06:00:00.000Z"
YEAR_START, YEAR_END = "2024-08-26", "2025-06-13"
DOMAIN = "maplevalley.example.org"

# The columns of each OneRoster 1.1 CSV file, in the specification's order.
COLUMNS = {
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
}
MANIFEST = [
    ("manifest.version", "1.0"),
    ("oneroster.version", "1.1"),
    ("file.academicSessions", "bulk"),
    ("file.categories", "absent"),
    ("file.classes", "bulk"),
    ("file.classResources", "absent"),
    ("file.courses", "bulk"),
    ("file.courseResources", "absent"),
    ("file.demographics", "absent"),
    ("file.enrollments", "bulk"),
    ("file.lineItems", "absent"),
    ("file.orgs", "bulk"),
    ("file.resources", "absent"),
    ("file.results", "absent"),
    ("file.users", "bulk"),
    ("source.systemName", "Maple Valley SIS"),
    ("source.systemCode", "mvsis"),
]

FIRST = (
    "Aaliyah Aiden Amara Ana Ben Carlos Chloe Daniel Diego Elena Emma Ethan Fatima Grace Hana "
    "Hugo Isla Ivan Jamal Jin Julia Kai Layla Leo Liam Lucia Maya Mateo Mia Noah Nora Omar Priya "
    "Ravi Rosa Sam Sofia Tariq Yusuf Zoe"
).split()
LAST = (
    "Adams Ahmed Baker Chen Cruz Diaz Evans Garcia Gupta Hansen Ito Johnson Kim Kowalski Lee "
    "Lopez Martin Mensah Miller Nguyen Novak Okafor Patel Quinn Rossi Santos Schmidt Silva Smith "
    "Tanaka Taylor Torres Walker Wang Williams Young"
).split()
SUBJECTS = [  # subject, course code, sections per grade
    ("Mathematics", "MATH", 2),
    ("English Language Arts", "ELA", 2),
    ("Science", "SCI", 1),
    ("Social Studies", "SOC", 1),
]
SCHOOLS = [  # sourcedId, name, identifier, grades, teachers
    ("org-ms", "Maple Valley Middle School", "0417", ["06", "07", "08"], 13),
    ("org-hs", "Maple Valley High School", "0418", ["09", "10", "11", "12"], 17),
]
DISTRICT = ("org-district", "Maple Valley School District", "MV01")
STUDENTS = 300

Row = dict[str, str]


@dataclass
class Export:
    """The rows of each file of one export."""

    files: dict[str, list[Row]] = field(default_factory=lambda: {name: [] for name in COLUMNS})

    def add(self, file: str, **values: str) -> Row:
        columns = COLUMNS[file].split()
        unknown = set(values) - set(columns)
        assert not unknown, (file, unknown)
        row = {column: values.get(column, "") for column in columns}
        row["status"] = row["status"] or "active"
        row["dateLastModified"] = row["dateLastModified"] or VERSION_DATE
        self.files[file].append(row)
        return row

    def find(self, file: str, sourced_id: str) -> Row:
        return next(row for row in self.files[file] if row["sourcedId"] == sourced_id)

    def copy(self) -> Export:
        return Export({name: [dict(row) for row in rows] for name, rows in self.files.items()})

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["propertyName", "value"])
            writer.writerows(MANIFEST)
        for name, rows in self.files.items():
            with (folder / name).open("w", newline="", encoding="utf-8") as file:
                writer = csv.DictWriter(file, COLUMNS[name].split())
                writer.writeheader()
                writer.writerows(rows)


class People:
    """Unique, realistic-looking names, usernames and numbers."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.usernames: set[str] = set()
        self.numbers = iter(range(2400101, 2409999, 7))

    def name(self) -> tuple[str, str, str]:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        base = f"{first[0]}{last}".lower()
        username, n = base, 1
        while username in self.usernames:
            n += 1
            username = f"{base}{n}"
        self.usernames.add(username)
        return first, last, username


def student(export: Export, people: People, number: int, school: str, grade: str) -> Row:
    first, last, username = people.name()
    middle = people.rng.choice(["", "", "", people.rng.choice(FIRST)[0]])
    return export.add(
        "users.csv",
        sourcedId=f"stu-{number:04d}",
        enabledUser="true",
        orgSourcedIds=school,
        role="student",
        username=username,
        givenName=first,
        familyName=last,
        middleName=middle,
        identifier=str(next(people.numbers)),
        email=f"{username}@students.{DOMAIN}",
        grades=grade,
    )


def enroll(export: Export, user: Row, klass: Row, role: str) -> Row:
    taken = [int(row["sourcedId"].removeprefix("enr-")) for row in export.files["enrollments.csv"]]
    number = max(taken, default=0) + 1
    return export.add(
        "enrollments.csv",
        sourcedId=f"enr-{number:05d}",
        dateLastModified=user["dateLastModified"],
        classSourcedId=klass["sourcedId"],
        schoolSourcedId=klass["schoolSourcedId"],
        userSourcedId=user["sourcedId"],
        role=role,
        primary="true" if role == "teacher" else "false",
        beginDate=YEAR_START,
    )


def sections(export: Export, grade: str) -> dict[str, list[Row]]:
    """The classes of a grade, by course."""
    found: dict[str, list[Row]] = {}
    for row in export.files["classes.csv"]:
        if row["grades"] == grade:
            found.setdefault(row["courseSourcedId"], []).append(row)
    return found


def make_sample() -> Export:
    rng = random.Random(SEED)
    people = People(rng)
    export = Export()
    district, district_name, district_code = DISTRICT
    export.add(
        "orgs.csv",
        sourcedId=district,
        name=district_name,
        type="district",
        identifier=district_code,
    )
    for school, name, code, _grades, _teachers in SCHOOLS:
        export.add(
            "orgs.csv",
            sourcedId=school,
            name=name,
            type="school",
            identifier=code,
            parentSourcedId=district,
        )
    export.add(
        "academicSessions.csv",
        sourcedId="as-2025",
        title="2024-2025",
        type="schoolYear",
        startDate=YEAR_START,
        endDate=YEAR_END,
        schoolYear="2025",
    )
    for term, title, start, end in [
        ("as-2025-s1", "Fall 2024", YEAR_START, "2025-01-17"),
        ("as-2025-s2", "Spring 2025", "2025-01-21", YEAR_END),
    ]:
        export.add(
            "academicSessions.csv",
            sourcedId=term,
            title=title,
            type="semester",
            startDate=start,
            endDate=end,
            parentSourcedId="as-2025",
            schoolYear="2025",
        )

    # Courses and their sections; teachers take the sections of their school in turn.
    room = iter(range(101, 999))
    staff_number = iter(range(1, 999))
    for school, _name, _code, grades, teacher_count in SCHOOLS:
        teachers = []
        for _ in range(teacher_count):
            first, last, username = people.name()
            teachers.append(
                export.add(
                    "users.csv",
                    sourcedId=f"tch-{next(staff_number):03d}",
                    enabledUser="true",
                    orgSourcedIds=school,
                    role="teacher",
                    username=username,
                    givenName=first,
                    familyName=last,
                    identifier=f"T{rng.randrange(10000, 99999)}",
                    email=f"{first}.{last}@{DOMAIN}".lower(),
                )
            )
        turn = 0
        for grade in grades:
            for subject, code, count in SUBJECTS:
                number = int(grade)
                course = export.add(
                    "courses.csv",
                    sourcedId=f"crs-{code.lower()}-{grade}",
                    schoolYearSourcedId="as-2025",
                    title=f"{subject} {number}",
                    courseCode=f"{code}{number}",
                    grades=grade,
                    orgSourcedId=school,
                    subjects=subject,
                )
                for section in "AB"[:count]:
                    klass = export.add(
                        "classes.csv",
                        sourcedId=f"cls-{code.lower()}-{grade}-{section.lower()}",
                        title=f"{subject} {number} ({section})",
                        grades=grade,
                        courseSourcedId=course["sourcedId"],
                        classCode=f"{code}{number}-{section}",
                        classType="scheduled",
                        location=f"Room {next(room)}",
                        schoolSourcedId=school,
                        termSourcedIds="as-2025-s1,as-2025-s2",
                        subjects=subject,
                        periods=str(rng.randrange(1, 8)),
                    )
                    enroll(export, teachers[turn % len(teachers)], klass, "teacher")
                    turn += 1
    # One high school teacher also teaches at the middle school.
    shared = export.find("users.csv", "tch-020")
    shared["orgSourcedIds"] = "org-hs,org-ms"
    enroll(export, shared, export.find("classes.csv", "cls-sci-08-a"), "teacher")

    for number, org in enumerate([district, "org-ms", "org-hs"], start=1):
        first, last, username = people.name()
        export.add(
            "users.csv",
            sourcedId=f"adm-{number:02d}",
            enabledUser="true",
            orgSourcedIds=org,
            role="administrator",
            username=username,
            givenName=first,
            familyName=last,
            identifier=f"A{number:03d}",
            email=f"{first}.{last}@{DOMAIN}".lower(),
        )

    grade_school = {grade: school for school, _n, _c, grades, _t in SCHOOLS for grade in grades}
    all_grades = sorted(grade_school)
    for number in range(1, STUDENTS + 1):
        grade = rng.choice(all_grades)
        user = student(export, people, number, grade_school[grade], grade)
        for classes in sections(export, grade).values():
            enroll(export, user, rng.choice(classes), "student")
    return export


@dataclass
class Changes:
    """What changed between the sample and the changed export, by kind."""

    left: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    grades: list[str] = field(default_factory=list)
    moves: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def sections(self) -> list[tuple[str, list[str]]]:
        return [
            ("Left (rows gone from users.csv and enrollments.csv)", self.left),
            ("Joined (new rows in users.csv and enrollments.csv)", self.joined),
            ("Changed grade (users.csv `grades`)", self.grades),
            ("Moved to another section (enrollments.csv)", self.moves),
            ("Marked `tobedeleted` (users.csv and their enrollments)", self.deleted),
        ]


def describe(user: Row) -> str:
    return f"`{user['sourcedId']}` {user['givenName']} {user['familyName']}"


def make_changed(sample: Export) -> tuple[Export, Changes]:
    rng = random.Random(CHANGE_SEED)
    export = sample.copy()
    changes = Changes()
    users = export.files["users.csv"]
    enrollments = export.files["enrollments.csv"]
    students = [row for row in users if row["role"] == "student"]
    picked = rng.sample(students, 4 + 3 + 3 + 1)
    leavers, regraded, movers, deleted = picked[:4], picked[4:7], picked[7:10], picked[10:]

    for user in leavers:
        users.remove(user)
        classes = [row for row in enrollments if row["userSourcedId"] == user["sourcedId"]]
        for row in classes:
            enrollments.remove(row)
        changes.left.append(f"{describe(user)} (grade {user['grades']}, {len(classes)} classes)")

    for user in regraded:
        old = user["grades"]
        new = f"{int(old) + (1 if old not in ('08', '12') else -1):02d}"
        user["grades"], user["dateLastModified"] = new, CHANGE_DATE
        changes.grades.append(f"{describe(user)}: grade {old} → {new}")

    for user in movers:
        mine = [row for row in enrollments if row["userSourcedId"] == user["sourcedId"]]
        for row in mine:
            klass = export.find("classes.csv", row["classSourcedId"])
            others = [
                other
                for other in sections(export, klass["grades"])[klass["courseSourcedId"]]
                if other is not klass
            ]
            if others:
                enrollments.remove(row)
                moved = enroll(export, user, others[0], "student")
                moved["dateLastModified"] = CHANGE_DATE
                changes.moves.append(
                    f"{describe(user)}: `{klass['sourcedId']}` → `{others[0]['sourcedId']}` "
                    f"(enrollment `{row['sourcedId']}` removed, `{moved['sourcedId']}` added)"
                )
                break

    people = People(rng)
    people.usernames = {row["username"] for row in users}
    people.numbers = iter(range(2409001, 2409999, 11))
    grade_school = {grade: school for school, _n, _c, grades, _t in SCHOOLS for grade in grades}
    for number in range(STUDENTS + 1, STUDENTS + 4):
        grade = rng.choice(sorted(grade_school))
        user = student(export, people, number, grade_school[grade], grade)
        user["dateLastModified"] = CHANGE_DATE
        for classes in sections(export, grade).values():
            enroll(export, user, rng.choice(classes), "student")["dateLastModified"] = CHANGE_DATE
        changes.joined.append(f"{describe(user)} (grade {grade}, 4 classes)")

    for user in deleted:
        user["status"], user["dateLastModified"] = "tobedeleted", CHANGE_DATE
        for row in enrollments:
            if row["userSourcedId"] == user["sourcedId"]:
                row["status"], row["dateLastModified"] = "tobedeleted", CHANGE_DATE
        changes.deleted.append(f"{describe(user)} (grade {user['grades']})")
    return export, changes


def counts(export: Export) -> dict[str, int]:
    """What a OneRoster reader yields per subbranch (tobedeleted rows left out)."""
    active = {
        name: [r for r in rows if r["status"] != "tobedeleted"]
        for name, rows in export.files.items()
    }
    users = active["users.csv"]
    return {
        "orgs": len(active["orgs.csv"]),
        "sessions": len(active["academicSessions.csv"]),
        "courses": len(active["courses.csv"]),
        "classes": len(active["classes.csv"]),
        "students": sum(row["role"] == "student" for row in users),
        "staff": sum(row["role"] in ("teacher", "administrator") for row in users),
        "enrollments": len(active["enrollments.csv"]),  # one row per enrollment
    }


def write_changes(changes: Changes, sample: Export, changed: Export, path: Path) -> None:
    lines = [
        "# What changed between `sample/` and `changed/`",
        "",
        "Written by `make_sample.py`; ids are OneRoster `sourcedId`s.",
        "",
    ]
    for title, items in changes.sections():
        lines += [f"## {title}", ""] + [f"- {item}" for item in items] + [""]
    before, after = counts(sample), counts(changed)
    lines += [
        "## Rows per subbranch (as `synctree.aio.OneRoster` reads them)",
        "",
        "| subbranch | sample | changed |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {before[name]} | {after[name]} |" for name in before]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    sample = make_sample()
    changed, changes = make_changed(sample)
    sample.write(HERE / "sample")
    changed.write(HERE / "changed")
    write_changes(changes, sample, changed, HERE / "changed" / "CHANGES.md")

    print(f"wrote {HERE / 'sample'} and {HERE / 'changed'}")
    before, after = counts(sample), counts(changed)
    for name in before:
        print(f"  {name:<12} {before[name]:>4} -> {after[name]:>4}")
    for title, items in changes.sections():
        print(f"{title}:")
        for item in items:
            print(f"  - {item.replace('`', '')}")


if __name__ == "__main__":
    main()
