"""The ACL and the answers the proxy gives itself (ANY, NOTIMP, BADVERS)."""

from __future__ import annotations

import ipaddress

import pytest
from dnslib import EDNS0, DNSRecord

from filterdns.dns import wire
from filterdns.dns.model import Kind, Request, Response, error_answer
from filterdns.resolvers.access import AccessResolver
from filterdns.resolvers.local import LocalAnswerResolver


class Answering:
    """The next link: answers NOERROR and counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def resolve(self, request: Request) -> Response:
        self.calls += 1
        return Response(Kind.RESOLVED, error_answer(request.query, wire.NOERROR))


def _request(ip: str = "192.168.1.5", qtype: str = "A", packet: bytes | None = None) -> Request:
    data = packet or bytes(DNSRecord.question("example.com", qtype).pack())
    return Request(wire.parse_query(data), ip, 5555, "udp", 0.0)


NETS = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "192.168.0.0/16")]


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("192.168.1.5", Kind.RESOLVED),
        ("127.0.0.1", Kind.RESOLVED),
        ("::1", Kind.RESOLVED),
        ("::ffff:192.168.1.5", Kind.RESOLVED),
        ("8.8.8.8", Kind.REFUSED),
        ("2001:db8::1", Kind.REFUSED),
        ("fe80::1%eth0", Kind.REFUSED),
        ("not-an-ip", Kind.REFUSED),
    ],
)
async def test_only_allowed_clients_get_past_the_acl(ip: str, kind: Kind) -> None:
    sut = AccessResolver(Answering(), NETS)
    response = await sut.resolve(_request(ip))
    assert response.kind is kind
    if kind is Kind.REFUSED:
        assert response.answer.rcode == wire.REFUSED
        assert ip in response.reason


async def test_any_is_answered_without_asking_upstream() -> None:
    nxt = Answering()
    sut = LocalAnswerResolver(nxt)
    response = await sut.resolve(_request(qtype="ANY"))
    reply = DNSRecord.parse(response.answer.wire)
    assert response.kind is Kind.LOCAL
    assert reply.rr[0].rtype == 13  # HINFO
    assert nxt.calls == 0


async def test_other_opcodes_get_notimp() -> None:
    packet = bytearray(DNSRecord.question("example.com").pack())
    packet[2] |= 0x10  # opcode 2 (STATUS)
    response = await LocalAnswerResolver(Answering()).resolve(_request(packet=bytes(packet)))
    assert response.answer.rcode == wire.NOTIMP


async def test_edns_version_above_zero_gets_badvers() -> None:
    record = DNSRecord.question("example.com")
    record.add_ar(EDNS0(version=1))
    request = _request(packet=bytes(record.pack()))
    response = await LocalAnswerResolver(Answering()).resolve(request)
    out = DNSRecord.parse(wire.finish(response.answer, request.query, limit=512,
                                      ext_rcode=response.ext_rcode))  # fmt: skip
    assert out.ar[0].ttl >> 24 == 1  # extended rcode 1 -> BADVERS (16)
