"""The query log: blocked (and optionally allowed) lookups written to SQLite in WAL mode.

The resolver hands each outcome to `QueryLog.put`, an append to a bounded queue that never
waits for the disk: a full queue costs the row (counted), never the answer. One writer task
collects rows (up to `batch_size`, or for `flush_interval` seconds after the first) and inserts
them in one transaction; rows dropped for a full queue or a database error are recorded in the
`drops` table with the next batch that succeeds. A clean `close()` writes every queued row.

When the database cannot be written (locked, disk full, read-only, deleted, a bad path) the
batch is dropped and counted, the error is logged at most once a minute, and the writer opens
the database again a few seconds later: writing resumes by itself when the fault clears. A
database file deleted or replaced while running is noticed (its inode changed) and opened again.

Every open goes through `dbfile.prepare` (schema, migrations, checks). A file that is no
filterdns database (junk bytes, damaged pages, another program's tables), found at start, when
a write fails as corrupt, or when `check()` is asked (the grants reader saw it), is moved aside
as `<name>.corrupt-<UTC time>` and a fresh database takes its place: one ERROR line names both
files, and the fresh log records the event (a row in `alerts`, rule "query log", which `report`
lists) and the rows lost meanwhile (`drops`). A database of a newer schema is refused at
`start()` without being touched. A retention task deletes rows older than `log.retention` in
small batches. aiosqlite is imported here only; the commands read the database with the
standard library (`dbfile.open_reader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from filterdns.config import LogConfig
from filterdns.errors import FilterDnsError
from filterdns.querylog import dbfile
from filterdns.querylog.dbfile import SCHEMA_V1, SCHEMA_VERSION, SchemaError

log = logging.getLogger(__name__)

__all__ = [  # the schema lives in dbfile; its names stay importable from here
    "SCHEMA_V1",
    "SCHEMA_VERSION",
    "LogRecord",
    "LogStats",
    "QueryLog",
    "SchemaError",
    "open_reader",
]

BUSY_TIMEOUT_MS = 2000  # how long a write waits for another connection's lock
LOG_EVERY = 60.0  # seconds between two logged database errors
RETENTION_INTERVAL = 600.0  # seconds between two retention passes
PRUNE_BATCH = 5000  # rows deleted per statement, yielding to the loop in between
KEY_FILE = "client-key"

INSERT_QUERY = (
    "INSERT INTO queries (ts, client, client_name, profile, name, qtype, kind, category, rule,"
    " reason, source, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DROP = "INSERT INTO drops (ts, count, reason) VALUES (?, ?, ?)"
INSERT_ALERT = (
    "INSERT INTO alerts (ts, rule, profile, categories, count, window, message, delivered, error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
PRUNED_TABLES = ("queries", "drops", "alerts")
REPLACED_RULE = "query log"  # the alert row that records a damaged database moved aside
QUEUE_FULL = "queue full"


@dataclass(slots=True)  # built per query: not frozen (6x cheaper), never mutated
class LogRecord:
    """One lookup as the resolver hands it to the log."""

    ts: float  # unix time of the query
    client: str  # client address (replaced by a keyed hash when anonymize_clients)
    client_name: str | None  # from clients: (None for unknown devices)
    profile: str | None
    name: str  # normalised query name, no trailing dot
    qtype: str  # "A", "AAAA", "HTTPS", ... or "TYPE123"
    kind: str  # Kind value: "blocked", "rewritten", "resolved", "cached", "stale", "failed", ...
    category: str | None  # e.g. "gambling", "bypass"
    rule: str | None  # e.g. "age band 9-12", "bypass protection", "profile block"
    reason: str  # the sentence a parent reads
    source: str | None  # the list source that holds the name, e.g. "shipped:gambling.txt"
    response: str | None  # "nxdomain", "null", "refused", "custom", "nodata", "cname", None


@dataclass
class LogStats:
    """What the log did since it started."""

    written: int = 0  # rows stored in `queries`
    dropped: int = 0  # rows lost: queue full, database error, put after close
    errors: int = 0  # failed attempts to open or write the database
    pruned: int = 0  # rows deleted by retention (all tables)


class _Unavailable(Exception):
    """No connection, and the next attempt to open one is not due yet."""


class QueryLog:
    """The bounded queue, the writer task and the retention task of the query log."""

    def __init__(
        self,
        config: LogConfig,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        key: bytes | None = None,
        clock: Callable[[], float] = time.time,
        retry_interval: float = 5.0,
    ) -> None:
        self.config = config
        self.path = config.database
        self.queue_size = max(1, queue_size)
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.clock = clock
        self.stats = LogStats()
        self._key = key
        # Bounded by put(). The writer is woken only by the first row and by a full batch, so a
        # flood costs one append per row, not a task switch.
        self._rows: deque[LogRecord] = deque()
        self._wake = asyncio.Event()
        self._conn: aiosqlite.Connection | None = None
        self._inode: tuple[int, int] | None = None
        self._stamp: tuple[int, int] | None = None  # the file's mtime and size, last looked at
        self._lock = asyncio.Lock()  # one transaction at a time on the connection
        self._drops: dict[str, tuple[float, int]] = {}  # reason -> (first time, count)
        self._retry_at = 0.0  # monotonic time of the next attempt to open the database
        self._logged_at: float | None = None  # monotonic time of the last logged error
        self._failing = False
        self._error_text = "the database is unavailable"  # the last error, for drop reasons
        self._lost_while_failing = 0
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    # -- the resolver's side ---------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Rows waiting to be written."""
        return len(self._rows)

    def put(self, record: LogRecord) -> bool:
        """Queue one row without waiting; False (and a counted drop) when it cannot be kept."""
        if self._closing:
            self.stats.dropped += 1
            return False
        rows = self._rows
        waiting = len(rows)
        if waiting >= self.queue_size:
            self.stats.dropped += 1
            self._count_drop(QUEUE_FULL, 1)
            return False
        rows.append(record)
        if waiting == 0 or waiting + 1 == self.batch_size:
            self._wake.set()
        return True

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open (create, migrate) the database and start the writer and retention tasks.

        Raises SchemaError for a database of a newer schema; an I/O problem is logged instead
        and the writer keeps trying to open the database.
        """
        if self._writer is not None:
            return
        if self.config.anonymize_clients and self._key is None:
            self._key = self._load_key()
        async with self._lock:
            try:
                await self._open()
            except SchemaError:
                raise
            except Exception as exc:
                self._failed(f"cannot open {self.path}", exc)
        self._writer = asyncio.create_task(self._run_writer(), name="query log writer")
        self._retention = asyncio.create_task(self._run_retention(), name="query log retention")

    async def close(self) -> None:
        """Stop accepting rows, write every queued row and the drop counts, close the database."""
        if self._closing:
            if self._writer is not None:
                await asyncio.wait([self._writer])
            return
        self._closing = True
        if self._retention is not None:
            self._retention.cancel()
            await asyncio.wait([self._retention])
        if self._writer is not None:
            self._wake.set()
            await asyncio.wait([self._writer])
        else:
            self.stats.dropped += len(self._rows)
            self._rows.clear()
        async with self._lock:
            await self._disconnect()
        if self._drops:
            lost = self._lost_while_failing
            log.warning("query log closed; %d dropped rows could not be recorded", lost)
        self._notify()

    async def wait_until(self, predicate: Callable[[LogStats], bool]) -> None:
        """Wait until `predicate(stats)` holds (checked after each batch or attempt)."""
        while not predicate(self.stats):
            await self._changed.wait()

    async def wait_written(self, n: int) -> None:
        """Wait until at least `n` rows have been stored."""
        await self.wait_until(lambda stats: stats.written >= n)

    # -- alerts and retention --------------------------------------------------------------

    async def put_alert(
        self,
        *,
        ts: float,
        rule: str,
        profile: str | None,
        categories: str,
        count: int,
        window: float,
        message: str,
        delivered: bool,
        error: str | None,
    ) -> None:
        """Store one fired alert (a database error is logged, not raised)."""
        if self._closing:
            log.warning("query log closed; alert %s not recorded", rule)
            return
        row = (ts, rule, profile, categories, count, window, message, int(delivered), error)
        async with self._lock:
            try:
                conn = await self._connection(force=True)
                async with conn.execute(INSERT_ALERT, row):
                    pass
            except Exception as exc:
                self._failed(f"cannot record alert {rule} in {self.path}", exc)
                await self._disconnect()
        self._notify()

    async def prune(self) -> int:
        """Delete rows older than the retention, PRUNE_BATCH at a time; the number deleted."""
        cutoff = self.clock() - self.config.retention
        total = 0
        for table in PRUNED_TABLES:
            sql = (
                f"DELETE FROM {table} WHERE id IN"
                f" (SELECT id FROM {table} WHERE ts < ? LIMIT {int(PRUNE_BATCH)})"
            )
            while True:
                async with self._lock:
                    if self._conn is None:
                        return total
                    async with self._conn.execute(sql, (cutoff,)) as cursor:
                        deleted = max(cursor.rowcount, 0)
                total += deleted
                self.stats.pruned += deleted
                if deleted < PRUNE_BATCH:
                    break
                await asyncio.sleep(0)
        self._notify()
        return total

    async def _run_retention(self) -> None:
        while True:
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._report(f"cannot delete old rows from {self.path}: {_describe(exc)}")
            await asyncio.sleep(RETENTION_INTERVAL)

    # -- the writer ------------------------------------------------------------------------

    async def _run_writer(self) -> None:
        while True:
            try:
                await self._next_batch()
                if self._closing:
                    await self._flush_all()
                    return
                await self._write(self._take(), final=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("query log: unexpected error in the writer; it carries on")
            finally:
                self._notify()

    async def _next_batch(self) -> None:
        """Wait for a first row, then for batch_size rows or flush_interval (or close())."""
        wake = self._wake
        while not self._rows and not self._closing:
            wake.clear()
            await wake.wait()
        if len(self._rows) < self.batch_size and not self._closing:
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.flush_interval)

    def _take(self) -> list[LogRecord]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(len(rows), self.batch_size))]

    async def _flush_all(self) -> None:
        """Write everything still queued (nothing more can be queued), batch by batch."""
        while self._rows or self._drops:
            if not await self._write(self._take(), final=True):
                rest = len(self._rows)
                self._rows.clear()
                self.stats.dropped += rest
                if rest:
                    self._count_drop(f"database error: {self._error_text}", rest)
                return
            self._notify()

    async def _write(self, batch: list[LogRecord], *, final: bool) -> bool:
        """Insert `batch` and the pending drop counts in one transaction; False if dropped."""
        drops = self._drops
        self._drops = {}
        try:
            rows = [self._row(record) for record in batch]
            async with self._lock:
                conn = await self._connection(force=final)
                try:
                    await _insert(conn, rows, drops)
                except sqlite3.DatabaseError as exc:
                    if not dbfile.is_damage(exc):
                        raise
                    # Junk written over the file, or damaged pages: check it, replace it if it
                    # is no database any more, and write the batch there.
                    log.warning("query log: %s: %s; checking the file", self.path, exc)
                    await self._disconnect()
                    conn = await self._open(suspect=True)
                    await _insert(conn, rows, drops)
        except Exception as exc:
            for reason, (ts, count) in drops.items():
                self._count_drop(reason, count, ts)
            if isinstance(exc, _Unavailable):
                reason = str(exc)
            else:
                reason = _describe(exc)
                self._failed(f"cannot write to {self.path}", exc)
                async with self._lock:
                    await self._disconnect()
            if batch:
                self.stats.dropped += len(batch)
                self._lost_while_failing += len(batch)
                self._count_drop(f"database error: {reason}", len(batch))
            return False
        self.stats.written += len(batch)
        if self._failing:
            log.warning(
                "query log: writing to %s again (%d rows were dropped meanwhile)",
                self.path,
                self._lost_while_failing,
            )
            self._failing = False
            self._lost_while_failing = 0
        return True

    def _row(self, record: LogRecord) -> tuple[object, ...]:
        client = record.client
        if self.config.anonymize_clients:
            client = self.anonymize(client)
        return (
            record.ts,
            client,
            record.client_name,
            record.profile,
            record.name,
            record.qtype,
            record.kind,
            record.category,
            record.rule,
            record.reason,
            record.source,
            record.response,
        )

    def anonymize(self, client: str) -> str:
        """The keyed hash stored instead of a client address (16 hex digits)."""
        if self._key is None:
            self._key = self._load_key()
        return hmac.new(self._key, client.encode(), hashlib.sha256).hexdigest()[:16]

    # -- the connection --------------------------------------------------------------------

    async def _connection(self, *, force: bool) -> aiosqlite.Connection:
        """The open connection, reopened when the file was deleted or replaced.

        Without a connection, one is opened when the retry time has come (or `force`);
        otherwise _Unavailable. Call with the lock held.
        """
        if self._conn is not None:
            good, damaged = await self._still_good()
            if good:
                return self._conn
            await self._disconnect()
            if damaged is not None:
                return await self._open(damaged=damaged)
            force = True
        if not force and time.monotonic() < self._retry_at:
            raise _Unavailable(self._error_text)
        return await self._open()

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

    async def _open(
        self, *, suspect: bool = False, damaged: str | None = None
    ) -> aiosqlite.Connection:
        """Open the database `dbfile.prepare` made ready (a damaged one is replaced by a fresh
        one, and the replacement recorded in it); the lock is held."""
        path = self.path
        self._retry_at = time.monotonic() + self.retry_interval
        replaced = await asyncio.to_thread(
            dbfile.prepare, path, now=self.clock(), repair=True, suspect=suspect, damaged=damaged
        )
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
            await conn.execute("PRAGMA synchronous = NORMAL")
            if replaced is not None:
                await self._record_replacement(conn, replaced)
            st = os.stat(path)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        self._conn = conn
        self._inode = (st.st_dev, st.st_ino)
        self._stamp = (st.st_mtime_ns, st.st_size)
        return conn

    async def _record_replacement(
        self, conn: aiosqlite.Connection, replaced: dbfile.Replaced
    ) -> None:
        """Say once, in the log and in the fresh database, that a damaged one was moved aside."""
        lost = self._lost_while_failing
        message = (
            f"{self.path} was not a usable filterdns database ({replaced.reason}); it was moved"
            f" aside to {replaced.moved_to} and a fresh one was started"
        )
        log.error("query log: %s (%d rows lost meanwhile)", message, lost)
        # An alert row, so `report` lists the event beside the alerts; the lost rows follow as
        # `drops` with the next batch.
        row = (self.clock(), REPLACED_RULE, None, "", lost, 0.0, message, 0, None)
        async with conn.execute(INSERT_ALERT, row):
            pass

    async def check(self) -> None:
        """Look at the file now (someone else, the grants reader, found it unreadable): a file
        that is no database any more is replaced, as the next batch would."""
        async with self._lock:
            if self._closing or (self._failing and time.monotonic() < self._retry_at):
                return  # failing already: the writer tries again when the retry is due
            damaged = None
            if self._conn is not None:
                good, damaged = await self._still_good()
                if good:
                    return
                await self._disconnect()
            try:
                await self._open(damaged=damaged)
            except Exception as exc:
                self._failed(f"cannot open {self.path}", exc)
        self._notify()

    async def _disconnect(self) -> None:
        conn, self._conn, self._inode = self._conn, None, None
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:
                log.debug("query log: closing %s: %s", self.path, exc)

    # -- drops and errors ------------------------------------------------------------------

    def _count_drop(self, reason: str, count: int, ts: float | None = None) -> None:
        first, previous = self._drops.get(reason, (self.clock() if ts is None else ts, 0))
        self._drops[reason] = (first, previous + count)

    def _failed(self, context: str, exc: BaseException) -> None:
        """A failed open or write: count, log (at most once a minute), retry later."""
        self.stats.errors += 1
        self._failing = True
        self._error_text = _describe(exc)
        self._retry_at = time.monotonic() + self.retry_interval
        self._report(f"{context}: {self._error_text}")

    def _report(self, message: str) -> None:
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

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _load_key(self) -> bytes:
        """The anonymization key: `<database dir>/client-key`, created (0600) when missing."""
        path = self.path.parent / KEY_FILE
        try:
            data = path.read_bytes()
            if len(data) >= 16:
                return data
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("query log: cannot read %s: %s; using a key for this run only", path, exc)
            return os.urandom(32)
        key = os.urandom(32)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, key)
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("query log: cannot create %s: %s; using a key for this run only", path, exc)
        return key


async def _insert(
    conn: aiosqlite.Connection,
    rows: list[tuple[object, ...]],
    drops: dict[str, tuple[float, int]],
) -> None:
    """One transaction: the rows and the drop counts, or nothing."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        if rows:
            await conn.executemany(INSERT_QUERY, rows)
        if drops:
            await conn.executemany(
                INSERT_DROP, [(ts, count, reason) for reason, (ts, count) in drops.items()]
            )
        await conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, sqlite3.Error | OSError | FilterDnsError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection to the query log; FilterDnsError when the file is missing, is no
    filterdns database, or is newer than this filterdns understands."""
    try:
        return dbfile.open_reader(path)
    except FileNotFoundError:
        raise FilterDnsError(
            f"no query log at {path}: the server creates it (log.database) when it starts"
        ) from None
