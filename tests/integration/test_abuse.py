"""Abuse: per-client rate limits, no reflection to forged sources, no amplification.

Queries here are answered without waiting for an upstream (blocked names, answered by the
policy), so a server that reads its one UDP socket in order has answered or dropped every
earlier datagram by the time it answers a later one: a last "probe" query from another address
tells when to count, with no sleep.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.rcode
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import Proxy, addresses, config_for, running_proxy

BLOCKED = "blocked.example"


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as fake:
        yield fake


def _config(upstream: FakeUpstream, server: str) -> str:
    return config_for(upstream.address, server=server, extra=f"""\
        profiles:
          kid: {{age_band: adult, block: [{BLOCKED}]}}
        default_profile: kid
    """)  # fmt: skip


def _packet(msg_id: int, name: str = BLOCKED, payload: int | None = None) -> bytes:
    query = dns.message.make_query(name, "A", use_edns=payload is not None, payload=payload or 0)
    query.id = msg_id
    return query.to_wire()


@contextmanager
def _udp_client(source: str, proxy: Proxy) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((source, 0))
        sock.connect((proxy.host, proxy.port))
        sock.setblocking(False)
        yield sock
    finally:
        sock.close()


def _drain(sock: socket.socket) -> list[dns.message.Message]:
    """Every reply already delivered to `sock`."""
    replies = []
    while True:
        try:
            replies.append(dns.message.from_wire(sock.recv(65535)))
        except BlockingIOError:
            return replies


async def _probe(proxy: Proxy) -> None:
    """A query from 127.0.0.1 answered: everything sent before it has been dealt with."""
    reply = await proxy.query(BLOCKED, source="127.0.0.1")
    assert reply.rcode() == dns.rcode.NXDOMAIN


async def test_a_flooding_client_is_cut_to_its_burst_while_another_is_answered_in_full(
    upstream: FakeUpstream,
) -> None:
    limited = _config(upstream, "rate_limit: {per_client_qps: 1, burst: 60}")
    async with running_proxy(limited) as proxy:
        with _udp_client("127.0.0.2", proxy) as flood, _udp_client("127.0.0.3", proxy) as calm:
            for i in range(300):  # the flood and the calm client interleaved
                flood.send(_packet(i))
                if i % 6 == 0:
                    calm.send(_packet(i))
                    await asyncio.sleep(0)  # let the server read: the socket buffer is finite
            await _probe(proxy)
            flooded, answered = _drain(flood), _drain(calm)

        assert len(answered) == 50
        assert 60 <= len(flooded) <= 62  # the burst, plus what a second's rate refilled
        assert proxy.app.server.stats["rate_limited"] == 300 - len(flooded)


async def test_over_tcp_a_client_over_its_limit_gets_refused(upstream: FakeUpstream) -> None:
    async with running_proxy(
        _config(upstream, "rate_limit: {per_client_qps: 1, burst: 3}")
    ) as proxy:
        rcodes = [
            (await proxy.query(BLOCKED, tcp=True, source="127.0.0.2")).rcode() for _ in range(5)
        ]
        other = await proxy.query(BLOCKED, tcp=True, source="127.0.0.3")

    assert rcodes[:3] == [dns.rcode.NXDOMAIN] * 3
    assert dns.rcode.REFUSED in rcodes[3:]
    assert other.rcode() == dns.rcode.NXDOMAIN


async def test_null_rate_limit_answers_every_query(upstream: FakeUpstream) -> None:
    async with running_proxy(_config(upstream, "rate_limit: null")) as proxy:
        with _udp_client("127.0.0.2", proxy) as flood:
            answered = 0
            for i in range(500):
                flood.send(_packet(i))
                if i % 10 == 0:  # let the server read and read its answers: buffers are finite
                    await asyncio.sleep(0)
                    answered += len(_drain(flood))
            await _probe(proxy)
            answered += len(_drain(flood))
    assert answered == 500


async def test_a_udp_source_outside_allow_clients_gets_no_reply_at_all(
    upstream: FakeUpstream,
) -> None:
    # A forged source must never receive anything: not even REFUSED (no reflection).
    async with running_proxy(_config(upstream, "allow_clients: [127.0.0.1/32]")) as proxy:
        with _udp_client("127.0.0.9", proxy) as outsider:
            outsider.send(_packet(1, "example.com"))
            outsider.send(_packet(2, "example.com", payload=4096))
            await _probe(proxy)
            assert _drain(outsider) == []
        over_tcp = await proxy.query("example.com", tcp=True, source="127.0.0.9")

    assert over_tcp.rcode() == dns.rcode.REFUSED
    assert upstream.calls == 0
    assert proxy.app.chain.access.refused == 3


@pytest.mark.parametrize("payload", [None, 512, 600, 1232, 4096])
async def test_a_udp_answer_never_exceeds_what_the_client_can_take(payload: int | None) -> None:
    records = {("big.example", "A"): [f"198.51.{i // 250}.{i % 250}" for i in range(200)]}
    async with FakeUpstream(records) as big, running_proxy(config_for(big.address)) as proxy:
        with _udp_client("127.0.0.1", proxy) as client:
            loop = asyncio.get_running_loop()
            client.send(_packet(7, "big.example", payload=payload))
            raw = await asyncio.wait_for(loop.sock_recv(client, 65535), 3)

    limit = max(512, payload or 512)
    assert len(raw) <= limit
    reply = dns.message.from_wire(raw)
    whole = 12 + 15 + 11 + 200 * 16  # header, question, OPT, 200 A records (names compressed)
    if whole > limit:
        assert reply.flags & dns.flags.TC  # the client retries over TCP
        assert not reply.answer
    else:
        assert len(addresses(reply)) == 200


async def test_a_burst_arriving_while_the_server_is_busy_is_answered_in_full(
    upstream: FakeUpstream,
) -> None:
    # The test shares the server's event loop: sending without yielding is a server too busy
    # to read. A socket with the kernel's default buffer holds ~250 such queries, and a
    # collection or a log batch can keep the loop that busy.
    burst = 400
    async with running_proxy(_config(upstream, "rate_limit: null")) as proxy:
        with _udp_client("127.0.0.2", proxy) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            for i in range(burst):
                client.send(_packet(i))
            await _probe(proxy)
            answered = _drain(client)
    assert len(answered) == burst
