"""The log database a report reads, SQLite or PostgreSQL, behind one small adapter.

The report's queries are written once, in the SQL both databases understand, with SQLite's `?`
placeholders; `LogSource.rows` turns them into PostgreSQL's `%s` when it reads there. A table
that does not exist (an older SQLite file, a PostgreSQL database no server wrote to yet) reads
as no rows. Rows on PostgreSQL carry the instance that wrote them (`shared`): only there can a
report keep one instance's rows.

`minute` is the one expression the two write differently: the minute a row's `ts` falls in
(whole minutes since 1970), which the heatmap counts by in the database rather than fetch every
row for its local hour. SQLite's CAST truncates, PostgreSQL's rounds, so there it floors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Run = Callable[[str, Sequence[object]], list[Any]]  # one query, as its database wants it


@dataclass(frozen=True, slots=True)
class LogSource:
    """Where the report's queries run: `run` executes one statement in the database's own
    placeholders (`placeholder`); `shared` when many instances write its rows; `minute` the
    minute of `ts` in its SQL."""

    run: Run
    placeholder: str = "?"
    shared: bool = False
    minute: str = "CAST(ts / 60 AS INTEGER)"

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """The rows of `sql`, written with `?` placeholders; none when its table does not
        exist."""
        return self.run(to_placeholders(sql, self.placeholder), params)


def to_placeholders(sql: str, placeholder: str) -> str:
    """`sql` with its `?` placeholders as `placeholder`; for `%s`, a literal `%` is doubled."""
    if placeholder == "?":
        return sql
    if placeholder == "%s":
        sql = sql.replace("%", "%%")
    return sql.replace("?", placeholder)


PG_MINUTE = "CAST(floor(ts / 60) AS BIGINT)"


def sqlite_source(db: sqlite3.Connection) -> LogSource:
    """The SQLite log file open as `db` (one instance's rows, no `instance` column)."""

    def run(sql: str, params: Sequence[object]) -> list[Any]:
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    return LogSource(run)
