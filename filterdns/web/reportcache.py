"""A profile's report for the web app (today's or the week's), read at most once a minute.

The report (`querylog.report.collect.read_report`, what `filterdns report --json` prints) reads
every blocked lookup of the period: with a busy week in the log that is a second or two of work
in a worker thread, and that thread competes with the DNS path for the interpreter (bench/
web_bench.py measured the p99 of DNS answers four times as high while a phone polled a week's
report). A dashboard polled every few seconds needs no fresher figures than a minute old, so
each (database, configuration, profile, period, instance) is read once and its result shared
by every request of the next REPORT_TTL seconds, including those that arrive while it is being
read. On a PostgreSQL log the report is of every instance's rows or of one (`instance`), and
says which instances had rows in the period (`instances`, web.sites).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from filterdns.config import Config
from filterdns.errors import FilterDnsError
from filterdns.querylog.report.collect import read_report, report_zone
from filterdns.querylog.report.data import Report
from filterdns.web.sites import sites

PERIODS = ("today", "week")
REPORT_TTL = 60.0  # seconds a report is shared
MAX_ENTRIES = 256  # reports kept: past it, the stale ones go, and if need be all of them

Json = dict[str, object]
Both = tuple[Json, str]  # the report, and its JSON text (made in the thread, not on the loop)
_reports: dict[tuple[str, int, str, str, str | None], tuple[float, asyncio.Task[Both]]] = {}


def period_start(config: Config, period: str, now: float) -> float:
    """The start of "today" (midnight in the report's zone) or of "week" (seven days ago)."""
    if period == "week":
        return now - 7 * 86400
    start = datetime.fromtimestamp(now, report_zone(config))
    return start.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def read_profile_report(
    config: Config, profile: str, period: str, now: float, instance: str | None = None
) -> Json:
    """The report of one profile for the period ending `now` (of one instance's rows, or every
    one's), as JSON (blocking: a thread). A missing database is an empty report; an unreadable
    one, or an instance filter on SQLite, a FilterDnsError."""
    since = period_start(config, period, now)
    path = Path(config.log.database)
    try:
        found = read_report(path, since=since, until=now, profile=profile, client=None,
                            config=config, instance=instance)  # fmt: skip
    except FileNotFoundError:  # nothing logged yet
        found = Report(since, now, report_zone(config), profile, None)
    except FilterDnsError:
        raise
    except Exception as exc:  # sqlite3.Error, OSError: an unreadable file
        raise FilterDnsError(f"{path}: cannot read the report: {exc}") from None
    data = found.to_json()
    if config.log.url is not None:
        data["instances"] = list(sites(config, since, now, instance).names)
    return data


def _both(config: Config, profile: str, period: str, now: float, instance: str | None) -> Both:
    data = read_profile_report(config, profile, period, now, instance)
    return data, json.dumps(data)


async def profile_report(
    config: Config,
    profile: str,
    period: str,
    wall_clock: Callable[[], float],
    clock: Callable[[], float] = time.monotonic,
    *,
    instance: str | None = None,
) -> Both:
    """The report of `profile` for `period` (one of PERIODS), of `instance`'s rows or every
    instance's, at most REPORT_TTL seconds old, and its JSON text."""
    if period not in PERIODS:
        raise ValueError(f"period {period!r} is not one of: {', '.join(PERIODS)}")
    key = (str(config.log.database), id(config), profile, period, instance)
    now = clock()
    found = _reports.get(key)
    if found is None or now - found[0] >= REPORT_TTL:
        if len(_reports) >= MAX_ENTRIES:
            _forget(now)
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(_both, config, profile, period, wall_clock(), instance),
            name=f"report {profile} {period} {instance or 'every instance'}",
        )
        found = _reports[key] = (now, task)
    try:
        return await asyncio.shield(found[1])
    except Exception:  # FilterDnsError, or a bug: not kept for the minute
        if found[1].done() and _reports.get(key) is found:
            del _reports[key]  # the next request tries again
        raise


def _forget(now: float) -> None:
    for key, (made, _) in list(_reports.items()):
        if now - made >= REPORT_TTL:
            del _reports[key]
    if len(_reports) >= MAX_ENTRIES:
        _reports.clear()
