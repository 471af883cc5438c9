"""The grants.json of earlier versions, read once and moved into the database (grants.py)."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from pathlib import Path

from filterdns.policy.values import Grant, grant_kind

log = logging.getLogger("filterdns.policy.grants")  # the grants' log lines, as before

LEGACY_FILE = "grants.json"
LEGACY_LOCK = "grants.lock"


def move_into(conn: sqlite3.Connection, legacy: Path, now: float) -> int:
    """Move the grants of `legacy` (a grants.json) still in force into the database of `conn`
    in one transaction, keeping their ids, and rename the file aside; how many were moved."""
    if not legacy.exists():
        return 0
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    moved = legacy.with_name(f"{LEGACY_FILE}.imported-{stamp}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not legacy.exists():  # another process imported it meanwhile
            conn.execute("ROLLBACK")
            return 0
        grants, next_id = read_legacy(legacy)
        kept = [g for g in grants if g.expires_at > now]
        for grant in kept:
            insert_legacy(conn, grant, now)
        reserve_ids(conn, next_id - 1)
        # Renamed inside the transaction: a second importer waiting for the lock then finds
        # no file, and a failed commit puts it back.
        legacy.rename(moved)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        if moved.exists() and not legacy.exists():
            moved.rename(legacy)
        raise
    legacy.with_name(LEGACY_LOCK).unlink(missing_ok=True)
    log.info("grants: imported %d grants from %s (now %s)", len(kept), legacy, moved)
    return len(kept)


def read_legacy(path: Path) -> tuple[list[Grant], int]:
    """The grants of an old grants.json and its next id; a broken file holds none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return [], 1
    grants = []
    items = data.get("grants", []) if isinstance(data, dict) else []
    for item in items if isinstance(items, list) else []:
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            grants.append(
                Grant(
                    id=int(item["id"]),
                    profile=str(item["profile"]),
                    expires_at=float(item["expires_at"]),
                    domain=item.get("domain"),
                    category=item.get("category"),
                    reason=str(item.get("reason", "")),
                    kind=grant_kind(None, item.get("domain")),
                )
            )
    try:
        next_id = int(data.get("next_id", 1)) if isinstance(data, dict) else 1
    except (TypeError, ValueError):
        next_id = 1
    return grants, max([next_id, *(g.id + 1 for g in grants)])


def insert_legacy(conn: sqlite3.Connection, grant: Grant, now: float) -> None:
    """Insert with the grant's own id when it is free (what `grants` showed), else a new one."""
    taken = conn.execute("SELECT 1 FROM grants WHERE id = ?", (grant.id,)).fetchone()
    values = (grant.profile, grant.domain, grant.category, grant.reason, now, grant.expires_at,
              grant_kind(None, grant.domain))  # fmt: skip
    columns = "profile, domain, category, reason, created_at, expires_at, kind"
    if taken:
        conn.execute(f"INSERT INTO grants ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
    else:
        conn.execute(
            f"INSERT INTO grants (id, {columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (grant.id, *values),
        )


def reserve_ids(conn: sqlite3.Connection, last: int) -> None:
    """Ids up to `last` were given by grants.json: never give them again."""
    updated = conn.execute(
        "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'grants'", (last,)
    )
    if updated.rowcount == 0 and last > 0:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('grants', ?)", (last,))
