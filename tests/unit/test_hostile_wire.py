"""Fuzzing the packet path: any bytes are read as a query or refused with WireError, nothing else.

The server's whole defence against malformed packets rests on that contract (see
`DnsServer._request`); whatever parses must also make a reply a client can read.
"""

from __future__ import annotations

import random

import dns.exception
import dns.message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filterdns.dns import model, wire
from filterdns.errors import WireError
from tests.fakes.hostile import mutated_query, valid_query

FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _reply_is_readable(query: wire.Query, limit: int) -> None:
    """A reply built for `query` fits `limit` and echoes the question as the client spelt it."""
    out = wire.finish(model.error_answer(query, wire.SERVFAIL), query, limit=limit,
                      options=model.ede_option(model.EDE_BLOCKED, "x"))  # fmt: skip
    assert len(out) <= limit
    assert out[:2] == query.msg_id.to_bytes(2, "big")
    assert out[12 : 12 + len(query.qname_wire)] == query.qname_wire
    try:
        dns.message.from_wire(out)
    except dns.exception.DNSException as exc:  # pragma: no cover - the assertion says why
        raise AssertionError(f"unreadable reply {out!r}: {exc}") from exc


def _parse_or_refuse(data: bytes) -> wire.Query | None:
    try:
        return wire.parse_query(data)
    except WireError as exc:
        assert exc.msg_id is None or exc.msg_id == int.from_bytes(data[:2], "big")
        return None


@FUZZ
@given(st.binary(max_size=700))
def test_any_bytes_are_a_query_or_a_wire_error(data: bytes) -> None:
    query = _parse_or_refuse(data)
    if query is not None:
        _reply_is_readable(query, query.udp_size if query.edns else 512)


@FUZZ
@given(st.randoms(use_true_random=False))
def test_mutated_real_queries_are_a_query_or_a_wire_error(rng: random.Random) -> None:
    query = _parse_or_refuse(mutated_query(rng))
    if query is not None:
        _reply_is_readable(query, 512)


@FUZZ
@given(st.randoms(use_true_random=False))
def test_the_usual_opt_record_reads_the_same_as_the_general_walk(rng: random.Random) -> None:
    # parse_query reads the common "question then OPT" layout directly; it must agree with the
    # record walk used for every other layout.
    data = valid_query(rng)
    query = _parse_or_refuse(data)
    if query is None:
        return
    qend = 12 + len(query.qname_wire) + 4
    assert wire._read_opt(data, qend, 0, data[11], query.msg_id) == (
        query.edns,
        query.udp_size,
        query.dnssec_ok,
        query.edns_version,
    )
