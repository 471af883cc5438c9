"""The query log's writer for a PostgreSQL `log.database`: what `store.QueryLog` writes through
when `log.url` is set, in place of the SQLite file's (logfile).

The same calls as `LogFile` (`lock`, `open`, `write`, `add_alert`, `check`, `failed`,
`recovered`, `disconnect`), so the bounded queue, the batching and the drop counts stay in
store. A batch is one transaction: its rows by COPY into `queries` (the day partitions it needs
created first), the drop counts, the budget minutes, each row with this instance's name. The
writer is off the DNS path: a database down at start or while running costs log rows (counted,
and recorded as drops once it is back), never an answer. Reconnection backs off from
BACKOFF_FIRST to BACKOFF_MAX seconds; one ERROR line a minute while down, one line when back.

Retention drops whole day partitions older than `log.retention` (and deletes older drops,
alerts and budget minutes); partitions for today and tomorrow are created at start and at each
retention pass. Grants and web accounts stay in the SQLite file (`log.database`'s default path):
`check` repairs that file when the grants reader finds it damaged, as the SQLite writer would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import psycopg

from filterdns.querylog import pgschema
from filterdns.querylog.logfile import LOG_EVERY, Unavailable
from filterdns.querylog.pgconn import connect, describe, migrate, where
from filterdns.querylog.rows import Drops, LogStats, Usage

log = logging.getLogger("filterdns.querylog.store")

BACKOFF_FIRST = 1.0  # seconds before the first attempt to connect again
BACKOFF_MAX = 30.0

Connection = psycopg.AsyncConnection[tuple[object, ...]]


class PgLog:
    """The connection to a PostgreSQL query log, and what happened to it: faults, retries,
    losses. `lock` serialises the use of the connection."""

    def __init__(
        self,
        url: str,
        *,
        instance: str,
        stats: LogStats,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.where = where(url)
        self.instance = instance
        self.stats = stats
        self.clock = clock
        self.lock = asyncio.Lock()
        self.conn: Connection | None = None
        self.failing = False
        self.error_text = "the database is unavailable"
        self.lost = 0
        self.retry_at = 0.0  # monotonic time of the next attempt to connect
        self.retry_interval = BACKOFF_FIRST
        self._logged_at: float | None = None
        self._days: set[int] = set()  # partitions known to exist

    # -- writing ---------------------------------------------------------------------------

    async def write(
        self,
        rows: list[tuple[object, ...]],
        drops: Drops,
        *,
        force: bool,
        usage: Usage | None = None,
    ) -> None:
        """Insert `rows`, `drops` and budget `usage` in one transaction; raises what failed."""
        async with self.lock:
            conn = await self.connection(force=force)
            await self._partitions(conn, {pgschema.day_of(float(row[0])) for row in rows})  # type: ignore[arg-type]
            me = self.instance
            async with conn.transaction():
                if rows:
                    async with conn.cursor() as cursor, cursor.copy(pgschema.COPY_QUERIES) as copy:
                        for row in rows:
                            await copy.write_row((me, *row))
                if drops or usage:
                    async with conn.cursor() as cursor:
                        if drops:
                            await cursor.executemany(
                                pgschema.INSERT_DROP,
                                [(me, ts, n, reason) for reason, (ts, n) in drops.items()],
                            )
                        if usage:
                            await cursor.executemany(
                                pgschema.UPSERT_USAGE, [(me, *u) for u in usage]
                            )

    async def add_alert(self, row: tuple[object, ...]) -> None:
        """Store one fired alert row; raises what failed."""
        async with self.lock:
            conn = await self.connection(force=True)
            await conn.execute(pgschema.INSERT_ALERT, (self.instance, *row))

    async def _partitions(self, conn: Connection, days: set[int]) -> None:
        """Create the day partitions in `days` not known to exist (under the partition lock)."""
        missing = days - self._days
        if not missing:
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (pgschema.PARTITION_LOCK,))
            for day in sorted(missing):
                await conn.execute(pgschema.create_partition(day))
        self._days |= missing

    # -- retention -------------------------------------------------------------------------

    async def prune(self, cutoff: float) -> int:
        """Drop the partitions whose day ended before `cutoff`, delete older drops, alerts and
        budget minutes; create today's and tomorrow's partitions. The rows removed (a dropped
        partition counts its rows). Nothing while there is no connection."""
        async with self.lock:
            conn = self.conn
            if conn is None:
                return 0
            await self._partitions(conn, set(pgschema.ahead(self.clock())))
            total = await self._drop_partitions(conn, cutoff)
            # A day's margin: a day is dated in its profile's zone, up to 14 hours from UTC.
            day = time.strftime("%Y-%m-%d", time.gmtime(cutoff - 86400))
            for sql, value in (
                ("DELETE FROM drops WHERE ts < %s", cutoff),
                ("DELETE FROM alerts WHERE ts < %s", cutoff),
                ("DELETE FROM budget_usage WHERE day < %s", day),
            ):
                cursor = await conn.execute(sql, (value,))
                total += max(cursor.rowcount, 0)
        self.stats.pruned += total
        return total

    async def _drop_partitions(self, conn: Connection, cutoff: float) -> int:
        cursor = await conn.execute(pgschema.LIST_PARTITIONS)
        names = [str(name) for (name,) in await cursor.fetchall()]
        total = 0
        for name in pgschema.expired(names, cutoff):
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (pgschema.PARTITION_LOCK,))
                counted = await conn.execute(f"SELECT count(*) FROM {name}")
                found = await counted.fetchone()
                await conn.execute(f"DROP TABLE IF EXISTS {name}")
            rows = int(str(found[0])) if found else 0
            total += rows
            self._days.discard(pgschema.partition_day(name) or -1)
            log.info("query log: dropped %s (%d rows, older than the retention)", name, rows)
        return total

    # -- the connection --------------------------------------------------------------------

    async def connection(self, *, force: bool) -> Connection:
        """The open connection, else a new one when the retry time has come (or `force`);
        otherwise Unavailable. Call with the lock held."""
        if self.conn is not None and not self.conn.closed:
            return self.conn
        if not force and time.monotonic() < self.retry_at:
            raise Unavailable(self.error_text)
        return await self.open()

    async def open(self) -> Connection:
        """Connect, migrate (SchemaError for a newer schema) and create today's and tomorrow's
        partitions; the lock is held."""
        await self.disconnect()
        self.retry_at = time.monotonic() + self.retry_interval
        await asyncio.to_thread(migrate, self.url)
        conn = await connect(self.url)
        try:
            self._days.clear()
            await self._partitions(conn, set(pgschema.ahead(self.clock())))
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        self.conn = conn
        return conn

    async def check(self) -> None:
        """Nothing to repair: the grants live in PostgreSQL too (the SQLite writer's check
        replaces a damaged file)."""

    async def disconnect(self) -> None:
        """Close the connection (the lock is held); the next write connects again."""
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:
                log.debug("query log: closing %s: %s", self.where, exc)

    # -- faults ----------------------------------------------------------------------------

    def failed(self, context: str, exc: BaseException) -> None:
        """A failed connection or write: count, log (at most once a minute), back off."""
        self.stats.errors += 1
        if self.failing:
            self.retry_interval = min(self.retry_interval * 2, BACKOFF_MAX)
        self.failing = True
        self.error_text = describe(exc)
        self.retry_at = time.monotonic() + self.retry_interval
        self.report(f"{context}: {self.error_text}")

    def recovered(self) -> None:
        """A write succeeded: say so once after failures, with the rows lost meanwhile."""
        self.retry_interval = BACKOFF_FIRST
        if self.failing:
            log.warning(
                "query log: writing to %s again (%d rows were dropped meanwhile)",
                self.where,
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
                "query log: %s; rows are dropped and counted, connecting again within %g s",
                message,
                BACKOFF_MAX,
            )
        else:
            log.debug("query log: %s", message)
