"""Connections to a PostgreSQL `log.database`: the settings every connection uses, the schema
check and migrations, for the server's writer (asyncio) and the commands that read (plain).

psycopg 3 lives here and in pglog only. A connection says who it is (`application_name`), gives
up connecting after CONNECT_TIMEOUT, and never waits on a statement longer than
STATEMENT_TIMEOUT, so a database that hangs costs log rows, never the writer forever.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence

import psycopg
import psycopg.errors
from psycopg import sql

from filterdns.errors import FilterDnsError
from filterdns.querylog.dbfile import SchemaError
from filterdns.querylog.pgschema import (
    MIGRATION_LOCK,
    MIGRATIONS,
    PG_SCHEMA_VERSION,
    QUERY_COLUMNS,
)

log = logging.getLogger("filterdns.querylog.store")

CONNECT_TIMEOUT = 3  # seconds; a database down at start delays nothing longer than this
STATEMENT_TIMEOUT_MS = 30_000
SETTINGS: dict[str, object] = {
    "application_name": "filterdns",
    "connect_timeout": CONNECT_TIMEOUT,
    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
}


def where(url: str) -> str:
    """The URL as messages name it: without its query string."""
    return url.split("?", 1)[0]


async def connect(url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """An asyncio connection (autocommit: transactions are explicit) for the writer."""
    return await psycopg.AsyncConnection.connect(url, autocommit=True, **SETTINGS)  # type: ignore[arg-type]


def connect_reader(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A plain connection for a command that reads; FilterDnsError saying why it failed, and
    SchemaError for a log of a newer schema."""
    try:
        conn = psycopg.Connection.connect(url, autocommit=True, **SETTINGS)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise FilterDnsError(f"cannot connect to {where(url)}: {describe(exc)}") from None
    try:
        row = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
        if row and row[0]:
            found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if check_version(url, None if found is None else str(found[0])) < HITS_VERSION:
                _count_old_rows(conn)
    except BaseException:
        conn.close()
        raise
    return conn


HITS_VERSION = 3  # the schema whose `queries` rows carry `hits`
OLD_COLUMNS = (*QUERY_COLUMNS[:-1], "id")  # the columns before it: named, so the view stays
# valid once a server migrates the log under a reader that made it


def _count_old_rows(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """On a log no server has migrated to `hits` yet, a temporary view `queries` with `hits` 1
    on every row (pg_temp comes first in name lookups), so the readers' SQL counts `hits`."""
    row = conn.execute(
        "SELECT current_schema(), to_regclass('queries') IS NOT NULL, EXISTS (SELECT 1 FROM"
        " information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'queries' AND column_name = 'hits')"
    ).fetchone()
    if row is None or not row[1] or row[2]:
        return
    table = sql.Identifier(str(row[0]), "queries")
    conn.execute(
        sql.SQL("CREATE TEMP VIEW queries AS SELECT {}, 1 AS hits FROM {}").format(
            sql.SQL(", ".join(OLD_COLUMNS)), table
        )
    )


@contextlib.contextmanager
def reading(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """`connect_reader`'s connection for a command's reads, closed afterwards; a database error
    while reading is a FilterDnsError naming the database."""
    conn = connect_reader(url)
    try:
        yield conn
    except psycopg.Error as exc:
        raise FilterDnsError(f"cannot read {where(url)}: {describe(exc)}") from None
    finally:
        conn.close()


def fetch_all(
    conn: psycopg.Connection[tuple[object, ...]], sql: str, params: Sequence[object]
) -> list[tuple[object, ...]]:
    """The rows of `sql` (`%s` placeholders); none when its table does not exist yet (no
    server wrote to this database so far)."""
    try:
        return conn.execute(sql, params).fetchall()
    except psycopg.errors.UndefinedTable:
        return []


def read_usage(url: str, instance: str, now: float) -> list[tuple[str, str, str, int]]:
    """The budget minutes this instance stored for yesterday (UTC, for zones behind it) and
    later; [] (and a warning) when the database cannot be read."""
    since = time.strftime("%Y-%m-%d", time.gmtime(now - 86400))
    query = (
        "SELECT profile, budget, day, minutes FROM budget_usage WHERE instance = %s AND day >= %s"
    )
    try:
        with connect_reader(url) as conn:
            if conn.execute("SELECT to_regclass('budget_usage')").fetchone() in (None, (None,)):
                return []
            rows = conn.execute(query, (instance, since)).fetchall()
    except (psycopg.Error, FilterDnsError) as exc:
        log.warning("query log: cannot read the budget minutes from %s: %s", where(url), exc)
        return []
    return [(str(p), str(b), str(d), int(str(m))) for p, b, d, m in rows]


def migrate(url: str) -> int:
    """Bring the schema to PG_SCHEMA_VERSION in one transaction under an advisory lock (a no-op
    when another instance just did), on a connection of its own; SchemaError for a newer one.
    The version found. The writer runs it in a thread, the commands before their first write."""
    conn = psycopg.Connection.connect(url, autocommit=True, **SETTINGS)  # type: ignore[arg-type]
    with conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(MIGRATIONS[1][0])  # meta
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = check_version(url, None if row is None else str(row[0]))
        for step in range(version + 1, PG_SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
        if version < PG_SCHEMA_VERSION:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(PG_SCHEMA_VERSION),),
            )
    return version


def check_version(url: str, text: str | None) -> int:
    """The stored schema version (0 for a fresh database); SchemaError when newer or unreadable."""
    if text is None:
        return 0
    try:
        version = int(text)
    except ValueError:
        raise SchemaError(
            f"{where(url)} holds a filterdns log whose schema version {text!r} is unreadable"
        ) from None
    if version > PG_SCHEMA_VERSION:
        raise SchemaError(
            f"{where(url)} holds a filterdns log of schema version {version}, newer than this"
            f" filterdns understands ({PG_SCHEMA_VERSION}); upgrade filterdns on this machine"
        )
    return version


def describe(exc: BaseException) -> str:
    """A database error as one line: the server's message, else the exception's type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, psycopg.Error | FilterDnsError | OSError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
