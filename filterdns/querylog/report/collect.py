"""The report's data, read from the log database the server writes (`log.database`).

`read_report` opens the file through `dbfile.open_reader` (read-only, checked as the server
checks it: a file that is no filterdns database, or of a newer schema, is refused with a
message), or, when `log.database` is a PostgreSQL URL, that database through
`pgconn.connect_reader` (the rows of every instance writing there, or of one: `instance`). The
queries are the same on both (querylog.report.source adapts them). `collect` counts the blocked
lookups (`kind = 'blocked'`) of a period `[since, until)`, optionally of one profile or one
device (the address as logged, or the client's name from `clients:`). The result is a plain
`Report`; the renderers and `to_json` turn it into text. Every count is of lookups, the sum of
the rows' `hits` (a row holds the repeats of one lookup within `log.fold_window`, all in its
minute), so folding changes no figure.

- `top_names`: by count, then name; `category` is the one it was blocked for most often.
- `heatmap`: hour of day 0-23 by weekday, in the report's time zone; its cells sum to
  `blocked_total`.
- `bypass_attempts`: see `classify_bypass`.
- `bedtime`: per profile with a `block: all` schedule (its age band's bedtime or its own rules),
  the logged lookups whose time falls inside an occurrence of such a window, in the profile's
  time zone: `lookups` counts every logged lookup (allowed ones are logged only with
  `log.log_allowed`), `blocked` the blocked ones. With a profile filter, that profile only.
- `paused`: per profile, the blocked lookups a pause or a block-all override blocked (told by
  the rule the log row holds, e.g. "paused by anna until 10:45, #4").
- `drops`: log rows the server could not keep in the period (the sum of `drops.count`); the other
  counts are that much short. Not filtered by profile or client.
- `alerts`: the alerts fired in the period, oldest first; with a profile filter, that profile's
  and those counting all profiles.
- `instance` (PostgreSQL only): every count, drops and alerts included, keeps that instance's
  rows alone; None: every instance's.

`blocked_per_profile` counts the blocked lookups per profile alone, as the report counts them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from filterdns.config import Config, ProfileConfig
from filterdns.errors import FilterDnsError
from filterdns.policy.schedule import Window
from filterdns.policy.special import CANARY_NAMES, DDR_NAMES, RELAY_NAMES
from filterdns.policy.timezones import zone_of
from filterdns.policy.values import PAUSE_RULES
from filterdns.querylog.dbfile import open_reader
from filterdns.querylog.report.data import NONE_KEY, AlertRow, BypassAttempt, Report, TopName
from filterdns.querylog.report.source import PG_MINUTE, LogSource, sqlite_source

TOP_NAMES = 20

Where = tuple[str, list[object]]  # an SQL condition on `queries` and its parameters
Db = sqlite3.Connection | LogSource  # the SQLite file, or either database behind the adapter
NOT_SHARED = (
    "an instance filter needs the query log on PostgreSQL (log.database: postgresql://...):"
    " the SQLite log holds this instance's lookups only"
)


@dataclass(slots=True)
class InstanceReport(Report):
    """A report of one instance's rows (`instance`) or every instance's (None)."""

    instance: str | None = None

    def to_json(self) -> dict[str, object]:
        """The documented shape with `instance` after `filters`."""
        data = Report.to_json(self)
        at = list(data).index("filters") + 1
        items = list(data.items())
        return dict([*items[:at], ("instance", self.instance), *items[at:]])


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
    instance: str | None = None,
) -> Report:
    """The report of [since, until) from the PostgreSQL log when `config.log.url` is set (of
    one instance, or every one: None), else from the SQLite file at `path`. FileNotFoundError
    when there is no file, FilterDnsError when it is no filterdns database, when PostgreSQL
    cannot be read or for an instance filter on SQLite, sqlite3.Error when the file is
    unreadable."""
    if instance is not None and config.log.url is None:
        raise FilterDnsError(NOT_SHARED)
    with opened_log(config, path) as source:
        return collect(
            source, since=since, until=until, profile=profile, client=client, config=config,
            instance=instance,
        )  # fmt: skip


@contextlib.contextmanager
def opened_log(config: Config, path: Path | None = None) -> Iterator[LogSource]:
    """The log to read, open: PostgreSQL when `config.log.url` is set, else the SQLite file
    (`path`, or `log.database`). FileNotFoundError when there is no SQLite file yet."""
    if config.log.url is not None:
        from filterdns.querylog import pgconn  # noqa: PLC0415 (psycopg only for PostgreSQL)

        with pgconn.reading(config.log.url) as conn:
            # Compiling the report's few large scans costs more than it saves (0.2 s each).
            conn.execute("SET jit = off")
            yield LogSource(
                lambda sql, params: pgconn.fetch_all(conn, sql, params), "%s", True, PG_MINUTE
            )
        return
    with contextlib.closing(open_reader(path or config.log.database)) as db:
        yield sqlite_source(db)


def build_report(
    db: Db,
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
    db: Db,
    *,
    since: float,
    until: float,
    profile: str | None,
    client: str | None,
    config: Config,
    instance: str | None = None,
) -> Report:
    """The report of the blocked lookups logged in [since, until) (by `instance` alone when
    given: a shared database only)."""
    db = _source(db)
    if instance is not None and not db.shared:
        raise FilterDnsError(NOT_SHARED)
    result = InstanceReport(since, until, report_zone(config), profile, client, instance=instance)
    result.labels = {p.name: p.display_name for p in config.profiles if p.display_name}
    where = _filters(since, until, profile, client, instance)
    blocked: Where = (f"{where[0]} AND kind = 'blocked'", where[1])
    _count_profiles(db, blocked, result)
    _count_names(db, blocked, result)
    _count_hours(db, blocked, result)
    _count_bypass(db, blocked, result)
    _count_paused(db, blocked, result)
    _count_bedtime(db, where, config, profile, result)
    period = _filters(since, until, None, None, instance)
    sql = f"SELECT COALESCE(SUM(count), 0) FROM drops WHERE {period[0]}"
    drops = db.rows(sql, period[1])
    result.drops = int(drops[0][0]) if drops else 0
    result.alerts = _alerts(db, period, profile)
    return result


def blocked_per_profile(db: Db, *, since: float, until: float) -> dict[str, int]:
    """The blocked lookups of [since, until) per profile, busiest first: the report's
    per-profile totals alone (the web app's home page), without the rest of the report."""
    result = Report(since, until, ZoneInfo("UTC"), None, None)
    where = _filters(since, until, None, None, None)
    _count_profiles(_source(db), (f"{where[0]} AND kind = 'blocked'", where[1]), result)
    return {name: sum(counts.values()) for name, counts in result.profiles.items()}


def _source(db: Db) -> LogSource:
    return db if isinstance(db, LogSource) else sqlite_source(db)


def _filters(
    since: float, until: float, profile: str | None, client: str | None, instance: str | None
) -> Where:
    clauses = ["ts >= ?", "ts < ?"]
    params: list[object] = [since, until]
    if instance is not None:
        clauses.append("instance = ?")
        params.append(instance)
    if profile is not None:
        clauses.append("profile = ?")
        params.append(profile)
    if client is not None:
        clauses.append("(client = ? OR client_name = ?)")
        params += [client, client]
    return " AND ".join(clauses), params


def _count_profiles(db: LogSource, blocked: Where, result: Report) -> None:
    """Blocked lookups per profile and category, busiest first; the total."""
    sql = f"SELECT profile, category, SUM(hits) FROM queries WHERE {blocked[0]} GROUP BY 1, 2"
    rows = sorted(db.rows(sql, blocked[1]), key=lambda r: (-r[2], r[0] or "", r[1] or ""))
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


def _count_names(db: LogSource, blocked: Where, result: Report) -> None:
    """The TOP_NAMES most blocked names, each with the category it was blocked for most.

    The database keeps only the names blocked at least as often as the TOP_NAMES-th (ties
    included), so the order by count then name is still Python's, whatever its collation."""
    sql = (
        "WITH per AS (SELECT name, category, SUM(hits) AS n FROM queries"
        f" WHERE {blocked[0]} GROUP BY name, category),"
        " totals AS (SELECT name, SUM(n) AS total FROM per GROUP BY name)"
        " SELECT per.name, per.category, per.n FROM per JOIN totals ON totals.name = per.name"
        " WHERE totals.total >= COALESCE((SELECT total FROM totals"
        f" ORDER BY total DESC LIMIT 1 OFFSET {TOP_NAMES - 1}), 0)"
    )
    per_name: dict[str, Counter[str | None]] = {}
    for name, category, count in db.rows(sql, blocked[1]):
        per_name.setdefault(name, Counter())[category] += int(count)
    totals = sorted(per_name.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    result.top_names = [
        TopName(name, counts.most_common(1)[0][0], sum(counts.values()))
        for name, counts in totals[:TOP_NAMES]
    ]


def _count_paused(db: LogSource, blocked: Where, result: Report) -> None:
    """Blocked lookups a pause or a block-all override blocked, per profile (by the rule)."""
    rules = " OR ".join("rule LIKE ?" for _ in PAUSE_RULES)
    sql = f"SELECT profile, SUM(hits) FROM queries WHERE {blocked[0]} AND ({rules}) GROUP BY 1"
    params = [*blocked[1], *(f"{prefix}%" for prefix in PAUSE_RULES)]
    result.paused = {owner or NONE_KEY: int(count) for owner, count in db.rows(sql, params)}


def _count_hours(db: LogSource, blocked: Where, result: Report) -> None:
    """The heatmap, from the blocked lookups per minute: every zone's offset since 1972 is
    whole minutes, so a minute's lookups share their local hour."""
    sql = f"SELECT {db.minute}, SUM(hits) FROM queries WHERE {blocked[0]} GROUP BY 1"
    for minute, count in db.rows(sql, blocked[1]):
        local = datetime.fromtimestamp(int(minute) * 60, result.zone)
        result.heatmap[local.weekday()][local.hour] += int(count)


def _count_bypass(db: LogSource, blocked: Where, result: Report) -> None:
    sql = (
        "SELECT name, profile, rule, source, SUM(hits) FROM queries "
        f"WHERE {blocked[0]} AND category = 'bypass' GROUP BY 1, 2, 3, 4"
    )
    attempts: Counter[tuple[str, str, str | None]] = Counter()
    for name, owner, rule, source, count in db.rows(sql, blocked[1]):
        attempts[(name, classify_bypass(name, rule, source), owner)] += count
    result.bypass = [
        BypassAttempt(name, kind, count, owner)
        for (name, kind, owner), count in sorted(
            attempts.items(), key=lambda item: (-item[1], item[0][0], item[0][2] or "")
        )
    ]


def _count_bedtime(
    db: LogSource, where: Where, config: Config, only: str | None, result: Report
) -> None:
    """Lookups of each profile (`only` that one) inside its `block: all` windows, and how many
    were blocked: one query for the profiles whose windows fall at the same times (a school's
    classes of one age band)."""
    same: dict[tuple[tuple[float, float], ...], list[str]] = {}
    for profile in config.profiles:
        windows = _block_all_windows(config, profile)
        if windows and only in (None, profile.name):
            tz = zone_of(profile.timezone, config.server.timezone)
            found = _spans(windows, result.since, result.until, tz)
            same.setdefault(tuple((start, end) for start, end in found), []).append(profile.name)
    for spans, names in same.items():
        for name in names:
            result.bedtime[name] = (0, 0)
        if not spans:
            continue
        inside = " OR ".join("(ts >= ? AND ts < ?)" for _ in spans)
        sql = (
            "SELECT profile, SUM(hits), SUM(CASE WHEN kind = 'blocked' THEN hits ELSE 0 END)"
            f" FROM queries WHERE {where[0]} AND profile IN ({', '.join('?' for _ in names)})"
            f" AND ({inside}) GROUP BY profile"
        )
        edges = [edge for span in spans for edge in span]
        for name, lookups, blocked in db.rows(sql, [*where[1], *names, *edges]):
            result.bedtime[name] = (int(lookups), int(blocked))


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


def _alerts(db: LogSource, period: Where, profile: str | None) -> list[AlertRow]:
    sql = (
        "SELECT ts, rule, profile, categories, count, message, delivered FROM alerts "
        f"WHERE {period[0]}"
    )
    params = list(period[1])
    if profile is not None:
        sql += " AND (profile = ? OR profile IS NULL)"
        params.append(profile)
    alerts = []
    for ts, rule, owner, names, count, message, delivered in db.rows(
        f"{sql} ORDER BY ts, id", params
    ):
        listed = tuple(n.strip() for n in str(names).split(",") if n.strip())
        alerts.append(AlertRow(ts, rule, owner, listed, int(count), message, bool(delivered)))
    return alerts
