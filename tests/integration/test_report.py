"""`filterdns report` and `filterdns tail` against a log database written here with sqlite3."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sqlite3
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from filterdns.cli.report import add_commands, report, tail
from filterdns.config import Config, default_config, load_config_text
from filterdns.querylog.dbfile import DamagedError
from filterdns.querylog.report.collect import build_report, classify_bypass
from filterdns.querylog.schema import MIGRATIONS
from filterdns.querylog.tail import TailReader
from filterdns.querylog.translations import texts

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# The schema the server writes (every version's statements; no meta row, as a file the first
# versions wrote).
SCHEMA = ";\n".join(stmt for version in sorted(MIGRATIONS) for stmt in MIGRATIONS[version]) + ";\n"
CONFIG = """\
server: {{timezone: Asia/Ho_Chi_Minh}}
log: {{database: "{database}"}}
profiles:
  minh: {{age_band: 9-12}}
  lan:
    age_band: adult
    display_name: "Lan (lớp 6A)"
    schedules:
      - {{name: homework, days: daily, from: "18:00", to: "19:00", block: all}}
  parents: {{age_band: adult}}
clients:
  - {{name: minh-tablet, ip: 192.168.1.20, profile: minh}}
default_profile: parents
report: {{lang: {lang}, footer: "Report harmful content: call 111 <hotline>"}}
"""
MINH = ("192.168.1.20", "minh-tablet", "minh")
LAN = ("192.168.1.30", None, "lan")
PARENTS = ("192.168.1.40", None, "parents")
BEDTIME_RULE = "schedule bedtime (age_bands.9-12.schedules[0])"
ALERT_MESSAGE = "minh: 3 gambling lookups <in 10m> & more"


def anchor() -> float:
    """Local midnight three days ago: day 0, 1 and 2 after it lie inside the last 7 days."""
    today = datetime.now(TZ).date() - timedelta(days=3)
    return datetime(today.year, today.month, today.day, tzinfo=TZ).timestamp()


ANCHOR = anchor()  # once, so a run across midnight keeps its rows where they were


def at(day: int, hour: int, minute: int = 0) -> float:
    return ANCHOR + day * 86400 + hour * 3600 + minute * 60


def insert(
    db: sqlite3.Connection,
    ts: float,
    who: tuple[str, str | None, str],
    name: str,
    category: str | None,
    *,
    kind: str = "blocked",
    rule: str | None = None,
    source: str | None = None,
) -> None:
    client, client_name, profile = who
    blocked = kind == "blocked"
    db.execute(
        "INSERT INTO queries (ts, client, client_name, profile, name, qtype, kind, category, "
        "rule, reason, source, response) VALUES (?, ?, ?, ?, ?, 'A', ?, ?, ?, ?, ?, ?)",
        (
            ts,
            client,
            client_name,
            profile,
            name,
            kind,
            category,
            rule if blocked else None,
            f"{name} is blocked" if blocked else "",
            source,
            "nxdomain" if blocked else None,
        ),
    )
    db.commit()


def populate(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)
    bypass = "bypass protection"
    for minute in (0, 5, 10):
        insert(db, at(0, 10, minute), MINH, "bet.example", "gambling", rule="age band 9-12")
    # Bedtime of the 9-12 band: 21:00 (22:00 fri-sat) to 06:30 (07:00): 23:00 and 02:00 always.
    insert(db, at(0, 23), MINH, "adult.example", "adult", rule="age band 9-12")
    insert(db, at(1, 23, 30), MINH, "adult.example", "adult", rule="age band 9-12")
    insert(db, at(1, 23, 45), MINH, "youtube.com", None, rule=BEDTIME_RULE)
    insert(db, at(1, 2), MINH, "wiki.example", None, kind="resolved")
    insert(db, at(0, 12), MINH, "use-application-dns.net", "bypass", rule=bypass)
    insert(db, at(1, 12), MINH, "mask.icloud.com", "bypass", rule=bypass)
    insert(db, at(2, 12), MINH, "dns.google", "bypass", source="shipped:bypass.txt")
    insert(db, at(2, 12, 5), MINH, "doh.example.net", "bypass", source="shipped:doh.txt")
    insert(db, at(2, 12, 10), MINH, "nordvpn.com", "bypass", source="shipped:bypass.txt")
    insert(db, at(2, 12, 15), MINH, "hidester.example", "bypass", source="shipped:bypass.txt")
    # lan's own homework rule blocks everything 18:00-19:00.
    insert(db, at(0, 18, 30), LAN, "tiktok.com", "social", rule="schedule homework")
    insert(db, at(1, 18, 15), LAN, "school.example", None, kind="resolved")
    insert(db, at(2, 9), LAN, "tiktok.com", "social", rule="age band adult")
    insert(db, at(0, 14), LAN, "evil.example", "malware", rule="always blocked")
    insert(db, at(1, 8), LAN, "_dns.resolver.arpa", "bypass", rule=bypass)
    insert(db, at(1, 15), PARENTS, "phish.example", "phishing", rule="always blocked")
    insert(db, at(1, 16), PARENTS, "roblox.com", None, rule="profile block")
    insert(db, at(1, 10), PARENTS, "example.com", None, kind="resolved")
    insert(db, at(1, 10, 1), PARENTS, "example.org", None, kind="cached")
    # Outside the period of the tests (but inside 30 days).
    insert(db, at(-10, 10), MINH, "bet.example", "gambling", rule="age band 9-12")
    db.executemany(
        "INSERT INTO drops (ts, count, reason) VALUES (?, ?, ?)",
        [
            (at(0, 5), 3, "queue full"),
            (at(1, 5), 2, "database error: disk full"),
            (at(-10, 5), 100, "queue full"),  # outside the period
        ],
    )
    db.executemany(
        "INSERT INTO alerts (ts, rule, profile, categories, count, window, message, delivered,"
        " error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (at(0, 10, 10), "gambling", "minh", "gambling", 3, 600.0, ALERT_MESSAGE, 1, None),
            (at(2, 12, 15), "bypass-any", None, "bypass", 5, 3600.0, "bypass", 0, "timeout"),
            (at(-10, 10), "gambling", "minh", "gambling,adult", 3, 600.0, "old", 1, None),
        ],
    )
    db.commit()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "filterdns.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        populate(db)
    yield path


def make_config(database: Path, lang: str = "en") -> Config:
    text = textwrap.dedent(CONFIG.format(database=database, lang=lang))
    return load_config_text(text, source="<test>", defaults=default_config(is_root=False))


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="filterdns")
    sub = parser.add_subparsers(dest="command")
    add_commands(sub)
    return parser.parse_args(argv)


def console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=160, color_system=None), buffer


def period_report(
    database: Path, profile: str | None = None, client: str | None = None
) -> dict[str, object]:
    uri = f"{database.as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return build_report(
            db,
            since=at(-1, 0),
            until=at(3, 0),
            profile=profile,
            client=client,
            config=make_config(database),
        )


def test_counts_blocked_lookups_per_profile_and_category(database: Path) -> None:
    data = period_report(database)
    assert data["version"] == 1
    assert data["filters"] == {"profile": None, "client": None}
    assert data["since"] == datetime.fromtimestamp(at(-1, 0), TZ).isoformat()
    assert data["timezone"] == "Asia/Ho_Chi_Minh"
    assert data["blocked_total"] == 18
    assert data["profiles"] == {
        "minh": {
            "blocked": 12,
            "categories": {"bypass": 6, "gambling": 3, "adult": 2, "(none)": 1},
        },
        "lan": {"blocked": 4, "categories": {"social": 2, "bypass": 1, "malware": 1}},
        "parents": {"blocked": 2, "categories": {"(none)": 1, "phishing": 1}},
    }
    assert data["categories"] == {
        "bypass": 7,
        "gambling": 3,
        "(none)": 2,
        "adult": 2,
        "social": 2,
        "malware": 1,
        "phishing": 1,
    }
    assert list(data["categories"]) == [
        "bypass", "gambling", "(none)", "adult", "social", "malware", "phishing",
    ]  # fmt: skip
    top = data["top_names"]
    assert isinstance(top, list)
    assert top[:3] == [
        {"name": "bet.example", "category": "gambling", "count": 3},
        {"name": "adult.example", "category": "adult", "count": 2},
        {"name": "tiktok.com", "category": "social", "count": 2},
    ]
    assert {"name": "roblox.com", "category": None, "count": 1} in top
    assert len(top) == 14  # distinct blocked names
    assert data["drops"] == 5


def test_heatmap_counts_by_weekday_and_local_hour(database: Path) -> None:
    heatmap = period_report(database)["heatmap"]
    assert isinstance(heatmap, dict)
    assert list(heatmap) == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert all(len(hours) == 24 for hours in heatmap.values())
    assert sum(sum(hours) for hours in heatmap.values()) == 18
    day0 = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][
        datetime.fromtimestamp(at(0, 10), TZ).weekday()
    ]
    assert heatmap[day0][10] == 3  # bet.example at 10:00, 10:05, 10:10 local time
    assert heatmap[day0][23] == 1
    assert heatmap[day0][5] == 0


def test_bypass_attempts_are_classified(database: Path) -> None:
    attempts = period_report(database)["bypass_attempts"]
    assert isinstance(attempts, list)
    kinds = {(a["name"], a["kind"], a["profile"], a["count"]) for a in attempts}
    assert kinds == {
        ("use-application-dns.net", "canary", "minh", 1),
        ("mask.icloud.com", "relay", "minh", 1),
        ("_dns.resolver.arpa", "ddr", "lan", 1),
        ("dns.google", "doh", "minh", 1),
        ("doh.example.net", "doh", "minh", 1),
        ("nordvpn.com", "vpn", "minh", 1),
        ("hidester.example", "other", "minh", 1),
    }
    assert classify_bypass("mask-h2.icloud.com", None, None) == "relay"
    assert classify_bypass("example.net", "DoH servers", None) == "doh"
    assert classify_bypass("example.net", None, "https://example.org/vpn-list.txt") == "vpn"


def test_bedtime_counts_lookups_inside_block_all_windows(database: Path) -> None:
    bedtime = period_report(database)["bedtime"]
    # minh: the 9-12 band's bedtime (3 blocked, 1 allowed); lan: its homework rule.
    assert bedtime == {"minh": {"lookups": 4, "blocked": 3}, "lan": {"lookups": 2, "blocked": 1}}


def test_alerts_in_the_period(database: Path) -> None:
    alerts = period_report(database)["alerts"]
    assert alerts == [
        {
            "ts": datetime.fromtimestamp(at(0, 10, 10), TZ).isoformat(),
            "rule": "gambling",
            "profile": "minh",
            "categories": ["gambling"],
            "count": 3,
            "message": ALERT_MESSAGE,
            "delivered": True,
        },
        {
            "ts": datetime.fromtimestamp(at(2, 12, 15), TZ).isoformat(),
            "rule": "bypass-any",
            "profile": None,
            "categories": ["bypass"],
            "count": 5,
            "message": "bypass",
            "delivered": False,
        },
    ]


def test_profile_filter(database: Path) -> None:
    data = period_report(database, profile="lan")
    assert data["filters"] == {"profile": "lan", "client": None}
    assert data["blocked_total"] == 4
    assert list(data["profiles"]) == ["lan"]  # type: ignore[call-overload]
    assert data["bedtime"] == {"lan": {"lookups": 2, "blocked": 1}}
    assert [a["name"] for a in data["bypass_attempts"]] == ["_dns.resolver.arpa"]  # type: ignore[attr-defined]
    assert [a["rule"] for a in data["alerts"]] == ["bypass-any"]  # type: ignore[attr-defined]
    assert data["drops"] == 5


@pytest.mark.parametrize(
    ("client", "total", "profiles"),
    [
        pytest.param("minh-tablet", 12, ["minh"], id="name"),
        pytest.param("192.168.1.20", 12, ["minh"], id="address"),
        pytest.param("192.168.1.30", 4, ["lan"], id="unnamed"),
        pytest.param("192.168.1.99", 0, [], id="unknown"),
    ],
)
def test_client_filter(database: Path, client: str, total: int, profiles: list[str]) -> None:
    data = period_report(database, client=client)
    assert data["filters"] == {"profile": None, "client": client}
    assert data["blocked_total"] == total
    assert list(data["profiles"]) == profiles  # type: ignore[call-overload]


def test_report_json_command(database: Path) -> None:
    out, buffer = console()
    assert report(make_config(database), parse("report", "--json"), out) == 0
    data = json.loads(buffer.getvalue())
    assert data["blocked_total"] == 18
    assert data["drops"] == 5
    assert data["display_names"] == {"lan": "Lan (lớp 6A)"}
    assert "lan" in data["profiles"]  # keys stay the profile names
    out, buffer = console()
    assert report(make_config(database), parse("report", "--json", "--since", "30d"), out) == 0
    data = json.loads(buffer.getvalue())
    assert data["blocked_total"] == 19
    assert data["drops"] == 105
    assert len(data["alerts"]) == 3


def test_report_in_the_terminal(database: Path) -> None:
    out, buffer = console()
    assert report(make_config(database), parse("report"), out) == 0
    text = buffer.getvalue()
    for key in ("title", "by_profile", "top_names", "by_hour", "bypass", "bedtime", "drops"):
        assert texts("en")[key] in text
    assert texts("en")["alerts"] in text
    assert "bet.example" in text
    assert "use-application-dns.net" in text
    assert "█" in text
    assert "Report harmful content" in text
    assert "Lan (lớp 6A)" in text  # the display name, not the profile's key

    out, buffer = console()
    assert report(make_config(database, lang="vi"), parse("report"), out) == 0
    text = buffer.getvalue()
    for heading in (
        "Báo cáo truy cập bị chặn",
        "Theo hồ sơ",
        "Tên miền bị chặn nhiều nhất",
        "Theo giờ trong ngày",
        "Cố gắng vượt rào chặn",
        "Hoạt động trong giờ ngủ",
        "Nhật ký bị mất",
        "Cảnh báo",
    ):
        assert heading in text


class StrictParser(HTMLParser):
    """Checks that every element is closed in order."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [value or "" for key, value in attrs if key in ("src", "href")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack.pop() == tag, f"</{tag}> out of order"


def test_html_page_is_self_contained(database: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    out, buffer = console()
    args = parse("report", "--html", str(page), "--lang", "vi")
    assert report(make_config(database), args, out) == 0
    assert str(page) in buffer.getvalue()
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<html lang="vi">' in text
    for heading in (
        "Báo cáo truy cập bị chặn",
        "Theo hồ sơ",
        "Danh mục",
        "Tên miền bị chặn nhiều nhất",
        "Theo giờ trong ngày",
        "Cố gắng vượt rào chặn",
        "Hoạt động trong giờ ngủ",
        "Nhật ký bị mất",
        "Cảnh báo",
    ):
        assert f"{heading}</h" in text
    assert "Report harmful content: call 111 &lt;hotline&gt;" in text
    assert "minh: 3 gambling lookups &lt;in 10m&gt; &amp; more" in text
    assert "<td>Lan (lớp 6A)</td>" in text
    assert "@media print" in text
    for external in ("http://", "https://", "<script", "@import", "url("):
        assert external not in text
    parser = StrictParser()
    parser.feed(text)
    parser.close()
    assert parser.stack == []
    assert parser.urls == []
    assert {"style", "table", "footer", "h1", "h2"} <= parser.tags


def test_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA)
    out, buffer = console()
    assert report(make_config(path), parse("report", "--json"), out) == 0
    data = json.loads(buffer.getvalue())
    assert data["blocked_total"] == 0
    assert data["profiles"] == {} and data["top_names"] == [] and data["alerts"] == []
    assert data["bedtime"] == {
        "minh": {"lookups": 0, "blocked": 0},
        "lan": {"lookups": 0, "blocked": 0},
    }
    out, buffer = console()
    assert report(make_config(path), parse("report"), out) == 0
    assert texts("en")["none"] in buffer.getvalue()
    page = tmp_path / "empty.html"
    assert report(make_config(path), parse("report", "--html", str(page)), out) == 0
    parser = StrictParser()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.stack == []


def test_report_errors(database: Path, tmp_path: Path) -> None:
    out, buffer = console()
    assert report(make_config(database), parse("report", "--since", "a week"), out) == 2
    assert "--since" in buffer.getvalue()
    out, buffer = console()
    assert report(make_config(tmp_path / "missing.db"), parse("report"), out) == 1
    assert "missing.db" in buffer.getvalue()
    assert not (tmp_path / "missing.db").exists()


def run_tail(
    config: Config, args: argparse.Namespace, **hooks: object
) -> tuple[threading.Thread, threading.Event, io.StringIO, list[int]]:
    out, buffer = console()
    started = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            tail(config, args, out, started=started, interval=0.02, **hooks)  # type: ignore[arg-type]
        )
    )
    thread.start()
    assert started.wait(10)
    return thread, started, buffer, codes


def test_tail_prints_new_blocked_lookups(database: Path) -> None:
    thread, _, buffer, codes = run_tail(make_config(database), parse("tail"), max_rows=2)
    with contextlib.closing(sqlite3.connect(database)) as db:
        now = time.time()
        insert(db, now, LAN, "tiktok.com", "social", rule="age band adult")
        insert(db, now, MINH, "allowed.example", None, kind="resolved")
        insert(db, now, MINH, "casino.example", "gambling", rule="age band 9-12")
    thread.join(10)
    assert not thread.is_alive()
    assert codes == [0]
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    when = datetime.fromtimestamp(now, TZ).strftime("%Y-%m-%d %H:%M:%S")
    assert lines[0] == (f"{when} Lan (lớp 6A) 192.168.1.30 tiktok.com social tiktok.com is blocked")
    assert lines[1].endswith("minh minh-tablet casino.example gambling casino.example is blocked")


def test_tail_json_with_profile_filter_until_stopped(database: Path) -> None:
    stop = threading.Event()
    thread, _, buffer, codes = run_tail(
        make_config(database), parse("tail", "--profile", "minh", "--json"), stop=stop
    )
    with contextlib.closing(sqlite3.connect(database)) as db:
        insert(db, time.time(), LAN, "tiktok.com", "social")
        insert(db, time.time(), MINH, "casino.example", "gambling")
    deadline = time.monotonic() + 10
    while "casino.example" not in buffer.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert codes == [0]
    rows = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(r["profile"], r["name"], r["category"]) for r in rows] == [
        ("minh", "casino.example", "gambling")
    ]
    assert rows[0]["client_name"] == "minh-tablet"


def fresh_database(path: Path) -> None:
    """What the server does to a damaged database: move it aside, start a fresh one."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").rename(f"{path}.corrupt-20261123T120000Z{suffix}")
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(f"BEGIN;\n{SCHEMA}COMMIT;")  # in one transaction, as the server does


def test_tail_follows_the_database_to_the_fresh_one(database: Path) -> None:
    stop = threading.Event()
    thread, _, buffer, codes = run_tail(make_config(database), parse("tail", "--json"), stop=stop)

    def shown() -> list[str]:
        return [json.loads(line)["name"] for line in buffer.getvalue().splitlines()]

    def wait_for(name: str) -> None:
        deadline = time.monotonic() + 10
        while name not in shown() and time.monotonic() < deadline:
            time.sleep(0.02)

    with contextlib.closing(sqlite3.connect(database)) as db:
        insert(db, time.time(), MINH, "before.example", "gambling")
    wait_for("before.example")
    fresh_database(database)
    with contextlib.closing(sqlite3.connect(database)) as db:
        insert(db, at(-1, 12), MINH, "long-ago.example", "gambling")  # put back: not new
        insert(db, time.time(), MINH, "after.example", "gambling")
    wait_for("after.example")
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert codes == [0]
    assert shown() == ["before.example", "after.example"]


def test_tail_gives_the_server_time_to_replace_a_damaged_file(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    sut = TailReader(database, monotonic=lambda: now[0])
    damage = sqlite3.DatabaseError("file is not a database")
    damage.sqlite_errorcode = sqlite3.SQLITE_NOTADB  # type: ignore[attr-defined]

    def damaged(db: sqlite3.Connection) -> list[object]:
        raise damage

    monkeypatch.setattr(sut, "_read", damaged)
    with contextlib.closing(sut):
        assert sut.poll() == []
        now[0] = 2.9
        assert sut.poll() == []  # the server moves it aside within a second or so
        now[0] = 3.5
        with pytest.raises(DamagedError, match="file is not a database"):
            sut.poll()
