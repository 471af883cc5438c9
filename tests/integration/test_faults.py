"""Faults: upstreams that misbehave, a disk that fills, a poisoner racing the real answer.

For every way an upstream can fail, the proxy must fail over to a working one, serve a stale
answer when it has one, and answer SERVFAIL only when nothing else is possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import FakeClock, addresses, config_for, running_proxy
from tests.integration.test_lifecycle import _start_serve

REAL = "93.184.216.34"
RECORDS = {("example.com", "A"): [REAL], ("other.example", "A"): ["192.0.2.7"]}


def _silent(fake: FakeUpstream) -> None:
    fake.silent = True


def _slow(fake: FakeUpstream) -> None:
    fake.delay = 5.0  # far beyond the proxy's deadline


def _garbage(fake: FakeUpstream) -> None:
    fake.garbage = True


def _wrong_id(fake: FakeUpstream) -> None:
    fake.wrong_id = True


def _servfail_rcode(fake: FakeUpstream) -> None:
    fake.rcode = dns.rcode.SERVFAIL


def _tc_then_cut(fake: FakeUpstream) -> None:
    fake.truncate_udp = True  # TC on every UDP answer...
    fake.close_tcp_midframe = True  # ...and the TCP retry cut in the middle of the answer


FAULTS = [
    pytest.param(_silent, id="silent"),
    pytest.param(_slow, id="slow"),
    pytest.param(_garbage, id="garbage"),
    pytest.param(_wrong_id, id="wrong-id"),
    pytest.param(_servfail_rcode, id="servfail-rcode"),
    pytest.param(_tc_then_cut, id="tc-then-tcp-cut"),
]
Fault = Callable[[FakeUpstream], None]


def _config(*upstreams: str, extra: str = "") -> str:
    text = config_for(*upstreams, extra=extra)
    return text.replace("timeout: 1s", "timeout: 400ms")


@asynccontextmanager
async def _fakes(count: int) -> AsyncIterator[list[FakeUpstream]]:
    async with FakeUpstream(RECORDS) as a, FakeUpstream(RECORDS) as b:
        yield [a, b][:count]


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_failing_first_upstream_fails_over_to_the_second(fault: Fault) -> None:
    async with _fakes(2) as (bad, good):
        fault(bad)
        async with running_proxy(_config(bad.address, good.address)) as proxy:
            reply = await proxy.query("example.com")
    assert reply.rcode() == dns.rcode.NOERROR
    assert addresses(reply) == [REAL]
    assert good.calls >= 1


@pytest.mark.parametrize("fault", FAULTS)
async def test_with_no_upstream_left_stale_data_is_served_and_only_then_servfail(
    fault: Fault,
) -> None:
    clock = FakeClock()
    async with _fakes(1) as (only,):
        text = _config(only.address, extra="cache: {serve_stale: 1d}")
        async with running_proxy(text, clock=clock) as proxy:
            await proxy.query("example.com")
            clock.now += 400  # the answer expired
            fault(only)
            stale = await proxy.query("example.com")
            nothing = await proxy.query("other.example")
    assert addresses(stale) == [REAL]
    assert stale.answer[0].ttl == 30  # RFC 8767
    assert nothing.rcode() == dns.rcode.SERVFAIL


async def test_a_tls_upstream_whose_handshake_fails_hands_over_to_the_next() -> None:
    async with _fakes(2) as (plain, good):
        # A TLS client speaking to a plain TCP port: the handshake cannot succeed.
        broken = f"tls://127.0.0.1:{plain.port}#dns.test"
        async with running_proxy(_config(broken, good.address)) as proxy:
            reply = await proxy.query("example.com")
        async with running_proxy(_config(broken)) as proxy:
            alone = await proxy.query("example.com")
    assert addresses(reply) == [REAL]
    assert alone.rcode() == dns.rcode.SERVFAIL


async def test_forged_replies_from_another_port_never_reach_the_cache() -> None:
    # An off-path attacker who even knows the query's id and the proxy's source port, racing
    # the real (slow) answer from a port that is not the upstream's: nothing it sends is taken.
    async with _fakes(1) as (real,):
        real.delay = 0.3
        async with running_proxy(_config(real.address)) as proxy:
            asking = asyncio.create_task(proxy.query("example.com"))
            await real.wait_for_calls(1)
            target, query_id = real.udp_peers[-1], real.query_ids[-1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
                attacker.bind(("127.0.0.1", 0))
                for guess in (query_id, *range(0, 65536, 997)):
                    attacker.sendto(_forged(guess), target)
            first = await asking
            again = await proxy.query("example.com")
    assert addresses(first) == [REAL]
    assert addresses(again) == [REAL]
    assert real.calls == 1  # the second came from the cache, which holds the real answer


def _forged(query_id: int) -> bytes:
    query = dns.message.make_query("example.com", "A", use_edns=True, payload=1232)
    reply = dns.message.make_response(query)
    reply.id = query_id
    reply.answer.append(dns.rrset.from_text("example.com.", 86400, "IN", "A", "6.6.6.6"))
    return reply.to_wire()


async def test_sigkill_during_heavy_logging_loses_at_most_the_last_second(tmp_path: Path) -> None:
    database = tmp_path / "log.db"
    config = tmp_path / "config.yaml"
    async with _fakes(1) as (upstream,):
        config.write_text(
            config_for(upstream.address, server="rate_limit: null", extra=f"""\
                log: {{database: {database}}}
                profiles:
                  kid: {{age_band: adult, block: [blocked.example]}}
                default_profile: kid
            """)
        )  # fmt: skip
        process, port, _ = await _start_serve(config)
        # At least 1,000 answers a second old when it is killed, however busy this machine is.
        answered = await _flood_blocked(port, seconds=1.5, settled=1001)
        killed_at = time.monotonic()
        process.kill()
        await process.wait()

        with contextlib.closing(sqlite3.connect(database)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            stored = {name for (name,) in db.execute("SELECT name FROM queries")}
        settled = {name for name, at in answered.items() if at < killed_at - 1.0}
        assert len(settled) > 1000
        assert settled <= stored  # everything older than the last second survived

        process, port, _ = await _start_serve(config)  # and the database opens cleanly again
        try:
            again = await _flood_blocked(port, seconds=0.1)
        finally:
            process.terminate()
            await process.wait()
    assert again


async def _flood_blocked(port: int, *, seconds: float, settled: int = 0) -> dict[str, float]:
    """Ask unique blocked names in batches of 50 for `seconds`, and on until at least `settled`
    answers are a second old (at most 30 s); when each answer came."""
    loop = asyncio.get_running_loop()
    answered: dict[str, float] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        start = time.monotonic()
        deadline = start + seconds
        serial = 0

        def more() -> bool:
            now = time.monotonic()
            if now < deadline:
                return True
            old = sum(1 for at in answered.values() if at < now - 1.0)
            return old < settled and now < start + 30

        while more():
            for _ in range(50):
                serial += 1
                query = dns.message.make_query(f"n{serial}.blocked.example", "A")
                await loop.sock_sendall(sock, query.to_wire())
            for _ in range(50):
                reply = dns.message.from_wire(await asyncio.wait_for(loop.sock_recv(sock, 4096), 5))
                assert reply.rcode() == dns.rcode.NXDOMAIN
                answered[reply.question[0].name.to_text(omit_final_dot=True)] = time.monotonic()
    return answered
