"""The UDP listener under many queries at once, both ways it reads and answers: batched
(recvmmsg/sendmmsg, where the system has them) and plain (recvfrom/sendto). Every query sent
before any answer is read, over IPv4 and IPv6: each answered once, with its own id and its
own name's address, misses (answered by a task) and cached names alike."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import dns.flags
import dns.message
import pytest

from filterdns.dns import mmsg
from filterdns.dns import server as server_module
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import Proxy, addresses, config_for, running_proxy

NAMES = 40
RECORDS = {(f"n{i}.example", "A"): [f"198.51.100.{i}"] for i in range(NAMES)}
RECORDS[("big.example", "A")] = [f"203.0.113.{i}" for i in range(60)]


@pytest.fixture(params=[True, False], ids=["batched", "plain"])
def batched(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Which way the listener reads and answers (set before the proxy starts)."""
    if request.param and not mmsg.available():
        pytest.skip("no recvmmsg/sendmmsg here")
    monkeypatch.setattr(server_module, "UDP_BATCH", request.param)
    return bool(request.param)


@pytest.fixture(params=["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
async def proxy(request: pytest.FixtureRequest, batched: bool) -> AsyncIterator[Proxy]:
    """The proxy on loopback, without a rate limit, forwarding to a fake upstream."""
    host = request.param
    listen = f"[{host}]:0" if ":" in host else f"{host}:0"
    async with FakeUpstream(RECORDS) as upstream:
        text = config_for(upstream.address, listen=listen, server="rate_limit: null")
        try:
            async with running_proxy(text) as running:
                yield running
        except OSError as exc:  # no IPv6 on this machine
            pytest.skip(f"cannot listen on {listen}: {exc}")


async def _burst(
    proxy: Proxy, queries: list[dns.message.Message]
) -> dict[int, dns.message.Message]:
    """Send every query from one socket before reading any answer; the answers by id."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in proxy.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setblocking(False)
        for query in queries:
            sock.sendto(query.to_wire(), (proxy.host, proxy.port))
        answers: dict[int, dns.message.Message] = {}
        while len(answers) < len(queries):
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout=5)
            reply = dns.message.from_wire(data)
            assert reply.id not in answers, f"id {reply.id} answered twice"
            answers[reply.id] = reply
    return answers


def _queries(count: int, first_id: int = 1) -> list[dns.message.Message]:
    out: list[dns.message.Message] = []
    for n in range(count):
        query = dns.message.make_query(f"n{n % NAMES}.example", "A")
        query.id = first_id + n
        out.append(query)
    return out


async def test_two_hundred_queries_in_flight_are_each_answered_with_their_own_id(
    proxy: Proxy,
) -> None:
    queries = _queries(200)
    first = await _burst(proxy, queries)  # misses first, then the same names again: cached
    again = await _burst(proxy, _queries(200, first_id=1000))
    for answers, base in ((first, 1), (again, 1000)):
        assert sorted(answers) == list(range(base, base + 200))
        for query_id, reply in answers.items():
            n = (query_id - base) % NAMES
            assert str(reply.question[0].name) == f"n{n}.example."
            assert addresses(reply) == [f"198.51.100.{n}"]
    assert proxy.app.server.stats["queries"] == 400


async def test_an_answer_too_big_for_the_client_is_truncated_in_a_burst(proxy: Proxy) -> None:
    big = dns.message.make_query("big.example", "A", use_edns=False)
    big.id = 500
    queries = [*_queries(20), big]
    await _burst(proxy, queries)  # cached from here on: answered in the batch
    answers = await _burst(proxy, queries)
    assert answers[500].flags & dns.flags.TC
    assert addresses(answers[7]) == ["198.51.100.6"]


async def test_a_datagram_longer_than_any_query_is_dropped_and_the_rest_answered(
    proxy: Proxy,
) -> None:
    family = socket.AF_INET6 if ":" in proxy.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        # a query for n1.example, then padding: longer than a receive slot
        sock.sendto(_queries(1)[0].to_wire() + bytes(mmsg.SLOT), (proxy.host, proxy.port))
    answers = await _burst(proxy, _queries(3, first_id=40))
    assert sorted(answers) == [40, 41, 42]
    assert proxy.app.server.stats["dropped"] == 1
