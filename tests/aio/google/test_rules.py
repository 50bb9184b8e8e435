"""Account rules: addresses from patterns, OUs from rules, initial passwords and their file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from synctree.aio.google import EmailRule, OURule, PasswordFile, PasswordPolicy, fold


class TestEmailRule:
    def test_folds_lowers_and_drops_what_google_refuses(self) -> None:
        """Accents fold to ASCII, case lowers, spaces and symbols go; - ' . _ stay."""
        rule = EmailRule("{first}.{last}@students.example.org")
        row = {"idnumber": "1", "first": "Zoë Ann", "last": "Ñúñez-O'Brien!"}
        assert rule.address(row) == "zoeann.nunez-o'brien@students.example.org"
        assert (
            rule.address({"first": "Jürgen", "last": "Straße"})
            == "jurgen.strasse@students.example.org"
        )
        assert fold("Łódź Ørsted") == "Lodz Orsted"

    def test_no_double_or_edge_dots(self) -> None:
        """A field that folds to nothing leaves no '..' nor a leading dot."""
        rule = EmailRule("{first}.{middle}.{last}@example.org")
        assert (
            rule.address({"first": "Ann", "middle": "李", "last": "Lee"}) == "ann.lee@example.org"
        )

    def test_conflicts_take_digits(self) -> None:
        """Taken addresses (the domain's and this run's) get 2, 3, ..."""
        taken = {"ann.lee@example.org"}
        assert EmailRule.unique("ann.lee@example.org", taken) == "ann.lee2@example.org"
        assert EmailRule.unique("ann.lee@example.org", taken) == "ann.lee3@example.org"
        assert EmailRule.unique("bo.li@example.org", taken) == "bo.li@example.org"
        assert {"ann.lee2@example.org", "bo.li@example.org"} <= taken

    def test_missing_field_names_the_row(self) -> None:
        """A row without a field of the pattern is an error naming key and field."""
        with pytest.raises(ValueError, match=r"'7' has no 'last'"):
            EmailRule("{first}.{last}@example.org").address({"idnumber": "7", "first": "A"})

    @pytest.mark.parametrize("pattern", ["{first}", "{first}@{domain}", "{first@x.org"])
    def test_bad_patterns(self, pattern: str) -> None:
        """A pattern without a written-out domain, or with a stray brace, is refused."""
        with pytest.raises(ValueError, match="'email'"):
            EmailRule(pattern)


class TestOURule:
    def test_fields_and_lookups(self) -> None:
        """Fields fill the path; a lookup table names them; empty ones drop their level."""
        rule = OURule("/Students/{school}/{grade}", {"school": {"org-ms": "Middle School"}})
        assert rule.path({"school": "org-ms", "grade": "07"}) == "/Students/Middle School/07"
        assert rule.path({"school": "org-ms", "grade": ""}) == "/Students/Middle School"

    def test_a_value_the_lookup_lacks_is_an_error(self) -> None:
        """Never a guessed OU: the message names the key, field and value."""
        rule = OURule("/S/{school}", {"school": {"org-ms": "MS"}})
        with pytest.raises(ValueError, match=r"'9' has school 'org-xx'"):
            rule.path({"idnumber": "9", "school": "org-xx"})

    def test_a_slash_in_a_value_is_no_new_level(self) -> None:
        assert OURule("/S/{grade}").path({"grade": "6/7"}) == "/S/6-7"


class TestPasswords:
    def test_policy(self) -> None:
        """Length and every class asked for; no two alike."""
        policy = PasswordPolicy(12, symbols=True)
        drawn = [policy.generate() for _ in range(200)]
        assert len(set(drawn)) == 200
        for password in drawn:
            assert len(password) == 12
            assert any(c.isupper() for c in password) and any(c.isdigit() for c in password)
            assert any(not c.isalnum() for c in password)
        assert "12" in repr(policy) and drawn[0] not in repr(policy)

    @pytest.mark.parametrize("length", [7, 101, True])
    def test_bad_length(self, length: int) -> None:
        with pytest.raises(ValueError, match="password.length"):
            PasswordPolicy(length)

    def test_unknown_policy_key(self) -> None:
        with pytest.raises(ValueError, match="unknown key 'size'"):
            PasswordPolicy.from_config({"size": 10})

    def test_file_is_private_and_appended(self, tmp_path: Path) -> None:
        """Created with mode 0600 whatever the umask; a header once; rows appended."""
        path = tmp_path / "passwords.csv"
        old = os.umask(0)
        try:
            PasswordFile(path).append("1", "a@example.org", "secret-one")
            PasswordFile(path).append("2", "b@example.org", "secret-two")
        finally:
            os.umask(old)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        lines = path.read_text().splitlines()
        assert lines[0] == "time,idnumber,email,password" and len(lines) == 3
        assert lines[2].endswith(",2,b@example.org,secret-two")

    def test_a_file_others_may_read_is_refused(self, tmp_path: Path) -> None:
        """An existing password file readable by others is refused before any write."""
        path = tmp_path / "passwords.csv"
        path.write_text("time,idnumber,email,password\n")
        path.chmod(0o644)
        with pytest.raises(ValueError, match="chmod 600"):
            PasswordFile(path).check()
        with pytest.raises(ValueError, match="chmod 600"):
            PasswordFile(path).append("1", "a@example.org", "pw")
        assert path.read_text().count("\n") == 1
