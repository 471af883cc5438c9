"""Upstream replies are checked and normalised before anything caches or sends them."""

from __future__ import annotations

import struct

import dns.exception
import dns.flags
import dns.message
import dns.rrset
import pytest

from filterdns.dns import replies, wire
from filterdns.errors import WireError

OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
A_RECORD = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes((93, 184, 216, 34))
SOA = "example.com. 60 SOA ns.example.com. host.example.com. 1 7200 900 86400 60"


def _reply(
    answer: list[bytes] | None = None,
    authority: list[bytes] | None = None,
    additional: list[bytes] | None = None,
    *,
    flags: int = 0x8180,
    counts: tuple[int, int, int] | None = None,
) -> bytes:
    """A reply to example.com/A with the given raw records; `counts` overrides the header's."""
    sections = (answer or [], authority or [], additional or [])
    an, ns, ar = counts or tuple(len(section) for section in sections)
    question = b"\x07example\x03com\x00" + struct.pack("!HH", 1, 1)
    header = struct.pack("!6H", 0x1234, flags, 1, an, ns, ar)
    return header + question + b"".join(b"".join(section) for section in sections)


def _record(rtype: int, rdata: bytes, owner: bytes = b"\xc0\x0c", ttl: int = 300) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def _zone(*lines: str, qtype: str = "A", edns: bool = True) -> bytes:
    """A dnspython-rendered reply (names compressed) with `lines` in the answer section."""
    reply = dns.message.make_response(dns.message.make_query("example.com", qtype, use_edns=edns))
    for line in lines:
        owner, ttl, rtype, rdata = line.split(None, 3)
        reply.answer.append(dns.rrset.from_text(owner, int(ttl), "IN", rtype, rdata))
    return reply.to_wire()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_reply([OPT, A_RECORD]), id="opt-in-answer"),
        pytest.param(_reply([A_RECORD], [OPT]), id="opt-in-authority"),
        pytest.param(_reply([A_RECORD], [], [OPT, OPT]), id="two-opts"),
        pytest.param(_reply([A_RECORD], [], [b"\xc0\x0c" + OPT[1:]]), id="opt-owner-not-root"),
        pytest.param(_reply([A_RECORD], [], [OPT[:5] + b"\x01" + OPT[6:]]), id="extended-rcode"),
        # what the proxy used to make of an OPT in the answer section: cut there, counts kept
        pytest.param(_reply([A_RECORD], counts=(2, 0, 0)), id="answer-count-overruns"),
        pytest.param(_reply([], [], [A_RECORD], counts=(0, 0, 2)), id="additional-overruns"),
        pytest.param(_reply([A_RECORD]) + b"\x00", id="trailing-byte"),
        pytest.param(_reply([A_RECORD, A_RECORD], counts=(1, 0, 0)), id="record-past-counts"),
        pytest.param(_reply([A_RECORD[:-1]]), id="record-cut-short"),
        pytest.param(_reply([_record(250, b"")]), id="tsig-in-answer"),
        pytest.param(_reply([_record(255, b"")]), id="any-as-a-record"),
        pytest.param(_reply([_record(252, b"")], counts=None), id="axfr-as-a-record"),
        pytest.param(_reply([A_RECORD], flags=0x8180 | 0x2800), id="opcode-update"),
        pytest.param(_reply()[:4] + b"\x00\x02" + _reply()[6:] + _reply()[12:],
                     id="two-questions"),
        pytest.param(_reply([_record(1, b"\x01\x02\x03")]), id="a-of-3-bytes"),
        pytest.param(_reply([_record(28, bytes(4))]), id="aaaa-of-4-bytes"),
        pytest.param(_reply([_record(16, b"")]), id="txt-without-string"),
        pytest.param(_reply([_record(16, b"\x05abc")]), id="txt-string-overruns"),
        pytest.param(_reply([_record(5, b"\x03cdn\xc0\x0c\x00")]), id="cname-with-junk-after"),
        pytest.param(_reply([_record(5, b"\xc0\x40")]), id="forward-pointer"),
        pytest.param(_reply([_record(5, b"\x01a\xc0\x29")]), id="pointer-into-itself"),
        pytest.param(_reply([_record(5, b"\x01a\x00", owner=b"\x41a\x00")]), id="bad-label-type"),
        pytest.param(_reply([_record(39, b"\x03cdn\xc0\x0c")]), id="compressed-dname"),
        pytest.param(_reply([_record(5, (b"\x3f" + b"a" * 63) * 4 + b"\x00")]),
                     id="name-over-255"),
        pytest.param(_reply([_record(47, b"\x00" + b"\x00\x01\x00")]), id="nsec-zero-octet"),
        pytest.param(_reply([_record(47, b"\x00" + b"\x01\x01\x40\x00\x01\x40")]),
                     id="nsec-windows-out-of-order"),
        pytest.param(_reply([_record(43, b"\x30\x39\x0d\x02" + bytes(20))]),
                     id="ds-sha256-of-20-bytes"),
        pytest.param(_reply([_record(46, bytes(18) + b"\xc0\x0c")]), id="rrsig-compressed"),
        pytest.param(_reply([_record(65, b"\x00\x00\x00\x00\x01\x00\x02\x02h2")]),
                     id="https-alias-with-params"),
        pytest.param(_reply([_record(65, b"\x00\x01\x00\x00\x03\x00\x01\x05")]),
                     id="https-port-of-1-byte"),
        pytest.param(_reply([_record(65, b"\x00\x01\x00\x00\x03\x00\x02\x01\xbb"
                                         b"\x00\x01\x00\x03\x02h2")]), id="https-keys-unordered"),
    ],
)  # fmt: skip
def test_replies_a_client_could_not_read_are_refused(data: bytes) -> None:
    with pytest.raises(WireError):
        replies.analyse(data)


@pytest.mark.parametrize(("count", "readable"), [(16, True), (17, False)])
def test_pointer_chains_are_read_as_long_as_a_strict_parser_reads_them(
    count: int, readable: bool
) -> None:
    # CNAME data "x" + a pointer to the name in the record before (each record is 16 bytes,
    # the first name sits at 41 and points at the question): record i's name has i + 1 hops.
    records = [_record(5, b"\x01x\xc0\x0c")]
    for index in range(1, count):
        records.append(_record(5, b"\x01x" + struct.pack("!H", 0xC000 | (41 + 16 * (index - 1)))))
    data = _reply(records)
    try:
        dns.message.from_wire(data)
    except dns.exception.DNSException:
        assert not readable
    if readable:
        assert replies.analyse(data).wire == data
    else:
        with pytest.raises(WireError):
            replies.analyse(data)


def test_the_opt_record_and_what_follows_it_are_removed_and_counted_out() -> None:
    glue = _record(1, bytes((192, 0, 2, 1)), owner=b"\x02ns\xc0\x0c")
    sut = replies.analyse(_reply([A_RECORD], [], [glue, OPT, glue]))
    message = dns.message.from_wire(sut.wire)
    assert message.opt is None
    assert [len(s) for s in (message.answer, message.additional)] == [1, 1]
    assert len(sut.ttls) == 2


def test_a_record_after_the_opt_record_must_still_be_well_formed() -> None:
    with pytest.raises(WireError):
        replies.analyse(_reply([A_RECORD], [], [OPT, A_RECORD[:-2]]))


@pytest.mark.parametrize(("trust_ad", "ad"), [(False, False), (True, True)])
def test_the_ad_bit_stays_only_when_the_upstream_is_trusted(trust_ad: bool, ad: bool) -> None:
    sut = replies.analyse(_reply([A_RECORD], flags=0x8180 | wire.AD), trust_ad=trust_ad)
    assert bool(dns.message.from_wire(sut.wire).flags & dns.flags.AD) is ad


@pytest.mark.parametrize(
    ("qtype", "line"),
    [
        pytest.param("A", "example.com. 60 A 93.184.216.34", id="a"),
        pytest.param("A", SOA, id="soa"),
        pytest.param("TXT", 'example.com. 60 TXT "a" "" "c"', id="txt-with-empty-string"),
        pytest.param("MX", "example.com. 60 MX 10 mail.example.com.", id="mx-compressed"),
        pytest.param("SRV", "example.com. 60 SRV 0 5 443 svc.example.com.", id="srv"),
        pytest.param("NAPTR", 'example.com. 60 NAPTR 1 1 "S" "x" "" y.example.com.', id="naptr"),
        pytest.param("CAA", 'example.com. 60 CAA 0 issue "ca.example"', id="caa"),
        pytest.param("DNAME", "example.com. 60 DNAME example.net.", id="dname"),
        pytest.param("A", "example.com. 60 RRSIG A 13 2 60 20300101000000 20200101000000 1 "
                     "example.com. AAAA", id="rrsig"),
        pytest.param("A", "example.com. 60 NSEC a.example.com. A NS SOA RRSIG NSEC TYPE1234",
                     id="nsec-two-windows"),
        pytest.param("A", "example.com. 60 NSEC a.example.com.", id="nsec-empty-bitmap"),
        pytest.param("A", "example.com. 60 NSEC3 1 1 10 aabb 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A",
                     id="nsec3"),
        pytest.param("DS", "example.com. 60 DS 1 13 2 " + "ab" * 32, id="ds"),
        pytest.param("DS", "example.com. 60 DS 1 13 99 abcd", id="ds-unknown-digest"),
        pytest.param("DNSKEY", "example.com. 60 DNSKEY 256 3 13 AAAA", id="dnskey"),
        pytest.param("HTTPS", 'example.com. 60 HTTPS 1 . mandatory="alpn,port" alpn="h2,h3" '
                     'port=443 ipv4hint="192.0.2.1" ech="AAQBAgME" ipv6hint="2001:db8::1" '
                     'key7="/q{?dns}" ohttp', id="https-every-key"),
        pytest.param("HTTPS", 'example.com. 60 HTTPS 1 . alpn="h2" no-default-alpn',
                     id="https-no-default-alpn"),
        pytest.param("A", r"example.com. 60 TYPE65280 \# 2 0102", id="unknown-type"),
        pytest.param("A", r"example.com. 60 TYPE65280 \# 0", id="unknown-type-empty"),
    ],
)  # fmt: skip
def test_well_formed_records_of_every_kind_pass_unchanged(qtype: str, line: str) -> None:
    data = _zone(line, qtype=qtype, edns=False)
    assert replies.analyse(data).wire == data
