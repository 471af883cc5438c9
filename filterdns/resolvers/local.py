"""The local answers link: questions the proxy answers itself, without asking anyone.

Other opcodes than QUERY get NOTIMP, EDNS versions above 0 get BADVERS (RFC 6891 6.1.3), and ANY
gets one HINFO record (RFC 8482): nothing below the link ever sees those questions.
"""

from __future__ import annotations

from filterdns.dns import wire
from filterdns.dns.model import Kind, Request, Response, error_answer, minimal_any
from filterdns.resolvers.base import Link


class LocalAnswerResolver(Link):
    """Questions the proxy answers itself: other opcodes, EDNS versions above 0, ANY (RFC 8482)."""

    async def resolve(self, request: Request) -> Response:
        """Answer NOTIMP, BADVERS or a minimal ANY where due; pass the rest on."""
        if _ordinary(request.query):
            return await self.next.resolve(request)
        return _local(request) or await self.next.resolve(request)

    def resolve_now(self, request: Request) -> Response | None:
        """A local answer, or whatever the next link has ready."""
        if _ordinary(request.query):
            return self.next.resolve_now(request)
        return _local(request) or self.next.resolve_now(request)


def _ordinary(query: wire.Query) -> bool:
    """Whether none of the local answers can be due: opcode QUERY, EDNS version 0 or none (the
    parse gives version 0 without EDNS), a type other than ANY. What almost every query is."""
    return not (query.flags & _OPCODE or query.edns_version or query.qtype == wire.TYPE_ANY)


_OPCODE = 0x7800


def _local(request: Request) -> Response | None:
    """NOTIMP, BADVERS or a minimal ANY where due, else None."""
    query = request.query
    opcode = (query.flags >> 11) & 0xF
    if opcode != 0:
        return Response(
            Kind.LOCAL,
            error_answer(query, wire.NOTIMP),
            reason=f"opcode {opcode} is not implemented",
        )
    if query.edns and query.edns_version != 0:
        return Response(
            Kind.LOCAL,
            error_answer(query, wire.NOERROR),
            reason=f"EDNS version {query.edns_version} is not supported (BADVERS)",
            ext_rcode=wire.BADVERS >> 4,
        )
    if query.qtype == wire.TYPE_ANY:
        return minimal_any(query)
    return None
