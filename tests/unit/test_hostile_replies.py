"""Fuzzing upstream replies: what `replies.analyse` accepts, an independent strict parser reads.

Whatever analyse returns is cached and sent to clients, so dnspython (no trailing bytes, counts
equal to the records, OPT only in the additional section, names and record data checked) must
read it, and read the records the upstream meant.
"""

from __future__ import annotations

import random

import dns.exception
import dns.flags
import dns.message
import dns.rdatatype
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filterdns.dns import replies, wire
from filterdns.errors import WireError
from tests.fakes.replies import mutated_reply, valid_reply

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLIENTS = {
    "plain": dns.message.make_query("example.com", "A", use_edns=False),
    "edns": dns.message.make_query("example.com", "A", use_edns=0),
    "dnssec": dns.message.make_query("example.com", "A", want_dnssec=True),
}


def _strictly_readable(answer: wire.Answer) -> dns.message.Message:
    """dnspython's reading of an Answer, and of what each kind of client would be sent."""
    try:
        message = dns.message.from_wire(answer.wire)
        sent = {
            kind: dns.message.from_wire(
                wire.finish(answer, wire.parse_query(client.to_wire()), limit=65535)
            )
            for kind, client in CLIENTS.items()
        }
    except dns.exception.DNSException as exc:  # pragma: no cover - the assertion says why
        raise AssertionError(f"analyse accepted what dnspython refuses: {exc}") from exc
    assert (sent["plain"].edns, sent["edns"].edns, sent["dnssec"].edns) == (-1, 0, 0)
    assert not sent["edns"].ednsflags & dns.flags.DO and sent["dnssec"].ednsflags & dns.flags.DO
    assert message.opt is None  # the server adds its own for each client
    for offset, ttl in zip(answer.ttl_offsets, answer.ttls, strict=True):
        assert int.from_bytes(answer.wire[offset : offset + 4], "big") == ttl
    return message


def _records(message: dns.message.Message) -> list[list[dns.rrset.RRset]]:
    return [message.answer, message.authority, message.additional]


@FUZZ
@given(st.randoms(use_true_random=False))
def test_whatever_analyse_accepts_a_strict_parser_reads(rng: random.Random) -> None:
    try:
        answer = replies.analyse(mutated_reply(rng))
    except WireError:
        return
    _strictly_readable(answer)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_or_readable(data: bytes) -> None:
    try:
        answer = replies.analyse(data)
    except WireError:
        return
    _strictly_readable(answer)


@settings(max_examples=300, deadline=None)
@given(st.randoms(use_true_random=False))
def test_well_formed_replies_are_kept_record_for_record(rng: random.Random) -> None:
    data = valid_reply(rng)
    upstream = dns.message.from_wire(data)
    sut = _strictly_readable(replies.analyse(data))
    assert _records(sut) == _records(upstream)  # records and data; TTLs may be normalised
    assert sut.rcode() == upstream.rcode()
    assert not sut.flags & dns.flags.AD  # not from an upstream trusted to validate
