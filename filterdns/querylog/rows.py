"""What the query log writes: its rows, its statistics and the statements that store them.

The tables themselves are defined in dbfile (schema and migrations); these are the rows the
writer adds to `queries`, `drops` and `alerts`, in one transaction per batch.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from itertools import chain
from typing import NamedTuple

import aiosqlite

from filterdns.errors import FilterDnsError

INSERT_QUERY = (
    "INSERT INTO queries (ts, client, client_name, profile, name, qtype, kind, category, rule,"
    " reason, source, response, hits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
COLUMNS = 13  # a stored row: a LogRecord's fields, then `hits`
# Rows go in by statements of many VALUES each: one statement per 76 rows costs SQLite and the
# sqlite3 module less than one per row (and the writer thread takes the interpreter's lock once
# per statement, not once per row, from a loop that is busy answering). 76 rows are 988
# variables, under the oldest SQLite's limit of 999.
ROWS_PER_INSERT = 76
_ROW_VALUES = ", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def insert_rows(count: int) -> str:
    """The INSERT of `count` rows into `queries` in one statement."""
    return INSERT_QUERY + _ROW_VALUES * (count - 1)


INSERT_FULL = insert_rows(ROWS_PER_INSERT)
INSERT_DROP = "INSERT INTO drops (ts, count, reason) VALUES (?, ?, ?)"
INSERT_ALERT = (
    "INSERT INTO alerts (ts, rule, profile, categories, count, window, message, delivered, error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

Drops = dict[str, tuple[float, int]]  # reason -> (time of the first, how many)


class LogRecord(NamedTuple):
    """One lookup as the resolver hands it to the log: the `queries` row's columns in their
    order but `hits`, which the writer adds when it folds repeats (`fold.take`) (built per
    blocked query from a plain tuple: a tuple is the cheapest value to build and to store)."""

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

    written: int = 0  # lookups stored in `queries` (a row holds `hits` of them)
    dropped: int = 0  # lookups lost: queue full, database error, put after close
    folded: int = 0  # lookups stored as a hit of an earlier one's row, not a row of their own
    errors: int = 0  # failed attempts to open or write the database
    pruned: int = 0  # rows deleted by retention (all tables)


# Minutes used of a time budget: the meter's total, never lowered by an older writer.
UPSERT_USAGE = (
    "INSERT INTO budget_usage (profile, budget, day, minutes) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (profile, budget, day) DO UPDATE SET minutes = max(minutes, excluded.minutes)"
)
Usage = list[tuple[str, str, str, int]]  # (profile, budget, day, minutes)


async def insert(
    conn: aiosqlite.Connection,
    rows: list[tuple[object, ...]],
    drops: Drops,
    usage: Usage | None = None,
) -> None:
    """One transaction: the rows, the drop counts and the budget minutes, or nothing."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        if rows:
            await _insert_queries(conn, rows)
        if drops:
            await conn.executemany(
                INSERT_DROP, [(ts, count, reason) for reason, (ts, count) in drops.items()]
            )
        if usage:
            await conn.executemany(UPSERT_USAGE, usage)
        await conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise


async def _insert_queries(conn: aiosqlite.Connection, rows: list[tuple[object, ...]]) -> None:
    """`rows` into `queries`: full statements of ROWS_PER_INSERT rows, then the rest."""
    whole = len(rows) - len(rows) % ROWS_PER_INSERT
    if whole:
        flat = list(chain.from_iterable(rows[:whole]))
        step = ROWS_PER_INSERT * COLUMNS
        await conn.executemany(INSERT_FULL, [flat[i : i + step] for i in range(0, len(flat), step)])
    if whole < len(rows):
        rest = rows[whole:]
        await conn.execute(insert_rows(len(rest)), list(chain.from_iterable(rest)))


def describe(exc: BaseException) -> str:
    """An error as a log line says it: the message of ours and the database's, else its type."""
    text = str(exc)
    if isinstance(exc, sqlite3.Error | OSError | FilterDnsError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
