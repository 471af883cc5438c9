"""Which sites (instances) the web app's figures come from, on a PostgreSQL log many instances
write, and `?instance=NAME`, the filter that keeps one site's rows.

On such a log the home page, a child's page and the API's report read every instance's rows
unless `?instance=` names one (an instance name, checked as `report --instance` checks it; a
name no instance logged under gives empty figures, not an error). `Sites` is what a page says
about it: the instances with rows in the period, found by a skip scan of the (instance, ts)
index (a step per instance, not a row), and the one chosen. On SQLite there is one instance and
nothing of this shows: the filter is ignored by the pages.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from urllib.parse import urlencode

from filterdns.config import Config
from filterdns.config.server import parse_instance
from filterdns.errors import FilterDnsError
from filterdns.querylog.report.collect import opened_log
from filterdns.querylog.report.source import LogSource

# One index probe per instance: the next instance name after the last found, in the period.
INSTANCES_SQL = """WITH RECURSIVE sites(instance) AS (
  (SELECT instance FROM queries WHERE ts >= ? AND ts < ? ORDER BY instance LIMIT 1)
  UNION ALL
  SELECT (SELECT q.instance FROM queries q WHERE q.instance > s.instance AND q.ts >= ?
          AND q.ts < ? ORDER BY q.instance LIMIT 1)
  FROM sites s WHERE s.instance IS NOT NULL
)
SELECT instance FROM sites WHERE instance IS NOT NULL"""
MAX_SITES = 1000  # sites named on a page; past it, the count still says how many


@dataclass(frozen=True, slots=True)
class Sites:
    """The instances whose rows a page's figures hold: `names` (in the period), `chosen` (the
    filter, None: every one); `shared` False on SQLite (nothing is shown)."""

    shared: bool = False
    names: tuple[str, ...] = ()
    chosen: str | None = None

    @property
    def several(self) -> bool:
        """Whether rows of more than one instance are shown (alerts then say their site)."""
        return self.shared and self.chosen is None and len(self.names) > 1

    def link(self, base: str, name: str | None, span: str = "") -> str:
        """`base` with the query that shows instance `name` (None: every one), and `span`."""
        query = {"span": span} if span else {}
        if name is not None:
            query["instance"] = name
        return f"{base}?{urlencode(query)}" if query else base


@dataclass(frozen=True, slots=True)
class SiteAlert:
    """An alert as a page lists it: when, what it said, the instance that fired it."""

    ts: float
    message: str
    instance: str | None


def chosen(config: Config, value: str | None) -> str | None:
    """The instance `?instance=` asks for; None for none, or on SQLite (one instance). ValueError
    saying the rule when it is no instance name."""
    if value is None or value == "" or config.log.url is None:
        return None
    return parse_instance(value)


def sites(config: Config, since: float, until: float, instance: str | None) -> Sites:
    """The instances with rows in [since, until) and the one chosen (blocking: a worker
    thread); none found when the log cannot be read (the figures say so themselves)."""
    if config.log.url is None:
        return Sites()
    try:
        with opened_log(config) as log:
            rows = log.rows(INSTANCES_SQL, (since, until, since, until))
    except (FileNotFoundError, FilterDnsError, sqlite3.Error):
        rows = []
    return Sites(True, tuple(str(row[0]) for row in rows[:MAX_SITES]), instance)


def blocked_at(log: LogSource, since: float, until: float, instance: str) -> dict[str, int]:
    """One instance's blocked lookups of [since, until) per profile (the home page's counts)."""
    rows = log.rows(
        "SELECT profile, SUM(hits) FROM queries WHERE ts >= ? AND ts < ? AND instance = ?"
        " AND kind = 'blocked' AND profile IS NOT NULL GROUP BY profile",
        (since, until, instance),
    )
    return {str(name): int(count) for name, count in rows}


def alerts(
    config: Config, since: float, until: float, profile: str, instance: str | None
) -> list[SiteAlert]:
    """The alerts of [since, until) for `profile` (and those counting every profile), oldest
    first, each with its instance (blocking: a worker thread); PostgreSQL only."""
    sql = (
        "SELECT ts, message, instance FROM alerts WHERE ts >= ? AND ts < ?"
        " AND (profile = ? OR profile IS NULL)"
    )
    params: list[object] = [since, until, profile]
    if instance is not None:
        sql += " AND instance = ?"
        params.append(instance)
    try:
        with opened_log(config) as log:
            rows = log.rows(f"{sql} ORDER BY ts, id", params)
    except (FileNotFoundError, FilterDnsError, sqlite3.Error):
        return []
    return [SiteAlert(float(ts), str(message), str(site)) for ts, message, site in rows]
