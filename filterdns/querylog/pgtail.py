"""`tail` on a PostgreSQL log many instances write: their blocked lookups as they arrive.

On SQLite one writer commits rows in `id` order, so "rows after the last id seen" is enough.
Here several instances commit batches each on its own schedule: a batch with older lookup times
(and lower ids) can become visible after a later one was already read. So each read takes every
blocked row whose lookup time is inside a window reaching OVERLAP seconds back from the last
successful read (the (kind, ts) index serves it) and `Overlap` keeps the ids already shown in that
window: a row committed late is shown once, when it appears, and never twice. The rows the
database already held when `tail` started are marked seen, not shown.

A database that goes away (or the connection to it) is said once (`notice`), then tried again
after RETRY_FIRST seconds, doubling to RETRY_MAX; back, it is said once more and the reading goes
on where it left off: the window still starts before the outage for HOLD seconds more, while
the instances send the rows they kept queued. Limits, said in docs/scale.md: a row committed
more than OVERLAP seconds after its lookup time outside such an outage (or written by an
instance whose clock is that far behind this machine's) is counted by `report` but not shown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
import psycopg.errors

from filterdns.errors import FilterDnsError
from filterdns.querylog import pgconn
from filterdns.querylog.tail import COLUMNS, TailRow

OVERLAP = 60.0  # seconds of lookup time read again on every poll
HOLD = 90.0  # seconds the window keeps reaching before an outage once the database is back
RETRY_FIRST = 1.0
RETRY_MAX = 30.0


class Cursor(Protocol):
    """The rows of one statement."""

    def fetchall(self) -> list[tuple[object, ...]]: ...  # pragma: no cover


class Rows(Protocol):
    """What a read needs of a connection (psycopg's, or a test's)."""

    def execute(self, query: str, params: Sequence[object]) -> Cursor: ...  # pragma: no cover

    def close(self) -> None: ...  # pragma: no cover


@dataclass
class Overlap:
    """The rows already shown in the window read again, and where the window starts."""

    floor: float  # the lookup time the next read starts at
    seen: dict[int, float] = field(default_factory=dict)  # id -> ts of the rows shown
    held_until: float | None = None  # the floor stays put until then (after an outage)

    def take(self, rows: Sequence[TailRow], read_at: float) -> list[TailRow]:
        """The rows of a read begun at `read_at` not shown before, by time then id; the window
        moves on to OVERLAP seconds before `read_at` (unless held)."""
        fresh = sorted((r for r in rows if r.id not in self.seen), key=lambda r: (r.ts, r.id))
        self.seen.update((r.id, r.ts) for r in fresh)
        if self.held_until is not None and read_at < self.held_until:
            return fresh
        self.held_until = None
        self.floor = max(self.floor, read_at - OVERLAP)
        self.seen = {i: ts for i, ts in self.seen.items() if ts >= self.floor}
        return fresh

    def hold(self, now: float) -> None:
        """After an outage: keep the window where it is for HOLD seconds from `now`."""
        self.held_until = now + HOLD


class PgTailReader:
    """The blocked lookups of every instance (or one, or of one profile) committed after it
    opened, from the PostgreSQL log at `url`."""

    shared = True  # its rows carry their instance

    def __init__(
        self,
        url: str,
        profile: str | None = None,
        instance: str | None = None,
        *,
        notice: Callable[[str], None] = lambda _: None,
        clock: Callable[[], float] = time.time,
        connect: Callable[[str], Rows] = pgconn.connect_reader,
    ) -> None:
        self.url, self.profile, self.instance = url, profile, instance
        self.notice, self.clock, self.connect = notice, clock, connect
        self.retry = RETRY_FIRST
        self.down = False
        started = clock()
        self._conn: Rows | None = connect(url)  # FilterDnsError: said by the command
        self.window = Overlap(started - OVERLAP)
        try:
            self.window.take(self._read(self._conn), started)  # already there: not shown
        except psycopg.Error as exc:
            self.close()
            raise FilterDnsError(
                f"cannot read {pgconn.where(url)}: {pgconn.describe(exc)}"
            ) from None

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def poll(self) -> list[TailRow]:
        """The rows committed since the last poll, by time; psycopg.Error or FilterDnsError when
        the database cannot be read (the connection is then dropped)."""
        read_at = self.clock()
        try:
            if self._conn is None:
                self._conn = self.connect(self.url)
            rows = self._read(self._conn)
        except (psycopg.Error, FilterDnsError):
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise
        if self.down:  # back: the instances now send what they kept queued
            self.down, self.retry = False, RETRY_FIRST
            self.window.hold(read_at)
            self.notice(f"reading the log database {pgconn.where(self.url)} again")
        return self.window.take(rows, read_at)

    def follow(self, stop: threading.Event, interval: float) -> Iterator[list[TailRow]]:
        """Poll every `interval` seconds until `stop` is set; each poll's rows (maybe none). An
        outage waits RETRY_FIRST to RETRY_MAX seconds between attempts, said once each way."""
        while not stop.is_set():
            wait = interval
            try:
                rows = self.poll()
            except (psycopg.Error, FilterDnsError) as exc:
                wait = self._lost(exc)
                rows = []
            yield rows
            if not stop.is_set():
                stop.wait(wait)

    def _lost(self, exc: BaseException) -> float:
        """Say the database went away (once), and how long to wait before trying again."""
        if not self.down:
            self.down = True
            self.notice(
                f"lost the log database {pgconn.where(self.url)}: {pgconn.describe(exc)};"
                f" trying again every {RETRY_FIRST:g} to {RETRY_MAX:g} s"
            )
            return self.retry
        self.retry = min(self.retry * 2, RETRY_MAX)
        return self.retry

    def _read(self, conn: Rows) -> list[TailRow]:
        sql = f"SELECT {COLUMNS}, instance FROM queries WHERE kind = 'blocked' AND ts >= %s"
        params: list[object] = [self.window.floor]
        if self.instance is not None:
            sql += " AND instance = %s"
            params.append(self.instance)
        if self.profile is not None:
            sql += " AND profile = %s"
            params.append(self.profile)
        try:
            found = conn.execute(f"{sql} ORDER BY ts, id", params).fetchall()
        except psycopg.errors.UndefinedTable:
            return []  # no server wrote to this database yet
        return [TailRow(*row) for row in found]  # type: ignore[arg-type]
