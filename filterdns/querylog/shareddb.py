"""Where an installation keeps what people change: grants, web accounts, requests, changes.

The SQLite file of `log.database` by default. With a postgresql:// `log.database` they live in
that PostgreSQL database instead (pgshared.py), so every instance writing it shares them: a
pause made on one school's filterdns, or in the web app of another, applies everywhere.

The stores see one shape whichever it is (`StateDb`): `writing` gives one transaction,
`rows` one read, both with `?` placeholders and standard SQL (`INSERT ... RETURNING id`,
`ON CONFLICT ... DO UPDATE`, TRUE), and every problem is one line in the store's own error.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from filterdns.config.log import LogConfig
from filterdns.errors import FilterDnsError
from filterdns.querylog import dbfile


class Cursor(Protocol):
    """What a statement returns: its rows and how many it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """A connection inside one transaction."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor: ...


class StateDb(Protocol):
    """The database of an installation's shared state (SQLite file or PostgreSQL)."""

    # Whether many instances share it (PostgreSQL): a device's address then means something
    # only together with the instance that saw it.
    shared: bool

    @property
    def target(self) -> str:
        """What messages name: the file, or the URL without its query string."""
        ...

    def writing(
        self, now: float, doing: str, error: type[FilterDnsError]
    ) -> contextlib.AbstractContextManager[Conn]:
        """One write transaction, the schema created or migrated first."""
        ...

    def rows(
        self, sql: str, params: Sequence[object], doing: str, error: type[FilterDnsError]
    ) -> list[tuple[Any, ...]]:
        """The rows of one read; none when the database or its table does not exist yet."""
        ...


class SqliteDb:
    """The state in the SQLite file: writes prepare it as the query log would (dbfile.prepare)
    and take the write lock at once (`BEGIN IMMEDIATE`); reads use a read-only connection."""

    shared = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def target(self) -> str:
        return str(self.path)

    @contextlib.contextmanager
    def writing(self, now: float, doing: str, error: type[FilterDnsError]) -> Iterator[Conn]:
        try:
            dbfile.prepare(self.path, now=now, repair=False)
            conn = dbfile.connect(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise error(dbfile.cannot(self.path, doing, exc)) from None
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error | OSError):
                raise error(dbfile.cannot(self.path, doing, exc)) from None
            raise
        finally:
            conn.close()

    def rows(
        self, sql: str, params: Sequence[object], doing: str, error: type[FilterDnsError]
    ) -> list[tuple[Any, ...]]:
        try:
            conn = dbfile.open_reader(self.path)
        except FileNotFoundError:
            return []
        try:
            return list(conn.execute(sql, tuple(params)).fetchall())
        except sqlite3.Error as exc:
            if "no such table" in str(exc):
                return []
            raise error(dbfile.cannot(self.path, doing, exc)) from None
        finally:
            conn.close()


def state_db(where: LogConfig | Path | str | StateDb) -> StateDb:
    """The state database of a `log:` section (PostgreSQL when `log.database` is a URL), of a
    SQLite file, or the one given."""
    if isinstance(where, LogConfig):
        if where.url is not None:
            from filterdns.querylog.pgshared import PgDb  # noqa: PLC0415 (psycopg only when configured)

            return PgDb(where.url)
        return SqliteDb(where.database)
    if isinstance(where, Path | str):
        return SqliteDb(Path(where))
    return where
