"""Many `filterdns serve` processes on one PostgreSQL database: a pause, a resume or a grant
made through one applies on the other within a second, a report counts both, and the database
killed mid-flood costs no answer and no pause (each keeps its last copy, across a restart too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.integration.postgres import PgServer
from tests.integration.processes import open_directory, run_cli, start_serve, stop

RECORDS = {
    ("example.com", "A"): ["93.184.216.34"],
    ("casino.example", "A"): ["203.0.113.66"],  # what it is when not blocked
}
OPEN = "93.184.216.34"
WITHIN = 1.0  # seconds: an action applies on every instance within this


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


class Site:
    """One instance: its configuration, state directory and, once started, its port."""

    def __init__(self, base: Path, name: str, url: str, upstream: str) -> None:
        self.name = name
        self.state = base / name
        self.state.mkdir()
        self.config = base / f"{name}.yaml"
        self.config.write_text(
            f'server:\n  listen: ["127.0.0.1:0"]\n  rate_limit: null\n  instance: {name}\n'
            f'upstreams:\n  servers: ["{upstream}"]\n  timeout: 1s\n'
            "lists: {download_defaults: false}\n"
            f'log: {{database: "{url}"}}\n'
            f"categories: {{gambling: [{base / 'gambling.txt'}]}}\n"
            "profiles: {kid: {age_band: 16-17}}\ndefault_profile: kid\n"
        )
        self.env = {"FILTERDNS_STATE_DIR": str(self.state)}
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.seen: list[str] = []

    async def start(self) -> None:
        self.process, self.port, self.seen = await start_serve(self.config, env=self.env)

    async def stop(self) -> str:
        assert self.process is not None
        return "".join(self.seen) + await stop(self.process)

    async def cli(self, *args: str) -> str:
        done = await run_cli("-c", str(self.config), *args, env=self.env)
        assert done.code == 0, done
        return done.out

    async def ask(self, name: str) -> dns.message.Message:
        query = dns.message.make_query(name, "A")
        return await dns.asyncquery.udp(query, "127.0.0.1", port=self.port, timeout=3)

    async def is_open(self, name: str) -> bool:
        reply = await self.ask(name)
        return reply.rcode() == dns.rcode.NOERROR and any(
            rdata.to_text() in (OPEN, "203.0.113.66") for rrset in reply.answer for rdata in rrset
        )

    async def until(self, name: str, *, is_open: bool, deadline: float = 10.0) -> float:
        """Ask every 20 ms until `name` is (not) answered; the seconds it took."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while await self.is_open(name) != is_open:
            if loop.time() - start > deadline:
                state = "answered" if is_open else "blocked"
                raise AssertionError(f"{name} not {state} on {self.name} within {deadline} s")
            await asyncio.sleep(0.02)
        return loop.time() - start


@contextlib.asynccontextmanager
async def sites(upstream: FakeUpstream, url: str, *names: str) -> AsyncIterator[list[Site]]:
    """Running instances of one installation on the database at `url`."""
    with open_directory() as base:
        (base / "gambling.txt").write_text("casino.example\n")
        running = [Site(base, name, url, upstream.address) for name in names]
        try:
            await asyncio.gather(*(site.start() for site in running))
            await asyncio.gather(*(site.until("casino.example", is_open=False) for site in running))
            yield running
        finally:
            for site in running:
                if site.process is not None and site.process.returncode is None:
                    await site.stop()


async def test_an_action_through_one_instance_applies_on_the_other_within_a_second(
    upstream: FakeUpstream, server: PgServer
) -> None:
    url = server.new_database()
    async with sites(upstream, url, "school-a", "school-b") as (a, b):
        assert await b.is_open("example.com")
        await a.cli("pause", "kid", "--for", "15m", "--reason", "exams")
        assert await b.until("example.com", is_open=False) <= WITHIN
        await b.cli("resume", "kid")
        assert await a.until("example.com", is_open=True) <= WITHIN
        await a.cli("grant", "kid", "--allow", "casino.example", "--for", "30m")
        assert await b.until("casino.example", is_open=True) <= WITHIN
        grants = json.loads(await b.cli("grants", "--json"))
        assert [g["domain"] for g in grants] == ["casino.example"]
        (grant,) = grants
        await b.cli("revoke", str(grant["id"]))
        assert await a.until("casino.example", is_open=False) <= WITHIN
        for _ in range(2):
            await a.ask("casino.example")
        for _ in range(3):
            await b.ask("casino.example")
        data = await blocked_at_least(a, 5 + 2)  # and the two blocks before the grant
        logs = [await site.stop() for site in (a, b)]
    assert int(str(data["blocked_total"])) >= 7
    assert "Traceback" not in "".join(logs)


async def blocked_at_least(site: Site, count: int) -> dict[str, object]:
    """The report (of every instance) once it counts `count` blocked lookups."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        data: dict[str, object] = json.loads(await site.cli("report", "--json", "--since", "1h"))
        if int(str(data["blocked_total"])) >= count or loop.time() > deadline:
            return data
        await asyncio.sleep(0.2)


async def test_the_database_down_keeps_every_pause_answers_and_restarts(
    upstream: FakeUpstream, server: PgServer
) -> None:
    url = server.new_database()
    async with sites(upstream, url, "school-a", "school-b") as (a, b):
        await a.cli("pause", "kid", "--for", "1h")
        await b.until("example.com", is_open=False)
        await asyncio.to_thread(server.stop)  # as if killed
        try:
            for _ in range(50):  # a flood of lookups: each answered, the pause still in force
                assert not await a.is_open("example.com")
                assert not await b.is_open("example.com")
                assert (await b.ask("casino.example")).rcode() == dns.rcode.NXDOMAIN
            await b.stop()
            await b.start()  # a restart while the database is away: the pause holds
            assert not await b.is_open("example.com")
        finally:
            await asyncio.to_thread(server.start)
        await a.cli("resume", "kid")  # back: the followers reconnect (back-off up to 30 s)
        await b.until("example.com", is_open=True, deadline=40)
        await a.until("example.com", is_open=True, deadline=40)
        logs = "".join([await site.stop() for site in (a, b)])
    assert "Traceback" not in logs
    assert "keeping the last copy" in logs
