"""DNSSEC passthrough end to end: a validating client behind the proxy validates what it gets.

The upstream serves a zone signed with a throw-away key (tests/fakes/signed.py); dnspython asks
through the proxy and checks the signatures against that key.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import dns.asyncquery
import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.fakes.signed import ZONE, SignedUpstream
from tests.integration.harness import Proxy, config_for, running_proxy

SIGNED = dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3
DIG = shutil.which("dig")


async def ask(
    proxy: Proxy,
    name: str,
    qtype: str = "A",
    *,
    do: bool = False,
    cd: bool = False,
    ad: bool = False,
    edns: bool = True,
    tcp: bool = False,
) -> dns.message.Message:
    """One query through the proxy with the given bits; the reply, read strictly."""
    query = dns.message.make_query(name, qtype, use_edns=0 if edns else None, want_dnssec=do)
    query.flags = dns.flags.RD | (dns.flags.CD if cd else 0) | (dns.flags.AD if ad else 0)
    if tcp:
        return await dns.asyncquery.tcp(query, proxy.host, port=proxy.port, timeout=3)
    return await dns.asyncquery.udp(query, proxy.host, port=proxy.port, timeout=3)


def rrsets(reply: dns.message.Message, rdtype: int, covers: int = 0) -> list[dns.rrset.RRset]:
    return [
        rrset
        for section in (reply.answer, reply.authority, reply.additional)
        for rrset in section
        if rrset.rdtype == rdtype and rrset.covers == covers
    ]


def validated(reply: dns.message.Message, keys: dns.rrset.RRset) -> list[str]:
    """Every RRset of the reply validated with its RRSIG against `keys` ("name type" each);
    dns.dnssec.ValidationFailure when one does not validate, ValueError when one is unsigned."""
    done = []
    for section in (reply.answer, reply.authority):
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.RRSIG:
                continue
            (signature,) = [
                found
                for found in rrsets(reply, dns.rdatatype.RRSIG, rrset.rdtype)
                if found.name == rrset.name
            ]
            dns.dnssec.validate(rrset, signature, {ZONE: keys})
            done.append(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}")
    return done


async def trusted_keys(proxy: Proxy, upstream: SignedUpstream) -> dns.rrset.RRset:
    """The zone's DNSKEY RRset asked through the proxy, self-signed and holding the test key."""
    reply = await ask(proxy, "signed.test", "DNSKEY", do=True)
    (keys,) = rrsets(reply, dns.rdatatype.DNSKEY)
    assert upstream.dnskey in keys
    assert validated(reply, keys) == ["signed.test. DNSKEY"]
    return keys


def no_dnssec_records(reply: dns.message.Message) -> bool:
    return not any(rrsets(reply, rdtype) for rdtype in SIGNED) and not any(
        rrsets(reply, dns.rdatatype.RRSIG, covers) for covers in range(1, 300)
    )


@pytest.fixture
async def upstream() -> SignedUpstream:
    async with SignedUpstream() as fake:
        yield fake


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_a_dnssec_client_gets_signatures_it_validates(
    upstream: SignedUpstream, tcp: bool
) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        keys = await trusted_keys(proxy, upstream)
        reply = await ask(proxy, "www.signed.test", do=True, tcp=tcp)
        alias = await ask(proxy, "alias.signed.test", "AAAA", do=True, tcp=tcp)
        ds = await ask(proxy, "child.signed.test", "DS", do=True, tcp=tcp)
    assert validated(reply, keys) == ["www.signed.test. A"]
    assert validated(alias, keys) == ["alias.signed.test. CNAME", "www.signed.test. AAAA"]
    assert validated(ds, keys) == ["child.signed.test. DS"]
    assert reply.ednsflags & dns.flags.DO  # echoed (RFC 3225)
    assert all(ednsflags & dns.flags.DO for _flags, ednsflags in upstream.query_flags)


@pytest.mark.parametrize(
    ("name", "qtype", "rcode", "proofs"),
    [
        pytest.param("nothing.signed.test", "A", dns.rcode.NXDOMAIN, 2, id="nxdomain"),
        pytest.param("www.signed.test", "TXT", dns.rcode.NOERROR, 1, id="nodata"),
    ],
)
async def test_a_dnssec_client_validates_the_proof_that_nothing_is_there(
    upstream: SignedUpstream, name: str, qtype: str, rcode: int, proofs: int
) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        keys = await trusted_keys(proxy, upstream)
        reply = await ask(proxy, name, qtype, do=True)
        plain = await ask(proxy, name, qtype)
    assert reply.rcode() == plain.rcode() == rcode
    assert len(rrsets(reply, dns.rdatatype.NSEC)) == proofs
    assert "signed.test. SOA" in validated(reply, keys)
    assert [rrset.rdtype for rrset in plain.authority] == [dns.rdatatype.SOA]


async def test_plain_clients_get_no_signatures_and_the_two_never_share_a_cache_entry(
    upstream: SignedUpstream,
) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        signed_first = await ask(proxy, "www.signed.test", do=True)
        plain = await ask(proxy, "www.signed.test")
        no_edns = await ask(proxy, "www.signed.test", edns=False)
        signed_again = await ask(proxy, "www.signed.test", do=True)
        missing = await ask(proxy, "nothing.signed.test")
        keys_asked = await ask(proxy, "signed.test", "DNSKEY")  # asked by type: kept
    assert rrsets(signed_first, dns.rdatatype.RRSIG, dns.rdatatype.A)
    assert signed_again.answer == signed_first.answer
    for reply in (plain, no_edns, missing):
        assert no_dnssec_records(reply)
    assert not plain.ednsflags & dns.flags.DO and no_edns.edns == -1
    assert rrsets(keys_asked, dns.rdatatype.DNSKEY) and no_dnssec_records(keys_asked)
    # one exchange for each kind of question: the DO and plain answers are cached apart
    assert upstream.queries.count(("www.signed.test", "A")) == 2


async def test_cd_and_do_reach_the_upstream_and_cd_is_echoed(upstream: SignedUpstream) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        reply = await ask(proxy, "www.signed.test", do=True, cd=True)
        plain = await ask(proxy, "www.signed.test", cd=True)
    assert [(bool(f & dns.flags.CD), bool(e & dns.flags.DO)) for f, e in upstream.query_flags] == [
        (True, True),
        (True, False),
    ]
    assert reply.flags & dns.flags.CD and plain.flags & dns.flags.CD
    assert rrsets(reply, dns.rdatatype.RRSIG, dns.rdatatype.A) and no_dnssec_records(plain)


@pytest.mark.parametrize("trust_ad", [False, True], ids=["untrusted", "trust_ad"])
async def test_the_ad_bit_comes_only_from_upstreams_configured_as_validating(
    trust_ad: bool,
) -> None:
    extra = "" if not trust_ad else "  trust_ad: true\n"
    async with SignedUpstream(validating=True) as upstream:
        config = config_for(upstream.address).replace("  timeout: 1s\n", "  timeout: 1s\n" + extra)
        async with running_proxy(config) as proxy:
            with_do = await ask(proxy, "www.signed.test", do=True)
            with_ad = await ask(proxy, "www.signed.test", ad=True)
            neither = await ask(proxy, "www.signed.test")
    assert bool(with_do.flags & dns.flags.AD) is trust_ad
    assert bool(with_ad.flags & dns.flags.AD) is trust_ad  # RFC 6840 5.7: AD asks for AD
    assert not neither.flags & dns.flags.AD  # RFC 6840 5.8: not to a client that did not ask


async def test_blocked_answers_stay_unsigned_and_echo_do(
    upstream: SignedUpstream, tmp_path: Path
) -> None:
    extra = f"""\
        log: {{database: "{tmp_path / "filterdns.db"}"}}
        profiles: {{kid: {{age_band: 9-12, block: [www.signed.test], band_schedules: false}}}}
        default_profile: kid
    """
    async with running_proxy(config_for(upstream.address, extra=extra)) as proxy:
        keys = await trusted_keys(proxy, upstream)
        reply = await ask(proxy, "www.signed.test", do=True)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.ednsflags & dns.flags.DO and not reply.flags & dns.flags.AD
    assert no_dnssec_records(reply)  # a validating client cannot validate it: it stays blocked
    with pytest.raises(ValueError):  # no signature to check the synthetic SOA with
        validated(reply, keys)
    assert ("www.signed.test", "A") not in upstream.queries


@pytest.mark.skipif(DIG is None, reason="dig is not installed")
async def test_dig_dnssec_through_the_proxy(upstream: SignedUpstream) -> None:
    async with running_proxy(config_for(upstream.address)) as proxy:
        signed = await _dig(proxy, "+dnssec", "www.signed.test")
        plain = await _dig(proxy, "+nodnssec", "www.signed.test")
    assert "RRSIG" in signed and "; EDNS: version: 0, flags: do;" in signed
    assert "RRSIG" not in plain and "192.0.2.10" in plain


async def _dig(proxy: Proxy, *args: str) -> str:
    assert DIG is not None
    process = await asyncio.create_subprocess_exec(
        DIG, f"@{proxy.host}", "-p", str(proxy.port), "+tries=1", "+time=3", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()
