"""A fake upstream serving a small DNSSEC-signed zone, signed with a throw-away key.

    async with SignedUpstream() as fake:  # the zone signed.test., as FakeUpstream otherwise
        ...  # fake.dnskey is the key a test trusts

It answers as a resolver that fetched the zone would: with the DO bit, the RRSIG records of
what it returns and, for a name or type that does not exist, the NSEC records proving so (and
their signatures); without DO, none of them (RFC 4035 3.2.1), except a type asked for by name.
With `validating` set it acts as a validating resolver: AD on answers to queries with DO or AD
and without CD (RFC 6840 5.8). The key is ECDSA P-256 (made with `cryptography`, which
dnspython's DNSSEC support needs).
"""

from __future__ import annotations

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec
from dns.dnssectypes import Algorithm

from tests.fakes.upstream import FakeUpstream

ZONE = dns.name.from_text("signed.test.")
WILDCARD = dns.name.from_text("*.signed.test.")
ZONE_TEXT = """\
$TTL 300
@        SOA   ns.signed.test. hostmaster.signed.test. 1 7200 900 86400 60
@        NS    ns
ns       A     192.0.2.53
www      A     192.0.2.10
www      AAAA  2001:db8::10
alias    CNAME www
mail     MX    10 www
child    NS    ns.child
child    DS    12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE9C3D3D55B0C1B4C3F8E3A7B1
"""
IN = dns.rdataclass.IN
RRSIG, NSEC, SOA, CNAME = (dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.SOA,
                           dns.rdatatype.CNAME)  # fmt: skip


class SignedUpstream(FakeUpstream):
    """FakeUpstream answering from the signed zone `signed.test.`; see the module docstring."""

    def __init__(self, *, validating: bool = False) -> None:
        super().__init__()
        self.validating = validating
        key = ec.generate_private_key(ec.SECP256R1())
        self.dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY = dns.dnssec.make_dnskey(
            key.public_key(), Algorithm.ECDSAP256SHA256, flags=257
        )
        self.zone = dns.zone.from_text(ZONE_TEXT, ZONE, relativize=False)
        dns.dnssec.sign_zone(self.zone, keys=[(key, self.dnskey)], lifetime=86400)

    def _fill(self, response: dns.message.Message, query: dns.message.Message) -> None:
        question = query.question[0]
        dnssec = bool(query.ednsflags & dns.flags.DO)
        name, rdtype = question.name, question.rdtype
        for _ in range(8):  # follow CNAMEs inside the zone
            node = self.zone.get_node(name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                self._deny(response, dnssec, self._covering(name), self._covering(WILDCARD))
                break
            found = node.get_rdataset(IN, rdtype)
            alias = node.get_rdataset(IN, CNAME) if rdtype != CNAME else None
            if found is None and alias is None:
                self._deny(response, dnssec, name)
                break
            self._add(response.answer, name, node, rdtype if found else CNAME, dnssec)
            if found is not None:
                break
            assert alias is not None
            name = alias[0].target
        asks_ad = dnssec or query.flags & dns.flags.AD
        if self.validating and asks_ad and not query.flags & dns.flags.CD:
            response.flags |= dns.flags.AD

    def _add(
        self,
        section: list[dns.rrset.RRset],
        name: dns.name.Name,
        node: dns.node.Node,
        rdtype: dns.rdatatype.RdataType,
        dnssec: bool,
    ) -> None:
        """The RRset of `rdtype` at `name`, then its signatures when the query set DO."""
        rdataset = node.get_rdataset(IN, rdtype)
        assert rdataset is not None
        section.append(dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset)))
        signatures = node.get_rdataset(IN, RRSIG, covers=rdtype)
        if dnssec and signatures is not None:
            section.append(dns.rrset.from_rdata_list(name, signatures.ttl, list(signatures)))

    def _deny(self, response: dns.message.Message, dnssec: bool, *proofs: dns.name.Name) -> None:
        """The zone's SOA in authority (RFC 2308); with DO its signature and the NSEC records
        at `proofs` (names) with theirs."""
        apex = self.zone.get_node(ZONE)
        assert apex is not None
        self._add(response.authority, ZONE, apex, SOA, dnssec)
        if not dnssec:
            return
        for owner in dict.fromkeys(proofs):
            node = self.zone.get_node(owner)
            assert node is not None
            self._add(response.authority, owner, node, NSEC, dnssec)

    def _covering(self, name: dns.name.Name) -> dns.name.Name:
        """The owner of the NSEC record whose span covers `name` (canonical order, RFC 4034
        6.1): it proves that `name` does not exist."""
        owners = sorted(owner for owner, node in self.zone.nodes.items()
                        if node.get_rdataset(IN, NSEC) is not None)  # fmt: skip
        before = [owner for owner in owners if owner < name]
        return before[-1] if before else owners[-1]
