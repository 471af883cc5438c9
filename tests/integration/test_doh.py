"""DNS over HTTPS upstreams: Transport and the whole proxy against a local DoH fake over TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import dns.message
import dns.rcode
import pytest
import trustme

from filterdns.config import UpstreamServer, parse_upstream
from filterdns.dns import names, wire
from filterdns.dns.transport import Transport
from filterdns.errors import UpstreamError
from tests.fakes.doh import FakeDoH
from tests.integration.harness import addresses, config_for, running_proxy

RECORDS = {
    ("example.com", "A"): ["93.184.216.34"],
    ("example.com", "AAAA"): ["2606:2800:220:1::1"],
    **{(f"n{i}.example", "A"): [f"10.1.0.{i}"] for i in range(20)},
}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("doh.test", "127.0.0.1").configure_cert(context)
    return context


def _client_context(ca: trustme.CA | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    return context


@pytest.fixture(params=[True, False], ids=["http2", "http1"])
async def fake(request: pytest.FixtureRequest, ca: trustme.CA) -> AsyncIterator[FakeDoH]:
    async with FakeDoH(RECORDS, tls=_server_context(ca), http2=request.param) as upstream:
        yield upstream


@pytest.fixture
async def transport(ca: trustme.CA) -> AsyncIterator[Transport]:
    transport = Transport(_client_context(ca))
    try:
        yield transport
    finally:
        await transport.close()


def _doh(fake: FakeDoH, sni: str | None = "doh.test") -> UpstreamServer:
    return UpstreamServer("https", "127.0.0.1", fake.port, sni)


async def _ask(
    transport: Transport,
    server: UpstreamServer,
    name: str = "example.com",
    qtype: int = wire.TYPE_A,
    timeout: float = 2.0,
) -> bytes:
    deadline = asyncio.get_running_loop().time() + timeout
    return await transport.exchange(
        server, names.text_to_wire(name), qtype, wire.CLASS_IN, deadline
    )


def _addresses(reply: bytes) -> list[str]:
    return [r.to_text() for rrset in dns.message.from_wire(reply).answer for r in rrset]


# answers


async def test_answer_over_doh(fake: FakeDoH, transport: Transport) -> None:
    reply = await _ask(transport, _doh(fake), qtype=wire.TYPE_AAAA)
    assert _addresses(reply) == ["2606:2800:220:1::1"]
    assert fake.queries == [("example.com", "AAAA")]
    assert fake.query_ids == [0]  # RFC 8484: id 0
    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "/dns-query")
    assert request.headers["content-type"] == "application/dns-message"
    assert request.headers["accept"] == "application/dns-message"
    assert request.authority == f"doh.test:{fake.port}"
    assert request.version == ("HTTP/2" if fake.http2 else "HTTP/1.1")
    assert fake.server_names == ["doh.test"]


async def test_negative_answers_and_rcodes_come_back_as_they_are(
    fake: FakeDoH, transport: Transport
) -> None:
    reply = dns.message.from_wire(await _ask(transport, _doh(fake), "nothing.example"))
    assert reply.rcode() == dns.rcode.NXDOMAIN
    fake.rcode = dns.rcode.SERVFAIL
    failed = dns.message.from_wire(await _ask(transport, _doh(fake)))
    assert failed.rcode() == dns.rcode.SERVFAIL


async def test_exchanges_reuse_one_connection(fake: FakeDoH, transport: Transport) -> None:
    server = _doh(fake)
    for i in range(5):
        assert _addresses(await _ask(transport, server, f"n{i}.example")) == [f"10.1.0.{i}"]
    assert fake.tcp_connections == 1
    if fake.http2:  # many queries in flight on the one connection
        names = [f"n{i}.example" for i in range(5, 20)]
        replies = await asyncio.gather(*(_ask(transport, server, n) for n in names))
        assert [_addresses(r) for r in replies] == [[f"10.1.0.{i}"] for i in range(5, 20)]
        assert fake.tcp_connections == 1
    await transport.close()
    await asyncio.wait_for(fake.wait_for_open_tcp_connections(0), timeout=3.0)
    with pytest.raises(UpstreamError, match="closed"):
        await _ask(transport, server)


async def test_address_only_form_verifies_the_certificate_against_the_address(
    fake: FakeDoH, transport: Transport
) -> None:
    server = parse_upstream(f"https://127.0.0.1:{fake.port}/dns-query")
    assert _addresses(await _ask(transport, server)) == ["93.184.216.34"]
    assert fake.requests[0].authority == f"127.0.0.1:{fake.port}"
    assert fake.server_names == [None]  # no SNI for an address


async def test_bootstrap_form_connects_to_the_address_and_verifies_the_name(
    fake: FakeDoH, ca: trustme.CA
) -> None:
    server = parse_upstream(f"https://doh.test:{fake.port}/dns-query#127.0.0.1")
    assert (server.host, server.sni) == ("127.0.0.1", "doh.test")
    transport = Transport(_client_context(ca))
    try:
        assert _addresses(await _ask(transport, server)) == ["93.184.216.34"]
    finally:
        await transport.close()
    assert fake.server_names == ["doh.test"]
    assert fake.requests[0].authority == f"doh.test:{fake.port}"


# failures


@pytest.mark.parametrize(
    ("status", "content_type", "message"),
    [
        (500, "application/dns-message", "HTTP 500"),
        (502, "application/dns-message", "HTTP 502"),
        (200, "text/html", "answered with content type 'text/html', not application/dns-message"),
    ],
    ids=["500", "502", "wrong-content-type"],
)
async def test_http_errors_name_the_server(
    fake: FakeDoH, transport: Transport, status: int, content_type: str, message: str
) -> None:
    fake.status, fake.content_type = status, content_type
    server = _doh(fake)
    with pytest.raises(UpstreamError) as caught:
        await _ask(transport, server)
    assert (
        str(caught.value) == f"upstream https://127.0.0.1:{fake.port}/dns-query#doh.test: {message}"
    )
    fake.status, fake.content_type = 200, "application/dns-message"
    assert _addresses(await _ask(transport, server)) == ["93.184.216.34"]  # and it recovers


@pytest.mark.parametrize("knob", ["garbage", "wrong_id"])
async def test_a_body_that_is_not_the_answer_is_refused(
    fake: FakeDoH, transport: Transport, knob: str
) -> None:
    setattr(fake, knob, True)
    with pytest.raises(UpstreamError, match="answered garbage"):
        await _ask(transport, _doh(fake))


@pytest.mark.parametrize(
    ("sni", "trusted"),
    [("wrong.test", True), ("doh.test", False), (None, False)],
    ids=["wrong-name", "untrusted-ca", "untrusted-ca-address"],
)
async def test_certificate_is_verified(
    fake: FakeDoH, ca: trustme.CA, sni: str | None, trusted: bool
) -> None:
    transport = Transport(_client_context(ca if trusted else None))
    server = _doh(fake, sni)
    try:
        with pytest.raises(UpstreamError, match="TLS handshake failed") as caught:
            await _ask(transport, server)
    finally:
        await transport.close()
    assert str(caught.value).startswith(f"upstream {server}: ")
    assert fake.requests == []


async def test_address_not_in_the_certificate_is_refused(ca: trustme.CA) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("doh.test").configure_cert(context)  # no IP address in it
    async with FakeDoH(RECORDS, tls=context) as fake:
        transport = Transport(_client_context(ca))
        try:
            with pytest.raises(UpstreamError, match="TLS handshake failed"):
                await _ask(transport, _doh(fake, None))
        finally:
            await transport.close()


async def test_timeout_is_honoured(fake: FakeDoH, transport: Transport) -> None:
    fake.delay = 1.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamError, match=r"timed out after 0\.3 s") as caught:
        await _ask(transport, _doh(fake), timeout=0.3)
    assert loop.time() - started < 0.8
    assert str(_doh(fake)) in str(caught.value)
    fake.delay = 0.0
    assert _addresses(await _ask(transport, _doh(fake))) == ["93.184.216.34"]


async def test_silent_server_times_out(fake: FakeDoH, transport: Transport) -> None:
    fake.silent = True
    with pytest.raises(UpstreamError, match="timed out"):
        await _ask(transport, _doh(fake), timeout=0.3)


async def test_nothing_listening_fails_at_once(fake: FakeDoH, transport: Transport) -> None:
    server = _doh(fake)
    await fake.__aexit__(None, None, None)
    with pytest.raises(UpstreamError, match="cannot connect") as caught:
        await _ask(transport, server, timeout=2.0)
    assert str(server) in str(caught.value)


# the whole proxy


async def test_proxy_forwards_over_doh(fake: FakeDoH, ca: trustme.CA) -> None:
    config = config_for(f"https://127.0.0.1:{fake.port}/dns-query#doh.test")
    async with running_proxy(config, transport=Transport(_client_context(ca))) as proxy:
        reply = await proxy.query("example.com")
        assert reply.rcode() == dns.rcode.NOERROR
        assert addresses(reply) == ["93.184.216.34"]
        over_tcp = await proxy.query("example.com", "AAAA", tcp=True)
        assert addresses(over_tcp) == ["2606:2800:220:1::1"]
        missing = await proxy.query("nothing.example")
        assert missing.rcode() == dns.rcode.NXDOMAIN
    assert ("example.com", "A") in fake.queries
    assert fake.tcp_connections == 1
