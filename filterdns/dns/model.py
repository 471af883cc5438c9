"""The values that travel along the resolver chain: Request in, Response out.

Answers are bytes handled by `wire`; the synthetic records (RFC 8482 ANY, blocked answers) are
small enough to write by hand. Where a link needs rich records (SafeSearch CNAME chains), dnslib
writes them in `dns.rich`.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from filterdns.dns import replies, wire
from filterdns.dns.wire import Answer, Query


class Kind(enum.Enum):
    """What produced a Response; the log, `explain` and `report` group by it."""

    RESOLVED = "resolved"  # answered by an upstream just now
    CACHED = "cached"  # answered from the cache
    STALE = "stale"  # expired cache data served because every upstream failed (RFC 8767)
    BLOCKED = "blocked"  # answered by the policy instead of the real name
    REWRITTEN = "rewritten"  # answered with a substitute name (SafeSearch)
    REFUSED = "refused"  # the client is not allowed to use this resolver
    FAILED = "failed"  # every upstream failed and nothing stale was cached: SERVFAIL
    LOCAL = "local"  # answered by the proxy itself (RFC 8482 ANY, NOTIMP, BADVERS)


@dataclass(slots=True, init=False)  # per query: not frozen (6x cheaper); __init__ below
class Request:
    """One client query as it enters the chain (immutable)."""

    query: Query
    client_ip: str
    client_port: int
    protocol: str  # "udp" or "tcp"
    received_at: float  # monotonic seconds
    profile: str | None
    client_name: str | None

    def __init__(  # noqa: PLR0917 - the fields' order, as the dataclass's would take them
        self,
        query: Query,
        client_ip: str,
        client_port: int,
        protocol: str,
        received_at: float,
        profile: str | None = None,
        client_name: str | None = None,
    ) -> None:
        self.query = query
        self.client_ip = client_ip
        self.client_port = client_port
        self.protocol = protocol
        self.received_at = received_at
        self.profile = profile
        self.client_name = client_name

    @property
    def limit(self) -> int:
        """The largest answer the client accepts over this transport."""
        if self.protocol == "tcp":
            return 65535
        return max(wire.MIN_UDP, min(self.query.udp_size, 65535)) if self.query.edns else 512


@dataclass(slots=True, init=False)  # per query: not frozen (6x cheaper); __init__ below
class Response:
    """The outcome of resolving one Request.

    `reason` is a sentence a parent can read ("gambling for profile minh, list
    blocklists/gambling.txt:812"); `ttl_cap` bounds every TTL of the answer (so a schedule change
    takes effect on time); `edns_options` are appended to the client's OPT record.
    """

    kind: Kind
    answer: Answer
    reason: str
    category: str | None
    ttl_cap: int | None
    ext_rcode: int
    edns_options: bytes
    upstream: str | None
    rule: str | None  # the policy rule that decided ("age band 9-12", "schedule ...")
    source: str | None  # the list holding the name ("shipped:gambling.txt")
    mode: str | None  # how a blocked name was answered: nxdomain, null, refused, custom, ...
    silent: bool  # send nothing (a UDP source outside allow_clients may be forged)

    def __init__(  # noqa: PLR0917 - the fields' order, as the dataclass's would take them
        self,
        kind: Kind,
        answer: Answer,
        reason: str = "",
        category: str | None = None,
        ttl_cap: int | None = None,
        ext_rcode: int = 0,
        edns_options: bytes = b"",
        upstream: str | None = None,
        rule: str | None = None,
        source: str | None = None,
        mode: str | None = None,
        silent: bool = False,
    ) -> None:
        self.kind = kind
        self.answer = answer
        self.reason = reason
        self.category = category
        self.ttl_cap = ttl_cap
        self.ext_rcode = ext_rcode
        self.edns_options = edns_options
        self.upstream = upstream
        self.rule = rule
        self.source = source
        self.mode = mode
        self.silent = silent

    def capped(self, cap: int | None) -> Response:
        """This response with every TTL at most `cap` seconds (itself when already so)."""
        if cap is None or (self.ttl_cap is not None and self.ttl_cap <= cap):
            return self
        ttls = self.answer.ttls
        if not ttls or max(ttls) <= cap:
            return self
        # Built directly: dataclasses.replace() inspects the fields on every call (hot path).
        return Response(
            self.kind,
            self.answer,
            self.reason,
            self.category,
            cap,
            self.ext_rcode,
            self.edns_options,
            self.upstream,
            self.rule,
            self.source,
            self.mode,
            self.silent,
        )


def error_answer(query: Query, rcode: int) -> Answer:
    """An answer with no records and `rcode`, echoing the question."""
    question = query.qname_wire + wire.TYPE_CLASS.pack(query.qtype, query.qclass)
    return Answer(wire.header_only(query.msg_id, query.flags, rcode, question), rcode=rcode)


def refused(query: Query, reason: str) -> Response:
    """REFUSED for a client outside the ACL."""
    return Response(Kind.REFUSED, error_answer(query, wire.REFUSED), reason=reason)


def servfail(query: Query, reason: str) -> Response:
    """SERVFAIL when every upstream failed and nothing stale is cached."""
    return Response(Kind.FAILED, error_answer(query, wire.SERVFAIL), reason=reason)


def minimal_any(query: Query, ttl: int = 3600) -> Response:
    """The RFC 8482 answer to qtype ANY: one synthesised HINFO "RFC8482" record."""
    rdata = b"\x07RFC8482\x00"  # two character-strings: CPU "RFC8482", OS ""
    record = b"\xc0\x0c" + wire.RR_FIXED.pack(13, query.qclass, ttl, len(rdata)) + rdata
    question = query.qname_wire + wire.TYPE_CLASS.pack(query.qtype, query.qclass)
    header = wire.HEADER.pack(query.msg_id, wire.QR | wire.RA | (query.flags & wire.RD), 1, 1, 0, 0)
    answer = replies.analyse(header + question + record)
    return Response(Kind.LOCAL, answer, reason="ANY answered minimally (RFC 8482)")


# --- Answers the policy gives instead of the real one -------------------------------------------
#
# Blocked answers are a hot path: they are written byte by byte, owner names pointing at the
# question (0xC00C), then walked once by `replies.analyse` so the TTL offsets are known.

EDE_OPTION = 15  # EDNS option code of an Extended DNS Error (RFC 8914)
EDE_BLOCKED = 15  # INFO-CODE "Blocked"
EDE_FILTERED = 17  # INFO-CODE "Filtered"
EDE_TEXT_MAX = 200  # bytes of EXTRA-TEXT kept

QUESTION_PTR = b"\xc0\x0c"  # an owner name pointing at the question (dns.rich writes one too)
_MAX_TTL = 0x7FFFFFFF  # RFC 2181 8
# SOA RDATA up to the MINIMUM field: MNAME "filterdns.", RNAME "blocked.filterdns." (both written
# whole, so the bytes do not depend on where the record sits), serial 1, refresh 3600, retry 600,
# expire 86400.
_SOA_HEAD = (
    b"\x09filterdns\x00"
    + b"\x07blocked\x09filterdns\x00"
    + wire.U32.pack(1)
    + wire.U32.pack(3600)
    + wire.U32.pack(600)
    + wire.U32.pack(86400)
)
_SOA_RDLEN = len(_SOA_HEAD) + 4
_IPV4_ANY = bytes(4)
_IPV6_ANY = bytes(16)


def ede_option(code: int, text: str) -> bytes:
    """An Extended DNS Error option (RFC 8914): INFO-CODE and UTF-8 EXTRA-TEXT of <= 200 bytes.

    The text is cut on a character boundary so the option always holds valid UTF-8.
    """
    raw = text.encode("utf-8")
    if len(raw) > EDE_TEXT_MAX:
        raw = raw[:EDE_TEXT_MAX].decode("utf-8", "ignore").encode("utf-8")
    return wire.edns_option(EDE_OPTION, wire.U16.pack(code) + raw)


def clamped_ttl(ttl: int) -> int:
    """`ttl` within what a TTL field may hold (0 to 2^31 - 1, RFC 2181 8)."""
    return min(max(ttl, 0), _MAX_TTL)


def record_class(query: Query) -> int:
    """The class of synthesised records: the query's, IN for the meta classes NONE and ANY."""
    return query.qclass if query.qclass < 254 else wire.CLASS_IN


def _message(
    query: Query, rcode: int, answers: list[bytes], authority: list[bytes], ttl: int
) -> Answer:
    """Header (QR, RA, the client's RD), the question, then the given records, all of TTL `ttl`.

    The TTL offsets are known from the layout (each record: 2-byte name pointer, type, class,
    then the TTL), so the message is not walked again; a test checks them against
    `replies.analyse`.
    """
    flags = wire.QR | wire.RA | (query.flags & wire.RD) | rcode
    header = wire.HEADER.pack(query.msg_id, flags, 1, len(answers), len(authority), 0)
    question = query.qname_wire + wire.TYPE_CLASS.pack(query.qtype, query.qclass)
    offsets = []
    pos = 12 + len(question)
    for record in (*answers, *authority):
        offsets.append(pos + 6)
        pos += len(record)
    return Answer(
        header + question + b"".join(answers) + b"".join(authority),
        tuple(offsets),
        (ttl,) * len(offsets),
        rcode,
        ttl,
    )


def _soa(query: Query, ttl: int) -> bytes:
    """The SOA for negative answers: owner the queried name, TTL and MINIMUM both `ttl`."""
    fixed = wire.RR_FIXED.pack(wire.TYPE_SOA, record_class(query), ttl, _SOA_RDLEN)
    return QUESTION_PTR + fixed + _SOA_HEAD + wire.U32.pack(ttl)


def _address(query: Query, rdata: bytes, ttl: int) -> bytes:
    """An A or AAAA record (by the query's type) for the queried name."""
    fixed = wire.RR_FIXED.pack(query.qtype, record_class(query), ttl, len(rdata))
    return QUESTION_PTR + fixed + rdata


def blocked_nxdomain(query: Query, ttl: int) -> Answer:
    """NXDOMAIN with the filterdns SOA, so RFC 2308 negative caching lasts `ttl` seconds."""
    return negative(query, wire.NXDOMAIN, clamped_ttl(ttl))


def nodata(query: Query, ttl: int) -> Answer:
    """NOERROR with no answer and the filterdns SOA in authority (NODATA, RFC 2308)."""
    return negative(query, wire.NOERROR, clamped_ttl(ttl))


# What follows the question's name in a negative answer, by type, class and TTL (one integer):
# the type and class, then the SOA record; with the TTLs' tuple. A handful in a running server.
_TAILS: dict[int, tuple[bytes, tuple[int]]] = {}
_ONE_QUESTION_ONE_SOA = wire.HEADER.pack(0, 0, 1, 0, 1, 0)[4:]  # the counts
_QR_RA = wire.QR | wire.RA
_RD = wire.RD
_ID_FLAGS = wire.ID_FLAGS.pack


def negative(query: Query, rcode: int, ttl: int) -> Answer:
    """`_message` with the SOA alone in authority (`ttl` already clamped), written at once: the
    answer of most blocked names, built for every blocked question the policy link does not
    keep ready."""
    qtype, qclass = query.qtype, query.qclass
    key = ttl << 32 | qtype << 16 | qclass
    found = _TAILS.get(key)
    if found is None:
        if len(_TAILS) >= 256:
            _TAILS.clear()
        found = _TAILS[key] = (wire.TYPE_CLASS.pack(qtype, qclass) + _soa(query, ttl), (ttl,))
    qname_wire = query.qname_wire
    data = b"".join((
        _ID_FLAGS(query.msg_id, _QR_RA | (query.flags & _RD) | rcode), _ONE_QUESTION_ONE_SOA,
        qname_wire, found[0],
    ))  # fmt: skip
    return Answer(data, (len(qname_wire) + 22,), found[1], rcode, ttl)


def blocked_null(query: Query, ttl: int) -> Answer:
    """The unspecified address: A -> 0.0.0.0, AAAA -> ::, any other type NODATA."""
    ttl = clamped_ttl(ttl)
    if query.qtype == wire.TYPE_A:
        return _message(query, wire.NOERROR, [_address(query, _IPV4_ANY, ttl)], [], ttl)
    if query.qtype == wire.TYPE_AAAA:
        return _message(query, wire.NOERROR, [_address(query, _IPV6_ANY, ttl)], [], ttl)
    return _message(query, wire.NOERROR, [], [_soa(query, ttl)], ttl)


def blocked_custom(
    query: Query, ips: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address | str], ttl: int
) -> Answer:
    """The configured addresses of the query's family (A: IPv4, AAAA: IPv6), in order.

    A type with no address of its family, or any other type, gets NODATA. Raises ValueError on
    an address that is not an IP address.
    """
    ttl = clamped_ttl(ttl)
    version = {wire.TYPE_A: 4, wire.TYPE_AAAA: 6}.get(query.qtype)
    records = []
    if version is not None:
        for text in ips:
            address = ipaddress.ip_address(text)
            if address.version == version:
                records.append(_address(query, address.packed, ttl))
    if not records:
        return _message(query, wire.NOERROR, [], [_soa(query, ttl)], ttl)
    return _message(query, wire.NOERROR, records, [], ttl)


def refused_answer(query: Query) -> Answer:
    """REFUSED with no records, echoing the question."""
    return error_answer(query, wire.REFUSED)
