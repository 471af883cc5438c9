"""The report's data, read from the log database the server writes (`log.database`).

`read_report` opens the file through `dbfile.open_reader` (read-only, checked as the server
checks it: a file that is no filterdns database, or of a newer schema, is refused with a
message) and `collect` counts the blocked lookups (`kind = 'blocked'`) of a period `[since,
until)`, optionally of one profile or one device (the address as logged, or the client's name
from `clients:`). The result is a plain `Report`; the renderers and `to_json` turn it into text.

- `top_names`: by count, then name; `category` is the one it was blocked for most often.
- `heatmap`: hour of day 0-23 by weekday, in the report's time zone; its cells sum to
  `blocked_total`.
- `bypass_attempts`: see `classify_bypass`.
- `bedtime`: per profile with a `block: all` schedule (its age band's bedtime or its own rules),
  the logged lookups whose time falls inside an occurrence of such a window, in the profile's
  time zone: `lookups` counts every logged row (allowed ones are logged only with
  `log.log_allowed`), `blocked` the blocked ones. With a profile filter, that profile only.
- `paused`: per profile, the blocked lookups a pause or a block-all override blocked (told by
  the rule the log row holds, e.g. "paused by anna until 10:45, #4").
- `drops`: log rows the server could not keep in the period (the sum of `drops.count`); the other
  counts are that much short. Not filtered by profile or client.
- `alerts`: the alerts fired in the period, oldest first; with a profile filter, that profile's
  and those counting all profiles.

`blocked_per_profile` counts the blocked lookups per profile alone, as the report counts them.
"""

from __future__ import annotations

import bisect
import contextlib
import sqlite3
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from filterdns.config import Config, ProfileConfig
from filterdns.policy.schedule import Window
from filterdns.policy.special import CANARY_NAMES, DDR_NAMES, RELAY_NAMES
from filterdns.policy.timezones import zone_of
from filterdns.policy.values import PAUSE_RULES
from filterdns.querylog.dbfile import open_reader
from filterdns.querylog.report.data import NONE_KEY, AlertRow, BypassAttempt, Report, TopName

TOP_NAMES = 20

Where = tuple[str, list[object]]  # an SQL condition on `queries` and its parameters


def report_zone(config: Config) -> ZoneInfo:
    """The time zone reports are shown in: `server.timezone`, else the system's."""
    return zone_of(None, config.server.timezone)


def classify_bypass(name: str, rule: str | None, source: str | None) -> str:
    """The kind of a bypass attempt: a heuristic on the name and on the rule and list source
    that blocked it, first match wins.

    The names bypass protection answers itself are "canary" (a browser asking whether it may
    turn on its own encrypted DNS), "relay" (iCloud Private Relay) and "ddr" (discovery of
    encrypted DNS); then a rule or source mentioning "doh", or a name containing "dns", is
    "doh"; a rule, source or name mentioning "vpn" or "proxy" is "vpn"; anything else "other".
    """
    if name in CANARY_NAMES:
        return "canary"
    if name in RELAY_NAMES:
        return "relay"
    if name in DDR_NAMES:
        return "ddr"
    hints = f"{rule or ''} {source or ''}".lower()
    if "doh" in hints or "dns" in name:
        return "doh"
    if any(word in hints or word in name for word in ("vpn", "proxy")):
        return "vpn"
    return "other"


def read_report(
    path: Path,
    *,
    since: float,
    until: float,
    profile: str | None,
    client: str | None,
    config: Config,
) -> Report:
    """The report of [since, until) from the database at `path`; FileNotFoundError when there
    is none, FilterDnsError when it is no filterdns database, sqlite3.Error when unreadable."""
    with contextlib.closing(open_reader(path)) as db:
        return collect(db, since=since, until=until, profile=profile, client=client, config=config)


def build_report(
    db: sqlite3.Connection,
    *,
    since: float,
    until: float,
    profile: str | None,
    client: str | None,
    config: Config,
) -> dict[str, object]:
    """The report of [since, until) in the JSON shape of docs/report-json.md."""
    return collect(
        db, since=since, until=until, profile=profile, client=client, config=config
    ).to_json()


def collect(
    db: sqlite3.Connection,
    *,
    since: float,
    until: float,
    profile: str | None,
    client: str | None,
    config: Config,
) -> Report:
    """The report of the blocked lookups logged in [since, until)."""
    result = Report(since, until, report_zone(config), profile, client)
    result.labels = {p.name: p.display_name for p in config.profiles if p.display_name}
    where = _filters(since, until, profile, client)
    blocked: Where = (f"{where[0]} AND kind = 'blocked'", where[1])
    _count_profiles(db, blocked, result)
    _count_names(db, blocked, result)
    _count_hours(db, blocked, result)
    _count_bypass(db, blocked, result)
    _count_paused(db, blocked, result)
    for candidate in config.profiles:
        if profile is None or candidate.name == profile:
            _count_bedtime(db, where, config, candidate, result)
    sql = "SELECT COALESCE(SUM(count), 0) FROM drops WHERE ts >= ? AND ts < ?"
    drops = _rows(db, sql, [since, until])
    result.drops = int(drops[0][0]) if drops else 0
    result.alerts = _alerts(db, since, until, profile)
    return result


def blocked_per_profile(db: sqlite3.Connection, *, since: float, until: float) -> dict[str, int]:
    """The blocked lookups of [since, until) per profile, busiest first: the report's
    per-profile totals alone (the web app's home page), without the rest of the report."""
    result = Report(since, until, ZoneInfo("UTC"), None, None)
    where = _filters(since, until, None, None)
    _count_profiles(db, (f"{where[0]} AND kind = 'blocked'", where[1]), result)
    return {name: sum(counts.values()) for name, counts in result.profiles.items()}


def _rows(db: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[Any]:
    """The rows of `sql`; none when its table does not exist (an older database)."""
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def _filters(since: float, until: float, profile: str | None, client: str | None) -> Where:
    clauses = ["ts >= ?", "ts < ?"]
    params: list[object] = [since, until]
    if profile is not None:
        clauses.append("profile = ?")
        params.append(profile)
    if client is not None:
        clauses.append("(client = ? OR client_name = ?)")
        params += [client, client]
    return " AND ".join(clauses), params


def _count_profiles(db: sqlite3.Connection, blocked: Where, result: Report) -> None:
    """Blocked lookups per profile and category, busiest first; the total."""
    sql = f"SELECT profile, category, COUNT(*) FROM queries WHERE {blocked[0]} GROUP BY 1, 2"
    rows = sorted(_rows(db, sql, blocked[1]), key=lambda r: (-r[2], r[0] or "", r[1] or ""))
    categories: Counter[str] = Counter()
    for name, category, count in rows:
        per = result.profiles.setdefault(name or NONE_KEY, {})
        per[category or NONE_KEY] = count
        categories[category or NONE_KEY] += count
        result.blocked_total += count
    result.profiles = dict(
        sorted(result.profiles.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    )
    result.categories = dict(sorted(categories.items(), key=lambda item: (-item[1], item[0])))


def _count_names(db: sqlite3.Connection, blocked: Where, result: Report) -> None:
    """The TOP_NAMES most blocked names, each with the category it was blocked for most."""
    sql = f"SELECT name, category, COUNT(*) FROM queries WHERE {blocked[0]} GROUP BY 1, 2"
    per_name: dict[str, Counter[str | None]] = {}
    for name, category, count in _rows(db, sql, blocked[1]):
        per_name.setdefault(name, Counter())[category] += count
    totals = sorted(per_name.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    result.top_names = [
        TopName(name, counts.most_common(1)[0][0], sum(counts.values()))
        for name, counts in totals[:TOP_NAMES]
    ]


def _count_paused(db: sqlite3.Connection, blocked: Where, result: Report) -> None:
    """Blocked lookups a pause or a block-all override blocked, per profile (by the rule)."""
    rules = " OR ".join("rule LIKE ?" for _ in PAUSE_RULES)
    sql = f"SELECT profile, COUNT(*) FROM queries WHERE {blocked[0]} AND ({rules}) GROUP BY 1"
    params = [*blocked[1], *(f"{prefix}%" for prefix in PAUSE_RULES)]
    result.paused = {owner or NONE_KEY: int(count) for owner, count in _rows(db, sql, params)}


def _count_hours(db: sqlite3.Connection, blocked: Where, result: Report) -> None:
    for (ts,) in _rows(db, f"SELECT ts FROM queries WHERE {blocked[0]}", blocked[1]):
        local = datetime.fromtimestamp(ts, result.zone)
        result.heatmap[local.weekday()][local.hour] += 1


def _count_bypass(db: sqlite3.Connection, blocked: Where, result: Report) -> None:
    sql = (
        "SELECT name, profile, rule, source, COUNT(*) FROM queries "
        f"WHERE {blocked[0]} AND category = 'bypass' GROUP BY 1, 2, 3, 4"
    )
    attempts: Counter[tuple[str, str, str | None]] = Counter()
    for name, owner, rule, source, count in _rows(db, sql, blocked[1]):
        attempts[(name, classify_bypass(name, rule, source), owner)] += count
    result.bypass = [
        BypassAttempt(name, kind, count, owner)
        for (name, kind, owner), count in sorted(
            attempts.items(), key=lambda item: (-item[1], item[0][0], item[0][2] or "")
        )
    ]


def _count_bedtime(
    db: sqlite3.Connection, where: Where, config: Config, profile: ProfileConfig, result: Report
) -> None:
    """Lookups of `profile` inside its `block: all` windows, and how many were blocked."""
    windows = _block_all_windows(config, profile)
    if not windows:
        return
    tz = zone_of(profile.timezone, config.server.timezone)
    spans = _spans(windows, result.since, result.until, tz)
    starts = [span[0] for span in spans]
    lookups = blocked = 0
    sql = f"SELECT ts, kind FROM queries WHERE {where[0]} AND profile = ?"
    for ts, kind in _rows(db, sql, [*where[1], profile.name]):
        if _inside(spans, starts, ts):
            lookups += 1
            blocked += kind == "blocked"
    result.bedtime[profile.name] = (lookups, blocked)


def _block_all_windows(config: Config, profile: ProfileConfig) -> list[Window]:
    try:
        rules = config.schedules_of(profile)
    except KeyError:
        rules = profile.schedules
    return [rule.window for rule in rules if rule.block_all]


def _spans(
    windows: Sequence[Window], since: float, until: float, tz: ZoneInfo
) -> list[list[float]]:
    """The merged [start, end) unix times of the windows' occurrences around the period."""
    first = datetime.fromtimestamp(since, tz).date() - timedelta(days=2)
    last = datetime.fromtimestamp(until, tz).date() + timedelta(days=1)
    spans: list[tuple[float, float]] = []
    day = first
    while day <= last:
        for window in windows:
            occurrence = window.occurrence(day, tz)
            if occurrence is not None:
                spans.append((occurrence[0].timestamp(), occurrence[1].timestamp()))
        day += timedelta(days=1)
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _inside(spans: list[list[float]], starts: list[float], ts: float) -> bool:
    index = bisect.bisect_right(starts, ts) - 1
    return index >= 0 and ts < spans[index][1]


def _alerts(
    db: sqlite3.Connection, since: float, until: float, profile: str | None
) -> list[AlertRow]:
    sql = (
        "SELECT ts, rule, profile, categories, count, message, delivered FROM alerts "
        "WHERE ts >= ? AND ts < ?"
    )
    params: list[object] = [since, until]
    if profile is not None:
        sql += " AND (profile = ? OR profile IS NULL)"
        params.append(profile)
    alerts = []
    for ts, rule, owner, names, count, message, delivered in _rows(
        db, f"{sql} ORDER BY ts, id", params
    ):
        listed = tuple(n.strip() for n in str(names).split(",") if n.strip())
        alerts.append(AlertRow(ts, rule, owner, listed, int(count), message, bool(delivered)))
    return alerts
