"""The web app's accounts, API tokens and sign-in sessions, kept in the installation's database.

Parents see every profile; teachers only the profiles named on their account. `filterdns web
passwd` makes and changes accounts, and the web server checks passwords, tokens and sessions
here (synchronous calls: the server runs them in a worker thread).

Nothing secret is kept in clear: a password as a memory-hard scrypt hash ("scrypt$n$r$p$salt$hash",
base64, a random salt each), API tokens ("fdns_" + 43 random characters) and session ids as their
SHA-256 digests, so the clear value exists once, in the answer to whoever asked for it. A sign-in
with a name that has no account still computes one hash, so its time does not tell which names
exist. A new password ends the account's sessions; tokens stay until revoked.

The tables (web_accounts, web_tokens, web_sessions) are those of schema 5 (querylog/schema.py) in
the shared state's database (querylog/shareddb.py): the SQLite file, written as grants are, or
PostgreSQL, so one account signs in on every instance. Every problem is one line
(AccountError) naming the database and what to do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from filterdns.config.log import LogConfig
from filterdns.errors import FilterDnsError
from filterdns.querylog.shareddb import Conn, StateDb, state_db

log = logging.getLogger(__name__)

NAME_MAX = 64
NAME_PUNCTUATION = "._-@"
PASSWORD_MIN = 8
PASSWORD_MAX = 1024  # a bound on what one sign-in makes the server hash
LABEL_MAX = 100
TOKEN_PREFIX = "fdns_"
TOKEN_BYTES = 32
TOKEN_MAX = 100  # longer text is no token of ours: refused before any lookup
LAST_USED_EVERY = 60.0  # seconds: a token used all the time is not a write per request

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
SCRYPT_MAXMEM = 64 * 1024 * 1024
# Checked against when a name has no account: same cost, never a match.
_NOBODY = "scrypt$16384$8$1$" + base64.b64encode(bytes(SALT_BYTES)).decode() + "$"


class AccountError(FilterDnsError):
    """An account, token or session could not be made, changed or read; the message says why."""


class Role(StrEnum):
    """What an account may see: a parent every profile, a teacher the profiles named."""

    PARENT = "parent"
    TEACHER = "teacher"


@dataclass(frozen=True, slots=True)
class Account:
    """One web account (never its password)."""

    name: str
    role: Role
    profiles: tuple[str, ...]

    def may_see(self, profile: str) -> bool:
        """Parents see every profile; teachers only theirs."""
        return self.role is Role.PARENT or profile in self.profiles

    def to_json(self) -> dict[str, Any]:
        """The account as JSON-ready data."""
        return {"name": self.name, "role": str(self.role), "profiles": list(self.profiles)}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed: who it is for and when it was used, never its value."""

    id: int
    account: str
    label: str
    created_at: float
    last_used: float | None

    def to_json(self) -> dict[str, Any]:
        """The token's description as JSON-ready data."""
        return asdict(self)


def check_name(name: str) -> str:
    """The account name NFC-normalised; AccountError saying what is wrong with it."""
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise AccountError("an account name cannot be empty")
    if len(name) > NAME_MAX:
        raise AccountError(f"an account name has at most {NAME_MAX} characters, not {len(name)}")
    for char in name:
        kind = unicodedata.category(char)
        if not (kind[0] in "LM" or kind == "Nd" or char in NAME_PUNCTUATION):
            raise AccountError(
                f"account name {name!r}: {char!r} is not allowed (letters, digits and . _ - @)"
            )
    if unicodedata.category(name[0])[0] == "M":
        raise AccountError(f"account name {name!r} cannot start with a combining mark")
    return name


def check_password_text(password: str) -> None:
    """AccountError when the password is too short or too long (the message never shows it)."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AccountError(f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters")


def clean_profiles(profiles: Sequence[str]) -> tuple[str, ...]:
    """Profile names trimmed, NFC-normalised, each once; AccountError for an unusable one."""
    out: list[str] = []
    for raw in profiles:
        profile = unicodedata.normalize("NFC", raw.strip())
        if not profile or "," in profile or not profile.isprintable():
            raise AccountError(f"{raw!r} is not a profile name")
        if profile not in out:
            out.append(profile)
    return tuple(out)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The stored form of a password: "scrypt$n$r$p$salt$hash" (salt and hash in base64)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    encoded = (base64.b64encode(part).decode() for part in (salt, digest))
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'$'.join(encoded)}"


def verify_password(stored: str, password: str) -> bool:
    """Whether `password` matches a stored hash (False for a hash this code cannot read)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
        expected = base64.b64decode(digest, validate=True)
    except ValueError:  # not our format, or parameters scrypt refuses (before any work)
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    secret = unicodedata.normalize("NFC", password).encode("utf-8", "surrogatepass")
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=HASH_BYTES)


def digest_of(secret: str) -> str:
    """The SHA-256 hex digest under which a token or session id is stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _require(conn: Conn, name: str) -> None:
    if conn.execute("SELECT 1 FROM web_accounts WHERE name = ?", (name,)).fetchone() is None:
        raise AccountError(f"no web account {name!r}")


def _account(name: str, role: str, profiles: str) -> Account:
    try:
        kind = Role(role)
    except ValueError:
        kind = Role.TEACHER  # an unknown role sees least
    return Account(str(name), kind, tuple(p for p in str(profiles).split(",") if p))


class AccountStore:
    """The web accounts of one installation, their API tokens and sign-in sessions."""

    def __init__(self, database: LogConfig | Path | StateDb) -> None:
        self.db = state_db(database)

    def set_password(self, name: str, password: str, *, role: Role | None = None,
                     profiles: Sequence[str] | None = None, now: float | None = None,
                     ) -> Account:  # fmt: skip
        """Make the account, or give it a new password (ending its sessions); its role and
        profiles stay unless given. A new account without a role is a parent's."""
        name = check_name(name)
        check_password_text(password)
        now = time.time() if now is None else now
        stored = hash_password(password)  # before the lock: it takes a while on purpose
        with self.db.writing(now, "save the account in", AccountError) as conn:
            row = conn.execute(
                "SELECT role, profiles FROM web_accounts WHERE name = ?", (name,)
            ).fetchone()
            old = _account(name, *row) if row else None
            kind = Role(role) if role is not None else old.role if old else Role.PARENT
            chosen = clean_profiles(profiles) if profiles is not None else None
            kept = chosen if chosen is not None else old.profiles if old else ()
            if kind is Role.TEACHER and not kept:
                raise AccountError(f"teacher {name!r} needs at least one profile")
            conn.execute(
                "INSERT INTO web_accounts (name, role, profiles, password, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET role = excluded.role,"
                " profiles = excluded.profiles, password = excluded.password, updated_at = ?",
                (name, str(kind), ",".join(kept), stored, now, now, now),
            )
            conn.execute("DELETE FROM web_sessions WHERE account = ?", (name,))
        log.info("web account %s: password %s", name, "set" if old is None else "changed")
        return Account(name, kind, kept)

    def check_password(self, name: str, password: str) -> Account | None:
        """The account when the password is its own; None otherwise (no matter why)."""
        try:
            name = check_name(name)
        except AccountError:
            name = ""
        rows = self._rows("SELECT role, profiles, password FROM web_accounts WHERE name = ?",
                          (name,)) if name else []  # fmt: skip
        if not rows or len(password) > PASSWORD_MAX:
            verify_password(_NOBODY, password[:PASSWORD_MAX])  # the same time as a real check
            return None
        role, profiles, stored = rows[0]
        if not verify_password(str(stored), password):
            return None
        return _account(name, role, profiles)

    def get(self, name: str) -> Account | None:
        """The account of that name, or None."""
        name = unicodedata.normalize("NFC", name)
        rows = self._rows("SELECT name, role, profiles FROM web_accounts WHERE name = ?", (name,))
        return _account(*rows[0]) if rows else None

    def accounts(self) -> list[Account]:
        """Every account, by name."""
        rows = self._rows("SELECT name, role, profiles FROM web_accounts ORDER BY name", ())
        return [_account(*row) for row in rows]

    def remove(self, name: str, now: float | None = None) -> bool:
        """Remove the account with its tokens and sessions; False when there was none."""
        name = unicodedata.normalize("NFC", name)
        now = time.time() if now is None else now
        with self.db.writing(now, "remove the account from", AccountError) as conn:
            gone = conn.execute("DELETE FROM web_accounts WHERE name = ?", (name,)).rowcount
            conn.execute("DELETE FROM web_tokens WHERE account = ?", (name,))
            conn.execute("DELETE FROM web_sessions WHERE account = ?", (name,))
        return gone > 0

    def new_token(self, name: str, label: str = "", now: float | None = None) -> str:
        """A new API token for the account, returned in clear this once (stored as a digest)."""
        name = unicodedata.normalize("NFC", name)
        now = time.time() if now is None else now
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        label = "".join(c for c in label if c.isprintable()).strip()[:LABEL_MAX]
        with self.db.writing(now, "save the token in", AccountError) as conn:
            _require(conn, name)
            conn.execute(
                "INSERT INTO web_tokens (account, label, digest, created_at) VALUES (?, ?, ?, ?)",
                (name, label, digest_of(token), now),
            )
        return token

    def check_token(self, token: str, now: float | None = None) -> Account | None:
        """The account a token belongs to (its use noted, at most once a minute), or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > TOKEN_MAX:
            return None
        now = time.time() if now is None else now
        rows = self._rows(
            "SELECT t.id, t.last_used, a.name, a.role, a.profiles FROM web_tokens t"
            " JOIN web_accounts a ON a.name = t.account WHERE t.digest = ?",
            (digest_of(token),),
        )
        if not rows:
            return None
        token_id, last_used, *account = rows[0]
        if last_used is None or now - float(last_used) >= LAST_USED_EVERY:
            with self.db.writing(now, "note the token's use in", AccountError) as conn:
                conn.execute("UPDATE web_tokens SET last_used = ? WHERE id = ?", (now, token_id))
        return _account(*account)

    def tokens(self, name: str | None = None) -> list[TokenInfo]:
        """The tokens (of one account, or all), oldest first; never their values."""
        sql = "SELECT id, account, label, created_at, last_used FROM web_tokens"
        params: tuple[str, ...] = ()
        if name is not None:
            sql, params = sql + " WHERE account = ?", (unicodedata.normalize("NFC", name),)
        rows = self._rows(sql + " ORDER BY id", params)
        return [
            TokenInfo(int(i), str(account), str(label), float(created),
                      None if used is None else float(used))
            for i, account, label, created, used in rows
        ]  # fmt: skip

    def revoke_token(self, token_id: int, now: float | None = None) -> bool:
        """Revoke a token by id; False when there was none."""
        now = time.time() if now is None else now
        with self.db.writing(now, "revoke the token in", AccountError) as conn:
            return conn.execute("DELETE FROM web_tokens WHERE id = ?", (token_id,)).rowcount > 0

    def new_session(
        self, name: str, *, lifetime: float, now: float | None = None
    ) -> tuple[str, str]:
        """A session of `lifetime` seconds: (session id, CSRF token); expired ones deleted."""
        name = unicodedata.normalize("NFC", name)
        if not lifetime > 0:
            raise AccountError(f"a session lasts a positive number of seconds, not {lifetime}")
        now = time.time() if now is None else now
        session_id, csrf = secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES)
        with self.db.writing(now, "save the session in", AccountError) as conn:
            _require(conn, name)
            conn.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT INTO web_sessions (digest, account, csrf, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (digest_of(session_id), name, csrf, now, now + lifetime),
            )
        return session_id, csrf

    def session(self, session_id: str, now: float | None = None) -> tuple[Account, str] | None:
        """The signed-in account and its CSRF token; None when unknown or expired (deleted)."""
        if not session_id or len(session_id) > TOKEN_MAX:
            return None
        now = time.time() if now is None else now
        digest = digest_of(session_id)
        rows = self._rows(
            "SELECT s.expires_at, s.csrf, a.name, a.role, a.profiles FROM web_sessions s"
            " JOIN web_accounts a ON a.name = s.account WHERE s.digest = ?",
            (digest,),
        )
        if not rows:
            return None
        expires_at, csrf, *account = rows[0]
        if float(expires_at) <= now:
            with self.db.writing(now, "end the session in", AccountError) as conn:
                conn.execute("DELETE FROM web_sessions WHERE digest = ?", (digest,))
            return None
        return _account(*account), str(csrf)

    def end_session(self, session_id: str, now: float | None = None) -> None:
        """Sign out: the session ends (nothing happens for an unknown one)."""
        now = time.time() if now is None else now
        with self.db.writing(now, "end the session in", AccountError) as conn:
            conn.execute("DELETE FROM web_sessions WHERE digest = ?", (digest_of(session_id),))

    def end_sessions(self, name: str, now: float | None = None) -> int:
        """End every session of the account; how many there were."""
        name = unicodedata.normalize("NFC", name)
        now = time.time() if now is None else now
        with self.db.writing(now, "end the sessions in", AccountError) as conn:
            return conn.execute("DELETE FROM web_sessions WHERE account = ?", (name,)).rowcount

    def _rows(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        return self.db.rows(sql, params, "read the web accounts in", AccountError)
