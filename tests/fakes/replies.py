"""Upstream replies, real-looking, then broken in the ways broken servers and forgers break them.

`valid_reply` renders (with dnspython, names compressed) a response holding records of the types
a proxy meets: addresses, aliases, SVCB/HTTPS, mail, text, DNSSEC records, an unknown type, and
often an OPT record. `mutated_reply` then moves records between sections, puts OPT records where
they do not belong, drops records but keeps the counts, lies in counts and lengths, flips bytes,
cuts the message short or adds bytes after it. Used by the fuzz tests of `replies.analyse`.
"""

from __future__ import annotations

import base64
import random
import struct
from collections.abc import Callable

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

_KEY = base64.b64encode(bytes(range(64))).decode()
_SIG = base64.b64encode(bytes(range(64, 128))).decode()
RDATA: tuple[tuple[str, str], ...] = (
    ("A", "93.184.216.34"),
    ("A", "10.0.0.1"),
    ("AAAA", "2606:2800:220:1::1"),
    ("CNAME", "target.example."),
    ("CNAME", "www.example.com."),
    ("DNAME", "other.example."),
    ("NS", "ns1.example.com."),
    ("PTR", "host.example.com."),
    ("MX", "10 mail.example.com."),
    ("SRV", "0 5 443 svc.example.com."),
    ("NAPTR", '100 10 "S" "SIP+D2U" "" _sip._udp.example.com.'),
    ("TXT", '"v=spf1 -all" "second string"'),
    ("HINFO", '"cpu" "os"'),
    ("CAA", '0 issue "letsencrypt.org"'),
    ("HTTPS", "0 alias.example.com."),
    ("HTTPS", '1 . alpn="h2,h3" port=443 ipv4hint="192.0.2.1" ipv6hint="2001:db8::1"'),
    ("SVCB", '2 svc.example.com. mandatory="alpn" alpn="h2" no-default-alpn'),
    ("SOA", "ns.example.com. hostmaster.example.com. 1 7200 900 1209600 300"),
    ("DNSKEY", f"257 3 13 {_KEY}"),
    ("DS", "12345 13 2 " + "ab" * 32),
    ("RRSIG", f"A 13 2 300 20300101000000 20200101000000 12345 example.com. {_SIG}"),
    ("NSEC", "next.example.com. A AAAA RRSIG NSEC"),
    ("NSEC3", "1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG"),
    ("NSEC3PARAM", "1 0 0 -"),
    ("TLSA", "3 1 1 " + "cd" * 32),
    ("SSHFP", "4 2 " + "ef" * 32),
    ("URI", '10 1 "https://example.com/"'),
    ("LOC", "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"),
    ("GPOS", "-32.6882 116.8652 10.0"),
    ("APL", "1:192.168.32.0/21 !1:192.168.38.0/28 2:2001:db8::/32"),
    (
        "HIP",
        "2 200100107B1A74DF365639CC39F1D578 AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cI"
        "vM4p9+LrV4e19WzK00+CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+bSRGQ"
        "b1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D rvs.example.com.",
    ),
    ("IPSECKEY", f"10 1 2 192.0.2.38 {_KEY}"),
    ("IPSECKEY", f"10 3 2 gw.example.com. {_KEY}"),
    ("AMTRELAY", "10 0 2 2001:db8::15"),
    ("ZONEMD", "2018031500 1 1 " + "ab" * 48),
    ("CSYNC", "66 3 A NS AAAA"),
    ("ISDN", '"150862028003217" "004"'),
    ("EUI48", "00-00-5e-00-53-2a"),
    ("CERT", f"PKIX 1 RSASHA256 {_KEY}"),
    ("TYPE65280", r"\# 3 abcdef"),
)
OWNERS = ("example.com.", "Example.COM.", "www.example.com.", "other.example.", ".")


def valid_reply(rng: random.Random) -> bytes:
    """A well-formed response with 0-8 records in each section, often with an OPT record."""
    query = dns.message.make_query(
        rng.choice(OWNERS[:3]), rng.choice(("A", "AAAA", "HTTPS", "TXT", "DS")),
        use_edns=rng.random() < 0.7, want_dnssec=rng.random() < 0.5,
    )  # fmt: skip
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA | (dns.flags.AD if rng.random() < 0.3 else 0)
    response.set_rcode(rng.choice((0, 0, 0, 3)))
    for section in (response.answer, response.authority, response.additional):
        for _ in range(rng.choice((0, 0, 1, 2, 4, 8))):
            rtype, text = rng.choice(RDATA)
            owner = dns.name.from_text(rng.choice(OWNERS))
            rrset = dns.rrset.from_text(owner, rng.choice((0, 60, 300, 2**31)), "IN", rtype, text)
            section.append(rrset)
    return response.to_wire(max_size=65535)


def split(data: bytes) -> tuple[list[int], list[bytes], bytes] | None:
    """(counts, records, head: header and question) of a message, read naively; None when
    it cannot be read so."""
    try:
        counts = list(struct.unpack_from("!4H", data, 4))
        pos = 12
        for _ in range(counts[0]):
            pos = _skip_name(data, pos) + 4
        head = data[:pos]
        found = []
        for _ in range(sum(counts[1:])):
            start = pos
            pos = _skip_name(data, pos)
            pos += 10 + struct.unpack_from("!H", data, pos + 8)[0]
            found.append(data[start:pos])
    except (IndexError, struct.error):
        return None
    return counts, found, head


def _skip_name(data: bytes, pos: int) -> int:
    while data[pos] and data[pos] < 0xC0:
        pos += 1 + data[pos]
    return pos + (2 if data[pos] else 1)


def join(head: bytes, counts: list[int], found: list[bytes]) -> bytearray:
    """A message from `split`'s parts (counts as given, whatever the records are)."""
    return bytearray(head[:4] + struct.pack("!4H", *counts) + head[12:] + b"".join(found))


def _opt(rng: random.Random) -> bytes:
    owner = rng.choice((b"\x00", b"\x00", b"\xc0\x0c", b"\x03abc\x00"))
    ttl = rng.choice((0, 0x8000, 0x01000000))
    return owner + struct.pack("!HHIH", 41, 1232, ttl, 0)


def _misplaced_opt(rng: random.Random, data: bytes) -> bytearray:
    """An OPT record anywhere (answer, authority, a second one in additional), counted there."""
    parts = split(data)
    if parts is None:
        return bytearray(data)
    counts, found, head = parts
    section = rng.choice((1, 2, 3))
    before = sum(counts[1:section])
    at = before + rng.randint(0, counts[section])
    counts[section] += 1
    return join(head, counts, [*found[:at], _opt(rng), *found[at:]])


def _dropped_record(rng: random.Random, data: bytes) -> bytearray:
    """A record left out (or cut at an OPT record) with the counts unchanged."""
    parts = split(data)
    if parts is None or not parts[1]:
        return bytearray(data)
    counts, found, head = parts
    at = rng.randrange(len(found))
    return join(head, counts, found[:at] + (found[at + 1 :] if rng.random() < 0.5 else []))


def _moved_record(rng: random.Random, data: bytes) -> bytearray:
    """A record moved to another section (names pointing into moved bytes break too)."""
    parts = split(data)
    if parts is None or not parts[1]:
        return bytearray(data)
    counts, found, head = parts
    at = rng.randrange(len(found))
    record = found.pop(at)
    counts[1 if at < counts[1] else 2 if at < counts[1] + counts[2] else 3] -= 1
    section = rng.choice((1, 2, 3))
    to = sum(counts[1:section]) + rng.randint(0, counts[section])
    counts[section] += 1
    return join(head, counts, [*found[:to], record, *found[to:]])


def _lying_count(rng: random.Random, data: bytes) -> bytearray:
    packet = bytearray(data)
    field = rng.choice((4, 6, 8, 10))
    value = struct.unpack_from("!H", packet, field)[0] + rng.choice((-1, 1, 2, 1000))
    packet[field : field + 2] = struct.pack("!H", value % 65536)
    return packet


def _lying_length(rng: random.Random, data: bytes) -> bytearray:
    """An RDLENGTH one byte off, or a record's data replaced by random bytes of its length."""
    parts = split(data)
    if parts is None or not parts[1]:
        return bytearray(data)
    counts, found, head = parts
    at = rng.randrange(len(found))
    record = bytearray(found[at])
    rdlen_at = _skip_name(record, 0) + 8
    rdlen = struct.unpack_from("!H", record, rdlen_at)[0]
    if rng.random() < 0.5:
        record[rdlen_at : rdlen_at + 2] = struct.pack("!H", max(0, rdlen + rng.choice((-1, 1))))
    else:
        record[rdlen_at + 2 :] = bytes(rng.randrange(256) for _ in range(rdlen))
    found[at] = bytes(record)
    return join(head, counts, found)


def _flip(rng: random.Random, data: bytes) -> bytearray:
    packet = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        packet[rng.randrange(len(packet))] = rng.randrange(256)
    return packet


def _truncate(rng: random.Random, data: bytes) -> bytearray:
    return bytearray(data[: rng.randrange(len(data) + 1)])


def _trailing(rng: random.Random, data: bytes) -> bytearray:
    extra = rng.choice((b"\x00", bytes(rng.randrange(256) for _ in range(9)), data[12:40]))
    return bytearray(data + extra)


MUTATIONS: tuple[Callable[[random.Random, bytes], bytearray], ...] = (
    _misplaced_opt,
    _misplaced_opt,
    _dropped_record,
    _moved_record,
    _lying_count,
    _lying_length,
    _flip,
    _flip,
    _truncate,
    _trailing,
)


def mutated_reply(rng: random.Random) -> bytes:
    """A valid reply broken by one to three mutations."""
    data = valid_reply(rng)
    for _ in range(rng.randint(1, 3)):
        if len(data) > 12:
            data = bytes(rng.choice(MUTATIONS)(rng, data))
    return data
