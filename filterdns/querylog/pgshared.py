"""The shared state on PostgreSQL: the stores' transactions (`PgDb`) and the server's follower
of changes (`follow`).

`PgDb` is shareddb's StateDb on a postgresql:// `log.database`: a connection per transaction
(commands and the web app's worker threads write seldom; a connection costs a few
milliseconds), the schema migrated before the first write of the process, `?` placeholders
turned into psycopg's `%s`.

`follow` keeps one connection per server that LISTENs on a channel (the grants' trigger
announces every change) and calls its reader at once, after every announcement and every
`every` seconds as a safety net (a notification is lost while the connection is down). A
database that cannot be reached leaves the last copy in place: the reader is simply not called;
the follower reconnects backing off from 1 s to 30 s and says so in one line a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import psycopg

from filterdns.errors import FilterDnsError
from filterdns.policy.budgets import BudgetMeter
from filterdns.querylog.dbfile import SchemaError
from filterdns.querylog.pgconn import SETTINGS, connect, describe, migrate, where
from filterdns.querylog.shareddb import Conn

log = logging.getLogger(__name__)

RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # seconds between two attempts to reconnect
SAY_EVERY = 60.0  # seconds: one line a minute while the database stays away

USAGE_EVERY = 15.0  # seconds between two reads of the other instances' budget minutes
OTHERS_USAGE = (
    "SELECT profile, budget, day, sum(minutes) FROM budget_usage WHERE instance <> ? AND day >= ?"
    " GROUP BY profile, budget, day"
)

Fetch = Callable[[str, Sequence[object]], Awaitable[list[tuple[Any, ...]]]]

_migrated: set[str] = set()  # the URLs this process brought to the current schema


def placeholders(sql: str) -> str:
    """`sql` with psycopg's `%s` for each `?` (the stores' SQL holds no literal `?` or `%`)."""
    return sql.replace("?", "%s")


class _Conn:
    """A psycopg connection seen through the stores' Conn shape."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> psycopg.Cursor[tuple[Any, ...]]:
        return self._conn.execute(placeholders(sql), tuple(params))


class PgDb:
    """The shared state in a PostgreSQL database (the one of `log.database`)."""

    shared = True

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def target(self) -> str:
        return where(self.url)

    @contextlib.contextmanager
    def writing(self, now: float, doing: str, error: type[FilterDnsError]) -> Iterator[Conn]:
        """One transaction, the schema migrated first (once a process)."""
        del now  # a PostgreSQL database is never prepared from a point in time
        try:
            if self.url not in _migrated:
                migrate(self.url)
                _migrated.add(self.url)
            conn = psycopg.Connection.connect(self.url, **SETTINGS)  # type: ignore[arg-type]
        except SchemaError:
            raise
        except psycopg.Error as exc:
            raise error(f"cannot {doing} {self.target}: {describe(exc)}") from None
        try:
            with conn.transaction():
                yield _Conn(conn)
        except psycopg.Error as exc:
            raise error(f"cannot {doing} {self.target}: {describe(exc)}") from None
        finally:
            conn.close()

    def rows(
        self, sql: str, params: Sequence[object], doing: str, error: type[FilterDnsError]
    ) -> list[tuple[Any, ...]]:
        """The rows of one read; none while the table does not exist (nothing written yet)."""
        try:
            with psycopg.Connection.connect(self.url, autocommit=True, **SETTINGS) as conn:  # type: ignore[arg-type]
                return conn.execute(placeholders(sql), tuple(params)).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
        except psycopg.Error as exc:
            raise error(f"cannot {doing} {self.target}: {describe(exc)}") from None


async def follow(
    url: str,
    channel: str | None,
    read: Callable[[Fetch], Awaitable[None]],
    *,
    every: float,
    what: str,
) -> None:
    """Call `read` with a fetch on the following connection: at once, after each notification
    on `channel` (None: no LISTEN) and every `every` seconds; reconnect with back-off while the
    database is away. Runs until cancelled."""
    retry, said, away = RETRY_FIRST, -SAY_EVERY, False
    while True:
        try:
            conn = await connect(url)
        except psycopg.Error as exc:
            problem: BaseException = exc
        else:
            try:
                if channel is not None:
                    await conn.execute(f"LISTEN {channel}")
                fetch = _fetcher(conn)
                await read(fetch)
                if away:
                    log.info("%s: %s is readable again", what, where(url))
                retry, away = RETRY_FIRST, False
                while True:
                    await _wait(conn, every)
                    await read(fetch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the follower outlives anything: the last copy stays
                problem = exc
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()
        now = time.monotonic()
        if now - said >= SAY_EVERY:
            said, away = now, True
            log.warning("%s: cannot read %s: %s; keeping the last copy, retrying every %.0f s"
                        " at most", what, where(url), _why(problem), RETRY_MAX)  # fmt: skip
        await asyncio.sleep(retry)
        retry = min(retry * 2, RETRY_MAX)


async def follow_usage(url: str, instance: str, meter: BudgetMeter) -> None:
    """Keep `meter` told of the budget minutes the other instances counted (yesterday on, for
    zones behind UTC) until cancelled."""

    async def read(fetch: Fetch) -> None:
        since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
        rows = await fetch(OTHERS_USAGE, (instance, since))
        meter.share((str(p), str(b), str(d), int(m)) for p, b, d, m in rows)

    await follow(url, None, read, every=USAGE_EVERY, what="budgets")


def _fetcher(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> Fetch:
    """A fetch on `conn`: the rows of one statement, none while its table does not exist."""

    async def fetch(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            cursor = await conn.execute(placeholders(sql), tuple(params))
        except psycopg.errors.UndefinedTable:
            return []
        return await cursor.fetchall()

    return fetch


async def _wait(conn: psycopg.AsyncConnection[tuple[Any, ...]], every: float) -> None:
    """Until a notification arrives or `every` seconds pass; raises when the connection broke."""
    async for _ in conn.notifies(timeout=every, stop_after=1):
        pass


def _why(exc: BaseException) -> str:
    return describe(exc) if isinstance(exc, psycopg.Error | OSError) else f"{exc!r}"
