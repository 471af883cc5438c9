"""Web accounts on a real database file: who can sign in, what a teacher sees, and that no
password, token or session id is ever kept in clear."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import sqlite3
from pathlib import Path

import pytest

from filterdns.web.accounts import (
    Account,
    AccountError,
    AccountStore,
    Role,
    TokenInfo,
    hash_password,
    verify_password,
)

NOW = 1_800_000_000.0
PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path) -> AccountStore:
    return AccountStore(tmp_path / "state" / "filterdns.db")


def stored_bytes(path: Path) -> bytes:
    """Everything SQLite wrote: the database and its write-ahead log."""
    return b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*"))


def column(path: Path, sql: str) -> list[object]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute(sql)]


def test_a_password_is_stored_as_a_salted_scrypt_hash(store: AccountStore) -> None:
    store.set_password("anna", PASSWORD, now=NOW)
    store.set_password("binh", PASSWORD, now=NOW)
    first, second = column(store.db.path, "SELECT password FROM web_accounts ORDER BY name")
    scheme, n, r, p, salt, digest = str(first).split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16
    expected = hashlib.scrypt(PASSWORD.encode(), salt=base64.b64decode(salt), n=2**14, r=8, p=1,
                              dklen=len(base64.b64decode(digest)))  # fmt: skip
    assert base64.b64decode(digest) == expected
    assert first != second  # the same password, another salt


def test_sign_in_needs_the_right_name_and_password(store: AccountStore) -> None:
    made = store.set_password("anna", PASSWORD, now=NOW)
    assert made == Account("anna", Role.PARENT, ())  # no role given: a parent
    assert store.check_password("anna", PASSWORD) == made
    assert store.check_password("anna", PASSWORD.upper()) is None
    assert store.check_password("anna", "") is None
    assert store.check_password("nobody", PASSWORD) is None
    assert store.check_password("not a name!", PASSWORD) is None


def test_no_account_yet_means_no_sign_in(store: AccountStore) -> None:
    assert store.check_password("anna", PASSWORD) is None  # no database file at all
    assert store.accounts() == [] and store.tokens() == []
    assert not store.db.path.exists()  # reading never creates it


def test_a_hash_this_code_cannot_read_matches_nothing() -> None:
    assert verify_password(hash_password(PASSWORD), PASSWORD)
    for junk in ("", "plain", "scrypt$3$8$1$AAAA$AAAA", "md5$1$1$1$AA==$AA==", "scrypt$x$8$1$$"):
        assert not verify_password(junk, PASSWORD)


def test_a_teacher_sees_only_their_profiles_and_a_parent_all(store: AccountStore) -> None:
    teacher = store.set_password("mr-hai", PASSWORD, role=Role.TEACHER, profiles=["7a", " 7b"])
    parent = store.set_password("anna", PASSWORD)
    assert teacher.profiles == ("7a", "7b")
    assert teacher.may_see("7a") and teacher.may_see("7b") and not teacher.may_see("minh")
    assert parent.may_see("minh") and parent.may_see("7a")
    assert store.accounts() == [parent, teacher]
    assert store.get("mr-hai") == teacher and store.get("nobody") is None


def test_a_teacher_needs_a_profile(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="teacher 'mr-hai' needs at least one profile"):
        store.set_password("mr-hai", PASSWORD, role=Role.TEACHER)
    assert store.accounts() == []


def test_a_new_password_keeps_role_and_profiles_unless_given(store: AccountStore) -> None:
    store.set_password("mr-hai", PASSWORD, role=Role.TEACHER, profiles=["7a"], now=NOW)
    again = store.set_password("mr-hai", "another password", now=NOW + 60)
    assert again == Account("mr-hai", Role.TEACHER, ("7a",))
    assert store.check_password("mr-hai", PASSWORD) is None
    assert store.check_password("mr-hai", "another password") == again
    moved = store.set_password("mr-hai", "another password", profiles=["8c"])
    assert moved.profiles == ("8c",)
    assert column(store.db.path, "SELECT created_at FROM web_accounts") == [NOW]


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("", PASSWORD, "an account name cannot be empty"),
        ("a" * 65, PASSWORD, "at most 64 characters, not 65"),
        ("anna smith", PASSWORD, "' ' is not allowed"),
        ("anna/..", PASSWORD, "'/' is not allowed"),
        ("anna", "short", "a password has 8 to 1024 characters"),
    ],
)
def test_bad_names_and_passwords_are_refused_in_one_line(
    store: AccountStore, name: str, password: str, message: str
) -> None:
    with pytest.raises(AccountError, match=message) as caught:
        store.set_password(name, password)
    assert "\n" not in str(caught.value) and password not in str(caught.value)


def test_names_in_any_script_are_welcome_and_normalised(store: AccountStore) -> None:
    decomposed = "co\u0302.Ha\u0300"  # "cô.Hà" typed with combining marks
    made = store.set_password(decomposed, PASSWORD)
    assert made.name == "cô.Hà"
    assert store.check_password("cô.Hà", PASSWORD) == made
    assert store.set_password("anna@school.vn", PASSWORD).name == "anna@school.vn"


def test_a_token_is_shown_once_and_stored_only_as_its_digest(store: AccountStore) -> None:
    store.set_password("anna", PASSWORD, now=NOW)
    token = store.new_token("anna", label="home assistant", now=NOW)
    assert token.startswith("fdns_") and len(token) == 5 + 43
    written = stored_bytes(store.db.path)
    assert token.encode() not in written and token[5:].encode() not in written
    assert PASSWORD.encode() not in written
    assert hashlib.sha256(token.encode()).hexdigest().encode() in written
    assert store.tokens() == [TokenInfo(1, "anna", "home assistant", NOW, None)]
    assert token not in repr(store.tokens())


def test_a_token_signs_in_its_account_until_revoked(store: AccountStore) -> None:
    anna = store.set_password("anna", PASSWORD, now=NOW)
    token = store.new_token("anna", now=NOW)
    assert store.check_token(token, now=NOW + 5) == anna
    assert store.tokens("anna")[0].last_used == NOW + 5
    assert store.check_token(token + "x") is None and store.check_token("fdns_") is None
    assert store.check_token("not-a-token") is None
    assert store.revoke_token(1) is True and store.revoke_token(1) is False
    assert store.check_token(token) is None


def test_a_token_for_no_account_is_refused(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="no web account 'ghost'"):
        store.new_token("ghost")


def test_removing_an_account_ends_its_tokens_and_sessions(store: AccountStore) -> None:
    store.set_password("anna", PASSWORD)
    token = store.new_token("anna")
    session_id, _ = store.new_session("anna", lifetime=3600)
    assert store.remove("anna") is True and store.remove("anna") is False
    assert store.check_token(token) is None and store.session(session_id) is None
    assert store.tokens() == [] and store.accounts() == []


def test_a_session_lasts_its_lifetime_then_is_gone(store: AccountStore) -> None:
    anna = store.set_password("anna", PASSWORD, now=NOW)
    session_id, csrf = store.new_session("anna", lifetime=3600, now=NOW)
    assert session_id != csrf
    assert store.session(session_id, now=NOW + 3599) == (anna, csrf)
    assert session_id.encode() not in stored_bytes(store.db.path)
    assert store.session(session_id, now=NOW + 3600) is None
    assert column(store.db.path, "SELECT count(*) FROM web_sessions") == [0]  # deleted
    assert store.session(session_id, now=NOW) is None
    assert store.session("made-up") is None and store.session("") is None


def test_signing_out_ends_that_session_only(store: AccountStore) -> None:
    anna = store.set_password("anna", PASSWORD)
    phone, _ = store.new_session("anna", lifetime=3600)
    laptop, laptop_csrf = store.new_session("anna", lifetime=3600)
    store.end_session(phone)
    assert store.session(phone) is None
    assert store.session(laptop) == (anna, laptop_csrf)


def test_a_password_change_ends_every_session_of_the_account(store: AccountStore) -> None:
    store.set_password("anna", PASSWORD)
    binh = store.set_password("binh", PASSWORD)
    phone, _ = store.new_session("anna", lifetime=3600)
    laptop, _ = store.new_session("anna", lifetime=3600)
    other, other_csrf = store.new_session("binh", lifetime=3600)
    store.set_password("anna", "a new password")
    assert store.session(phone) is None and store.session(laptop) is None
    assert store.session(other) == (binh, other_csrf)
    assert store.end_sessions("binh") == 1 and store.session(other) is None


def test_a_role_change_applies_to_open_sessions(store: AccountStore) -> None:
    store.set_password("lan", PASSWORD)
    session_id, _ = store.new_session("lan", lifetime=3600)
    with contextlib.closing(sqlite3.connect(store.db.path)) as db:  # as another command would
        db.execute("UPDATE web_accounts SET role = 'teacher', profiles = '7a'")
        db.commit()
    found = store.session(session_id)
    assert found is not None and found[0] == Account("lan", Role.TEACHER, ("7a",))


def test_an_unwritable_database_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AccountError, match=r"cannot save the account in .*filterdns\.db: "):
        AccountStore(blocker / "filterdns.db").set_password("anna", PASSWORD)
