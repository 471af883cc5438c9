"""The values that travel along the resolver chain: Request in, Response out.

Answers are bytes handled by `wire`; the few synthetic records (RFC 8482 ANY) are small enough
to write by hand. dnslib, where a later link needs rich records, is imported here only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from filterdns import wire
from filterdns.wire import Answer, Query


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


@dataclass(frozen=True, slots=True)
class Request:
    """One client query as it enters the chain (immutable)."""

    query: Query
    client_ip: str
    client_port: int
    protocol: str  # "udp" or "tcp"
    received_at: float  # monotonic seconds
    profile: str | None = None
    client_name: str | None = None

    @property
    def limit(self) -> int:
        """The largest answer the client accepts over this transport."""
        if self.protocol == "tcp":
            return 65535
        return max(wire.MIN_UDP, min(self.query.udp_size, 65535)) if self.query.edns else 512


@dataclass(frozen=True, slots=True)
class Response:
    """The outcome of resolving one Request.

    `reason` is a sentence a parent can read ("gambling for profile minh, list
    blocklists/gambling.txt:812"); `ttl_cap` bounds every TTL of the answer (so a schedule change
    takes effect on time); `edns_options` are appended to the client's OPT record.
    """

    kind: Kind
    answer: Answer
    reason: str = ""
    category: str | None = None
    ttl_cap: int | None = None
    ext_rcode: int = 0
    edns_options: bytes = field(default=b"")
    upstream: str | None = None


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
    answer = wire.analyse(header + question + record)
    return Response(Kind.LOCAL, answer, reason="ANY answered minimally (RFC 8482)")
