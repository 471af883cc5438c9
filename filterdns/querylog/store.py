"""The query log: blocked (and optionally allowed) lookups written to SQLite in WAL mode.

The resolver hands each outcome to `QueryLog.put`, an append to a bounded queue that never
waits for the disk: a full queue costs the row (counted), never the answer. One writer task
collects rows (up to `batch_size`, or for `flush_interval` seconds after the first) and inserts
them in one transaction, the repeats of one lookup within `log.fold_window` folded into one row
with a count (`fold`); lookups dropped for a full queue or a database error are recorded in the
`drops` table with the next batch that succeeds. A clean `close()` writes every queued row.

When the database cannot be written (locked, disk full, read-only, deleted, a bad path) the
batch is dropped and counted, and writing resumes by itself when the fault clears. The file
itself is logfile's concern: opening it through `dbfile.prepare`, noticing it deleted, replaced
or damaged, moving a damaged one aside and starting a fresh one, logging faults once a minute.
A database of a newer schema is refused at `start()` without being touched. A retention task
deletes rows older than `log.retention` (retention); `log.anonymize_clients` stores a keyed
hash of the client address (clientkey). aiosqlite is used by the writer only (logfile and
rows); the commands read the database with the standard library (`dbfile.open_reader`).

With a postgresql:// `log.database` (`log.url`) the same queue and batches go to PostgreSQL
through pglog instead, each row with this instance's name (`server.instance`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from filterdns.config import LogConfig
from filterdns.errors import FilterDnsError
from filterdns.policy.budgets import BudgetMeter
from filterdns.querylog import clientkey, dbfile, fold, retention
from filterdns.querylog.clientkey import KEY_FILE
from filterdns.querylog.dbfile import SchemaError
from filterdns.querylog.logfile import LogFile, Unavailable
from filterdns.querylog.rows import Drops, LogRecord, LogStats, Usage, describe
from filterdns.querylog.schema import SCHEMA_V1, SCHEMA_VERSION

if TYPE_CHECKING:
    from filterdns.querylog.pglog import PgLog

log = logging.getLogger(__name__)

__all__ = [  # the schema, the rows and the key file live beside; their names stay importable
    "KEY_FILE",
    "SCHEMA_V1",
    "SCHEMA_VERSION",
    "LogRecord",
    "LogStats",
    "QueryLog",
    "SchemaError",
    "open_reader",
]

QUEUE_FULL = "queue full"


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
        instance: str = "",
    ) -> None:
        self.config = config
        self.instance = instance
        self.path = config.database
        self.target = config.url or self.path  # what messages name
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
        self._file: LogFile | PgLog
        if config.url is None:
            self._file = LogFile(
                self.path, stats=self.stats, clock=clock, retry_interval=retry_interval
            )
        else:
            # psycopg only when the log is on PostgreSQL: a box on SQLite never loads it.
            from filterdns.querylog.pglog import PgLog  # noqa: PLC0415

            self._file = PgLog(config.url, instance=instance, stats=self.stats, clock=clock)
        self._drops: Drops = {}  # waiting for the next batch that succeeds
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        # The time budgets' minutes, written with the batches (at most a flush interval late).
        self.usage: BudgetMeter | None = None

    # -- the resolver's side ---------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Lookups waiting to be written."""
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
            self._key = clientkey.load_key(self.path.parent)
        async with self._file.lock:
            try:
                await self._file.open()
            except SchemaError:
                raise
            except Exception as exc:
                self._file.failed(f"cannot open {self.target}", exc)
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
        async with self._file.lock:
            await self._file.disconnect()
        if self._drops:
            lost = self._file.lost
            log.warning("query log closed; %d dropped rows could not be recorded", lost)
        self._notify()

    async def wait_until(self, predicate: Callable[[LogStats], bool]) -> None:
        """Wait until `predicate(stats)` holds (checked after each batch or attempt)."""
        while not predicate(self.stats):
            await self._changed.wait()

    async def wait_written(self, n: int) -> None:
        """Wait until at least `n` rows have been stored."""
        await self.wait_until(lambda stats: stats.written >= n)

    async def check(self) -> None:
        """Look at the file now (someone else, the grants reader, found it unreadable): a file
        that is no database any more is replaced, as the next batch would."""
        if self._closing:
            return
        await self._file.check()
        self._notify()

    def read_usage(self, now: float) -> Usage:
        """The budget minutes stored for yesterday and later, where this log writes them."""
        if self.config.url is None:
            return read_usage(self.path, now)
        from filterdns.querylog import pgconn  # noqa: PLC0415

        return pgconn.read_usage(self.config.url, self.instance, now)

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
        try:
            await self._file.add_alert(row)
        except Exception as exc:
            self._file.failed(f"cannot record alert {rule} in {self.target}", exc)
            async with self._file.lock:
                await self._file.disconnect()
        self._notify()

    async def prune(self) -> int:
        """Delete rows older than the retention, in small batches; the number deleted."""
        cutoff = self.clock() - self.config.retention
        if isinstance(self._file, LogFile):
            total = await retention.prune(self._file, cutoff)
        else:
            total = await self._file.prune(cutoff)
        self._notify()
        return total

    async def _run_retention(self) -> None:
        while True:
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._file.report(f"cannot delete old rows from {self.target}: {describe(exc)}")
            await asyncio.sleep(retention.RETENTION_INTERVAL)

    # -- the writer ------------------------------------------------------------------------

    async def _run_writer(self) -> None:
        while True:
            try:
                await self._next_batch()
                if self._closing:
                    await self._flush_all()
                    return
                await self._write(*self._take(), final=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("query log: unexpected error in the writer; it carries on")
            finally:
                self._notify()

    async def _next_batch(self) -> None:
        """Wait for a first row, then for batch_size rows or flush_interval (or close())."""
        wake = self._wake
        while not self._rows and not self._closing and not self._usage_due():
            wake.clear()
            if self.usage is None:
                await wake.wait()
                continue
            with contextlib.suppress(TimeoutError):  # budget minutes: a look each interval
                await asyncio.wait_for(wake.wait(), self.flush_interval)
        if len(self._rows) < self.batch_size and not self._closing:
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.flush_interval)

    def _usage_due(self) -> bool:
        return self.usage is not None and self.usage.pending()

    def _take(self) -> tuple[list[fold.Row], int]:
        """The next batch: up to batch_size rows, repeats folded; and the lookups it holds."""
        return fold.take(self._rows, self.batch_size, self.config.fold_window)

    async def _flush_all(self) -> None:
        """Write everything still queued (nothing more can be queued), batch by batch."""
        while self._rows or self._drops or self._usage_due():
            if not await self._write(*self._take(), final=True):
                rest = len(self._rows)
                self._rows.clear()
                self.stats.dropped += rest
                if rest:
                    self._count_drop(f"database error: {self._file.error_text}", rest)
                return
            self._notify()

    async def _write(self, batch: list[fold.Row], lookups: int, *, final: bool) -> bool:
        """Insert `batch` (rows holding `lookups`) and the pending drop counts in one
        transaction; False if dropped."""
        drops = self._drops
        self._drops = {}
        # The meter's totals: a lost write is made good by the budget's next counted minute.
        usage: Usage = self.usage.drain() if self.usage is not None else []
        try:
            rows = self._stored(batch)
            await self._file.write(rows, drops, force=final, usage=usage)
        except Exception as exc:
            for reason, (ts, count) in drops.items():
                self._count_drop(reason, count, ts)
            await self._dropped(lookups, exc)
            return False
        self.stats.written += lookups
        self.stats.folded += lookups - len(batch)
        self._file.recovered()
        return True

    async def _dropped(self, lookups: int, exc: Exception) -> None:
        """Count the lookups of a batch the database did not take, and why."""
        if isinstance(exc, Unavailable):
            reason = str(exc)
        else:
            reason = describe(exc)
            self._file.failed(f"cannot write to {self.target}", exc)
            async with self._file.lock:
                await self._file.disconnect()
        if lookups:
            self.stats.dropped += lookups
            self._file.lost += lookups
            self._count_drop(f"database error: {reason}", lookups)

    def _stored(self, batch: list[fold.Row]) -> list[fold.Row]:
        """The rows of `batch` as stored: with the keyed hash for the client address when
        anonymize_clients."""
        if not self.config.anonymize_clients:
            return batch
        anonymize = self.anonymize
        return [(r[0], anonymize(str(r[1])), *r[2:]) for r in batch]

    def anonymize(self, client: str) -> str:
        """The keyed hash stored instead of a client address (16 hex digits)."""
        if self._key is None:
            self._key = clientkey.load_key(self.path.parent)
        return clientkey.anonymize(self._key, client)

    def _count_drop(self, reason: str, count: int, ts: float | None = None) -> None:
        first, previous = self._drops.get(reason, (self.clock() if ts is None else ts, 0))
        self._drops[reason] = (first, previous + count)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def read_usage(path: Path, now: float) -> Usage:
    """The budget minutes stored for yesterday (UTC, for zones behind it) and later at `now`;
    [] without a file."""
    since = time.strftime("%Y-%m-%d", time.gmtime(now - 86400))
    try:
        conn = open_reader(path)
    except FilterDnsError:
        return []
    try:
        if dbfile.inspect(conn, path) < 4:  # written before budgets: none stored
            return []
        query = "SELECT profile, budget, day, minutes FROM budget_usage WHERE day >= ?"
        return [(str(p), str(b), str(d), int(m)) for p, b, d, m in conn.execute(query, (since,))]
    finally:
        conn.close()


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection to the query log; FilterDnsError when the file is missing, is no
    filterdns database, or is newer than this filterdns understands."""
    try:
        return dbfile.open_reader(path)
    except FileNotFoundError:
        raise FilterDnsError(
            f"no query log at {path}: the server creates it (log.database) when it starts"
        ) from None
