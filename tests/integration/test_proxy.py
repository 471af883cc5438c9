"""The whole proxy, started from inline YAML on port 0, queried by dnspython over UDP and TCP."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
import trustme

from filterdns.dns.transport import Transport
from filterdns.errors import ServerError
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import FakeClock, addresses, config_for, running_proxy

RECORDS = {
    ("example.com", "A"): ["93.184.216.34"],
    ("example.com", "AAAA"): ["2606:2800:220:1::1"],
    ("big.example", "A"): [f"198.51.{i // 250}.{i % 250}" for i in range(60)],
    ("router.home.arpa", "A"): ["192.168.1.1"],
}


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_forwards_and_answers_with_the_clients_id_and_question(
    upstream: FakeUpstream, tcp: bool
) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        reply = await proxy.query("Example.COM", tcp=tcp)
    assert addresses(reply) == ["93.184.216.34"]
    assert str(reply.question[0].name) == "Example.COM."
    assert reply.flags & dns.flags.RA


async def test_ipv6_listener_answers_over_ipv6(upstream: FakeUpstream) -> None:
    async with running_proxy(config_for(upstream.address, listen="[::1]:0")) as proxy:
        assert proxy.host == "::1"
        reply = await proxy.query("example.com", "AAAA")
        reply_tcp = await proxy.query("example.com", "AAAA", tcp=True)
    assert addresses(reply) == addresses(reply_tcp) == ["2606:2800:220:1::1"]


async def test_truncated_upstream_answer_is_retried_over_tcp(upstream: FakeUpstream) -> None:
    upstream.truncate_udp = True
    async with running_proxy(config_for(upstream.address)) as proxy:
        reply = await proxy.query("big.example", edns=4096)
    assert len(addresses(reply)) == 60
    assert upstream.tcp_calls == 1


async def test_fails_over_to_the_second_upstream_when_the_first_is_silent(
    upstream: FakeUpstream,
) -> None:
    async with FakeUpstream(RECORDS) as silent:
        silent.silent = True
        async with running_proxy(config_for(silent.address, upstream.address)) as proxy:
            reply = await proxy.query("example.com")
    assert addresses(reply) == ["93.184.216.34"]
    assert silent.calls >= 1


async def test_identical_concurrent_queries_share_one_upstream_exchange(
    upstream: FakeUpstream,
) -> None:
    upstream.delay = 0.3
    async with running_proxy(config_for(upstream.address)) as proxy:
        replies = await asyncio.gather(*(proxy.query("example.com") for _ in range(20)))
    assert all(addresses(r) == ["93.184.216.34"] for r in replies)
    assert upstream.calls == 1


async def test_cache_answers_repeats_with_decayed_ttl(upstream: FakeUpstream) -> None:
    clock = FakeClock()
    async with running_proxy(config_for(upstream.address), clock=clock) as proxy:
        first = await proxy.query("example.com")
        clock.now += 100
        second = await proxy.query("example.com")
    assert upstream.calls == 1
    assert first.answer[0].ttl == 300
    assert second.answer[0].ttl == 200


async def test_nxdomain_is_cached_for_the_soa_minimum(upstream: FakeUpstream) -> None:
    clock = FakeClock()
    async with running_proxy(config_for(upstream.address), clock=clock) as proxy:
        first = await proxy.query("nothing.example")
        second = await proxy.query("nothing.example")
        clock.now += 3600
        await proxy.query("nothing.example")
    assert first.rcode() == second.rcode() == dns.rcode.NXDOMAIN
    assert second.authority[0].rdtype == dns.rdatatype.SOA
    assert upstream.calls == 2


async def test_serves_stale_answer_when_the_upstream_dies(upstream: FakeUpstream) -> None:
    clock = FakeClock()
    async with running_proxy(
        config_for(upstream.address, extra="cache: {serve_stale: 1d}"), clock=clock
    ) as proxy:
        await proxy.query("example.com")
        clock.now += 400  # expired
        upstream.silent = True
        reply = await proxy.query("example.com")
        nothing = await proxy.query("never-asked.example")
    assert addresses(reply) == ["93.184.216.34"]
    assert reply.answer[0].ttl == 30
    assert nothing.rcode() == dns.rcode.SERVFAIL


async def test_clients_outside_allow_clients_are_refused_over_tcp(upstream: FakeUpstream) -> None:
    # Over UDP they get no reply at all: tests/integration/test_abuse.py.
    extra = "server:\n  listen: ['127.0.0.1:0']\n  allow_clients: [10.0.0.0/8]\n"
    text = config_for(upstream.address).replace('server:\n  listen: ["127.0.0.1:0"]\n', extra)
    async with running_proxy(text) as proxy:
        reply = await proxy.query("example.com", tcp=True)
    assert reply.rcode() == dns.rcode.REFUSED
    assert upstream.calls == 0


async def _raw_udp(port: int, packet: bytes, timeout: float = 0.5) -> bytes | None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        await loop.sock_sendall(sock, packet)
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout)
        except TimeoutError:
            return None


async def test_garbage_gets_formerr_or_is_dropped_and_the_server_keeps_answering(
    upstream: FakeUpstream,
) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        formerr = await _raw_udp(
            proxy.port, b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07exa"
        )
        dropped = await _raw_udp(proxy.port, b"\x01\x02\x03", timeout=0.3)
        reply = await proxy.query("example.com")
    assert formerr is not None
    msg_id, flags = struct.unpack_from("!HH", formerr)
    assert (msg_id, flags & 0xF) == (0xABCD, dns.rcode.FORMERR)
    assert dropped is None
    assert addresses(reply) == ["93.184.216.34"]


@pytest.mark.parametrize(
    ("edns", "tcp", "truncated", "count"),
    [
        pytest.param(None, False, True, 0, id="no-edns-512"),
        pytest.param(4096, False, False, 60, id="edns-4096"),
        pytest.param(None, True, False, 60, id="tcp"),
    ],
)
async def test_answer_size_follows_the_clients_buffer(
    upstream: FakeUpstream, edns: int | None, tcp: bool, truncated: bool, count: int
) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        reply = await proxy.query("big.example", edns=edns, tcp=tcp)
    assert bool(reply.flags & dns.flags.TC) is truncated
    assert len(addresses(reply)) == count


async def test_any_is_answered_minimally(upstream: FakeUpstream) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        reply = await proxy.query("example.com", "ANY")
    assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.HINFO]
    assert upstream.calls == 0


async def test_every_upstream_failing_gives_servfail(upstream: FakeUpstream) -> None:
    upstream.silent = True
    async with running_proxy(config_for(upstream.address)) as proxy:
        reply = await proxy.query("example.com")
    assert reply.rcode() == dns.rcode.SERVFAIL


async def test_conditional_suffix_goes_to_its_own_server(upstream: FakeUpstream) -> None:
    async with FakeUpstream({("router.home.arpa", "A"): ["192.168.1.254"]}) as router:
        extra = f'  conditional: {{home.arpa: "{router.address}"}}\n'
        text = config_for(upstream.address).replace("  timeout: 1s\n", "  timeout: 1s\n" + extra)
        async with running_proxy(text) as proxy:
            local = await proxy.query("router.home.arpa")
            public = await proxy.query("example.com")
    assert addresses(local) == ["192.168.1.254"]
    assert addresses(public) == ["93.184.216.34"]
    assert (router.calls, upstream.calls) == (1, 1)


async def _exchange_on(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, names: list[str]
) -> list[dns.message.Message]:
    for name in names:
        wire = dns.message.make_query(name, "A").to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
    await writer.drain()
    replies = []
    for _ in names:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        replies.append(dns.message.from_wire(await reader.readexactly(length)))
    return replies


async def _tcp_exchange(port: int, names: list[str]) -> list[dns.message.Message]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await _exchange_on(reader, writer, names)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_connection_carries_several_pipelined_queries(upstream: FakeUpstream) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        replies = await _tcp_exchange(proxy.port, ["example.com", "router.home.arpa", "nx.example"])
    by_name = {str(r.question[0].name): r for r in replies}
    assert addresses(by_name["example.com."]) == ["93.184.216.34"]
    assert addresses(by_name["router.home.arpa."]) == ["192.168.1.1"]
    assert by_name["nx.example."].rcode() == dns.rcode.NXDOMAIN


async def test_idle_tcp_connections_are_closed(upstream: FakeUpstream) -> None:
    extra = "server:\n  listen: ['127.0.0.1:0']\n  tcp_idle_timeout: 200ms\n"
    text = config_for(upstream.address).replace('server:\n  listen: ["127.0.0.1:0"]\n', extra)
    async with running_proxy(text) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # EOF from the server
        writer.close()
        await writer.wait_closed()


async def test_connections_over_the_cap_are_closed_at_once(upstream: FakeUpstream) -> None:
    extra = "server:\n  listen: ['127.0.0.1:0']\n  max_tcp_connections: 1\n"
    text = config_for(upstream.address).replace('server:\n  listen: ["127.0.0.1:0"]\n', extra)
    async with running_proxy(text) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        first = await _exchange_on(reader, writer, ["example.com"])
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await asyncio.wait_for(reader2.read(), timeout=5) == b""
        again = await _exchange_on(reader, writer, ["example.com"])  # the first one still works
        for w in (writer, writer2):
            w.close()
            await w.wait_closed()
    assert addresses(first[0]) == addresses(again[0]) == ["93.184.216.34"]


async def test_dns_over_tls_upstream_with_a_verified_certificate() -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("dns.test").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with FakeUpstream(RECORDS, tls=server_ctx) as fake:
        good = f"tls://127.0.0.1:{fake.tls_port}#dns.test"
        async with running_proxy(
            config_for(good), transport=Transport(ssl_context=client_ctx)
        ) as proxy:
            first = await proxy.query("example.com")
            second = await proxy.query("example.com", "AAAA", tcp=True)
        wrong_name = f"tls://127.0.0.1:{fake.tls_port}#other.test"
        async with running_proxy(
            config_for(wrong_name), transport=Transport(ssl_context=client_ctx)
        ) as proxy:
            refused = await proxy.query("example.com")
    assert addresses(first) == ["93.184.216.34"]
    assert addresses(second) == ["2606:2800:220:1::1"]
    assert fake.tcp_connections == 1  # both queries over one reused TLS connection
    assert refused.rcode() == dns.rcode.SERVFAIL


async def test_a_port_already_in_use_is_reported_by_address(upstream: FakeUpstream) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(ServerError, match=rf"cannot listen on 127\.0\.0\.1:{port}: .*in use"):
            async with running_proxy(config_for(upstream.address, listen=f"127.0.0.1:{port}")):
                pass
