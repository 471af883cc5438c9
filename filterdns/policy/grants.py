"""Grants: timed exceptions for one profile, kept in the installation's database.

`filterdns grant minh --allow youtube.com --for 45m` adds a row to the `grants` table of the
database the server already owns (`log.database`, schema in dbfile.py). The running server
reads the table again whenever the database changed (`PRAGMA data_version` on its own read-only
connection, and the file's identity, looked at four times a second in a worker thread), so a
grant applies within a second, and the policy applies it on the next query. Grants survive
restarts and expire by themselves: the policy ignores a grant past its time and schedules a
recomputation for the instant it ends; expired rows are deleted when the next grant is made.

Why the database and not a file of its own: the server's user owns the database, and every
command that writes it runs as that user (`filterdns` switches to the state directory's owner
when root runs it, see privileges.act_as_owner), so a grant made with sudo, as root or as the
service user lands in the same place with the same owner, and SQLite's locking makes concurrent
commands safe. A grant that cannot be saved says why in one line (GrantError); nothing on the
network can make one.

Grants kept in `grants.json` by earlier versions are imported into the table (ids kept) and the
file renamed to `grants.json.imported-<UTC time>`: by the server at start, and again whenever
the file changes (a `chown` that makes it readable counts), and by the commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filterdns.errors import FilterDnsError
from filterdns.policy.legacy_grants import LEGACY_FILE, move_into
from filterdns.policy.values import Grant, GrantKind, grant_kind
from filterdns.querylog import dbfile
from filterdns.querylog.dbfile import DamagedError
from filterdns.querylog.shareddb import Conn, SqliteDb

if TYPE_CHECKING:
    from filterdns.config.log import LogConfig

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.25  # seconds between two looks at the database: a grant applies within 1 s
# A look whose files (the database, its write-ahead log, grants.json) are as they were skips
# the worker thread, up to this long since the last full look (which catches a commit written
# within the file system's timestamp granularity of the look before it).
FULL_LOOK = 1.0
COLUMNS = "id, profile, expires_at, domain, category, reason, kind, created_by, minutes"
V3_COLUMNS = "id, profile, expires_at, domain, category, reason, kind, created_by, 0"  # schema 3
OLD_COLUMNS = "id, profile, expires_at, domain, category, reason, '', '', 0"  # schema 2


class GrantError(FilterDnsError):
    """A grant could not be saved or read; the message names the file and what to do."""


def grant_store(config: LogConfig) -> GrantStore:
    """The grants of the installation whose `log:` section this is: in its SQLite file, or in
    its PostgreSQL database, shared by every instance writing it (pggrants.py)."""
    if config.url is None:
        return GrantStore(config.database)
    from filterdns.policy.pggrants import PgGrantStore  # noqa: PLC0415 (psycopg when configured)

    return PgGrantStore(config.url, config.database)


class GrantStore:
    """The grants of one installation: read by the server, written by the commands."""

    def __init__(self, database: Path) -> None:
        self.path = Path(database)
        self.legacy = self.path.with_name(LEGACY_FILE)
        self._grants: tuple[Grant, ...] = ()
        self._reader: sqlite3.Connection | None = None
        self._seen: tuple[object, ...] | None = None
        self._legacy_seen: tuple[int, ...] | None = None
        self._problem = ""
        self._files: tuple[object, ...] | None = None  # the files' stamps at the last full look
        self._looked = -math.inf  # when (monotonic) the last full look started
        # The reader is used by the watch's worker thread and closed by the server's thread at
        # shutdown: closing a connection while another thread runs a statement on it crashes
        # the interpreter, so both hold this lock.
        self._reader_lock = threading.RLock()

    # Reading (server, explain)

    def current(self) -> tuple[Grant, ...]:
        """The grants as last read; the same object until they change."""
        return self._grants

    def reload_if_changed(self) -> bool:
        """Read the grants again if the database changed; True when they did.

        Problems are logged once each and leave the grants as they were; DamagedError when the
        file is no database any more (the server then has the query log replace it).
        """
        try:
            with self._reader_lock:
                grants = self._read_if_changed()
        except DamagedError:
            self._close_reader()
            raise
        except (sqlite3.Error, OSError, FilterDnsError) as exc:
            self._close_reader()
            if dbfile.is_damage(exc):
                raise DamagedError(self.path, str(exc)) from None
            self._say(f"cannot read grants from {self.path}: {_reason(exc)}")
            return False
        if self._problem:
            log.info("grants: %s is readable again", self.path)
            self._problem = ""
        if grants is None or grants == self._grants:
            return False
        self._grants = grants
        return True

    def _read_if_changed(self) -> tuple[Grant, ...] | None:
        """None when nothing changed since the last read."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._close_reader()
            return ()
        stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != (self._seen or ())[:4]:
            # Rewritten (a checkpoint, or junk over it): read it afresh, not from a cache.
            self._close_reader()
        if self._reader is None:
            uri = f"{self.path.absolute().as_uri()}?mode=ro"
            self._reader = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=0.5)
            dbfile.inspect(self._reader, self.path)
        # data_version moves when another connection commits: a grant, a log batch.
        (version,) = self._reader.execute("PRAGMA data_version").fetchone()
        seen = (*stamp, version)
        if seen == self._seen:
            return None
        grants = _select(self._reader, "SELECT " + COLUMNS + " FROM grants ORDER BY id")
        self._seen = seen
        return grants

    async def watch(self, on_damage: Callable[[], Awaitable[None]] | None = None) -> None:
        """Keep the grants current (and import a legacy file) until cancelled."""
        while True:
            try:
                if not self._unchanged():
                    await asyncio.to_thread(self._poll)
            except DamagedError as exc:
                self._say(f"cannot read grants: {exc}")
                if on_damage is not None:
                    await on_damage()
            except Exception:  # the watch must outlive any surprise: grants depend on it
                log.exception("grants: unexpected error while reading %s", self.path)
            await asyncio.sleep(POLL_INTERVAL)

    def _poll(self) -> None:
        self._looked = time.monotonic()
        before = self._stamps()  # before reading: a commit after this shows at the next look
        self.import_if_changed()
        self.reload_if_changed()
        # Opening the reader or importing may write the files themselves: the next look is
        # full again, and finds them still.
        self._files = before if self._stamps() == before else None

    def _unchanged(self) -> bool:
        """Whether the files are as the last full look found them, less than FULL_LOOK ago.

        Three `stat` calls on the event loop's thread, instead of two switches to a worker
        thread and back four times a second while nothing happens (an idle core woken for
        each: the answers around it waited)."""
        if self._problem or time.monotonic() - self._looked >= FULL_LOOK:
            return False
        return self._files is not None and self._stamps() == self._files

    def _stamps(self) -> tuple[object, ...]:
        return tuple(_file_stamp(p) for p in (self.path, _wal(self.path), self.legacy))

    def close(self) -> None:
        """Close the server's read connection."""
        self._close_reader()

    def _close_reader(self) -> None:
        with self._reader_lock:
            reader, self._reader, self._seen = self._reader, None, None
            if reader is not None:
                with contextlib.suppress(sqlite3.Error):
                    reader.close()

    def _say(self, problem: str) -> None:
        if problem != self._problem:  # looked at four times a second: say it once
            self._problem = problem
            log.warning("grants: %s", problem)

    # Writing (command line)

    def add(
        self,
        profile: str,
        seconds: float,
        *,
        domain: str | None = None,
        category: str | None = None,
        reason: str = "",
        now: float | None = None,
    ) -> Grant:
        """Store a new grant that ends `seconds` from now; returns it with its id."""
        now = time.time() if now is None else now
        kind = grant_kind(None, domain)
        made = self.add_many([profile], now + seconds, kind, domain=domain, category=category,
                             reason=reason, now=now)  # fmt: skip
        return made[0]

    def add_many(
        self,
        profiles: Sequence[str],
        expires_at: float,
        kind: GrantKind,
        *,
        domain: str | None = None,
        category: str | None = None,
        reason: str = "",
        created_by: str = "",
        now: float | None = None,
        minutes: int = 0,
    ) -> list[Grant]:
        """One grant per profile, all ending at `expires_at`, in one transaction."""
        now = time.time() if now is None else now
        made = []
        with self._writing(now, "save the grant in") as conn:
            conn.execute("DELETE FROM grants WHERE expires_at <= ?", (now,))
            for profile in profiles:
                (grant_id,) = conn.execute(
                    "INSERT INTO grants (profile, domain, category, reason, created_at,"
                    " expires_at, kind, created_by, minutes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " RETURNING id",
                    (profile, domain, category, reason, now, expires_at, kind, created_by,
                     minutes),
                ).fetchone()  # fmt: skip
                made.append(Grant(int(grant_id), profile, expires_at, domain, category, reason,
                                  kind, created_by, minutes))  # fmt: skip
        return made

    def end(
        self, profiles: Sequence[str], kinds: Sequence[GrantKind], now: float | None = None
    ) -> list[Grant]:
        """End now the grants of these kinds for these profiles (`resume`); those it ended."""
        now = time.time() if now is None else now
        marks = ", ".join("?" * len(profiles)), ", ".join("?" * len(kinds))
        where = f"profile IN ({marks[0]}) AND kind IN ({marks[1]}) AND expires_at > ?"
        params = (*profiles, *kinds, now)
        with self._writing(now, "end the pauses in") as conn:
            found = _select(conn, f"SELECT {COLUMNS} FROM grants WHERE {where}", params)
            conn.execute(f"DELETE FROM grants WHERE {where}", params)
        return list(found)

    def revoke(self, grant_id: int, now: float | None = None) -> Grant | None:
        """Remove a grant; returns it, or None when there is no such grant."""
        now = time.time() if now is None else now
        with self._writing(now, "revoke the grant in") as conn:
            sql = f"SELECT {COLUMNS} FROM grants WHERE id = ? AND expires_at > ?"
            found = _select(conn, sql, (grant_id, now))
            conn.execute("DELETE FROM grants WHERE id = ?", (grant_id,))
        return found[0] if found else None

    def active(self, now: float | None = None) -> list[Grant]:
        """Grants not yet expired, soonest to end first."""
        now = time.time() if now is None else now
        with contextlib.suppress(FilterDnsError, OSError, sqlite3.Error):
            self.import_legacy(now)  # best effort: listing needs no write access
        try:
            conn = dbfile.open_reader(self.path)
        except FileNotFoundError:
            return []
        try:
            sql = f"SELECT {COLUMNS} FROM grants WHERE expires_at > ? ORDER BY expires_at"
            return list(_select(conn, sql, (now,)))
        except sqlite3.Error as exc:
            raise GrantError(dbfile.cannot(self.path, "read the grants in", exc)) from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def _writing(self, now: float, doing: str) -> Iterator[Conn]:
        """One write transaction on the database, created or migrated first if need be; an old
        grants.json is imported first, so ids stay unique."""
        if self.legacy.exists():
            with contextlib.suppress(FilterDnsError, OSError, sqlite3.Error):
                self.import_legacy(now)
        with SqliteDb(self.path).writing(now, doing, GrantError) as conn:
            yield conn

    # grants.json of earlier versions

    def import_if_changed(self, now: float | None = None) -> int:
        """Import `grants.json` when it exists and changed since the last attempt (the server)."""
        stamp = _file_stamp(self.legacy)
        if stamp is None or stamp == self._legacy_seen:
            self._legacy_seen = stamp
            return 0
        self._legacy_seen = stamp
        try:
            return self.import_legacy(now)
        except (FilterDnsError, OSError, sqlite3.Error) as exc:
            log.warning(
                "grants: cannot import %s: %s; give it to the server's user (chown) and it is "
                "imported within a second",
                self.legacy,
                _reason(exc),
            )
            return 0

    def import_legacy(self, now: float | None = None) -> int:
        """Move the grants of an old `grants.json` into the database; how many were active."""
        if not self.legacy.exists():
            return 0
        now = time.time() if now is None else now
        dbfile.prepare(self.path, now=now, repair=False)
        conn = dbfile.connect(self.path)
        try:
            return move_into(conn, self.legacy, now)
        finally:
            conn.close()


def _select(conn: Conn, sql: str, params: tuple[object, ...] = ()) -> tuple[Grant, ...]:
    """Grants from rows of COLUMNS; none when the table does not exist yet (an older schema),
    and grants of no kind while a reader looks at a database of schema 2 (not migrated yet)."""
    try:
        rows = conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return ()
        if "no such column" not in str(exc):
            raise
        try:
            rows = conn.execute(sql.replace(COLUMNS, V3_COLUMNS), params).fetchall()
        except sqlite3.OperationalError as again:
            if "no such column" not in str(again):
                raise
            rows = conn.execute(sql.replace(COLUMNS, OLD_COLUMNS), params).fetchall()
    return grants_of(rows)


def grants_of(rows: Sequence[Sequence[Any]]) -> tuple[Grant, ...]:
    """Grants from rows of COLUMNS."""
    return tuple(
        Grant(
            int(i),
            str(profile),
            float(expires),
            domain,
            category,
            str(reason or ""),
            grant_kind(kind, domain),
            str(by or ""),
            int(minutes or 0),
        )
        for i, profile, expires, domain, category, reason, kind, by, minutes in rows
    )


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _wal(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


def _file_stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size
