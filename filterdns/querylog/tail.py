"""`tail`'s side of the log: the blocked lookups logged since it started, and how they look.

`TailReader` reads the rows the server adds to the log database, through the same checked
door as `report` (`dbfile.open_reader`). It follows the database the server is writing: when
the file at the path is another one than the reader holds (the server moved a damaged
database aside as `filterdns.db.corrupt-<time>` and started a fresh one, or it was deleted and
created again), it reads what is left of the old file, then opens the new one and goes on with
the lookups logged there since `tail` started. A read that finds the file damaged is given a
few seconds for the server to replace it before it counts as an error.

`table` (a live view of the last rows, for a terminal) and `line` (one plain or JSON line per
row) format them, a row that holds repeats of its lookup with their count after the name
("example.com" and a multiplication sign before 3; `hits` in JSON), with the instance that
logged each row when it comes from a PostgreSQL log (querylog.pgtail follows that one); the
command line owns the Console and the loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.markup import escape
from rich.table import Table

from filterdns.errors import FilterDnsError
from filterdns.querylog.dbfile import DamagedError, is_damage, open_reader

TIMES = "\u00d7"  # the multiplication sign before a row's count of lookups
REPLACE_GRACE = 3.0  # seconds a damaged file may stay in place before it is an error

COLUMNS = "id, ts, client, client_name, profile, name, qtype, category, rule, reason, hits"


@dataclass(frozen=True, slots=True)
class TailRow:
    """One blocked lookup as `tail` shows it."""

    id: int
    ts: float
    client: str
    client_name: str | None
    profile: str | None
    name: str
    qtype: str
    category: str | None
    rule: str | None
    reason: str
    hits: int = 1  # the lookups the row holds (repeats within log.fold_window)
    instance: str | None = None  # the instance that logged it (a PostgreSQL log only)

    @property
    def shown_name(self) -> str:
        """The name, with the count of its lookups when the row holds more than one."""
        return self.name if self.hits <= 1 else f"{self.name} {TIMES}{self.hits}"


class TailReader:
    """The blocked lookups (of one profile, or all) logged after it opened, file after file."""

    shared = False  # one instance's rows (querylog.pgtail reads many instances' rows)

    def __init__(
        self,
        path: Path,
        profile: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.profile = profile
        self.monotonic = monotonic
        # A file opened later (a fresh database) is read from this time on, not from its first
        # row: a file put back from a backup must not replay its whole history.
        self.started = clock()
        self._db = open_reader(self.path)  # FileNotFoundError, FilterDnsError
        self._identity = _identity(_stat(self.path))
        self._floor: float | None = None  # a ts lower bound once a later file is open
        self._damaged_since: float | None = None
        try:
            row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM queries").fetchone()
        except BaseException:
            self._db.close()
            raise
        self._last = int(row[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def poll(self) -> list[TailRow]:
        """The rows logged since the last poll, oldest first."""
        rows = self._follow_replacement()
        try:
            rows += self._read(self._db)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            now = self.monotonic()
            if self._damaged_since is None:
                self._damaged_since = now
            elif now - self._damaged_since > REPLACE_GRACE:
                raise DamagedError(self.path, str(exc)) from None
            return rows  # the server moves it aside within a second or so
        self._damaged_since = None
        return rows

    def follow(self, stop: threading.Event, interval: float) -> Iterator[list[TailRow]]:
        """Poll every `interval` seconds until `stop` is set; each poll's rows (maybe none)."""
        while not stop.is_set():
            yield self.poll()
            if not stop.is_set():
                stop.wait(interval)

    def _read(self, db: sqlite3.Connection) -> list[TailRow]:
        sql = f"SELECT {COLUMNS} FROM queries WHERE id > ? AND kind = 'blocked'"
        params: list[object] = [self._last]
        if self._floor is not None:
            sql += " AND ts >= ?"
            params.append(self._floor)
        if self.profile is not None:
            sql += " AND profile = ?"
            params.append(self.profile)
        try:
            rows = [TailRow(*row) for row in db.execute(f"{sql} ORDER BY id", params)]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []  # a fresh database before its schema is written
            raise
        if rows:
            self._last = rows[-1].id
        return rows

    def _follow_replacement(self) -> list[TailRow]:
        """When another file is at the path (and ready), what is left of the old one, and
        switch to the new one; else nothing."""
        st = _stat(self.path)
        identity = _identity(st)
        if st is None or identity == self._identity:
            return []  # the same file, or moved aside and the fresh one not there yet
        if st.st_size == 0:
            return []  # created, not yet a database: next time
        try:
            fresh = open_reader(self.path)
        except (OSError, sqlite3.Error, FilterDnsError):
            return []  # not ready, or not a filterdns database: look again next time
        rest: list[TailRow] = []
        with contextlib.suppress(sqlite3.Error):  # the old file may be junk: nothing left
            rest = self._read(self._db)
        self._db.close()
        self._db, self._identity = fresh, identity
        self._last, self._floor, self._damaged_since = 0, self.started, None
        return rest


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _identity(st: os.stat_result | None) -> tuple[int, int] | None:
    """Which file it is (device and inode); None for none."""
    return None if st is None else (st.st_dev, st.st_ino)


def table(
    rows: Sequence[TailRow], zone: ZoneInfo, shown: Callable[[str], str], shared: bool = False
) -> Table:
    """The live view of the last rows, for a terminal (with their instance when `shared`)."""
    view = Table(title="filterdns tail", expand=False)
    for column in ("time", *(("instance",) if shared else ()), "profile", "client", "name",
                   "category", "reason"):  # fmt: skip
        view.add_column(column)
    for row in rows:
        view.add_row(
            datetime.fromtimestamp(row.ts, zone).strftime("%H:%M:%S"),
            *((escape(row.instance or "-"),) if shared else ()),
            escape(shown(row.profile) if row.profile else "-"),
            escape(row.client_name or row.client),
            escape(row.shown_name),
            escape(row.category or "-"),
            escape(row.reason),
        )
    return view


def line(row: TailRow, zone: ZoneInfo, as_json: bool, shown: Callable[[str], str]) -> str:
    """One row as a plain line (`time profile client name category reason`, with the instance
    after the time on a PostgreSQL log) or JSON object."""
    when = datetime.fromtimestamp(row.ts, zone)
    if as_json:
        return json.dumps(
            {
                "id": row.id,
                "ts": when.isoformat(timespec="seconds"),
                "client": row.client,
                "client_name": row.client_name,
                "profile": row.profile,
                "profile_display_name": shown(row.profile) if row.profile else None,
                "name": row.name,
                "qtype": row.qtype,
                "category": row.category,
                "rule": row.rule,
                "reason": row.reason,
                "hits": row.hits,
                "instance": row.instance,
            }
        )
    fields = (
        when.strftime("%Y-%m-%d %H:%M:%S"),
        *((row.instance,) if row.instance is not None else ()),
        shown(row.profile) if row.profile else "-",
        row.client_name or row.client,
        row.shown_name,
        row.category or "-",
        row.reason,
    )
    return " ".join(fields)
