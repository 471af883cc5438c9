"""The `report` and `tail` commands: blocked lookups read back from the log database.

Both only read the SQLite database the server writes (`log.database`, schema in store.py),
opened read-only (`file:PATH?mode=ro`), with the standard library's sqlite3.

`report` counts the blocked lookups (`kind = 'blocked'`) of a period (`--since 24h|7d|30d` or
any duration, ending now), optionally of one profile (`--profile`) or one device (`--client`: the
address as logged, or the client's name from `clients:`). It prints rich tables, or `--json`
(the shape below), or writes `--html FILE`: one self-contained page (inline CSS, CSS bar charts,
no scripts, fonts or network, print rules) for a parent or head teacher. Headings and the page
are in English or Vietnamese (`--lang en|vi`, default `report.lang`); `report.footer` (e.g. where
to report harmful content) ends the page.

The JSON shape (version 1; keys are only ever added). Times are ISO 8601 in the report's time
zone: `server.timezone`, else the system's. docs/report-json.md documents the same shape.

    {"version": 1, "since": iso, "until": iso, "timezone": "Asia/Ho_Chi_Minh",
     "filters": {"profile": str | null, "client": str | null},
     "blocked_total": int,
     "profiles": {profile: {"blocked": int, "categories": {category: int}}},
     "categories": {category: int},
     "top_names": [{"name": str, "category": str | null, "count": int}],  # at most 20
     "heatmap": {"mon": [24 ints], ..., "sun": [24 ints]},  # blocked lookups by weekday, hour
     "bypass_attempts": [{"name": str, "kind": str, "count": int, "profile": str | null}],
     "bedtime": {profile: {"lookups": int, "blocked": int}},
     "drops": int,
     "alerts": [{"ts": iso, "rule": str, "profile": str | null, "categories": [str],
                 "count": int, "message": str, "delivered": bool}]}

- A missing profile or category is counted under the key "(none)" in `profiles` and
  `categories` (a name from a profile's own `block:` list has no category).
- `top_names`: by count, then name; `category` is the one it was blocked for most often.
- `heatmap`: hour of day 0-23 by weekday, in the report's time zone; its cells sum to
  `blocked_total`.
- `bypass_attempts`: blocked lookups of the `bypass` category per name, kind and profile, most
  first. The kind is a heuristic on the name and on the rule and list source that blocked it:
  `use-application-dns.net` is "canary" (a browser asking whether it may turn on its own
  encrypted DNS); `mask.icloud.com` and `mask-h2.icloud.com` are "relay" (iCloud Private Relay);
  `_dns.resolver.arpa` is "ddr" (discovery of encrypted DNS); a rule or source mentioning "doh",
  or a name containing "dns", is "doh"; a rule, source or name mentioning "vpn" or "proxy" is
  "vpn"; anything else is "other".
- `bedtime`: per profile with a `block: all` schedule (its age band's bedtime or its own rules),
  the logged lookups whose time falls inside an occurrence of such a window, in the profile's
  time zone: `lookups` counts every logged row (allowed ones are logged only with
  `log.log_allowed`), `blocked` the blocked ones. With `--profile`, that profile only.
- `drops`: log rows the server could not keep in the period (the sum of `drops.count`); the other
  counts are that much short. Not filtered by profile or client.
- `alerts`: the alerts fired in the period, oldest first; with `--profile`, that profile's and
  those counting all profiles.

`tail` follows the database: every 0.5 s it reads the blocked lookups logged since the last
read and shows them (a live table of the last 20 on a terminal, plain lines
`time profile client name category reason` otherwise, one JSON object per line with `--json`)
until interrupted.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import html
import json
import math
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from filterdns.config import Config, ProfileConfig
from filterdns.config.duration import parse_duration
from filterdns.errors import FilterDnsError
from filterdns.policy.schedule import DAYS, Window
from filterdns.policy.timezones import zone_of
from filterdns.querylog.dbfile import open_reader

JSON_VERSION = 1
TOP_NAMES = 20
TAIL_ROWS = 20
POLL_INTERVAL = 0.5
NONE_KEY = "(none)"
SHADES = "░▒▓█"
BYPASS_KINDS = ("canary", "relay", "ddr", "doh", "vpn", "other")
CANARY = "use-application-dns.net"
RELAY = frozenset({"mask.icloud.com", "mask-h2.icloud.com"})
DDR = "_dns.resolver.arpa"
TIME_FORMAT = "%Y-%m-%d %H:%M"
DASH = "\u2013"  # between the ends of the period

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Blocked lookups report",
        "period": "Period",
        "timezone": "time zone",
        "profile": "Profile",
        "client": "Device",
        "all": "all",
        "total": "Blocked lookups",
        "by_profile": "By profile",
        "categories": "Categories",
        "category": "Category",
        "count": "Count",
        "top_names": "Most blocked names",
        "name": "Name",
        "by_hour": "By hour of day",
        "hour": "Hour",
        "bypass": "Attempts to get around the filter",
        "bypass_none": "No attempts to get around the filter.",
        "kind": "Kind",
        "bedtime": "Activity at bedtime",
        "bedtime_none": "No profile has a bedtime schedule.",
        "lookups": "Lookups",
        "blocked": "Blocked",
        "drops": "Lost log entries",
        "drops_none": "No log entries were lost.",
        "drops_some": "{count} log entries were lost in this period; the counts above are short.",
        "alerts": "Alerts",
        "alerts_none": "No alerts.",
        "time": "Time",
        "rule": "Rule",
        "message": "Message",
        "delivered": "Delivered",
        "yes": "yes",
        "no": "no",
        "none": "Nothing blocked in this period.",
        "legend": "darker: more blocked lookups; the busiest hour had {max}",
        "wrote": "wrote {path}",
        "no_database": "no log database at {path}; is the server running with its log?",
        "bad_since": "--since: {error}",
        "days": "mon tue wed thu fri sat sun",
        "kind_canary": "browser encrypted-DNS check",
        "kind_relay": "iCloud Private Relay",
        "kind_ddr": "encrypted DNS discovery",
        "kind_doh": "DNS over HTTPS",
        "kind_vpn": "VPN or proxy",
        "kind_other": "other",
    },
    "vi": {
        "title": "Báo cáo truy cập bị chặn",
        "period": "Khoảng thời gian",
        "timezone": "múi giờ",
        "profile": "Hồ sơ",
        "client": "Thiết bị",
        "all": "tất cả",
        "total": "Lượt truy cập bị chặn",
        "by_profile": "Theo hồ sơ",
        "categories": "Danh mục",
        "category": "Danh mục",
        "count": "Số lượt",
        "top_names": "Tên miền bị chặn nhiều nhất",
        "name": "Tên miền",
        "by_hour": "Theo giờ trong ngày",
        "hour": "Giờ",
        "bypass": "Cố gắng vượt rào chặn",
        "bypass_none": "Không có lần nào cố gắng vượt rào chặn.",
        "kind": "Loại",
        "bedtime": "Hoạt động trong giờ ngủ",
        "bedtime_none": "Không có hồ sơ nào có lịch giờ ngủ.",
        "lookups": "Lượt truy cập",
        "blocked": "Bị chặn",
        "drops": "Nhật ký bị mất",
        "drops_none": "Không có mục nhật ký nào bị mất.",
        "drops_some": "{count} mục nhật ký bị mất trong khoảng thời gian này; "
        "các số liệu trên thấp hơn thực tế.",
        "alerts": "Cảnh báo",
        "alerts_none": "Không có cảnh báo.",
        "time": "Thời gian",
        "rule": "Quy tắc",
        "message": "Nội dung",
        "delivered": "Đã gửi",
        "yes": "có",
        "no": "không",
        "none": "Không có truy cập nào bị chặn trong khoảng thời gian này.",
        "legend": "màu càng đậm: càng nhiều lượt bị chặn; giờ nhiều nhất có {max} lượt",
        "wrote": "đã ghi {path}",
        "no_database": "không có cơ sở dữ liệu nhật ký tại {path}; máy chủ có đang chạy không?",
        "bad_since": "--since: {error}",
        "days": "T2 T3 T4 T5 T6 T7 CN",
        "kind_canary": "trình duyệt dò DNS mã hóa",
        "kind_relay": "iCloud Private Relay",
        "kind_ddr": "tự dò DNS mã hóa",
        "kind_doh": "DNS qua HTTPS",
        "kind_vpn": "VPN hoặc proxy",
        "kind_other": "khác",
    },
}
LANGUAGES = tuple(TEXTS)


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """Add `report` and `tail` to the command-line parser; returns them (for -c)."""
    report_parser = sub.add_parser("report", help="blocked lookups of a period, for parents")
    report_parser.add_argument(
        "--since", default="7d", help="the period ending now: 24h, 7d, 30d or any duration"
    )
    report_parser.add_argument("--profile", help="only this profile")
    report_parser.add_argument("--client", help="only this device: its address or client name")
    report_parser.add_argument("--json", action="store_true", help="machine-readable output")
    report_parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML page")
    report_parser.add_argument(
        "--lang", choices=LANGUAGES, help="language of headings and page (default: report.lang)"
    )
    tail_parser = sub.add_parser("tail", help="blocked lookups as they happen")
    tail_parser.add_argument("--profile", help="only this profile")
    tail_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    return [report_parser, tail_parser]


# Reading the database


def open_database(path: Path) -> sqlite3.Connection:
    """The log database at `path`, read-only, checked as the server checks it (dbfile);
    FileNotFoundError when there is none, FilterDnsError saying what else is wrong."""
    return open_reader(path)


def _rows(db: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[Any]:
    """The rows of `sql`; none when its table does not exist (an older database)."""
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def _setting(config: Config, key: str, default: str) -> str:
    value = getattr(getattr(config, "report", None), key, default)
    return value if isinstance(value, str) else default


def report_zone(config: Config) -> ZoneInfo:
    """The time zone reports are shown in: `server.timezone`, else the system's."""
    return zone_of(None, config.server.timezone)


def classify_bypass(name: str, rule: str | None, source: str | None) -> str:
    """The kind of a bypass attempt; the heuristic is in the module docstring."""
    if name == CANARY:
        return "canary"
    if name in RELAY:
        return "relay"
    if name == DDR:
        return "ddr"
    hints = f"{rule or ''} {source or ''}".lower()
    if "doh" in hints or "dns" in name:
        return "doh"
    if any(word in hints or word in name for word in ("vpn", "proxy")):
        return "vpn"
    return "other"


@dataclass(frozen=True, slots=True)
class TopName:
    name: str
    category: str | None
    count: int


@dataclass(frozen=True, slots=True)
class BypassAttempt:
    name: str
    kind: str
    count: int
    profile: str | None


@dataclass(frozen=True, slots=True)
class AlertRow:
    ts: float
    rule: str
    profile: str | None
    categories: tuple[str, ...]
    count: int
    message: str
    delivered: bool


@dataclass(slots=True)
class Report:
    """What `report` shows; `to_json` gives the documented shape."""

    since: float
    until: float
    zone: ZoneInfo
    profile: str | None
    client: str | None
    blocked_total: int = 0
    profiles: dict[str, dict[str, int]] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    top_names: list[TopName] = field(default_factory=list)
    heatmap: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in DAYS])
    bypass: list[BypassAttempt] = field(default_factory=list)
    bedtime: dict[str, tuple[int, int]] = field(default_factory=dict)
    drops: int = 0
    alerts: list[AlertRow] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # profile -> its display_name

    def shown(self, profile: str) -> str:
        """A profile as people call it: "Bình (lớp 6A)", else its name."""
        return self.labels.get(profile, profile)

    def iso(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).isoformat(timespec="seconds")

    def local(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).strftime(TIME_FORMAT)

    def to_json(self) -> dict[str, object]:
        return {
            "version": JSON_VERSION,
            "since": self.iso(self.since),
            "until": self.iso(self.until),
            "timezone": self.zone.key,
            "filters": {"profile": self.profile, "client": self.client},
            "display_names": dict(self.labels),
            "blocked_total": self.blocked_total,
            "profiles": {
                name: {"blocked": sum(counts.values()), "categories": dict(counts)}
                for name, counts in self.profiles.items()
            },
            "categories": dict(self.categories),
            "top_names": [
                {"name": t.name, "category": t.category, "count": t.count} for t in self.top_names
            ],
            "heatmap": {day: list(hours) for day, hours in zip(DAYS, self.heatmap, strict=True)},
            "bypass_attempts": [
                {"name": b.name, "kind": b.kind, "count": b.count, "profile": b.profile}
                for b in self.bypass
            ],
            "bedtime": {
                name: {"lookups": lookups, "blocked": blocked}
                for name, (lookups, blocked) in self.bedtime.items()
            },
            "drops": self.drops,
            "alerts": [
                {
                    "ts": self.iso(a.ts),
                    "rule": a.rule,
                    "profile": a.profile,
                    "categories": list(a.categories),
                    "count": a.count,
                    "message": a.message,
                    "delivered": a.delivered,
                }
                for a in self.alerts
            ],
        }


def _filters(
    since: float, until: float, profile: str | None, client: str | None
) -> tuple[str, list[object]]:
    clauses = ["ts >= ?", "ts < ?"]
    params: list[object] = [since, until]
    if profile is not None:
        clauses.append("profile = ?")
        params.append(profile)
    if client is not None:
        clauses.append("(client = ? OR client_name = ?)")
        params += [client, client]
    return " AND ".join(clauses), params


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
    where, params = _filters(since, until, profile, client)
    blocked = f"{where} AND kind = 'blocked'"

    sql = f"SELECT profile, category, COUNT(*) FROM queries WHERE {blocked} GROUP BY 1, 2"
    rows = sorted(_rows(db, sql, params), key=lambda r: (-r[2], r[0] or "", r[1] or ""))
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

    sql = f"SELECT name, category, COUNT(*) FROM queries WHERE {blocked} GROUP BY 1, 2"
    per_name: dict[str, Counter[str | None]] = {}
    for name, category, count in _rows(db, sql, params):
        per_name.setdefault(name, Counter())[category] += count
    totals = sorted(per_name.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    result.top_names = [
        TopName(name, counts.most_common(1)[0][0], sum(counts.values()))
        for name, counts in totals[:TOP_NAMES]
    ]

    for (ts,) in _rows(db, f"SELECT ts FROM queries WHERE {blocked}", params):
        local = datetime.fromtimestamp(ts, result.zone)
        result.heatmap[local.weekday()][local.hour] += 1

    sql = (
        "SELECT name, profile, rule, source, COUNT(*) FROM queries "
        f"WHERE {blocked} AND category = 'bypass' GROUP BY 1, 2, 3, 4"
    )
    attempts: Counter[tuple[str, str, str | None]] = Counter()
    for name, owner, rule, source, count in _rows(db, sql, params):
        attempts[(name, classify_bypass(name, rule, source), owner)] += count
    result.bypass = [
        BypassAttempt(name, kind, count, owner)
        for (name, kind, owner), count in sorted(
            attempts.items(), key=lambda item: (-item[1], item[0][0], item[0][2] or "")
        )
    ]

    for candidate in config.profiles:
        if profile is not None and candidate.name != profile:
            continue
        windows = _block_all_windows(config, candidate)
        if not windows:
            continue
        tz = zone_of(candidate.timezone, config.server.timezone)
        spans = _spans(windows, since, until, tz)
        starts = [span[0] for span in spans]
        lookups = blocked_count = 0
        sql = f"SELECT ts, kind FROM queries WHERE {where} AND profile = ?"
        for ts, kind in _rows(db, sql, [*params, candidate.name]):
            if _inside(spans, starts, ts):
                lookups += 1
                blocked_count += kind == "blocked"
        result.bedtime[candidate.name] = (lookups, blocked_count)

    sql = "SELECT COALESCE(SUM(count), 0) FROM drops WHERE ts >= ? AND ts < ?"
    drops = _rows(db, sql, [since, until])
    result.drops = int(drops[0][0]) if drops else 0

    sql = (
        "SELECT ts, rule, profile, categories, count, message, delivered FROM alerts "
        "WHERE ts >= ? AND ts < ?"
    )
    alert_params: list[object] = [since, until]
    if profile is not None:
        sql += " AND (profile = ? OR profile IS NULL)"
        alert_params.append(profile)
    for ts, rule, owner, names, count, message, delivered in _rows(
        db, f"{sql} ORDER BY ts, id", alert_params
    ):
        listed = tuple(n.strip() for n in str(names).split(",") if n.strip())
        result.alerts.append(
            AlertRow(ts, rule, owner, listed, int(count), message, bool(delivered))
        )
    return result


def build_report(
    db: sqlite3.Connection,
    *,
    since: float,
    until: float,
    profile: str | None,
    client: str | None,
    config: Config,
) -> dict[str, object]:
    """The report of [since, until) in the JSON shape of the module docstring."""
    return collect(
        db, since=since, until=until, profile=profile, client=client, config=config
    ).to_json()


# report


def report(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Print (or write as JSON or HTML) the report of the period `--since` ending now."""
    lang = getattr(args, "lang", None) or _setting(config, "lang", "en")
    texts = TEXTS.get(lang, TEXTS["en"])
    try:
        seconds = parse_duration(getattr(args, "since", None) or "7d")
    except ValueError as exc:
        console.print(f"[red]{escape(texts['bad_since'].format(error=exc))}[/red]")
        return 2
    until = time.time()
    path = Path(config.log.database)
    try:
        with contextlib.closing(open_database(path)) as db:
            result = collect(
                db,
                since=until - seconds,
                until=until,
                profile=getattr(args, "profile", None),
                client=getattr(args, "client", None),
                config=config,
            )
    except FileNotFoundError:
        console.print(f"[red]{escape(texts['no_database'].format(path=path))}[/red]")
        return 1
    except FilterDnsError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 1
    except sqlite3.Error as exc:
        console.print(f"[red]{escape(str(path))}: {escape(str(exc))}[/red]")
        return 1
    footer = _setting(config, "footer", "")
    html_path = getattr(args, "html", None)
    if html_path:
        Path(html_path).write_text(render_html(result, lang, footer), encoding="utf-8")
    if getattr(args, "json", False):
        text = json.dumps(result.to_json(), indent=2)
        console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
    elif html_path:
        console.print(escape(texts["wrote"].format(path=html_path)))
    else:
        print_report(console, result, lang, footer)
    return 0


def _heading(texts: dict[str, str], key: str) -> Text:
    return Text(f"\n{texts[key]}", style="bold underline")


def _count_table(texts: dict[str, str], *columns: str) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in columns:
        justify = "right" if column in ("count", "lookups", "blocked") else "left"
        table.add_column(texts[column], justify=justify)  # type: ignore[arg-type]
    return table


def heat_lines(result: Report, texts: dict[str, str]) -> list[Text]:
    """The heat map as text: a row of two-character cells per weekday, shaded by count."""
    labels = texts["days"].split()
    width = max(len(label) for label in labels) + 1
    header = " " * width + "".join(f"{hour:<6}" for hour in range(0, 24, 3))
    lines = [Text(header, style="dim")]
    peak = max(max(row) for row in result.heatmap)
    for label, row in zip(labels, result.heatmap, strict=True):
        line = Text(f"{label:<{width}}")
        for count in row:
            if count == 0:
                line.append("··", style="dim")
            else:
                shade = SHADES[min(len(SHADES), math.ceil(count / peak * len(SHADES))) - 1]
                line.append(shade * 2, style="red")
        lines.append(line)
    lines.append(Text(texts["legend"].format(max=peak), style="dim"))
    return lines


def print_report(console: Console, result: Report, lang: str, footer: str = "") -> None:
    """The report as rich tables, headings in `lang`."""
    texts = TEXTS.get(lang, TEXTS["en"])
    console.print(Text(texts["title"], style="bold"))
    console.print(
        f"{texts['period']}: {result.local(result.since)} {DASH} {result.local(result.until)} "
        f"({texts['timezone']} {result.zone.key})",
        markup=False,
        highlight=False,
    )
    everything = texts["all"]
    console.print(
        f"{texts['profile']}: {result.shown(result.profile) if result.profile else everything}; "
        f"{texts['client']}: {result.client or everything}",
        markup=False,
        highlight=False,
    )
    console.print(Text(f"{texts['total']}: {result.blocked_total}", style="bold"))

    console.print(_heading(texts, "by_profile"))
    if result.profiles:
        table = _count_table(texts, "profile", "category", "count")
        for name, counts in result.profiles.items():
            for category, count in counts.items():
                table.add_row(escape(result.shown(name)), escape(category), str(count))
        console.print(table)
        console.print(_heading(texts, "categories"))
        table = _count_table(texts, "category", "count")
        for category, count in result.categories.items():
            table.add_row(escape(category), str(count))
        console.print(table)
    else:
        console.print(texts["none"])

    console.print(_heading(texts, "top_names"))
    if result.top_names:
        table = _count_table(texts, "name", "category", "count")
        for top in result.top_names:
            table.add_row(escape(top.name), escape(top.category or "-"), str(top.count))
        console.print(table)
    else:
        console.print(texts["none"])

    console.print(_heading(texts, "by_hour"))
    console.print(*heat_lines(result, texts), sep="\n")

    console.print(_heading(texts, "bypass"))
    if result.bypass:
        table = _count_table(texts, "name", "kind", "profile", "count")
        for attempt in result.bypass:
            table.add_row(
                escape(attempt.name),
                escape(texts[f"kind_{attempt.kind}"]),
                escape(result.shown(attempt.profile) if attempt.profile else "-"),
                str(attempt.count),
                style="bold red",
            )
        console.print(table)
    else:
        console.print(texts["bypass_none"])

    console.print(_heading(texts, "bedtime"))
    if result.bedtime:
        table = _count_table(texts, "profile", "lookups", "blocked")
        for name, (lookups, blocked) in result.bedtime.items():
            table.add_row(escape(result.shown(name)), str(lookups), str(blocked))
        console.print(table)
    else:
        console.print(texts["bedtime_none"])

    console.print(_heading(texts, "drops"))
    if result.drops:
        message = texts["drops_some"].format(count=result.drops)
        console.print(f"[yellow]{escape(message)}[/yellow]")
    else:
        console.print(texts["drops_none"])

    console.print(_heading(texts, "alerts"))
    if result.alerts:
        table = _count_table(texts, "time", "rule", "profile", "category", "count", "message")
        table.add_column(texts["delivered"])
        for alert in result.alerts:
            table.add_row(
                result.local(alert.ts),
                escape(alert.rule),
                escape(result.shown(alert.profile) if alert.profile else everything),
                escape(", ".join(alert.categories)),
                str(alert.count),
                escape(alert.message),
                texts["yes"] if alert.delivered else f"[red]{texts['no']}[/red]",
            )
        console.print(table)
    else:
        console.print(texts["alerts_none"])
    if footer:
        console.print(Text(f"\n{footer}", style="italic"))


# The HTML page

CSS = """
:root { --ink: #1d2433; --muted: #5b6577; --line: #d9dee7; --bar: #3b6fb6; --red: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; padding-bottom: .2rem;
  border-bottom: 2px solid var(--line); }
.meta { color: var(--muted); margin: .15rem 0; }
.total { font-size: 1.25rem; margin: 1rem 0; }
.total strong { font-size: 2rem; margin-right: .4rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.barcell { width: 40%; }
.bar { height: .8rem; background: var(--bar); border-radius: 2px; min-width: 2px; }
.heat { table-layout: fixed; }
.heat td, .heat th { padding: 0; height: 1.4rem; text-align: center; font-size: .7rem;
  border: 1px solid #fff; }
.heat th.day { width: 3rem; text-align: left; padding-left: .25rem; }
.legend { color: var(--muted); font-size: .85rem; }
.warning { color: var(--red); font-weight: 600; }
section.bypass h2 { color: var(--red); border-color: var(--red); }
section.bypass td { color: var(--red); }
footer { margin-top: 2rem; padding-top: .75rem; border-top: 1px solid var(--line);
  color: var(--muted); }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print {
  @page { margin: 1.5cm; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  section { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  tr { break-inside: avoid; page-break-inside: avoid; }
}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _bar_rows(rows: Sequence[tuple[Sequence[str], int]], peak: int) -> list[str]:
    out = []
    for cells, count in rows:
        width = 100.0 * count / peak if peak else 0.0
        texts = "".join(f"<td>{_e(cell)}</td>" for cell in cells)
        out.append(
            f'<tr>{texts}<td class="n">{count}</td><td class="barcell">'
            f'<div class="bar" style="width:{width:.1f}%"></div></td></tr>'
        )
    return out


def _table(headers: Sequence[str], rows: list[str], numeric: Sequence[int] = ()) -> str:
    head = "".join(
        f'<th class="n">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_html(result: Report, lang: str, footer: str = "") -> str:
    """One self-contained HTML page of the report (no scripts, fonts or network)."""
    texts = TEXTS.get(lang, TEXTS["en"])
    everything = texts["all"]
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{_e(lang)}">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(texts['title'])}</title>",
        f"<style>{CSS}</style></head>",
        "<body><main>",
        f"<h1>{_e(texts['title'])}</h1>",
        f'<p class="meta">{_e(texts["period"])}: {_e(result.local(result.since))} {DASH} '
        f"{_e(result.local(result.until))} ({_e(texts['timezone'])} {_e(result.zone.key)})</p>",
        f'<p class="meta">{_e(texts["profile"])}: '
        f"{_e(result.shown(result.profile) if result.profile else everything)}; "
        f"{_e(texts['client'])}: {_e(result.client or everything)}</p>",
        f'<p class="total"><strong>{result.blocked_total}</strong>{_e(texts["total"])}</p>',
    ]

    parts.append(f"<section><h2>{_e(texts['by_profile'])}</h2>")
    if result.profiles:
        bars: list[tuple[Sequence[str], int]] = [
            ((result.shown(name), category), count)
            for name, counts in result.profiles.items()
            for category, count in counts.items()
        ]
        peak = max(count for _, count in bars)
        headers = [texts["profile"], texts["category"], texts["count"], ""]
        parts.append(_table(headers, _bar_rows(bars, peak), numeric=(2,)))
    else:
        parts.append(f"<p>{_e(texts['none'])}</p>")
    parts.append("</section>")

    if result.categories:
        parts.append(f"<section><h2>{_e(texts['categories'])}</h2>")
        bars = [((category,), count) for category, count in result.categories.items()]
        peak = max(result.categories.values())
        headers = [texts["category"], texts["count"], ""]
        parts.append(_table(headers, _bar_rows(bars, peak), numeric=(1,)))
        parts.append("</section>")

    parts.append(f"<section><h2>{_e(texts['top_names'])}</h2>")
    if result.top_names:
        bars = [((t.name, t.category or "-"), t.count) for t in result.top_names]
        peak = result.top_names[0].count
        headers = [texts["name"], texts["category"], texts["count"], ""]
        parts.append(_table(headers, _bar_rows(bars, peak), numeric=(2,)))
    else:
        parts.append(f"<p>{_e(texts['none'])}</p>")
    parts.append("</section>")

    parts.append(f"<section><h2>{_e(texts['by_hour'])}</h2>")
    parts.append(_heat_html(result, texts))
    parts.append("</section>")

    parts.append(f'<section class="bypass"><h2>{_e(texts["bypass"])}</h2>')
    if result.bypass:
        lines = [
            f"<tr><td>{_e(b.name)}</td><td>{_e(texts['kind_' + b.kind])}</td>"
            f"<td>{_e(result.shown(b.profile) if b.profile else '-')}</td>"
            f'<td class="n">{b.count}</td></tr>'
            for b in result.bypass
        ]
        headers = [texts["name"], texts["kind"], texts["profile"], texts["count"]]
        parts.append(_table(headers, lines, numeric=(3,)))
    else:
        parts.append(f"<p>{_e(texts['bypass_none'])}</p>")
    parts.append("</section>")

    parts.append(f"<section><h2>{_e(texts['bedtime'])}</h2>")
    if result.bedtime:
        lines = [
            f"<tr><td>{_e(result.shown(name))}</td>"
            f'<td class="n">{lookups}</td><td class="n">{blocked}</td></tr>'
            for name, (lookups, blocked) in result.bedtime.items()
        ]
        headers = [texts["profile"], texts["lookups"], texts["blocked"]]
        parts.append(_table(headers, lines, numeric=(1, 2)))
    else:
        parts.append(f"<p>{_e(texts['bedtime_none'])}</p>")
    parts.append("</section>")

    parts.append(f"<section><h2>{_e(texts['drops'])}</h2>")
    if result.drops:
        message = texts["drops_some"].format(count=result.drops)
        parts.append(f'<p class="warning">{_e(message)}</p>')
    else:
        parts.append(f"<p>{_e(texts['drops_none'])}</p>")
    parts.append("</section>")

    parts.append(f"<section><h2>{_e(texts['alerts'])}</h2>")
    if result.alerts:
        lines = [
            f"<tr><td>{_e(result.local(a.ts))}</td><td>{_e(a.rule)}</td>"
            f"<td>{_e(result.shown(a.profile) if a.profile else everything)}</td>"
            f"<td>{_e(', '.join(a.categories))}</td>"
            f'<td class="n">{a.count}</td><td>{_e(a.message)}</td>'
            f"<td>{_e(texts['yes'] if a.delivered else texts['no'])}</td></tr>"
            for a in result.alerts
        ]
        headers = [
            texts[key]
            for key in ("time", "rule", "profile", "category", "count", "message", "delivered")
        ]
        parts.append(_table(headers, lines, numeric=(4,)))
    else:
        parts.append(f"<p>{_e(texts['alerts_none'])}</p>")
    parts.append("</section>")

    if footer:
        parts.append(f"<footer>{_e(footer)}</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _heat_html(result: Report, texts: dict[str, str]) -> str:
    peak = max(max(row) for row in result.heatmap)
    hours = "".join(f"<th>{hour}</th>" for hour in range(24))
    rows = [f'<tr><th class="day">{_e(texts["hour"])}</th>{hours}</tr>']
    for label, row in zip(texts["days"].split(), result.heatmap, strict=True):
        cells = []
        for count in row:
            alpha = 0.08 + 0.92 * count / peak if count else 0.0
            style = f"background:rgba(180,35,24,{alpha:.2f})" if count else "background:#f3f4f6"
            cells.append(f'<td style="{style}" title="{count}">{count or ""}</td>')
        rows.append(f'<tr><th class="day">{_e(label)}</th>{"".join(cells)}</tr>')
    legend = f'<p class="legend">{_e(texts["legend"].format(max=peak))}</p>'
    return f'<table class="heat"><tbody>{"".join(rows)}</tbody></table>{legend}'


# tail


@dataclass(frozen=True, slots=True)
class TailRow:
    id: int
    ts: float
    client: str
    client_name: str | None
    profile: str | None
    name: str
    qtype: str
    category: str | None
    rule: str | None
    reason: str


def _new_rows(db: sqlite3.Connection, after: int, profile: str | None) -> list[TailRow]:
    sql = (
        "SELECT id, ts, client, client_name, profile, name, qtype, category, rule, reason "
        "FROM queries WHERE id > ? AND kind = 'blocked'"
    )
    params: list[object] = [after]
    if profile is not None:
        sql += " AND profile = ?"
        params.append(profile)
    return [TailRow(*row) for row in db.execute(f"{sql} ORDER BY id", params).fetchall()]


def _tail_table(rows: Sequence[TailRow], zone: ZoneInfo, shown: Callable[[str], str]) -> Table:
    table = Table(title="filterdns tail", expand=False)
    for column in ("time", "profile", "client", "name", "category", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            datetime.fromtimestamp(row.ts, zone).strftime("%H:%M:%S"),
            escape(shown(row.profile) if row.profile else "-"),
            escape(row.client_name or row.client),
            escape(row.name),
            escape(row.category or "-"),
            escape(row.reason),
        )
    return table


def _plain(row: TailRow, zone: ZoneInfo, as_json: bool, shown: Callable[[str], str]) -> str:
    when = datetime.fromtimestamp(row.ts, zone)
    if as_json:
        return json.dumps(
            {
                "id": row.id,
                "ts": when.isoformat(timespec="seconds"),
                "client": row.client,
                "client_name": row.client_name,
                "profile": row.profile,
                "profile_display_name": shown(row.profile) if row.profile else None,
                "name": row.name,
                "qtype": row.qtype,
                "category": row.category,
                "rule": row.rule,
                "reason": row.reason,
            }
        )
    fields_ = (
        when.strftime("%Y-%m-%d %H:%M:%S"),
        shown(row.profile) if row.profile else "-",
        row.client_name or row.client,
        row.name,
        row.category or "-",
        row.reason,
    )
    return " ".join(fields_)


def _live(console: Console, enabled: bool) -> contextlib.AbstractContextManager[Live | None]:
    if not enabled:
        return contextlib.nullcontext()
    return Live(Group(), console=console, refresh_per_second=4, transient=False)


def tail(
    config: Config,
    args: argparse.Namespace,
    console: Console,
    *,
    stop: threading.Event | None = None,
    max_rows: int | None = None,
    started: threading.Event | None = None,
    interval: float = POLL_INTERVAL,
) -> int:
    """Show blocked lookups as they are logged, until interrupted (or `stop` is set, or
    `max_rows` rows were shown). `started` is set once the rows already logged are skipped."""
    profile = getattr(args, "profile", None)
    as_json = bool(getattr(args, "json", False))
    zone = report_zone(config)
    path = Path(config.log.database)
    waiter = stop if stop is not None else threading.Event()
    shown = 0
    done = False
    try:
        with contextlib.closing(open_database(path)) as db:
            last = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM queries").fetchone()[0])
            if started is not None:
                started.set()
            recent: deque[TailRow] = deque(maxlen=TAIL_ROWS)
            with _live(console, console.is_terminal and not as_json) as live:
                if live is not None:
                    live.update(_tail_table(recent, zone, config.display_name))
                while not (done or waiter.is_set()):
                    for row in _new_rows(db, last, profile):
                        last = row.id
                        shown += 1
                        if live is not None:
                            recent.append(row)
                        else:
                            console.print(
                                _plain(row, zone, as_json, config.display_name),
                                markup=False,
                                highlight=False,
                                emoji=False,
                                soft_wrap=True,
                            )
                        if max_rows is not None and shown >= max_rows:
                            done = True
                            break
                    if live is not None:
                        live.update(_tail_table(recent, zone, config.display_name))
                    if not done:
                        waiter.wait(interval)
    except FileNotFoundError:
        console.print(f"[red]{escape(TEXTS['en']['no_database'].format(path=path))}[/red]")
        return 1
    except FilterDnsError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 1
    except sqlite3.Error as exc:
        console.print(f"[red]{escape(str(path))}: {escape(str(exc))}[/red]")
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
