"""`server.workers: 2`: `filterdns serve` answers from two worker processes on one port.

Each test starts the real command on port 0 with a fake upstream and queries it over UDP and
TCP from many source ports (the kernel spreads them over the workers' sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode

from tests.fakes.upstream import FakeUpstream
from tests.integration.processes import open_directory, run_cli, start_serve, stop, until

RECORDS = {
    ("casino.example", "A"): ["203.0.113.66"],
    ("news.example", "A"): ["203.0.113.10"],
    ("games.example", "A"): ["203.0.113.20"],
}
WORKER = "filterdns.cli.worker"


@contextlib.contextmanager
def installation(upstream: str, *changes: tuple[str, str]) -> Iterator[Path]:
    """The configuration file of a two-worker server blocking casino.example and games, with
    `changes` (old, new text) made."""
    with open_directory() as base:
        (base / "gambling.txt").write_text("casino.example\n")
        (base / "games.txt").write_text("games.example\n")
        config = base / "config.yaml"
        config.write_text(
            f'server:\n  listen: ["127.0.0.1:0"]\n  rate_limit: null\n  workers: 2\n'
            f'upstreams:\n  servers: ["{upstream}"]\n  timeout: 1s\n'
            f"lists: {{download_defaults: false, cache_dir: {base / 'state' / 'lists'}}}\n"
            f"log: {{database: {base / 'state' / 'filterdns.db'}}}\n"
            f"categories: {{gambling: [{base / 'gambling.txt'}], games: [{base / 'games.txt'}]}}\n"
            "profiles: {kid: {age_band: 16-17, categories: [gambling, games]}}\n"
            "default_profile: kid\n"
        )
        for old, new in changes:
            config.write_text(config.read_text().replace(old, new))
        yield config


def workers_of(pid: int) -> set[int]:
    """The worker processes `pid` runs now."""
    found = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            if WORKER in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                found.add(int(child))
    return found


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie does not)."""
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False


async def ask(port: int, name: str, *, tcp: bool = False) -> dns.message.Message:
    """One query from a fresh source port."""
    query = dns.message.make_query(name, "A")
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=5)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)


async def rcodes(port: int, name: str, count: int, *, tcp: bool = False) -> set[int]:
    """The answer codes of `count` queries for `name`, each from its own source port."""
    answers = await asyncio.gather(*(ask(port, name, tcp=tcp) for _ in range(count)))
    return {answer.rcode() for answer in answers}


async def settled(port: int) -> None:
    """Until every worker serves the configured lists (the shipped ones serve meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while await rcodes(port, "games.example", 10) != {dns.rcode.NXDOMAIN}:
        assert loop.time() < deadline, "games.example is never blocked"
        await asyncio.sleep(0.1)


async def casino_logged(config: Path) -> int:
    """How many casino.example lookups `filterdns report` counts."""
    done = await run_cli("-c", str(config), "report", "--json", "--since", "1h")
    assert done.code == 0, done
    top = json.loads(done.out)["top_names"]
    return sum(int(row["count"]) for row in top if row["name"] == "casino.example")


async def test_two_workers_answer_over_udp_and_tcp_and_log_each_block_once() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        with installation(upstream.address) as config:
            process, port, seen = await start_serve(config)
            try:
                workers = workers_of(process.pid)
                await settled(port)
                udp = await rcodes(port, "news.example", 20)
                tcp = await rcodes(port, "news.example", 10, tcp=True)
                blocked = await rcodes(port, "casino.example", 30)
                blocked_tcp = await rcodes(port, "casino.example", 10, tcp=True)
                # Written by the main process once a second: wait for the rows, then a bit
                # more, so a row logged twice would show.
                total = 0
                for _ in range(100):
                    total = await casino_logged(config)
                    if total >= 40:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.5)
                total = await casino_logged(config)
            finally:
                log = "".join(seen) + await stop(process)
    assert len(workers) == 2
    assert udp == tcp == {dns.rcode.NOERROR}
    assert blocked == blocked_tcp == {dns.rcode.NXDOMAIN}
    assert total == 40
    assert log.count("listening on") == 1
    assert "Traceback" not in log


async def test_a_grant_applies_on_every_worker_within_a_second() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        with installation(upstream.address) as config:
            process, port, seen = await start_serve(config)
            try:
                await settled(port)
                before = await rcodes(port, "games.example", 20)
                done = await run_cli(
                    "-c", str(config), "grant", "kid", "--category", "games", "--for", "1h"
                )
                assert done.code == 0, done
                granted_at = asyncio.get_running_loop().time()
                await asyncio.sleep(1.0)
                after = await rcodes(port, "games.example", 40)
                after_tcp = await rcodes(port, "games.example", 10, tcp=True)
                took = asyncio.get_running_loop().time() - granted_at
            finally:
                log = "".join(seen) + await stop(process)
    assert before == {dns.rcode.NXDOMAIN}
    assert after == after_tcp == {dns.rcode.NOERROR}, f"still blocked somewhere after {took} s"
    assert "Traceback" not in log


async def test_a_killed_worker_is_replaced_and_sigterm_stops_them_all() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        with installation(upstream.address) as config:
            process, port, seen = await start_serve(config)
            try:
                await settled(port)
                first = workers_of(process.pid)
                victim = min(first)
                os.kill(victim, signal.SIGKILL)
                await until(
                    lambda: len(workers_of(process.pid) - {victim}) == 2, "a new worker", 10.0
                )
                replaced = workers_of(process.pid)
                # The new worker serves the dead one's sockets: every source port is answered.
                answers = await rcodes(port, "casino.example", 40)
            finally:
                log = "".join(seen) + await stop(process)
    assert len(first) == 2 and victim not in replaced and len(replaced) == 2
    assert answers == {dns.rcode.NXDOMAIN}
    assert f"(pid {victim}) exited with code -9; starting another" in log
    assert not any(map(alive, replaced))  # stopped with the main process, none left behind
    assert "Traceback" not in log


async def blocked_everywhere(port: int, name: str, deadline: float = 10.0) -> float:
    """Seconds until `name` is blocked from every source port asked (AssertionError after
    `deadline`)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while await rcodes(port, name, 20) != {dns.rcode.NXDOMAIN}:
        assert loop.time() - start < deadline, f"{name} is not blocked by every worker"
        await asyncio.sleep(0.05)
    return loop.time() - start


async def test_a_reload_and_a_list_change_reach_every_worker() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        with installation(upstream.address) as config:
            process, port, seen = await start_serve(config)
            try:
                await settled(port)
                assert await rcodes(port, "news.example", 20) == {dns.rcode.NOERROR}
                text = config.read_text()
                config.write_text(text.replace("categories: [gambling, games]}",
                                               "categories: [gambling, games], "
                                               "block: [news.example]}"))  # fmt: skip
                process.send_signal(signal.SIGHUP)
                await blocked_everywhere(port, "news.example")
                # A list file edited: the main process builds the index, the workers map it.
                gambling = config.parent / "gambling.txt"
                gambling.write_text("casino.example\npoker.example\n")
                await blocked_everywhere(port, "poker.example", deadline=30.0)
            finally:
                log = "".join(seen) + await stop(process)
    assert "reloaded" in log
    assert "Traceback" not in log


def budget_minutes(database: Path) -> list[int]:
    """The minutes stored for the kid's games budget."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        query = "SELECT minutes FROM budget_usage WHERE profile = 'kid'"
        return [int(row[0]) for row in db.execute(query)]


async def test_a_budget_is_metered_once_across_workers_and_spent_on_all() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        with installation(upstream.address) as config:
            text = config.read_text().replace(
                "categories: [gambling, games]}",
                "categories: [gambling], bedtime: [], "
                "budgets: [{name: games, categories: [games], per_day: 1m}]}",
            )
            config.write_text(text)
            database = config.parent / "state" / "filterdns.db"
            process, port, seen = await start_serve(config)
            try:
                await blocked_everywhere(port, "casino.example", deadline=60.0)
                second = time.time() % 60
                if second > 45:  # the lookups below fall in one minute
                    await asyncio.sleep(60.5 - second)
                first = await rcodes(port, "games.example", 1)
                # Lookups from many ports, over both workers, make one minute: spent.
                await blocked_everywhere(port, "games.example")
                await until(lambda: bool(budget_minutes(database)), "the minute stored", 10.0)
                await asyncio.sleep(1.5)  # a second minute counted by another worker would show
                stored = budget_minutes(database)
            finally:
                log = "".join(seen) + await stop(process)
    assert first == {dns.rcode.NOERROR}
    assert stored == [1]
    assert "Traceback" not in log


async def scrape(address: str) -> str:
    """The text of /metrics."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{address}/metrics") as reply,
    ):
        assert reply.status == 200
        return await reply.text()


def casino_counted(text: str) -> int:
    """Blocked gambling lookups /metrics counts."""
    line = 'filterdns_queries_total{kind="blocked",profile="kid",category="gambling"} '
    return sum(int(row[len(line) :]) for row in text.splitlines() if row.startswith(line))


async def counted(address: str, expected: int) -> str:
    """/metrics once it counts `expected` blocked gambling lookups (workers report each
    second); AssertionError after 10 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while casino_counted(text := await scrape(address)) != expected:
        assert loop.time() < deadline, f"{casino_counted(text)} counted, not {expected}"
        await asyncio.sleep(0.1)
    return text


async def test_metrics_add_up_every_workers_answers_and_keep_a_dead_workers_counts() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        metrics = ("workers: 2\n", "workers: 2\n  metrics: 127.0.0.1:0\n")
        with installation(upstream.address, metrics) as config:
            process, port, seen = await start_serve(config)
            try:
                found = re.search(r"metrics on http://([0-9.:]+)/metrics", "".join(seen))
                assert found, "".join(seen)
                address = found.group(1)
                await settled(port)
                await rcodes(port, "casino.example", 30)
                await rcodes(port, "casino.example", 10, tcp=True)
                before = await counted(address, 40)
                victim = min(workers_of(process.pid))
                os.kill(victim, signal.SIGKILL)
                await until(
                    lambda: len(workers_of(process.pid) - {victim}) == 2, "a new worker", 10.0
                )
                after_kill = casino_counted(await scrape(address))
                await rcodes(port, "casino.example", 20)
                after = await counted(address, 60)
            finally:
                log = "".join(seen) + await stop(process)
    assert after_kill == 40  # the dead worker's counts stay added: a counter never goes back
    for text in (before, after):
        assert "filterdns_cache_hits_total" in text and "filterdns_log_written_total" in text
    packets = [float(x) for x in re.findall(r"^filterdns_packets_total (\S+)$", after, re.M)]
    assert len(packets) == 1 and packets[0] >= 60  # both workers' datagrams and frames
    assert "Traceback" not in log


async def answered_from(port: int, source: str, count: int) -> int:
    """How many of `count` queries from `source`, each from its own port, are answered."""

    async def one() -> bool:
        query = dns.message.make_query("news.example", "A")
        try:
            await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=1, source=source)
        except dns.exception.Timeout:
            return False
        return True

    return sum(await asyncio.gather(*(one() for _ in range(count))))


async def test_a_clients_rate_limit_holds_across_workers() -> None:
    async with FakeUpstream(RECORDS) as upstream:
        limit = ("rate_limit: null", "rate_limit: {per_client_qps: 1, burst: 20}")
        with installation(upstream.address, limit) as config:
            process, port, seen = await start_serve(config)
            try:
                # 127.0.0.2 and .3 fall on different workers: each client still has one limit.
                limited = await answered_from(port, "127.0.0.2", 60)
                other = await answered_from(port, "127.0.0.3", 60)
                fresh = await answered_from(port, "127.0.0.4", 5)
                tcp = await rcodes(port, "news.example", 5, tcp=True)  # 127.0.0.1
            finally:
                log = "".join(seen) + await stop(process)
    # Spread over the two workers by source port, each client would get about 40 answers.
    assert 20 <= limited <= 25 and 20 <= other <= 25
    assert fresh == 5 and tcp == {dns.rcode.NOERROR}
    assert "cannot send each client to one worker" not in log and "Traceback" not in log
