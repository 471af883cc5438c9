"""A time budget through the real server: two minutes of games counted from lookups over UDP
and TCP with a fake wall clock, then games blocked, still blocked after a restart (the minutes
stored in the database), and allowed again the next day."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dns.rcode
import pytest

from filterdns.cli.main import main
from filterdns.config import LogConfig
from filterdns.config.budgets import BudgetConfig
from filterdns.policy.budgets import BudgetMeter
from filterdns.querylog import dbfile
from filterdns.querylog.store import read_usage
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import FakeClock, config_for, running_proxy
from tests.integration.test_policy import at
from tests.integration.test_store import DAY, query_log, running

RECORDS = {
    ("play.example", "A"): ["203.0.113.10"],
    ("cdn.play.example", "A"): ["203.0.113.11"],
    ("example.com", "A"): ["93.184.216.34"],
}


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


def budget_config(upstream: FakeUpstream, tmp_path: Path) -> str:
    games = tmp_path / "games.txt"
    games.write_text("play.example\n")
    extra = f"""\
        log: {{database: {tmp_path / "filterdns.db"}}}
        categories: {{games: ["{games}"]}}
        profiles:
          minh:
            age_band: 13-15
            bedtime: []
            budgets:
              - {{name: games, categories: [games], per_day: 2m}}
        clients:
          - {{name: minh-tablet, ip: 127.0.0.2, profile: minh}}
    """
    return config_for(upstream.address, extra=extra, server="timezone: Asia/Ho_Chi_Minh")


async def test_a_two_minute_budget_blocks_games_and_survives_a_restart(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    clock = FakeClock(at("2026-11-23 10:00"))
    text = budget_config(upstream, tmp_path)
    async with running_proxy(text, wall_clock=clock) as proxy:
        first = await proxy.query("play.example", source="127.0.0.2")
        assert first.rcode() == dns.rcode.NOERROR
        assert first.answer[0].ttl <= 60  # counted: the next lookup comes back to be counted
        chatter = await proxy.query("play.example", source="127.0.0.2", tcp=True)
        assert chatter.rcode() == dns.rcode.NOERROR  # one name twice: not yet a minute
        other = await proxy.query("example.com", source="127.0.0.2")
        assert other.answer[0].ttl > 60  # not in a budget: not capped by it
        await proxy.query("cdn.play.example", source="127.0.0.2")  # 2 names: minute 1
        clock.now += 60
        for name in ("play.example", "cdn.play.example"):  # minute 2: spent
            assert (await proxy.query(name, source="127.0.0.2")).rcode() == dns.rcode.NOERROR
        blocked = await proxy.query("play.example", source="127.0.0.2", tcp=True)
        assert blocked.rcode() == dns.rcode.NXDOMAIN
        assert (await proxy.query("example.com", source="127.0.0.2")).rcode() == dns.rcode.NOERROR
    assert read_usage(tmp_path / "filterdns.db", clock.now) == [("minh", "games", "2026-11-23", 2)]
    async with running_proxy(text, wall_clock=clock) as proxy:
        again = await proxy.query("play.example", source="127.0.0.2")
        assert again.rcode() == dns.rcode.NXDOMAIN  # a restart hands out no new minutes
        clock.now = at("2026-11-24 00:00")
        tomorrow = await proxy.query("play.example", source="127.0.0.2")
        assert tomorrow.rcode() == dns.rcode.NOERROR
    with contextlib.closing(sqlite3.connect(tmp_path / "filterdns.db")) as db:
        rule = db.execute("SELECT rule FROM queries WHERE name = 'play.example'").fetchone()[0]
    assert rule == "budget games (profiles.minh.budgets[0], line 16): 2 min used today"


def test_the_budget_command_shows_used_and_left_today(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "filterdns.db"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"server: {{timezone: UTC}}\nlog: {{database: {database}}}\n"
        "profiles:\n"
        "  minh:\n"
        "    age_band: 13-15\n"
        "    budgets: [{name: games, categories: [games], per_day: 60m}]\n"
        "  lan: {age_band: 9-12}\n"
    )
    assert dbfile.prepare(database, now=time.time(), repair=False) is None
    today = datetime.now(ZoneInfo("UTC")).date().isoformat()
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("INSERT INTO budget_usage VALUES ('minh', 'games', ?, 25)", (today,))
        db.commit()
    assert main(["-c", str(config), "budget", "minh", "--json"]) == 0
    (games,) = json.loads(capsys.readouterr().out)
    assert (games["used"], games["left"], games["applies"]) == (25, 35, True)
    assert main(["-c", str(config), "budget"]) == 0
    assert "25 of 60 min" in capsys.readouterr().out
    assert main(["-c", str(config), "budget", "nobody"]) == 1
    assert "no profile 'nobody'" in capsys.readouterr().out
    assert main(["-c", str(config), "grant", "minh", "--budget", "games", "--for", "30m"]) == 0
    assert "+30 min of budget games until" in capsys.readouterr().out
    assert main(["-c", str(config), "budget", "minh", "--json"]) == 0
    (games,) = json.loads(capsys.readouterr().out)
    assert (games["used"], games["minutes"], games["left"]) == (25, 90, 65)
    assert main(["-c", str(config), "grant", "minh", "--budget", "video", "--for", "30m"]) == 1
    assert "minh has no budget 'video'; budgets: games" in capsys.readouterr().out


async def test_retention_drops_the_budget_minutes_of_old_days(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = query_log(LogConfig(database=path, retention=DAY), flush_interval=0.01)
    async with running(log):
        meter = BudgetMeter()
        games = (BudgetConfig("games", ("games",), 3600.0),)
        for day in ("2026-11-20 10:00", "2026-11-23 09:00"):  # a minute of play each
            for name in ("play.example", "cdn.play.example"):
                meter.record("minh", games, name, at(day), ZoneInfo("Asia/Ho_Chi_Minh"))
        log.usage = meter
        async with asyncio.timeout(5):  # written with the next (empty) batch
            await log.wait_until(lambda _stats: not meter.pending())
        assert len(read_usage(path, at("2026-11-20 10:00"))) == 2
        log.clock = lambda: at("2026-11-23 10:00")
        await log.prune()
    stored = read_usage(path, at("2026-11-20 10:00"))
    assert stored == [("minh", "games", "2026-11-23", 1)]


async def test_a_top_up_from_the_command_line_unblocks_at_once(
    upstream: FakeUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock(at("2026-11-23 10:00"))
    text = budget_config(upstream, tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    async with running_proxy(text, wall_clock=clock) as proxy:
        for minute in range(2):
            clock.now = at("2026-11-23 10:00") + 60 * minute
            for name in ("play.example", "cdn.play.example"):
                await proxy.query(name, source="127.0.0.2")
        assert (await proxy.query("play.example", source="127.0.0.2")).rcode() == dns.rcode.NXDOMAIN
        grant = ["-c", str(config), "grant", "minh", "--budget", "games", "--for", "1m"]
        assert await asyncio.to_thread(main, grant) == 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:  # the server looks at the grants four times a second
            reply = await proxy.query("play.example", source="127.0.0.2", tcp=True)
            if reply.rcode() == dns.rcode.NOERROR:
                break
            assert loop.time() - start < 3.0, "the top-up did not apply"
            await asyncio.sleep(0.02)
    assert "+1 min of budget games" in capsys.readouterr().out
