"""The query log's connection to its database file: opened, watched, reopened, replaced.

Every open goes through `dbfile.prepare` (schema, migrations, checks). Before each write the
file at the path is looked at: deleted or replaced (its inode changed), it is opened again;
rewritten since the last look, it is probed, and a file that is no filterdns database any more
(junk over it, damaged pages, emptied under the connection) is moved aside as
`<name>.corrupt-<UTC time>` and a fresh database takes its place. One ERROR line names both
files, and the fresh log records the event (a row in `alerts`, rule "query log", which `report`
lists) with the rows lost meanwhile.

When the database cannot be opened or written, the failure is counted, logged at most once a
minute, and the next attempt to open it waits `retry_interval` seconds: writing resumes by
itself when the fault clears. aiosqlite is used here and in rows only (the writer's side).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import aiosqlite

from filterdns.errors import FilterDnsError
from filterdns.querylog import dbfile
from filterdns.querylog.rows import INSERT_ALERT, Drops, LogStats, Usage, describe, insert

# The writer's lines keep the logger name they always had: it is what operators filter on.
log = logging.getLogger("filterdns.querylog.store")

BUSY_TIMEOUT_MS = 2000  # how long a write waits for another connection's lock
LOG_EVERY = 60.0  # seconds between two logged database errors
# The writer's page cache, in KiB (SQLite's default is 2,000): rows are appended, so a batch
# touches the right edge of the table and of its three indexes, a few dozen pages; the rest of
# the default filled with pages no batch reads again, in the writer thread's malloc arena.
PAGE_CACHE_KIB = 512
REPLACED_RULE = "query log"  # the alert row that records a damaged database moved aside


class Unavailable(Exception):
    """No connection, and the next attempt to open one is not due yet."""


class LogFile:
    """The connection to `log.database`, and what happened to it: faults, retries, losses.

    `lock` serialises transactions on the connection: hold it around `connection()`, `open()`,
    `disconnect()` and every statement.
    """

    def __init__(
        self,
        path: Path,
        *,
        stats: LogStats,
        clock: Callable[[], float] = time.time,
        retry_interval: float = 5.0,
    ) -> None:
        self.path = path
        self.stats = stats
        self.clock = clock
        self.retry_interval = retry_interval
        self.lock = asyncio.Lock()
        self.conn: aiosqlite.Connection | None = None
        self.failing = False
        self.error_text = "the database is unavailable"  # the last error, for drop reasons
        self.lost = 0  # rows lost since writing last failed (the replacement event counts them)
        self.retry_at = 0.0  # monotonic time of the next attempt to open the database
        self._logged_at: float | None = None  # monotonic time of the last logged error
        self._inode: tuple[int, int] | None = None
        self._stamp: tuple[int, int] | None = None  # the file's mtime and size, last looked at

    async def write(
        self,
        rows: list[tuple[object, ...]],
        drops: Drops,
        *,
        force: bool,
        usage: Usage | None = None,
    ) -> None:
        """Insert `rows`, `drops` and budget `usage` in one transaction; a file found damaged by
        the write is checked, replaced when it is no database, and written there. Raises what
        failed."""
        async with self.lock:
            conn = await self.connection(force=force)
            try:
                await insert(conn, rows, drops, usage)
            except sqlite3.DatabaseError as exc:
                if not dbfile.is_damage(exc):
                    raise
                # Junk written over the file, or damaged pages: check it, replace it if it
                # is no database any more, and write the batch there.
                log.warning("query log: %s: %s; checking the file", self.path, exc)
                await self.disconnect()
                conn = await self.open(suspect=True)
                await insert(conn, rows, drops, usage)

    async def add_alert(self, row: tuple[object, ...]) -> None:
        """Store one fired alert row; raises what failed."""
        async with self.lock:
            conn = await self.connection(force=True)
            async with conn.execute(INSERT_ALERT, row):
                pass

    async def connection(self, *, force: bool) -> aiosqlite.Connection:
        """The open connection, reopened when the file was deleted or replaced.

        Without a connection, one is opened when the retry time has come (or `force`);
        otherwise Unavailable. Call with the lock held.
        """
        if self.conn is not None:
            good, damaged = await self._still_good()
            if good:
                return self.conn
            await self.disconnect()
            if damaged is not None:
                return await self.open(damaged=damaged)
            force = True
        if not force and time.monotonic() < self.retry_at:
            raise Unavailable(self.error_text)
        return await self.open()

    async def _still_good(self) -> tuple[bool, str | None]:
        """Whether the open connection still writes to the file at the path, and that file is
        still a database (else why not, when the file is to be moved aside); logs why not."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            log.warning("query log: %s was deleted; creating it again", self.path)
            return False, None
        if (st.st_dev, st.st_ino) != self._inode:
            log.warning("query log: %s was replaced; opening it again", self.path)
            return False, None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return True, None
        if st.st_size == 0 and self._stamp is not None and self._stamp[1] > 0:
            # Emptied under this connection (`: > file`): its write-ahead log must not be
            # replayed into what is left; both are moved aside.
            log.warning("query log: %s was emptied while in use; checking the file", self.path)
            return False, "emptied while in use"
        # Rewritten since the last look: by a checkpoint, or junk written over it in place,
        # which this connection would not notice (it trusts the pages it holds).
        try:
            await asyncio.to_thread(dbfile.probe, self.path)
        except dbfile.DamagedError as exc:
            log.warning("query log: %s (%s); checking the file", self.path, exc.reason)
            return False, None
        except (sqlite3.Error, OSError, FilterDnsError) as exc:
            log.debug("query log: probing %s: %s", self.path, exc)
        self._stamp = stamp
        return True, None

    async def open(
        self, *, suspect: bool = False, damaged: str | None = None
    ) -> aiosqlite.Connection:
        """Open the database `dbfile.prepare` made ready (a damaged one is replaced by a fresh
        one, and the replacement recorded in it); the lock is held."""
        path = self.path
        self.retry_at = time.monotonic() + self.retry_interval
        replaced = await asyncio.to_thread(
            dbfile.prepare, path, now=self.clock(), repair=True, suspect=suspect, damaged=damaged
        )
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
            if replaced is not None:
                await self._record_replacement(conn, replaced)
            st = os.stat(path)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        self.conn = conn
        self._inode = (st.st_dev, st.st_ino)
        self._stamp = (st.st_mtime_ns, st.st_size)
        return conn

    async def _record_replacement(
        self, conn: aiosqlite.Connection, replaced: dbfile.Replaced
    ) -> None:
        """Say once, in the log and in the fresh database, that a damaged one was moved aside."""
        message = (
            f"{self.path} was not a usable filterdns database ({replaced.reason}); it was moved"
            f" aside to {replaced.moved_to} and a fresh one was started"
        )
        log.error("query log: %s (%d rows lost meanwhile)", message, self.lost)
        # An alert row, so `report` lists the event beside the alerts; the lost rows follow as
        # `drops` with the next batch.
        row = (self.clock(), REPLACED_RULE, None, "", self.lost, 0.0, message, 0, None)
        async with conn.execute(INSERT_ALERT, row):
            pass

    async def check(self) -> None:
        """Look at the file now, as the next batch would: a file that is no database any more
        is replaced. Nothing while failing already (the writer tries again when it is due)."""
        async with self.lock:
            if self.failing and time.monotonic() < self.retry_at:
                return
            damaged = None
            if self.conn is not None:
                good, damaged = await self._still_good()
                if good:
                    return
                await self.disconnect()
            try:
                await self.open(damaged=damaged)
            except Exception as exc:
                self.failed(f"cannot open {self.path}", exc)

    async def disconnect(self) -> None:
        """Close the connection (the lock is held); the next write opens the file again."""
        conn, self.conn, self._inode = self.conn, None, None
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:
                log.debug("query log: closing %s: %s", self.path, exc)

    def failed(self, context: str, exc: BaseException) -> None:
        """A failed open or write: count, log (at most once a minute), retry later."""
        self.stats.errors += 1
        self.failing = True
        self.error_text = describe(exc)
        self.retry_at = time.monotonic() + self.retry_interval
        self.report(f"{context}: {self.error_text}")

    def recovered(self) -> None:
        """A write succeeded: say so once after failures, with the rows lost meanwhile."""
        if self.failing:
            log.warning(
                "query log: writing to %s again (%d rows were dropped meanwhile)",
                self.path,
                self.lost,
            )
            self.failing = False
            self.lost = 0

    def report(self, message: str) -> None:
        """Log a database error: at most once a minute, else at debug level."""
        now = time.monotonic()
        if self._logged_at is None or now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            log.error(
                "query log: %s; rows are dropped and counted, retrying every %g s",
                message,
                self.retry_interval,
            )
        else:
            log.debug("query log: %s", message)
