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
    """Rows for at most `limit` lookups from the front of `rows`, each lookup folded into its
    window's row (`window` 0: a row each); the rows and the lookups they hold.

    Built for the writer's batches (a few hundred lookups a few times a second, on the event
    loop): a lookup costs a slice of its record as the key and one dict call, and the window is
    looked up only when a record's time leaves the current one (they come in time order)."""
    pop = rows.popleft
    batch = [pop() for _ in range(min(len(rows), limit))]
    if window <= 0:
        return [record + ONE for record in batch], len(batch)
    hits: dict[int, int] = {}  # a row's lookups by its first's index; 0 for those folded
    firsts: dict[tuple[object, ...], int] = {}
    start = end = 0.0
    for index, record in enumerate(batch):
        ts = record[0]
        if not start <= ts < end:  # another window: the rows of the last one are done
            start = ts - ts % window
            end = start + window
            firsts = {}
        first = firsts.setdefault(record[1:], index)
        if first != index:
            hits[first] = hits.get(first, 1) + 1
            hits[index] = 0
    if not hits:
        return [record + ONE for record in batch], len(batch)
    get = hits.get
    folded: list[Row] = [(*record, n) for index, record in enumerate(batch) if (n := get(index, 1))]
    return folded, len(batch)


ONE = (1,)
