"""Repeated lookups as one log row with a count: the same reports, tail and page counts as a
row per lookup, and nothing lost at shutdown."""

from __future__ import annotations

import contextlib
import random
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from filterdns.config import Config, LogConfig, default_config, load_config_text
from filterdns.querylog.report.collect import build_report
from filterdns.querylog.store import LogRecord, QueryLog, open_reader
from filterdns.querylog.tail import TailReader, TailRow, line
from filterdns.web.lookups import blocked_for

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 23, 23, 0, tzinfo=TZ).timestamp()  # a Monday night, bedtime
CONFIG = """\
server: {{timezone: Asia/Ho_Chi_Minh}}
log: {{database: "{database}"}}
profiles:
  minh: {{age_band: 9-12}}
  lan:
    age_band: adult
    schedules:
      - {{name: homework, days: daily, from: "18:00", to: "19:00", block: all}}
default_profile: lan
"""
WHO = [("192.168.1.20", "minh-tablet", "minh"), ("192.168.1.21", None, "minh"),
       ("192.168.1.30", None, "lan")]  # fmt: skip
BLOCKED = [
    ("casino.example", "gambling", "age band 9-12", "shipped:gambling.txt"),
    ("adult.example", "adult", "age band 9-12", "shipped:adult.txt"),
    ("dns.google", "bypass", "bypass protection", "shipped:bypass.txt"),
    ("mask.icloud.com", "bypass", "bypass protection", None),
    ("youtube.com", None, "paused by anna until resumed, #1", None),
    ("tiktok.com", "social", "schedule homework", None),
]


def lookups(seed: int, count: int = 3000) -> list[LogRecord]:
    """Lookups over the six hours before NOW, a name often asked again within a second or two
    (A, AAAA and HTTPS, retries): on both sides of second, minute and hour boundaries."""
    rng = random.Random(seed)
    out: list[LogRecord] = []
    ts = NOW - 6 * 3600
    while len(out) < count:
        ts += rng.choice((0.05, 0.3, 0.9, 1.7, 13.0, 59.5, 240.0))
        client, client_name, profile = rng.choice(WHO)
        name, category, rule, source = rng.choice(BLOCKED)
        kind = "blocked" if rng.random() < 0.8 else "resolved"
        for _ in range(rng.choice((1, 1, 2, 3, 6))):
            at = ts + rng.random() * rng.choice((0.2, 1.5))
            out.append(LogRecord(
                at, client, client_name, profile, name, rng.choice(("A", "AAAA", "HTTPS")), kind,
                category if kind == "blocked" else None, rule if kind == "blocked" else None,
                f"{name} is blocked" if kind == "blocked" else "", source,
                "nxdomain" if kind == "blocked" else None,
            ))  # fmt: skip
    return sorted(out)  # the queue holds them in the order they were asked


async def logged(path: Path, records: list[LogRecord], window: float, **options: Any) -> QueryLog:
    """`records` through the query log's writer into `path`, then closed."""
    config = LogConfig(database=path, fold_window=window, log_allowed=True)
    log = QueryLog(config, clock=lambda: NOW, **options)
    await log.start()
    for record in records:
        assert log.put(record)
    await log.close()
    return log


def read(path: Path, sql: str) -> list[Any]:
    with contextlib.closing(open_reader(path)) as db:
        return db.execute(sql).fetchall()


def config_of(path: Path) -> Config:
    text = textwrap.dedent(CONFIG.format(database=path))
    return load_config_text(text, source="<test>", defaults=default_config(is_root=False))


def report(path: Path, since: float, until: float, **filters: str | None) -> dict[str, object]:
    with contextlib.closing(open_reader(path)) as db:
        return build_report(
            db, since=since, until=until, profile=filters.get("profile"),
            client=filters.get("client"), config=config_of(path),
        )  # fmt: skip


@pytest.mark.parametrize("window", [1.0, 5.0, 0.5], ids=["1s", "5s", "500ms"])
@pytest.mark.parametrize("seed", [1, 2])
async def test_reports_give_the_figures_of_a_row_per_lookup(
    tmp_path: Path, window: float, seed: int
) -> None:
    records = lookups(seed)
    each = await logged(tmp_path / "each.db", records, 0.0)
    folded = await logged(tmp_path / "folded.db", records, window, queue_size=len(records))

    # Every lookup is stored: as many rows, or fewer rows holding as many hits.
    assert each.stats.written == folded.stats.written == len(records)
    assert folded.stats.folded > len(records) // 10
    (rows_each,) = read(tmp_path / "each.db", "SELECT count(*), sum(hits) FROM queries")
    (rows_folded,) = read(tmp_path / "folded.db", "SELECT count(*), sum(hits) FROM queries")
    assert rows_each == (len(records), len(records))
    assert rows_folded == (len(records) - folded.stats.folded, len(records))
    # The same report for the whole period, a profile, a client, and a period starting on a
    # minute (the heat map by hour and the bedtime windows count by time).
    minute = NOW - 6 * 3600 + 7 * 60 - NOW % 60
    for since, until, filters in [
        (NOW - 86400, NOW + 60, {}),
        (NOW - 86400, NOW + 60, {"profile": "minh"}),
        (NOW - 86400, NOW + 60, {"client": "minh-tablet"}),
        (minute, minute + 3 * 3600, {}),
    ]:
        expected = report(tmp_path / "each.db", since, until, **filters)
        assert report(tmp_path / "folded.db", since, until, **filters) == expected


async def test_repeats_still_waiting_are_written_at_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    three = [LogRecord(NOW + i / 10, "192.168.1.20", None, "minh", "casino.example", "A",
                       "blocked", "gambling", "age band 9-12", "casino.example is blocked",
                       None, "nxdomain") for i in range(3)]  # fmt: skip
    log = await logged(path, three, 1.0, flush_interval=60.0, batch_size=500)
    assert (log.stats.written, log.stats.dropped) == (3, 0)
    assert read(path, "SELECT ts, name, hits FROM queries") == [(NOW, "casino.example", 3)]


async def test_tail_shows_how_many_lookups_a_row_holds(tmp_path: Path) -> None:
    path = tmp_path / "filterdns.db"
    await logged(path, [], 1.0)  # the database, before tail opens it
    tail = TailReader(path, clock=lambda: NOW)
    try:
        records = [LogRecord(NOW + i / 10, "192.168.1.20", "minh-tablet", "minh",
                             "casino.example", "A", "blocked", "gambling", "age band 9-12",
                             "casino.example is blocked", None, "nxdomain")
                   for i in range(3)]  # fmt: skip
        await logged(path, [*records, records[0]._replace(ts=NOW + 2, name="bet.example")], 1.0)
        rows = tail.poll()
    finally:
        tail.close()
    shown = [line(row, TZ, False, str).split(" ", 2)[2] for row in rows]
    assert shown == [
        "minh minh-tablet casino.example \u00d73 gambling casino.example is blocked",
        "minh minh-tablet bet.example gambling casino.example is blocked",
    ]
    as_json = line(rows[0], TZ, True, str)
    assert '"hits": 3' in as_json and '"name": "casino.example"' in as_json


def test_a_row_of_one_lookup_shows_no_count() -> None:
    row = TailRow(1, NOW, "192.168.1.20", None, "minh", "casino.example", "A", None, None, "x")
    assert row.shown_name == "casino.example"


@pytest.mark.parametrize("window", [0.0, 1.0], ids=["a-row-each", "folded"])
async def test_a_device_page_counts_each_blocked_lookup(tmp_path: Path, window: float) -> None:
    path = tmp_path / "filterdns.db"
    records = [r for r in lookups(3, 600) if r.client == "192.168.1.20"]
    await logged(path, records, window)
    shown = {b.name: b.count for b in blocked_for(config_of(path), "192.168.1.20", 0.0, 50)}
    expected: dict[str, int] = {}
    for r in records:
        if r.kind == "blocked":
            expected[r.name] = expected.get(r.name, 0) + 1
    assert shown == expected
