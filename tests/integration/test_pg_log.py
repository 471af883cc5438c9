"""The query log on a real PostgreSQL server: rows with their instance, two instances on one
database, day partitions and retention, the server killed mid-flood, a newer schema refused."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.rcode
import psycopg
import pytest

from filterdns.config import LogConfig
from filterdns.querylog import pgconn, pglog, pgschema
from filterdns.querylog.dbfile import SchemaError
from filterdns.querylog.store import LogRecord, LogStats, QueryLog
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import Proxy, config_for, running_proxy
from tests.integration.postgres import PgServer

DAY = 86400.0


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    records = {
        ("example.com", "A"): ["93.184.216.34"],
        ("play.example", "A"): ["203.0.113.10"],
        ("cdn.play.example", "A"): ["203.0.113.11"],
    }
    async with FakeUpstream(records) as fake:
        yield fake


def proxy_config(upstream: FakeUpstream, url: str, instance: str, log: str = "") -> str:
    extra = f"""\
        log: {{database: "{url}"{log}}}
        profiles:
          minh: {{age_band: adult, block: [casino.example, poker.example]}}
        default_profile: minh
    """
    return config_for(upstream.address, extra=extra, server=f"instance: {instance}")


def select(url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, args)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description is not None else []


async def written(log: QueryLog, n: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        await log.wait_written(n)


async def blocked(proxy: Proxy, name: str = "casino.example") -> int:
    """Ask for a blocked name: it is answered NXDOMAIN, whatever the log's database does."""
    reply = await proxy.query(name)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    return reply.id


async def test_blocked_lookups_land_with_their_instance(upstream: FakeUpstream, url: str) -> None:
    async with running_proxy(proxy_config(upstream, url, "a")) as proxy:
        await blocked(proxy, "casino.example")
        await blocked(proxy, "poker.example")
        allowed = await proxy.query("example.com")
        assert allowed.rcode() == dns.rcode.NOERROR
        await written(proxy.app.querylog, 2)
    rows = select(url, "SELECT instance, name, kind, profile, client FROM queries ORDER BY id")
    assert rows == [
        ("a", "casino.example", "blocked", "minh", "127.0.0.1"),
        ("a", "poker.example", "blocked", "minh", "127.0.0.1"),
    ]  # allowed lookups are not logged (log_allowed: false)


async def test_anonymized_clients_and_allowed_lookups_as_with_sqlite(
    upstream: FakeUpstream, url: str
) -> None:
    options = ", anonymize_clients: true, log_allowed: true"
    async with running_proxy(proxy_config(upstream, url, "a", options)) as proxy:
        await blocked(proxy)
        await proxy.query("example.com")
        await written(proxy.app.querylog, 2)
        hashed = proxy.app.querylog.anonymize("127.0.0.1")
    rows = select(url, "SELECT name, kind, client FROM queries ORDER BY id")
    assert [(name, client) for name, _, client in rows] == [
        ("casino.example", hashed),
        ("example.com", hashed),
    ]
    assert rows[1][1] != "blocked" and hashed != "127.0.0.1"


async def test_two_instances_write_one_database(upstream: FakeUpstream, url: str) -> None:
    async with (
        running_proxy(proxy_config(upstream, url, "a")) as a,
        running_proxy(proxy_config(upstream, url, "school-2")) as b,
    ):
        await blocked(a)
        await blocked(b)
        await blocked(b, "poker.example")
        await written(a.app.querylog, 1)
        await written(b.app.querylog, 2)
    rows = select(url, "SELECT instance, count(*) FROM queries GROUP BY instance ORDER BY 1")
    assert rows == [("a", 1), ("school-2", 2)]
    assert select(url, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(pgschema.PG_SCHEMA_VERSION),)
    ]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def partitions(url: str) -> set[str]:
    return {name for (name,) in select(url, pgschema.LIST_PARTITIONS)}


async def test_day_partitions_are_made_ahead_and_dropped_by_retention(
    upstream: FakeUpstream, url: str
) -> None:
    now = time.time()
    clock = Clock(now - 10 * DAY)  # the proxy starts ten days ago
    old = pgschema.partition_name(pgschema.day_of(clock.now))
    text = proxy_config(upstream, url, "a", ", retention: 7d")
    async with running_proxy(text, wall_clock=clock) as proxy:
        await blocked(proxy)
        await written(proxy.app.querylog, 1)
        assert old in partitions(url)
        assert select(url, f"SELECT name FROM {old}") == [("casino.example",)]
        clock.now = now  # ten days later: the old day is past the retention
        await blocked(proxy, "poker.example")
        await written(proxy.app.querylog, 2)
        assert await proxy.app.querylog.prune() == 1
    today, tomorrow = (pgschema.partition_name(day) for day in pgschema.ahead(now))
    assert old not in partitions(url)
    assert {today, tomorrow} <= partitions(url)
    assert select(url, "SELECT name FROM queries") == [("poker.example",)]


async def test_the_server_killed_mid_flood_costs_log_rows_never_an_answer(
    upstream: FakeUpstream,
    url: str,
    server: PgServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(pglog, "BACKOFF_FIRST", 0.1)
    monkeypatch.setattr(pglog, "BACKOFF_MAX", 0.3)
    async with running_proxy(proxy_config(upstream, url, "a")) as proxy:
        log = proxy.app.querylog
        await blocked(proxy)
        await written(log, 1)
        try:
            await asyncio.to_thread(server.stop)  # as if killed: no clean shutdown
            await flood_until(proxy, log, lambda stats: stats.dropped > 0)
        finally:
            await asyncio.to_thread(server.start)
        dropped = log.stats.dropped
        before = log.stats.written
        await flood_until(proxy, log, lambda stats: stats.written > before)
    stored = select(url, "SELECT instance, sum(count) FROM drops GROUP BY instance")
    assert stored[0][0] == "a" and stored[0][1] >= dropped > 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([m for m in errors if "query log" in m]) == 1  # one line a minute while down
    assert any("writing to" in r.getMessage() and "again" in r.getMessage() for r in caplog.records)


async def flood_until(proxy: Proxy, log: QueryLog, done: Any) -> None:
    """Blocked lookups, each answered, until `done(stats)` holds (at most 20 s)."""
    async with asyncio.timeout(20):
        while not done(log.stats):
            names = [f"{i}.casino.example" for i in range(20)]
            answered = await asyncio.gather(*(blocked(proxy, name) for name in names))
            assert len(answered) == len(names)  # every query answered
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await log.wait_until(done)


def record(ts: float) -> LogRecord:
    return LogRecord(
        ts=ts, client="192.0.2.10", client_name=None, profile="minh", name="casino.example",
        qtype="A", kind="blocked", category="gambling", rule="profile block", reason="blocked",
        source=None, response="nxdomain",
    )  # fmt: skip


async def test_a_newer_schema_is_refused_and_left_untouched(url: str, tmp_path: Path) -> None:
    select(url, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    select(url, "INSERT INTO meta VALUES ('schema_version', '99')")
    log = QueryLog(LogConfig(database=tmp_path / "state.db", url=url), instance="a")
    with pytest.raises(SchemaError, match=r"schema version 99, newer than this filterdns"):
        await log.start()
    await log.close()
    assert select(url, "SELECT to_regclass('queries')") == [(None,)]


async def test_a_database_down_at_start_drops_rows_and_writes_when_it_is_up(
    tmp_path: Path, server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pglog, "BACKOFF_FIRST", 0.05)
    down = server.url("not_yet")  # no such database: the connection is refused
    log = QueryLog(
        LogConfig(database=tmp_path / "state.db", url=down),
        instance="a",
        batch_size=1,
        flush_interval=0.01,
    )
    await log.start()  # the server starts all the same
    assert not (tmp_path / "state.db").exists()  # the grants live in PostgreSQL too
    try:
        assert log.put(record(time.time()))
        async with asyncio.timeout(10):
            await log.wait_until(lambda stats: stats.dropped == 1)
        select(server.url(), "CREATE DATABASE not_yet")
        stats: LogStats = log.stats
        async with asyncio.timeout(10):
            while stats.written == 0:
                log.put(record(time.time()))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await log.wait_until(lambda s: s.written > 0)
    finally:
        await log.close()
    assert select(down, "SELECT instance, sum(count) FROM drops GROUP BY 1")[0][1] >= 1


async def test_budget_minutes_are_kept_there_and_survive_a_restart(
    upstream: FakeUpstream, url: str, tmp_path: Path
) -> None:
    games = tmp_path / "games.txt"
    games.write_text("play.example\n")
    extra = f"""\
        log: {{database: "{url}"}}
        categories: {{games: ["{games}"]}}
        profiles:
          minh:
            age_band: 13-15
            bedtime: []
            budgets:
              - {{name: games, categories: [games], per_day: 1m}}
        default_profile: minh
    """
    text = config_for(upstream.address, extra=extra, server="timezone: UTC\ninstance: a")
    clock = Clock(calendar.timegm((2026, 11, 23, 10, 0, 0, 0, 0, 0)))
    async with running_proxy(text, wall_clock=clock) as proxy:
        for name in ("play.example", "cdn.play.example"):  # two names: a minute used
            assert (await proxy.query(name)).rcode() == dns.rcode.NOERROR
        clock.now += 60
        assert (await proxy.query("play.example")).rcode() == dns.rcode.NXDOMAIN
    stored = select(url, "SELECT instance, profile, budget, day, minutes FROM budget_usage")
    assert stored == [("a", "minh", "games", "2026-11-23", 1)]
    async with running_proxy(text, wall_clock=clock) as proxy:
        again = await proxy.query("play.example")
        assert again.rcode() == dns.rcode.NXDOMAIN  # a restart hands out no new minutes


async def test_repeats_are_one_row_with_their_count_as_with_sqlite(
    upstream: FakeUpstream, url: str
) -> None:
    async with running_proxy(proxy_config(upstream, url, "a")) as proxy:
        for _ in range(3):
            await blocked(proxy, "casino.example")
        await blocked(proxy, "poker.example")
        await written(proxy.app.querylog, 4)
        folded = proxy.app.querylog.stats.folded
    rows = select(url, "SELECT name, hits FROM queries ORDER BY id")
    # Three lookups within a second are one row; across a second's edge, two rows.
    assert sum(hits for name, hits in rows if name == "casino.example") == 3
    assert 1 <= folded <= 2
    assert len(rows) == 4 - folded
    assert rows[-1] == ("poker.example", 1)


async def test_a_schema_2_log_is_migrated_keeping_its_rows_as_one_lookup_each(
    url: str, tmp_path: Path
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for version in (1, 2):
            for statement in pgschema.MIGRATIONS[version]:
                conn.execute(statement)  # type: ignore[arg-type]
        conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        a_minute_ago = time.time() - 60  # yesterday in the first minute of a day: its partition
        conn.execute(pgschema.create_partition(pgschema.day_of(a_minute_ago)))  # type: ignore[arg-type]
        columns = ", ".join(pgschema.QUERY_COLUMNS[:-1])
        conn.execute(
            f"INSERT INTO queries ({columns}) VALUES"  # type: ignore[arg-type]
            " ('a', %s, '192.0.2.10', NULL, 'minh', 'old.example', 'A', 'blocked', NULL, NULL,"
            " 'blocked', NULL, 'nxdomain')",
            (a_minute_ago,),
        )
    # A reader before any server migrated it counts the old row as one lookup.
    with pgconn.reading(url) as conn:
        assert conn.execute("SELECT name, sum(hits) FROM queries GROUP BY 1").fetchall() == [
            ("old.example", 1)
        ]
    log = QueryLog(LogConfig(database=tmp_path / "state.db", url=url), instance="a")
    await log.start()
    try:
        for _ in range(2):
            assert log.put(record(time.time()))
    finally:
        await log.close()
    assert select(url, "SELECT value FROM meta WHERE key = 'schema_version'") == [("3",)]
    rows = select(url, "SELECT name, hits FROM queries ORDER BY id")
    assert rows[0] == ("old.example", 1)
    assert sum(hits for name, hits in rows if name == "casino.example") == 2
