"""The hand-written wire format: what a client sees of parsing, TTL patching and truncation."""

from __future__ import annotations

import ipaddress
import struct

import dns.message
import dns.rrset
import dnslib
import pytest
from dnslib import EDNS0, QTYPE, RR, DNSRecord

from filterdns.dns import names, outgoing, replies, wire
from filterdns.dns.addresses import is_private_address
from filterdns.errors import WireError


def _query(name: str = "example.com", qtype: str = "A", *, edns: int | None = None) -> bytes:
    record = DNSRecord.question(name, qtype)
    if edns is not None:
        record.add_ar(EDNS0(udp_len=edns))
    return bytes(record.pack())


def _reply(query: bytes, zone: str, *, auth: str = "", rcode: int = 0, edns: bool = True) -> bytes:
    record = DNSRecord.parse(query).reply()
    record.header.rcode = rcode
    for rr in RR.fromZone(zone) if zone else []:
        record.add_answer(rr)
    for rr in RR.fromZone(auth) if auth else []:
        record.add_auth(rr)
    if edns:
        record.add_ar(EDNS0(udp_len=1232))
    return bytes(record.pack())


def _client_view(data: bytes) -> DNSRecord:
    return DNSRecord.parse(data)


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        pytest.param(_query("Example.COM"), ("example.com", 1, False, 512), id="plain"),
        pytest.param(_query("example.com", "AAAA", edns=4096), ("example.com", 28, True, 4096),
                     id="edns-4096"),
        pytest.param(_query("example.com", edns=100), ("example.com", 1, True, 512),
                     id="edns-below-512-raised"),
        pytest.param(_query("."), (".", 1, False, 512), id="root"),
    ],
)  # fmt: skip
def test_parse_query_reads_name_type_and_edns(packet: bytes, expected: tuple[object, ...]) -> None:
    sut = wire.parse_query(packet)
    assert (sut.qname, sut.qtype, sut.edns, sut.udp_size) == expected


def test_key_ignores_case_but_the_client_spelling_is_kept() -> None:
    mixed = wire.parse_query(_query("ExAmPle.com"))
    lower = wire.parse_query(_query("example.com"))
    assert mixed.key == lower.key
    assert mixed.qname_wire == b"\x07ExAmPle\x03com\x00"


def test_hostile_label_with_a_dot_cannot_pass_for_two_labels() -> None:
    packet = bytearray(_query("ab.example.com"))
    packet[13 + 1] = ord(".")  # "a.": one label holding a dot
    assert wire.parse_query(bytes(packet)).qname == "a\\046.example.com"


def _header(qdcount: int = 1, flags: int = 0, arcount: int = 0) -> bytes:
    return struct.pack("!6H", 0x1234, flags, qdcount, 0, 0, arcount)


@pytest.mark.parametrize(
    ("packet", "msg_id"),
    [
        pytest.param(b"\x12\x34\x01", None, id="shorter-than-header-dropped"),
        pytest.param(_header(flags=wire.QR) + b"\x00\x00\x01\x00\x01", None, id="response-dropped"),
        pytest.param(_header(qdcount=0), 0x1234, id="no-question"),
        pytest.param(_header(qdcount=2) + b"\x00\x00\x01\x00\x01" * 2, 0x1234, id="two-questions"),
        pytest.param(_header() + b"\x07example", 0x1234, id="name-runs-off-end"),
        pytest.param(_header() + b"\xc0\x0c\x00\x01\x00\x01", 0x1234, id="pointer-in-question"),
        pytest.param(_header() + b"\x3f" + b"a" * 63 + b"\x00\x00\x01", 0x1234, id="no-class"),
        pytest.param(_header() + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01", 0x1234,
                     id="name-over-255"),
        pytest.param(_header(arcount=1) + b"\x00\x00\x01\x00\x01\x00\x00\x29", 0x1234,
                     id="truncated-opt"),
        pytest.param(_header(arcount=2) + b"\x00\x00\x01\x00\x01"
                     + (b"\x00\x00\x29\x04\x00\x00\x00\x00\x00\x00\x00") * 2, 0x1234,
                     id="two-opt-records"),
    ],
)  # fmt: skip
def test_malformed_queries_are_dropped_or_get_formerr(packet: bytes, msg_id: int | None) -> None:
    with pytest.raises(WireError) as caught:
        wire.parse_query(packet)
    assert caught.value.msg_id == msg_id


def test_analyse_strips_opt_and_finds_every_ttl() -> None:
    query = _query("example.com")
    sut = replies.analyse(_reply(query, "example.com. 300 A 1.2.3.4\nexample.com. 100 A 5.6.7.8"))
    assert sut.ttls == (300, 100)
    assert sut.cache_ttl == 100
    assert _client_view(sut.wire).ar == []


@pytest.mark.parametrize(
    ("zone", "auth", "rcode", "cache_ttl"),
    [
        pytest.param("", "example.com. 900 SOA ns. host. 1 2 3 4 60", 3, 60, id="nxdomain-soa-min"),
        pytest.param("", "example.com. 30 SOA ns. host. 1 2 3 4 60", 0, 30, id="nodata-soa-ttl"),
        pytest.param("", "", 3, None, id="nxdomain-without-soa"),
        pytest.param("", "", 2, None, id="servfail"),
    ],
)  # fmt: skip
def test_negative_answers_cache_for_the_rfc2308_ttl(
    zone: str, auth: str, rcode: int, cache_ttl: int | None
) -> None:
    sut = replies.analyse(_reply(_query(), zone, auth=auth, rcode=rcode))
    assert (sut.rcode, sut.cache_ttl) == (rcode, cache_ttl)


def test_finish_echoes_id_and_spelling_and_caps_ttls() -> None:
    stored = replies.analyse(_reply(_query("example.com"), "example.com. 300 A 1.2.3.4"))
    query = wire.parse_query(_query("EXAMPLE.com"))
    sut = _client_view(wire.finish(stored, query, limit=512, ttl_cap=10))
    assert sut.header.id == query.msg_id
    assert str(sut.q.qname) == "EXAMPLE.com."
    assert sut.rr[0].ttl == 10
    assert (sut.header.qr, sut.header.ra, sut.header.aa) == (1, 1, 0)
    assert sut.ar == []  # no EDNS from the client: no OPT back


def test_finish_adds_opt_when_the_client_sent_edns() -> None:
    stored = replies.analyse(_reply(_query(), "example.com. 300 A 1.2.3.4"))
    query = wire.parse_query(_query(edns=1232))
    sut = _client_view(wire.finish(stored, query, limit=1232))
    assert [rr.rtype for rr in sut.ar] == [QTYPE.OPT]


def test_finish_truncates_to_the_client_limit_with_tc() -> None:
    zone = "\n".join(f"example.com. 300 A 10.0.{i // 250}.{i % 250}" for i in range(60))
    stored = replies.analyse(_reply(_query(), zone))
    query = wire.parse_query(_query())
    out = wire.finish(stored, query, limit=512)
    sut = _client_view(out)
    assert len(out) <= 512
    assert sut.header.tc == 1
    assert sut.rr == []
    assert str(sut.q.qname) == "example.com."
    full = _client_view(wire.finish(stored, query, limit=65535))
    assert (full.header.tc, len(full.rr)) == (0, 60)


def test_with_ttls_patches_every_record() -> None:
    stored = replies.analyse(
        _reply(_query(), "example.com. 300 A 1.2.3.4\nexample.com. 200 A 1.2.3.5")
    )
    sut = _client_view(stored.with_ttls((30, 30)).wire)
    assert [rr.ttl for rr in sut.rr] == [30, 30]


def test_make_query_is_a_valid_edns_query() -> None:
    sut = DNSRecord.parse(outgoing.make_query(names.text_to_wire("Example.com"), 28, 1, 4242))
    assert (sut.header.id, str(sut.q.qname), sut.q.qtype, sut.header.rd) == (
        4242, "example.com.", QTYPE.AAAA, 1,
    )  # fmt: skip
    assert sut.ar[0].rclass == wire.EDNS_SIZE


@pytest.mark.parametrize(
    "name",
    ["a" * 64 + ".com", ("a" * 60 + ".") * 5 + "com", "a..com"],
    ids=["label", "name", "empty"],
)
def test_text_to_wire_rejects_invalid_names(name: str) -> None:
    with pytest.raises(WireError):
        names.text_to_wire(name)


def test_question_of_rejects_compressed_question() -> None:
    reply = bytearray(_reply(_query(), "example.com. 300 A 1.2.3.4"))
    assert outgoing.question_of(bytes(reply)) == wire.parse_query(_query()).key
    with pytest.raises(WireError):
        outgoing.question_of(bytes(reply[:4]) + b"\x00\x02" + bytes(reply[6:]))


def test_dnslib_is_only_a_test_oracle_here() -> None:
    assert dnslib.__name__ == "dnslib"


# What the policy inspects in an answer: the names it leads to and private addresses


def _answer(name: str, qtype: str, zone: str) -> bytes:
    """A reply to `name`/`qtype` whose answer section holds the records of `zone` (dnspython
    reads SVCB parameters and dotted IPv6 forms that dnslib's zone reader does not)."""
    reply = dns.message.make_response(dns.message.make_query(name, qtype))
    for line in zone.splitlines():
        owner, ttl, rtype, rdata = line.split(None, 3)
        reply.answer.append(dns.rrset.from_text(owner, int(ttl), "IN", rtype, rdata))
    return reply.to_wire()


@pytest.mark.parametrize(
    ("zone", "qtype", "targets"),
    [
        pytest.param("example.com. 60 A 93.184.216.34", "A", (), id="plain"),
        pytest.param("example.com. 60 CNAME cdn.example.net.\ncdn.example.net. 60 A 1.2.3.4",
                     "A", ("cdn.example.net",), id="one-cname"),
        pytest.param("example.com. 60 CNAME A.Example.NET.\na.example.net. 60 CNAME b.example.\n"
                     "b.example. 60 CNAME c.example.\nc.example. 60 A 1.2.3.4",
                     "A", ("a.example.net", "b.example", "c.example"), id="three-lower-cased"),
        pytest.param("example.com. 60 DNAME other.example.\n"
                     "www.example.com. 60 CNAME www.other.example.",
                     "A", ("other.example", "www.other.example"), id="dname"),
        pytest.param('example.com. 60 HTTPS 0 svc.example.net.', "HTTPS", ("svc.example.net",),
                     id="https-alias"),
        pytest.param('example.com. 60 HTTPS 1 . alpn="h2"', "HTTPS", (), id="https-self"),
        pytest.param('example.com. 60 SVCB 1 pool.example. port="853"', "SVCB",
                     ("pool.example",), id="svcb-target"),
    ],
)  # fmt: skip
def test_analyse_finds_the_names_an_answer_leads_to(
    zone: str, qtype: str, targets: tuple[str, ...]
) -> None:
    sut = replies.analyse(_answer("example.com", qtype, zone))
    assert sut.targets == targets
    assert sut.with_ttls(tuple(0 for _ in sut.ttls)).targets == targets  # kept by cache hits


@pytest.mark.parametrize(
    ("address", "private"),
    [
        *[pytest.param(a, True, id=a) for a in (
            "0.0.0.1", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "169.254.169.254",
            "172.16.0.1", "172.31.255.255", "192.168.1.1", "::1", "fc00::1", "fd12:3456::1",
            "fe80::1", "febf::1", "fec0::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
            "64:ff9b::192.168.0.1", "::10.0.0.1",
        )],
        *[pytest.param(a, False, id=a) for a in (
            "1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.1", "172.15.0.1", "172.32.0.1",
            "192.169.0.1", "198.51.100.7", "9.9.9.9", "2606:4700::1111", "2001:db8::1",
            "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "fbff::1", "ff02::1",
            "0.0.0.0", "::",  # a filtering upstream's "blocked": already a block
        )],
    ],
)  # fmt: skip
def test_private_addresses(address: str, private: bool) -> None:
    assert is_private_address(ipaddress.ip_address(address).packed) is private
    qtype = "AAAA" if ":" in address else "A"
    answer = replies.analyse(_answer("x.example", qtype, f"x.example. 60 {qtype} {address}"))
    assert answer.private is private


def test_one_private_address_among_public_ones_marks_the_answer() -> None:
    zone = "x.example. 60 A 1.1.1.1\nx.example. 60 A 10.0.0.1\nx.example. 60 A 8.8.8.8"
    assert replies.analyse(_answer("x.example", "A", zone)).private


@pytest.mark.parametrize(
    ("rdata", "private"),
    [
        pytest.param('1 . alpn="h2" ipv4hint="10.0.0.1"', True, id="ipv4hint"),
        pytest.param('1 . ipv4hint="1.1.1.1,192.168.0.1"', True, id="second-ipv4hint"),
        pytest.param('1 svc.example. ipv6hint="fd00::1"', True, id="ipv6hint"),
        pytest.param('1 . alpn="h2" ipv4hint="1.1.1.1" ipv6hint="2606:4700::1"', False,
                     id="public-hints"),
        pytest.param('1 . alpn="h2" port="8443"', False, id="no-hints"),
    ],
)  # fmt: skip
def test_svcb_address_hints_count_as_addresses(rdata: str, private: bool) -> None:
    answer = replies.analyse(_answer("x.example", "HTTPS", f"x.example. 60 HTTPS {rdata}"))
    assert answer.private is private


def test_private_addresses_outside_the_answer_section_do_not_count() -> None:
    reply = _reply(_query("x.example"), "x.example. 60 A 1.1.1.1",
                   auth="x.example. 60 NS ns.x.example.")  # fmt: skip
    assert not replies.analyse(reply).private


def test_read_name_follows_pointers_backwards_only() -> None:
    message = b"\x00" * 12 + b"\x03www\x07example\x03com\x00" + b"\x03cdn\xc0\x10"
    assert names.read_name(message, 12) == "www.example.com"
    assert names.read_name(message, 29) == "cdn.example.com"
    loop = b"\x00" * 12 + b"\x01a\xc0\x0c"  # points at itself
    with pytest.raises(WireError):
        names.read_name(loop, 12)
    forward = b"\x00" * 12 + b"\xc0\x0e\x01a\x00"
    with pytest.raises(WireError):
        names.read_name(forward, 12)


def test_a_cname_whose_target_runs_off_the_message_is_malformed() -> None:
    reply = bytearray(_answer("x.example", "A", "x.example. 60 CNAME y.example."))
    reply[-2:] = b"\xc0\xff"  # the target's pointer now points past the end
    with pytest.raises(WireError):
        replies.analyse(bytes(reply))
