"""Retention: rows older than `log.retention` are deleted from every table of the log (the
budget minutes of days that ended before it too).

Small batches (PRUNE_BATCH rows a statement), the lock given back and the loop yielded to in
between, so a first pass over months of rows never holds up the writer or the answers.
"""

from __future__ import annotations

import asyncio
import time

from filterdns.querylog.logfile import LogFile

RETENTION_INTERVAL = 600.0  # seconds between two retention passes
PRUNE_BATCH = 5000  # rows deleted per statement, yielding to the loop in between
PRUNED_TABLES = ("queries", "drops", "alerts")


async def prune(file: LogFile, cutoff: float) -> int:
    """Delete the rows older than `cutoff` (unix time); how many (`stats.pruned` counts them as
    they go). Nothing while there is no connection: the writer opens one when it is due."""
    total = 0
    for table in PRUNED_TABLES:
        sql = (
            f"DELETE FROM {table} WHERE id IN"
            f" (SELECT id FROM {table} WHERE ts < ? LIMIT {int(PRUNE_BATCH)})"
        )
        while True:
            deleted = await _delete(file, sql, cutoff)
            if deleted is None:
                return total
            total += deleted
            file.stats.pruned += deleted
            if deleted < PRUNE_BATCH:
                break
            await asyncio.sleep(0)
    # A day's margin: a day is dated in its profile's zone, up to 14 hours from UTC.
    day = time.strftime("%Y-%m-%d", time.gmtime(cutoff - 86400))
    deleted = await _delete(file, "DELETE FROM budget_usage WHERE day < ?", day)
    if deleted is not None:
        total += deleted
        file.stats.pruned += deleted
    return total


async def _delete(file: LogFile, sql: str, cutoff: float | str) -> int | None:
    """One batch; None without a connection."""
    async with file.lock:
        if file.conn is None:
            return None
        async with file.conn.execute(sql, (cutoff,)) as cursor:
            return max(cursor.rowcount, 0)
