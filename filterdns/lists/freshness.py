"""Keeping a list set current while the proxy runs: remote downloads when due, local edits.

Remote sources are downloaded when their `lists.refresh` period is over (a failed download is
tried again after 15 minutes) and the index is rebuilt only when a download changed; local list
files are watched (every second, applied once a change has held for half a second) and rebuilt
through `ListSet.reload_local`, the same path SIGHUP takes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from filterdns.lists.sources import is_local, is_remote

if TYPE_CHECKING:
    from filterdns.lists.catalog import ListSet, SourceStatus

log = logging.getLogger("filterdns.lists.catalog")  # the same logger name as the list set's

RETRY_AFTER_FAILURE = 900.0  # a failed download is tried again after 15 minutes
MIN_WAIT = 60.0
LIST_POLL = 1.0  # seconds between two looks at the local list files
LIST_SETTLE = 0.5  # a change must hold this long before it is read


async def keep_fresh(lists: ListSet) -> None:
    """Run until cancelled: remote refreshes and the local-file watch, side by side."""
    await asyncio.gather(_refresh_remotes(lists), _watch_local(lists))


def stale_remotes(lists: ListSet, now: float | None = None) -> bool:
    """Whether a remote source was never downloaded or is due for a refresh."""
    now = time.time() if now is None else now
    return any(
        s.kind == "remote" and (s.fetched_at is None or now - s.fetched_at >= lists.config.refresh)
        for s in lists.sources
    )


async def _refresh_remotes(lists: ListSet) -> None:
    """Download when due; rebuild only when a download changed."""
    has_remote = any(is_remote(source) for _c, source in lists.pairs)
    if not has_remote or lists.config.refresh <= 0:
        return  # refresh 0: an offline installation; `filterdns lists update` still works
    while True:
        if stale_remotes(lists):
            try:
                await lists.load(download=True)
            except Exception:  # a refresh must never stop the proxy
                log.exception("lists: refresh failed; the current index stays")
        await asyncio.sleep(_next_due(lists.sources, lists.config.refresh))


async def _watch_local(lists: ListSet) -> None:
    """Rebuild when a local list file changed (checked every second, debounced)."""
    if not any(is_local(source) for _c, source in lists.pairs):
        return
    while True:
        await asyncio.sleep(LIST_POLL)
        if not lists.changed_files():
            continue
        seen = lists.local_stamps()
        await asyncio.sleep(LIST_SETTLE)  # an editor may still be writing
        if lists.local_stamps() == seen:
            await lists.reload_local()


def _next_due(sources: Sequence[SourceStatus], refresh: float) -> float:
    """Seconds until a remote source is due: its refresh period, or a retry after a failure."""
    now = time.time()
    due = [
        RETRY_AFTER_FAILURE
        if s.error is not None or s.fetched_at is None
        else s.fetched_at + refresh - now
        for s in sources
        if s.kind == "remote"
    ]
    return max(MIN_WAIT, min(due, default=refresh), 0.0)
