"""Answers the policy gives instead of the real one, as a client (dnspython) reads them."""

from __future__ import annotations

from collections.abc import Callable

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dnslib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filterdns.dns import model, replies, rich, wire
from filterdns.dns.wire import Answer, Query

TTL = 300
SOA = dns.rdatatype.SOA
A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
CNAME = dns.rdatatype.CNAME

Builder = Callable[[Query], Answer]


def _query(name: str, qtype: str = "A", *, edns: bool = False, rd: bool = True) -> Query:
    message = dns.message.make_query(name, qtype, use_edns=0 if edns else False)
    if not rd:
        message.flags &= ~dns.flags.RD
    return wire.parse_query(message.to_wire())


def _client_view(answer: Answer, query: Query, options: bytes = b"") -> dns.message.Message:
    return dns.message.from_wire(wire.finish(answer, query, limit=4096, options=options))


def _records(message: dns.message.Message) -> list[tuple[str, int, str, int]]:
    """(owner, type, rdata, ttl) of every answer record, in order."""
    return [
        (rrset.name.to_text(), rrset.rdtype, rdata.to_text(), rrset.ttl)
        for rrset in message.answer
        for rdata in rrset
    ]


def _soa(message: dns.message.Message) -> dns.rrset.RRset | None:
    found = [rrset for rrset in message.authority if rrset.rdtype == SOA]
    return found[0] if found else None


CUSTOM = ["192.0.2.10", "2001:db8::10", "192.0.2.11"]

# builder, queried type, rcode, answer records (type, address), SOA in authority
BLOCKED_CASES = [
    pytest.param(lambda q: model.blocked_nxdomain(q, TTL), "A", dns.rcode.NXDOMAIN, [], True,
                 id="nxdomain-a"),
    pytest.param(lambda q: model.blocked_nxdomain(q, TTL), "AAAA", dns.rcode.NXDOMAIN, [], True,
                 id="nxdomain-aaaa"),
    pytest.param(lambda q: model.blocked_nxdomain(q, TTL), "HTTPS", dns.rcode.NXDOMAIN, [], True,
                 id="nxdomain-https"),
    pytest.param(lambda q: model.blocked_null(q, TTL), "A", dns.rcode.NOERROR,
                 [(A, "0.0.0.0")], False, id="null-a"),
    pytest.param(lambda q: model.blocked_null(q, TTL), "AAAA", dns.rcode.NOERROR,
                 [(AAAA, "::")], False, id="null-aaaa"),
    pytest.param(lambda q: model.blocked_null(q, TTL), "MX", dns.rcode.NOERROR, [], True,
                 id="null-mx-nodata"),
    pytest.param(lambda q: model.blocked_null(q, TTL), "HTTPS", dns.rcode.NOERROR, [], True,
                 id="null-https-nodata"),
    pytest.param(lambda q: model.blocked_custom(q, CUSTOM, TTL), "A", dns.rcode.NOERROR,
                 [(A, "192.0.2.10"), (A, "192.0.2.11")], False, id="custom-a-ipv4-only"),
    pytest.param(lambda q: model.blocked_custom(q, CUSTOM, TTL), "AAAA", dns.rcode.NOERROR,
                 [(AAAA, "2001:db8::10")], False, id="custom-aaaa-ipv6-only"),
    pytest.param(lambda q: model.blocked_custom(q, ["192.0.2.10"], TTL), "AAAA",
                 dns.rcode.NOERROR, [], True, id="custom-aaaa-without-ipv6-nodata"),
    pytest.param(lambda q: model.blocked_custom(q, ["2001:db8::1"], TTL), "A",
                 dns.rcode.NOERROR, [], True, id="custom-a-without-ipv4-nodata"),
    pytest.param(lambda q: model.blocked_custom(q, CUSTOM, TTL), "TXT", dns.rcode.NOERROR, [],
                 True, id="custom-txt-nodata"),
    pytest.param(lambda q: model.nodata(q, TTL), "SVCB", dns.rcode.NOERROR, [], True,
                 id="nodata-svcb"),
    pytest.param(lambda q: model.nodata(q, TTL), "A", dns.rcode.NOERROR, [], True,
                 id="nodata-a"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "qtype", "rcode", "expected", "has_soa"), BLOCKED_CASES)
def test_blocked_answer_knows_its_ttls_and_lifetime_as_a_walk_of_it_finds(
    *, build: Builder, qtype: str, rcode: int, expected: object, has_soa: bool
) -> None:
    # Blocked answers skip wire.analyse (hot path): their own layout must match it exactly,
    # or a TTL cap would patch the wrong bytes.
    answer = build(_query("Ads.ExAmple.COM", qtype, edns=False))

    walked = replies.analyse(answer.wire)

    assert (answer.ttl_offsets, answer.ttls, answer.rcode, answer.cache_ttl) == (
        walked.ttl_offsets,
        walked.ttls,
        walked.rcode,
        walked.cache_ttl,
    )
    assert answer.ttl_offsets  # every blocked answer carries a record with a TTL


@pytest.mark.parametrize("edns", [False, True], ids=["plain", "edns"])
@pytest.mark.parametrize(("build", "qtype", "rcode", "expected", "has_soa"), BLOCKED_CASES)
def test_blocked_answer_as_the_client_reads_it(
    *,
    build: Builder,
    qtype: str,
    rcode: int,
    expected: list[tuple[int, str]],
    has_soa: bool,
    edns: bool,
) -> None:
    query = _query("Ads.ExAmple.COM", qtype, edns=edns)

    sut = _client_view(build(query), query)

    assert sut.rcode() == rcode
    assert sut.id == query.msg_id
    assert [(q.name.to_text(), q.rdtype) for q in sut.question] == [
        ("Ads.ExAmple.COM.", dns.rdatatype.from_text(qtype))
    ]
    assert _records(sut) == [
        ("Ads.ExAmple.COM.", rtype, address, TTL) for rtype, address in expected
    ]
    soa = _soa(sut)
    assert (soa is not None) == has_soa
    if soa is not None:
        assert soa.name == dns.name.from_text("ads.example.com")
        assert soa.ttl == TTL
        assert (soa[0].minimum, soa[0].serial) == (TTL, 1)
        assert (soa[0].mname.to_text(), soa[0].rname.to_text()) == (
            "filterdns.",
            "blocked.filterdns.",
        )
        assert (soa[0].refresh, soa[0].retry, soa[0].expire) == (3600, 600, 86400)
    assert (sut.edns >= 0) == edns


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda q: model.blocked_nxdomain(q, 42), id="nxdomain"),
        pytest.param(lambda q: model.blocked_null(q, 42), id="null"),
        pytest.param(lambda q: model.blocked_custom(q, ["192.0.2.1"], 42), id="custom"),
        pytest.param(lambda q: model.nodata(q, 42), id="nodata"),
        pytest.param(lambda q: rich.cname_answer(q, "safe.example", None, 42), id="cname"),
    ],
)
def test_policy_answer_is_cached_for_its_ttl_and_its_ttls_can_be_capped(build: Builder) -> None:
    query = _query("blocked.example", "A")

    sut = build(query)

    assert sut.cache_ttl == 42
    assert sut.ttls == (42,)
    capped = dns.message.from_wire(wire.finish(sut, query, limit=4096, ttl_cap=7))
    assert {rrset.ttl for rrset in capped.answer + capped.authority} == {7}


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda q: model.blocked_nxdomain(q, TTL), id="nxdomain"),
        pytest.param(lambda q: model.blocked_null(q, TTL), id="null"),
        pytest.param(lambda q: rich.cname_answer(q, "safe.example", None, TTL), id="cname"),
    ],
)
def test_owner_of_the_first_record_points_at_the_question(build: Builder) -> None:
    query = _query("blocked.example", "A")

    sut = build(query).wire

    assert sut[12 + len(query.qname_wire) + 4 :][:2] == b"\xc0\x0c"


@pytest.mark.parametrize("rd", [True, False], ids=["rd", "no-rd"])
@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda q: model.blocked_nxdomain(q, TTL), id="nxdomain"),
        pytest.param(lambda q: model.blocked_null(q, TTL), id="null"),
        pytest.param(lambda q: model.nodata(q, TTL), id="nodata"),
        pytest.param(lambda q: model.refused_answer(q), id="refused"),
        pytest.param(lambda q: rich.cname_answer(q, "safe.example", None, TTL), id="cname"),
    ],
)
def test_flags_are_a_recursive_non_authoritative_reply(build: Builder, rd: bool) -> None:
    query = _query("blocked.example", "A", rd=rd)

    sut = dns.message.from_wire(build(query).wire)

    assert sut.id == query.msg_id
    assert sut.flags & dns.flags.QR
    assert sut.flags & dns.flags.RA
    assert not sut.flags & dns.flags.AA
    assert bool(sut.flags & dns.flags.RD) == rd


def test_refused_answer_holds_the_question_alone() -> None:
    query = _query("WwW.Example.org", "AAAA")

    sut = _client_view(model.refused_answer(query), query)

    assert sut.rcode() == dns.rcode.REFUSED
    assert sut.question[0].name.to_text() == "WwW.Example.org."
    assert (sut.answer, sut.authority, sut.additional) == ([], [], [])
    assert model.refused_answer(query).cache_ttl is None


def test_custom_address_that_is_not_an_ip_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        model.blocked_custom(_query("blocked.example"), ["not-an-ip"], TTL)


@pytest.mark.parametrize(
    ("code", "text", "expected_text"),
    [
        pytest.param(model.EDE_BLOCKED, "gambling for profile minh", "gambling for profile minh",
                     id="blocked"),
        pytest.param(model.EDE_FILTERED, "safe search", "safe search", id="filtered"),
        pytest.param(model.EDE_BLOCKED, "", None, id="no-text"),
        pytest.param(model.EDE_BLOCKED, "x" * 250, "x" * 200, id="ascii-cut-to-200-bytes"),
        pytest.param(model.EDE_BLOCKED, "é" * 150, "é" * 100, id="utf8-cut-on-a-character"),
    ],
)  # fmt: skip
def test_ede_option_as_the_client_reads_it(code: int, text: str, expected_text: str | None) -> None:
    query = _query("blocked.example", "A", edns=True)

    sut = _client_view(model.blocked_nxdomain(query, TTL), query, model.ede_option(code, text))

    assert len(sut.options) == 1
    option = sut.options[0]
    assert isinstance(option, dns.edns.EDEOption)
    assert (option.code, option.text) == (code, expected_text)


def test_ede_option_is_dropped_for_a_client_without_edns() -> None:
    query = _query("blocked.example", "A", edns=False)
    option = model.ede_option(model.EDE_BLOCKED, "blocked")

    sut = _client_view(model.blocked_nxdomain(query, TTL), query, option)

    assert sut.edns == -1
    assert sut.options == ()


def _resolved(
    name: str, qtype: str, records: list[tuple[str, int, str, str]], rcode: int = 0
) -> Answer:
    """An upstream answer (compressed by dnspython) holding `records` (owner, ttl, type, rdata)."""
    response = dns.message.make_response(dns.message.make_query(name, qtype))
    response.set_rcode(rcode)
    for owner, ttl, rtype, rdata in records:
        response.answer.append(
            dns.rrset.from_text(dns.name.from_text(owner), ttl, "IN", rtype, rdata)
        )
    return replies.analyse(response.to_wire())


SAFE = "forcesafesearch.google.com"
CHAIN = [
    (SAFE, 600, "CNAME", "edge.safe.google.com."),
    ("edge.safe.google.com", 120, "A", "216.239.38.120"),
    ("edge.safe.google.com", 120, "A", "216.239.38.121"),
]
FIRST = ("WwW.GooGle.com.", CNAME, "forcesafesearch.google.com.", 3600)

CNAME_CASES = [
    pytest.param("A", None, [FIRST], id="no-resolved-answer"),
    pytest.param("A", _resolved(SAFE, "A", CHAIN[1:], rcode=dns.rcode.SERVFAIL), [FIRST],
                 id="servfail-resolved"),
    pytest.param("A", _resolved(SAFE, "A", [(SAFE, 300, "A", "216.239.38.120")]),
                 [FIRST, ("forcesafesearch.google.com.", A, "216.239.38.120", 300)],
                 id="direct-a"),
    pytest.param("A", _resolved(SAFE, "A", CHAIN),
                 [FIRST,
                  ("forcesafesearch.google.com.", CNAME, "edge.safe.google.com.", 600),
                  ("edge.safe.google.com.", A, "216.239.38.120", 120),
                  ("edge.safe.google.com.", A, "216.239.38.121", 120)],
                 id="cname-chain"),
    pytest.param("A", _resolved(SAFE, "A", [*CHAIN, ("unrelated.example", 50, "A", "192.0.2.9")]),
                 [FIRST,
                  ("forcesafesearch.google.com.", CNAME, "edge.safe.google.com.", 600),
                  ("edge.safe.google.com.", A, "216.239.38.120", 120),
                  ("edge.safe.google.com.", A, "216.239.38.121", 120)],
                 id="unrelated-record-dropped"),
    pytest.param("A", _resolved(SAFE, "A", [CHAIN[1], CHAIN[0]]),
                 [FIRST,
                  ("edge.safe.google.com.", A, "216.239.38.120", 120),
                  ("forcesafesearch.google.com.", CNAME, "edge.safe.google.com.", 600)],
                 id="chain-listed-out-of-order"),
    pytest.param("AAAA", _resolved(SAFE, "AAAA", [(SAFE, 300, "AAAA", "2001:4860:4802:32::78")]),
                 [(*FIRST[:3], 3600), ("forcesafesearch.google.com.", AAAA,
                                       "2001:4860:4802:32::78", 300)],
                 id="aaaa"),
    pytest.param("A", _resolved(SAFE, "A", []), [FIRST], id="empty-resolved"),
]  # fmt: skip


@pytest.mark.parametrize("edns", [False, True], ids=["plain", "edns"])
@pytest.mark.parametrize(("qtype", "resolved", "expected"), CNAME_CASES)
def test_cname_answer_as_the_client_reads_it(
    qtype: str,
    resolved: Answer | None,
    expected: list[tuple[str, int, str, int]],
    edns: bool,
) -> None:
    query = _query("WwW.GooGle.com", qtype, edns=edns)

    sut = _client_view(rich.cname_answer(query, SAFE, resolved, 3600), query)

    assert sut.rcode() == dns.rcode.NOERROR
    assert sut.question[0].name.to_text() == "WwW.GooGle.com."
    assert _records(sut) == expected
    assert (sut.authority, sut.additional) == ([], [])


def test_cname_answer_falls_back_to_the_cname_alone_when_the_copy_is_unreadable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    packed = dnslib.DNSRecord.pack
    monkeypatch.setattr(dnslib.DNSRecord, "pack", lambda self: packed(self) + b"\x00")
    query = _query("www.google.com", "A")

    sut = _client_view(rich.cname_answer(query, SAFE, _resolved(SAFE, "A", CHAIN), 3600), query)

    assert _records(sut) == [("www.google.com.", CNAME, "forcesafesearch.google.com.", 3600)]


def test_cname_answer_is_cached_for_its_shortest_ttl() -> None:
    query = _query("www.google.com", "A")

    sut = rich.cname_answer(query, SAFE, _resolved(SAFE, "A", CHAIN), 3600)

    assert sut.ttls == (3600, 600, 120, 120)
    assert sut.cache_ttl == 120


_LABEL = st.from_regex(r"[a-zA-Z0-9_]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?", fullmatch=True)
_NAME = st.lists(_LABEL, min_size=1, max_size=5).map(".".join)
_QTYPE = st.sampled_from(["A", "AAAA", "MX", "TXT", "NS", "CNAME", "SOA", "PTR", "SRV",
                          "HTTPS", "SVCB", "CAA", "ANY"])  # fmt: skip
_ADDRESS = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


@settings(deadline=None, max_examples=60)
@given(
    name=_NAME,
    qtype=_QTYPE,
    edns=st.booleans(),
    ttl=st.integers(min_value=0, max_value=2**31 - 1),
    ips=st.lists(_ADDRESS, max_size=4),
    target=_NAME,
    text=st.text(max_size=300),
)
def test_every_builder_output_parses(
    *, name: str, qtype: str, edns: bool, ttl: int, ips: list[str], target: str, text: str
) -> None:
    query = _query(name, qtype, edns=edns)
    resolved = _resolved(target, "A", [(target, 60, "A", "192.0.2.1")])
    answers = [
        model.blocked_nxdomain(query, ttl),
        model.blocked_null(query, ttl),
        model.blocked_custom(query, ips, ttl),
        model.nodata(query, ttl),
        model.refused_answer(query),
        rich.cname_answer(query, target, None, ttl),
        rich.cname_answer(query, target, resolved, ttl),
    ]
    option = model.ede_option(model.EDE_FILTERED, text)

    for answer in answers:
        sut = _client_view(answer, query, option)

        assert sut.question[0].name == dns.name.from_text(name)
        assert sut.rcode() == answer.rcode


@pytest.mark.parametrize(
    ("build", "rcode"),
    [
        pytest.param(model.blocked_nxdomain, dns.rcode.NXDOMAIN, id="nxdomain"),
        pytest.param(model.nodata, dns.rcode.NOERROR, id="nodata"),
    ],
)
def test_negative_answers_in_turn_keep_their_own_class_and_ttl(
    build: Callable[[Query, int], Answer], rcode: dns.rcode.Rcode
) -> None:
    asked = [("a.example", "IN", 300), ("b.example", "CH", 300), ("c.example", "IN", 5)]

    for name, rdclass, ttl in asked * 2:  # the second time from the SOA records kept
        message = dns.message.make_query(name, "A", rdclass=rdclass)
        query = wire.parse_query(message.to_wire())
        sut = dns.message.from_wire(wire.finish(build(query, ttl), query, limit=4096))

        assert sut.rcode() == rcode
        assert [(str(r.name), r.rdclass, r.ttl, r[0].minimum) for r in sut.authority] == [
            (name + ".", dns.rdataclass.from_text(rdclass), ttl, ttl)
        ]
