"""`tail`'s side of the log: the blocked lookups logged since it started, and how they look.

`TailReader` reads the rows the server adds to the log database, through the same checked
door as `report` (`dbfile.open_reader`).

`table` (a live view of the last rows, for a terminal) and `line` (one plain or JSON line per
row) format them; the command line owns the Console and the loop.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.markup import escape
from rich.table import Table

from filterdns.querylog.dbfile import open_reader

COLUMNS = "id, ts, client, client_name, profile, name, qtype, category, rule, reason"


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


class TailReader:
    """The blocked lookups (of one profile, or all) logged after it opened."""

    def __init__(
        self,
        path: Path,
        profile: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.profile = profile
        self._db = open_reader(self.path)  # FileNotFoundError, FilterDnsError
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
        return self._read(self._db)

    def follow(self, stop: threading.Event, interval: float) -> Iterator[list[TailRow]]:
        """Poll every `interval` seconds until `stop` is set; each poll's rows (maybe none)."""
        while not stop.is_set():
            yield self.poll()
            if not stop.is_set():
                stop.wait(interval)

    def _read(self, db: sqlite3.Connection) -> list[TailRow]:
        sql = f"SELECT {COLUMNS} FROM queries WHERE id > ? AND kind = 'blocked'"
        params: list[object] = [self._last]
        if self.profile is not None:
            sql += " AND profile = ?"
            params.append(self.profile)
        rows = [TailRow(*row) for row in db.execute(f"{sql} ORDER BY id", params)]
        if rows:
            self._last = rows[-1].id
        return rows


def table(rows: Sequence[TailRow], zone: ZoneInfo, shown: Callable[[str], str]) -> Table:
    """The live view of the last rows, for a terminal."""
    view = Table(title="filterdns tail", expand=False)
    for column in ("time", "profile", "client", "name", "category", "reason"):
        view.add_column(column)
    for row in rows:
        view.add_row(
            datetime.fromtimestamp(row.ts, zone).strftime("%H:%M:%S"),
            escape(shown(row.profile) if row.profile else "-"),
            escape(row.client_name or row.client),
            escape(row.name),
            escape(row.category or "-"),
            escape(row.reason),
        )
    return view


def line(row: TailRow, zone: ZoneInfo, as_json: bool, shown: Callable[[str], str]) -> str:
    """One row as a plain line (`time profile client name category reason`) or JSON object."""
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
            }
        )
    fields = (
        when.strftime("%Y-%m-%d %H:%M:%S"),
        shown(row.profile) if row.profile else "-",
        row.client_name or row.client,
        row.name,
        row.category or "-",
        row.reason,
    )
    return " ".join(fields)
