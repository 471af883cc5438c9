"""Transport against a fake upstream on loopback: UDP, TCP, DNS-over-TLS, misbehaving servers."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trustme

from filterdns.config import UpstreamServer
from filterdns.dns import names, udpsockets, wire
from filterdns.dns.transport import Transport
from filterdns.errors import UpstreamError
from tests.fakes.upstream import FakeUpstream

RECORDS = {
    ("example.com", "A"): ["93.184.216.34"],
    ("example.com", "AAAA"): ["2606:2800:220:1::1"],
    ("big.example", "A"): [f"10.0.{i // 250}.{i % 250}" for i in range(120)],
    **{(f"n{i}.example", "A"): [f"10.1.0.{i}"] for i in range(20)},
}


def _deadline(seconds: float = 1.0) -> float:
    return asyncio.get_running_loop().time() + seconds


def _addresses(reply: bytes) -> list[str]:
    message = dns.message.from_wire(reply)
    return [r.to_text() for rrset in message.answer for r in rrset]


async def _ask(
    transport: Transport,
    server: UpstreamServer,
    name: str = "example.com",
    qtype: int = wire.TYPE_A,
    timeout: float = 1.0,
) -> bytes:
    return await transport.exchange(
        server, names.text_to_wire(name), qtype, wire.CLASS_IN, _deadline(timeout)
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(RECORDS) as upstream:
        yield upstream


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    transport = Transport()
    try:
        yield transport
    finally:
        await transport.close()


def _udp(fake: FakeUpstream) -> UpstreamServer:
    return UpstreamServer("udp", "127.0.0.1", fake.port)


def _tcp(fake: FakeUpstream) -> UpstreamServer:
    return UpstreamServer("tcp", "127.0.0.1", fake.port)


# answers


async def test_udp_answer_is_returned_whole(fake: FakeUpstream, transport: Transport) -> None:
    reply = await _ask(transport, _udp(fake))
    message = dns.message.from_wire(reply)
    assert _addresses(reply) == ["93.184.216.34"]
    assert message.edns == 0  # the OPT record is still there
    assert (fake.udp_calls, fake.tcp_calls) == (1, 0)
    assert fake.queries == [("example.com", "A")]


async def test_tcp_answer_is_returned(fake: FakeUpstream, transport: Transport) -> None:
    reply = await _ask(transport, _tcp(fake), qtype=wire.TYPE_AAAA)
    assert _addresses(reply) == ["2606:2800:220:1::1"]
    assert (fake.udp_calls, fake.tcp_calls) == (0, 1)


async def test_negative_answers_are_returned_as_they_are(
    fake: FakeUpstream, transport: Transport
) -> None:
    reply = dns.message.from_wire(await _ask(transport, _udp(fake), "nothing.example"))
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.authority[0].rdtype == dns.rdatatype.SOA
    fake.rcode = dns.rcode.SERVFAIL
    failed = dns.message.from_wire(await _ask(transport, _udp(fake)))
    assert failed.rcode() == dns.rcode.SERVFAIL


async def test_truncated_udp_answer_is_asked_again_over_tcp(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.truncate_udp = True
    reply = await _ask(transport, _udp(fake), "big.example")
    assert len(_addresses(reply)) == 120
    assert (fake.udp_calls, fake.tcp_calls) == (1, 1)


async def test_answer_too_big_for_udp_comes_over_tcp(
    fake: FakeUpstream, transport: Transport
) -> None:
    reply = await _ask(transport, _udp(fake), "big.example")  # 120 records > 1232 bytes
    assert len(_addresses(reply)) == 120
    assert fake.tcp_calls == 1


async def test_ipv6_upstream(transport: Transport) -> None:
    async with FakeUpstream(RECORDS, host="::1") as fake6:
        assert fake6.address == f"[::1]:{fake6.port}"
        for scheme in ("udp", "tcp"):
            reply = await _ask(transport, UpstreamServer(scheme, "::1", fake6.port))
            assert _addresses(reply) == ["93.184.216.34"]


# bad answers and silence


async def test_reply_with_the_wrong_id_is_ignored_until_the_deadline(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.wrong_id = True
    with pytest.raises(UpstreamError, match=r"timed out after 0\.3 s"):
        await _ask(transport, _udp(fake), timeout=0.3)
    assert fake.calls == 1


async def test_garbage_reply_is_ignored_until_the_deadline(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.garbage = True
    with pytest.raises(UpstreamError, match="timed out"):
        await _ask(transport, _udp(fake), timeout=0.3)


async def test_wrong_answers_from_the_servers_address_are_skipped(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.udp_decoys = True  # junk, wrong id, another question, a query: then the real answer
    reply = await _ask(transport, _udp(fake))
    assert _addresses(reply) == ["93.184.216.34"]


async def test_forged_reply_from_another_port_is_not_accepted(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.delay = 0.2
    task = asyncio.create_task(_ask(transport, _udp(fake)))
    await fake.wait_for_calls(1)
    forged = dns.message.make_query("example.com", "A", id=fake.query_ids[0])
    forged = dns.message.make_response(forged)
    forged.answer.append(dns.rrset.from_text_list("example.com.", 300, "IN", "A", ["6.6.6.6"]))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofer:
        spoofer.sendto(forged.to_wire(), fake.udp_peers[0])
    assert _addresses(await task) == ["93.184.216.34"]


async def test_silent_server_times_out_naming_the_server(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.silent = True
    for server in (_udp(fake), _tcp(fake)):
        with pytest.raises(UpstreamError) as caught:
            await _ask(transport, server, timeout=0.2)
        assert str(server) in str(caught.value)
        assert "timed out after 0.2 s" in str(caught.value)


async def test_closed_udp_port_fails_at_once(transport: Transport) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(UpstreamError, match=f"127.0.0.1:{port}"):
        await _ask(transport, UpstreamServer("udp", "127.0.0.1", port), timeout=2.0)
    assert loop.time() - start < 1.0


async def test_closed_tcp_port_fails_at_once(transport: Transport) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = UpstreamServer("tcp", "127.0.0.1", port)
    with pytest.raises(UpstreamError, match="cannot connect"):
        await _ask(transport, server, timeout=2.0)


async def test_closed_udp_port_fails_every_query_waiting_on_the_shared_socket_at_once(
    transport: Transport,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = UpstreamServer("udp", "127.0.0.1", port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    outcomes = await asyncio.gather(
        *(_ask(transport, server, f"n{i}.example", timeout=2.0) for i in range(10)),
        return_exceptions=True,
    )
    assert all(isinstance(o, UpstreamError) for o in outcomes)
    assert any("port unreachable" in str(o) for o in outcomes)
    assert loop.time() - start < 1.0  # none waited for its deadline


async def test_past_deadline_fails_without_asking(fake: FakeUpstream, transport: Transport) -> None:
    with pytest.raises(UpstreamError, match="timed out"):
        await _ask(transport, _udp(fake), timeout=-1.0)
    assert fake.calls == 0


# TCP connections


async def test_sequential_tcp_exchanges_share_one_connection(
    fake: FakeUpstream, transport: Transport
) -> None:
    for i in range(5):
        assert _addresses(await _ask(transport, _tcp(fake), f"n{i}.example")) == [f"10.1.0.{i}"]
    assert fake.tcp_connections == 1
    assert fake.tcp_calls == 5


async def test_concurrent_tcp_exchanges_are_pipelined_on_one_connection(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.delay = 0.1
    replies = await asyncio.gather(
        *(_ask(transport, _tcp(fake), f"n{i}.example") for i in range(20))
    )
    assert [_addresses(r) for r in replies] == [[f"10.1.0.{i}"] for i in range(20)]
    assert fake.tcp_connections == 1


async def test_connection_closed_mid_answer_fails_then_reconnects(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.close_tcp_midframe = True
    with pytest.raises(UpstreamError, match="closed the connection"):
        await _ask(transport, _tcp(fake))
    fake.close_tcp_midframe = False
    assert _addresses(await _ask(transport, _tcp(fake))) == ["93.184.216.34"]
    assert fake.tcp_connections == 2


async def test_pooled_connection_closed_by_the_server_is_retried_on_a_new_one(
    fake: FakeUpstream, transport: Transport
) -> None:
    await _ask(transport, _tcp(fake))
    fake.tcp_drop_queries = 1  # the server closes the pooled connection on the next query
    assert _addresses(await _ask(transport, _tcp(fake))) == ["93.184.216.34"]
    assert fake.tcp_connections == 2
    assert fake.tcp_calls == 3


async def test_cancelled_exchange_leaves_the_connection_usable(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.delay = 0.2
    task = asyncio.create_task(_ask(transport, _tcp(fake)))
    await fake.wait_for_calls(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    fake.delay = 0.0
    assert _addresses(await _ask(transport, _tcp(fake), "n1.example")) == ["10.1.0.1"]
    assert fake.tcp_connections == 1


async def test_idle_connections_are_closed(fake: FakeUpstream) -> None:
    transport = Transport(tcp_idle=0.1)
    try:
        await _ask(transport, _tcp(fake))
        await asyncio.wait_for(fake.wait_for_open_tcp_connections(0), timeout=2.0)
        assert _addresses(await _ask(transport, _tcp(fake))) == ["93.184.216.34"]
        assert fake.tcp_connections == 2
    finally:
        await transport.close()


async def test_close_ends_pooled_connections(fake: FakeUpstream) -> None:
    transport = Transport()
    await _ask(transport, _tcp(fake))
    assert fake.open_tcp_connections == 1
    await transport.close()
    await asyncio.wait_for(fake.wait_for_open_tcp_connections(0), timeout=2.0)
    await transport.close()  # twice is fine
    with pytest.raises(UpstreamError, match="closed"):
        await _ask(transport, _tcp(fake))


# DNS-over-TLS


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_fake(ca: trustme.CA) -> AsyncIterator[FakeUpstream]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("dns.test").configure_cert(server_context)
    async with FakeUpstream(RECORDS, tls=server_context) as upstream:
        yield upstream


def _client_context(ca: trustme.CA | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    return context


async def test_tls_upstream_answers(tls_fake: FakeUpstream, ca: trustme.CA) -> None:
    assert tls_fake.tls_port is not None
    transport = Transport(_client_context(ca))
    try:
        server = UpstreamServer("tls", "127.0.0.1", tls_fake.tls_port, "dns.test")
        replies = await asyncio.gather(*(_ask(transport, server) for _ in range(3)))
    finally:
        await transport.close()
    assert all(_addresses(r) == ["93.184.216.34"] for r in replies)
    assert (tls_fake.tcp_calls, tls_fake.tcp_connections) == (3, 1)
    await asyncio.wait_for(tls_fake.wait_for_open_tcp_connections(0), timeout=2.0)


@pytest.mark.parametrize(
    ("sni", "trusted"),
    [("wrong.test", True), ("dns.test", False)],
    ids=["wrong-name", "untrusted-ca"],
)
async def test_tls_certificate_is_verified(
    tls_fake: FakeUpstream, ca: trustme.CA, sni: str, trusted: bool
) -> None:
    assert tls_fake.tls_port is not None
    transport = Transport(_client_context(ca if trusted else None))
    server = UpstreamServer("tls", "127.0.0.1", tls_fake.tls_port, sni)
    try:
        with pytest.raises(UpstreamError, match="TLS handshake failed") as caught:
            await _ask(transport, server)
    finally:
        await transport.close()
    assert str(server) in str(caught.value)
    assert tls_fake.calls == 0


# UDP sockets shared by the queries in flight


async def test_concurrent_udp_queries_share_a_socket_with_distinct_ids(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.delay = 0.05  # all of them in flight at once
    count = udpsockets.SOCKET_USES
    replies = await asyncio.gather(
        *(_ask(transport, _udp(fake), f"n{i % 20}.example") for i in range(count))
    )
    assert [_addresses(r) for r in replies] == [[f"10.1.0.{i % 20}"] for i in range(count)]
    assert len({port for _host, port in fake.udp_peers}) == 1  # one source port for them all
    assert len(set(fake.query_ids)) == count  # no id twice among the queries in flight


async def test_udp_source_port_changes_after_a_sockets_share_of_queries(
    fake: FakeUpstream, transport: Transport
) -> None:
    for _ in range(2 * udpsockets.SOCKET_USES + 1):
        await _ask(transport, _udp(fake))
    ports = [port for _host, port in fake.udp_peers]
    per_socket = udpsockets.SOCKET_USES
    assert len(set(ports)) == 3
    assert ports[0] != ports[per_socket] != ports[2 * per_socket]
    assert transport.udp_sockets == 1  # the retired ones are closed once answered


async def test_udp_socket_retired_with_queries_waiting_closes_after_their_deadline(
    fake: FakeUpstream, transport: Transport
) -> None:
    fake.silent = True
    question = (names.text_to_wire("example.com"), wire.TYPE_A, wire.CLASS_IN)
    waiting = [
        transport.start(_udp(fake), *question, _deadline(0.2))
        for _ in range(udpsockets.SOCKET_USES + 1)
    ]
    await fake.wait_for_calls(udpsockets.SOCKET_USES + 1)
    assert transport.udp_sockets == 2  # the first one retired, its queries still waiting
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, UpstreamError) and "timed out" in str(o) for o in outcomes)
    assert transport.udp_sockets == 1  # the sweep that failed them closed their socket


async def test_udp_start_answers_without_a_task(fake: FakeUpstream, transport: Transport) -> None:
    loop = asyncio.get_running_loop()
    future = transport.start(
        _udp(fake), names.text_to_wire("example.com"), wire.TYPE_A, wire.CLASS_IN, _deadline()
    )
    assert not isinstance(future, asyncio.Task)
    assert _addresses(await future) == ["93.184.216.34"]
    late = transport.start(
        _udp(fake), names.text_to_wire("example.com"), wire.TYPE_A, wire.CLASS_IN, loop.time()
    )
    with pytest.raises(UpstreamError, match="timed out"):
        await late
    assert fake.calls == 1
