"""The answer memo through the real server: a question asked again within a second gets the
same answer from the memo, over UDP and TCP, and still everything the chain would do happens:
TTLs count down across seconds, a pause applies to the very next question, every blocked lookup
is logged, a budget still counts the lookups, a list refresh changes the next answer."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from filterdns.policy.values import GrantKind
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import FakeClock, Proxy, addresses, config_for, running_proxy
from tests.integration.test_policy import at

RECORDS = {
    ("example.com", "A"): ["93.184.216.34"],
    ("play.example", "A"): ["203.0.113.10"],
    ("news.example", "A"): ["203.0.113.20"],
    ("restrictmoderate.youtube.com", "A"): ["216.239.38.119"],
}
KID = "127.0.0.2"  # the kid's tablet
TIMES = 4  # a question asked this many times: the upstream, the cache, then the memo twice


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


def kid_config(upstream: FakeUpstream, tmp_path: Path, profile: str = "") -> str:
    games = tmp_path / "games.txt"
    if not games.exists():
        games.write_text("play.example\n")
    extra = f"""\
        log: {{database: {tmp_path / "filterdns.db"}}}
        categories: {{games: ["{games}"]}}
        profiles:
          kid:
            age_band: 13-15
            bedtime: []
            block: [casino.example]
        {profile}
        clients:
          - {{name: kid-tablet, ip: {KID}, profile: kid}}
    """
    return config_for(upstream.address, extra=extra, server="timezone: Asia/Ho_Chi_Minh")


async def ask(proxy: Proxy, name: str, *, tcp: bool = False) -> list[dns.message.Message]:
    """`name` asked TIMES times by the kid's tablet."""
    return [await proxy.query(name, tcp=tcp, source=KID) for _ in range(TIMES)]


def served(proxy: Proxy) -> int:
    memo = proxy.app.server.memo
    assert memo is not None
    return memo.hits


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_a_repeated_question_gets_the_same_answer_and_its_ttls_still_count_down(
    upstream: FakeUpstream, tmp_path: Path, tcp: bool
) -> None:
    clock = FakeClock()
    async with running_proxy(kid_config(upstream, tmp_path), clock=clock) as proxy:
        replies = await ask(proxy, "example.com", tcp=tcp)
        memo_hits = served(proxy)
        clock.now += 1.0  # the cached answer is a second older
        later = await ask(proxy, "example.com", tcp=tcp)

    assert memo_hits == TIMES - 2
    assert [addresses(r) for r in replies] == [["93.184.216.34"]] * TIMES
    assert [r.answer[0].ttl for r in replies + later] == [300] * TIMES + [299] * TIMES
    assert len({r.id for r in replies}) == TIMES  # each reply carries its own query's id
    assert upstream.queries.count(("example.com", "A")) == 1


async def test_a_pause_made_between_two_identical_questions_blocks_the_second(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    wall = FakeClock(at("2026-11-23 10:00"))
    async with running_proxy(kid_config(upstream, tmp_path), wall_clock=wall) as proxy:
        before = await ask(proxy, "example.com")
        hits_before = served(proxy)
        grants = proxy.app.grants
        grants.add_many(["kid"], wall.now + 600, GrantKind.PAUSE, now=wall.now)
        assert grants.reload_if_changed()
        paused = await proxy.query("example.com", source=KID)

    assert hits_before == TIMES - 2
    assert [r.rcode() for r in before] == [dns.rcode.NOERROR] * TIMES
    assert paused.rcode() == dns.rcode.NXDOMAIN


async def test_a_blocked_name_asked_again_and_again_is_logged_each_time(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    wall = FakeClock(at("2026-11-23 10:00"))
    async with running_proxy(kid_config(upstream, tmp_path), wall_clock=wall) as proxy:
        replies = await ask(proxy, "casino.example") + await ask(proxy, "casino.example", tcp=True)
        hits = served(proxy)
    with contextlib.closing(sqlite3.connect(tmp_path / "filterdns.db")) as db:
        (rows,) = db.execute(  # lookups: a row holds the repeats within log.fold_window
            "SELECT sum(hits) FROM queries WHERE name = 'casino.example' AND client = ?", (KID,)
        ).fetchone()

    assert [r.rcode() for r in replies] == [dns.rcode.NXDOMAIN] * 2 * TIMES
    assert hits >= TIMES  # the memo answered at least the last two of each transport
    assert rows == 2 * TIMES


async def test_a_budgeted_name_asked_from_the_memo_still_spends_the_budget(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    wall = FakeClock(at("2026-11-23 10:00"))
    block = "    block: [casino.example]\n"
    budget = "    budgets: [{name: games, categories: [games], per_day: 2m}]\n"
    text = kid_config(upstream, tmp_path).replace(block, block + budget)
    async with running_proxy(text, wall_clock=wall) as proxy:
        first = await ask(proxy, "play.example")  # three lookups in one minute: it counts
        hits = served(proxy)
        used = dict(proxy.app.budgets.used)
        wall.now += 60
        second = await ask(proxy, "play.example")  # the second minute: the budget is spent
        spent = await proxy.query("play.example", source=KID)

    assert hits == TIMES - 2
    assert used == {("kid", "games", "2026-11-23"): 1}
    assert [r.rcode() for r in first] == [dns.rcode.NOERROR] * TIMES
    assert [r.rcode() for r in second][:3] == [dns.rcode.NOERROR] * 3
    assert spent.rcode() == dns.rcode.NXDOMAIN


async def test_youtube_in_restricted_mode_still_spends_a_video_budget(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    wall = FakeClock(at("2026-11-23 10:00"))
    video = tmp_path / "video.txt"
    video.write_text("youtube.com\n")
    block = "    block: [casino.example]\n"
    budget = (
        "    youtube: moderate\n    budgets: [{name: video, categories: [video], per_day: 2m}]\n"
    )
    text = kid_config(upstream, tmp_path).replace(block, block + budget)
    text = text.replace("categories: {games:", f'categories: {{video: ["{video}"], games:')
    async with running_proxy(text, wall_clock=wall) as proxy:
        first = await ask(proxy, "www.youtube.com")  # the safe host, four times in a minute
        hits = served(proxy)
        used = dict(proxy.app.budgets.used)
        wall.now += 60
        second = await ask(proxy, "www.youtube.com")  # the second minute: spent
        spent = await proxy.query("www.youtube.com", source=KID)

    assert [addresses(r) for r in first + second[:3]] == [["216.239.38.119"]] * (TIMES + 3)
    assert [r.answer[0].ttl for r in first] == [60] * TIMES  # short: the next lookup counts
    assert hits == TIMES - 2  # kept like any answer, and still counted
    assert used == {("kid", "video", "2026-11-23"): 1}
    assert spent.rcode() == dns.rcode.NXDOMAIN


async def test_a_list_refresh_changes_the_next_answer(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    wall = FakeClock(at("2026-11-23 10:00"))
    band = "age_band: 13-15"
    text = kid_config(upstream, tmp_path).replace(band, band + "\n    categories: [games]")
    async with running_proxy(text, wall_clock=wall) as proxy:
        allowed = await ask(proxy, "news.example")
        blocked = await ask(proxy, "play.example")
        hits = served(proxy)
        (tmp_path / "games.txt").write_text("news.example\n")  # the list changed on disk
        assert await proxy.app.lists.reload_local()
        now_blocked = await proxy.query("news.example", source=KID)
        now_allowed = await proxy.query("play.example", source=KID)

    assert hits == 2 * (TIMES - 2)
    assert [r.rcode() for r in allowed] == [dns.rcode.NOERROR] * TIMES
    assert [r.rcode() for r in blocked] == [dns.rcode.NXDOMAIN] * TIMES
    assert now_blocked.rcode() == dns.rcode.NXDOMAIN
    assert addresses(now_allowed) == ["203.0.113.10"]
