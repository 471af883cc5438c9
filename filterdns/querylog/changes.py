"""The changes people made, with who made them and through which door: the `changes` table.

Every change to what a profile may do (a pause, a resume, a name allowed, a block-all, a
budget top-up, a revoke, and what the web app changes) leaves one row per profile: when, who
(the invoking user, or the web account), via ("cli", "web" or "api"), the action and a short
human text ("youtube.com allowed until 17:30"). The change itself lives elsewhere (a grant is
the source of truth): a row that cannot be written is logged as a warning and the change stands.
The table is in the shared state's database (shareddb.py): the SQLite file, or PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filterdns.config.log import LogConfig
from filterdns.errors import FilterDnsError
from filterdns.querylog.shareddb import StateDb, state_db

log = logging.getLogger(__name__)

VIAS = ("cli", "web", "api")


@dataclass(frozen=True, slots=True)
class Change:
    """One change a person made: a row of the `changes` table."""

    id: int
    ts: float  # unix time
    who: str
    via: str  # "cli", "web" or "api"
    action: str  # "pause", "resume", "allow", "allow-category", "block-all", "top-up", ...
    profile: str | None
    detail: str

    def to_json(self) -> dict[str, object]:
        """Its fields, for --json and the web API."""
        return {
            "id": self.id, "ts": self.ts, "who": self.who, "via": self.via,
            "action": self.action, "profile": self.profile, "detail": self.detail,
        }  # fmt: skip


def record(
    database: LogConfig | Path | StateDb,
    *,
    who: str,
    via: str,
    action: str,
    profile: str | None,
    detail: str,
    now: float | None = None,
) -> bool:
    """Add one row; False (with a warning logged) when it could not be written."""
    now = time.time() if now is None else now
    try:
        with state_db(database).writing(now, "record the change in", FilterDnsError) as conn:
            conn.execute(
                "INSERT INTO changes (ts, who, via, action, profile, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (now, who, via, action, profile, detail),
            )
    except FilterDnsError as exc:
        log.warning("changes: %s (%s %s by %s)", exc, action, profile or "", who)
        return False
    return True


def recent(
    database: LogConfig | Path | StateDb,
    *,
    limit: int = 50,
    profiles: Sequence[str] | None = None,
) -> list[Change]:
    """The latest changes, newest first (of these profiles only, when given); [] without a
    database or before it had the table. FilterDnsError when it cannot be read."""
    sql = "SELECT id, ts, who, via, action, profile, detail FROM changes"
    params: tuple[object, ...] = ()
    if profiles is not None:
        sql += f" WHERE profile IN ({', '.join('?' * len(profiles))})"
        params = tuple(profiles)
    sql += " ORDER BY ts DESC, id DESC LIMIT ?"
    db = state_db(database)
    rows = db.rows(sql, (*params, limit), "read the changes in", FilterDnsError)
    return [
        Change(int(i), float(ts), str(who), str(via), str(action), profile, str(detail or ""))
        for i, ts, who, via, action, profile, detail in rows
    ]
