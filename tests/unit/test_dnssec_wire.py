"""DNSSEC passthrough on the wire: DO echoed, DO and CD kept apart in keys and sent upstream,
the AD bit only for clients that ask for it."""

from __future__ import annotations

from collections.abc import Callable

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from filterdns.dns import model, names, outgoing, replies, rich, wire


def _query(
    name: str = "example.com", *, do: bool = False, cd: bool = False, ad: bool = False,
    edns: bool = True,
) -> wire.Query:  # fmt: skip
    message = dns.message.make_query(name, "A", use_edns=0 if edns else None, want_dnssec=do)
    message.flags = dns.flags.RD | (dns.flags.CD if cd else 0) | (dns.flags.AD if ad else 0)
    return wire.parse_query(message.to_wire())


def _upstream_answer(*, ad: bool, trust_ad: bool = True) -> wire.Answer:
    reply = dns.message.make_response(dns.message.make_query("example.com", "A"))
    reply.flags |= dns.flags.RA | (dns.flags.AD if ad else 0)
    reply.answer.append(dns.rrset.from_text("example.com.", 300, "IN", "A", "93.184.216.34"))
    return replies.analyse(reply.to_wire(), trust_ad=trust_ad)


def _client_view(out: bytes) -> dns.message.Message:
    return dns.message.from_wire(out)


def test_do_and_cd_questions_have_keys_of_their_own() -> None:
    kinds = [(False, False), (True, False), (False, True), (True, True)]
    keys = {wire.parse_query(_query_bytes(do, cd)).key for do, cd in kinds}
    assert len(keys) == 4
    for do, cd in kinds:  # the same key when asked on a client's behalf (SafeSearch)
        query = wire.parse_query(_query_bytes(do, cd))
        assert query.key == wire.question_key(
            b"\x07EXAMPLE\x03com\x00", 1, 1, dnssec_ok=do, flags=query.flags
        )


def _query_bytes(do: bool, cd: bool) -> bytes:
    message = dns.message.make_query("Example.com", "A", want_dnssec=do, use_edns=0)
    if cd:
        message.flags |= dns.flags.CD
    return message.to_wire()


@pytest.mark.parametrize("do", [False, True], ids=["plain", "do"])
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda q: _upstream_answer(ad=False), id="upstream"),
        pytest.param(lambda q: model.blocked_nxdomain(q, 10), id="blocked"),
        pytest.param(lambda q: model.error_answer(q, wire.SERVFAIL), id="servfail"),
        pytest.param(lambda q: model.minimal_any(q).answer, id="local"),
    ],
)  # fmt: skip
def test_every_answer_echoes_the_clients_do_bit(
    make: Callable[[wire.Query], wire.Answer], do: bool
) -> None:
    query = _query(do=do)
    answer = make(query)
    for options in (b"", model.ede_option(model.EDE_BLOCKED, "adult")):
        sut = _client_view(wire.finish(answer, query, limit=1232, options=options))
        assert bool(sut.ednsflags & dns.flags.DO) is do
        assert sut.edns == 0


def test_no_opt_record_for_a_client_without_edns() -> None:
    sut = _client_view(wire.finish(_upstream_answer(ad=False), _query(edns=False), limit=512))
    assert sut.edns == -1


@pytest.mark.parametrize(
    ("do", "ad", "cd", "shown"),
    [
        pytest.param(False, False, False, False, id="plain-client"),
        pytest.param(True, False, False, True, id="do-client"),
        pytest.param(False, True, False, True, id="ad-client"),
        pytest.param(True, False, True, True, id="do-cd-client"),
    ],
)
def test_a_trusted_ad_bit_reaches_only_clients_that_set_do_or_ad(
    do: bool, ad: bool, cd: bool, shown: bool
) -> None:
    query = _query(do=do, ad=ad, cd=cd)
    sut = _client_view(wire.finish(_upstream_answer(ad=True), query, limit=1232))
    assert bool(sut.flags & dns.flags.AD) is shown
    assert bool(sut.flags & dns.flags.CD) is cd  # echoed


def test_an_untrusted_ad_bit_reaches_nobody() -> None:
    answer = _upstream_answer(ad=True, trust_ad=False)
    sut = _client_view(wire.finish(answer, _query(do=True, ad=True), limit=1232))
    assert not sut.flags & dns.flags.AD


@pytest.mark.parametrize(("do", "cd"), [(False, False), (True, False), (False, True), (True, True)])
def test_upstream_queries_carry_the_clients_do_and_cd_and_always_ad(do: bool, cd: bool) -> None:
    sut = dns.message.from_wire(
        outgoing.make_query(names.text_to_wire("example.com"), 1, 1, 7, dnssec_ok=do, cd=cd)
    )
    assert bool(sut.ednsflags & dns.flags.DO) is do
    assert bool(sut.flags & dns.flags.CD) is cd
    assert sut.flags & dns.flags.AD and sut.flags & dns.flags.RD
    assert sut.payload == wire.EDNS_SIZE


def test_a_rewrite_for_a_dnssec_client_keeps_the_targets_signatures() -> None:
    # The CNAME is made up here and unsigned; the target's records keep their RRSIG, so a
    # validating client can check those against the target's zone.
    target = "forcesafesearch.google.com."
    upstream = dns.message.make_response(dns.message.make_query(target, "A", want_dnssec=True))
    for rdtype, rdata in (
        ("A", "216.239.38.120"),
        ("RRSIG", "A 13 3 300 20300101000000 20200101000000 1 google.com. AAAA"),
    ):
        upstream.answer.append(dns.rrset.from_text(target, 300, "IN", rdtype, rdata))
    query = wire.parse_query(
        dns.message.make_query("www.google.com", "A", want_dnssec=True).to_wire()
    )
    answer = rich.cname_answer(query, target, replies.analyse(upstream.to_wire()), 300)
    sut = _client_view(wire.finish(answer, query, limit=1232))
    assert [dns.rdatatype.to_text(rrset.rdtype) for rrset in sut.answer] == ["CNAME", "A", "RRSIG"]
    assert sut.ednsflags & dns.flags.DO
