"""Repeated lookups folded into one log row with a count (`hits`), as the writer takes them.

Apps and browsers ask a blocked name again and again within a second (A and AAAA, HTTPS
records, retries over both resolvers). The writer takes the rows waiting in the queue and folds
each lookup into the row of an earlier one that is the same in everything but its time (client,
client name, profile, name, type, kind, category, rule, reason, list source, answer mode) and
falls in the same window of `log.fold_window` seconds: windows are counted from the epoch and a
minute holds a whole number of them, so a row's hits share its second, minute, hour and day,
and every count by time (the report's heat map, bedtime windows, the day partitions) is the
same as with a row per lookup. The row keeps the first lookup's time.

Folding happens off the DNS path, in the writer, over what waits in the queue: a lookup is
never held back longer than the writer's usual delay, and a repeat that comes after its first's
row was written starts a row of its own. The alerts and the metrics see every lookup on the
DNS path as before.
"""

from __future__ import annotations

from collections import deque

from filterdns.querylog.rows import LogRecord

Row = tuple[object, ...]  # a stored row: a LogRecord's fields, then hits


def take(rows: deque[LogRecord], limit: int, window: float) -> tuple[list[Row], int]:
    """Rows for at most `limit` stored rows from the front of `rows`, each lookup folded into
    its window's row (`window` 0: a row each); the rows and the lookups they hold."""
    pop = rows.popleft
    if window <= 0:
        taken: list[Row] = [(*pop(), 1) for _ in range(min(len(rows), limit))]
        return taken, len(taken)
    found: dict[Row, list[object]] = {}
    lookups = 0
    while rows and len(found) < limit:
        record = pop()
        lookups += 1
        key = (record[0] // window, *record[1:])
        row = found.get(key)
        if row is None:
            found[key] = [*record, 1]
        else:
            row[-1] += 1  # type: ignore[operator]
    return [tuple(row) for row in found.values()], lookups
