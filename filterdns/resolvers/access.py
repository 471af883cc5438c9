"""The first link: who may use the resolver (ACL).

The ACL sits at the top of the chain so that nobody outside `server.allow_clients` ever reaches
the policy, the cache or an upstream: filterdns is never an open resolver. Outsiders get REFUSED
over TCP and nothing at all over UDP, whose source address may be forged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from filterdns.dns import wire
from filterdns.dns.addresses import canonical_ip
from filterdns.dns.model import Kind, Request, Response, error_answer
from filterdns.memo import Memo
from filterdns.resolvers.base import Link, Resolver

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_REMEMBERED = 65536


class AccessResolver(Link):
    """REFUSED for clients outside `allow_clients`; remembers each address's verdict."""

    def __init__(self, next_resolver: Resolver, allow_clients: Sequence[IPNetwork]) -> None:
        super().__init__(next_resolver)
        self.networks = tuple(allow_clients)
        self._verdicts: Memo[str, bool] = Memo(_MAX_REMEMBERED)
        self.refused = 0

    def allows(self, ip: str) -> bool:
        """Whether `ip` lies in one of the allowed networks (IPv4-mapped IPv6 counts as IPv4)."""
        verdict = self._verdicts.get(ip)
        if verdict is None:
            verdict = self._verdicts.remember(ip, self._check(ip))
        return verdict

    def _check(self, ip: str) -> bool:
        try:
            address = canonical_ip(ip)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def _refusal(self, request: Request) -> Response | None:
        if self.allows(request.client_ip):
            return None
        self.refused += 1
        # Over UDP the source may be forged: no reply at all, so the proxy can never be used to
        # reflect traffic at a victim. Over TCP the handshake proved it: REFUSED says why.
        return Response(
            Kind.REFUSED,
            error_answer(request.query, wire.REFUSED),
            reason=f"client {request.client_ip} is not in server.allow_clients",
            silent=request.protocol == "udp",
        )

    async def resolve(self, request: Request) -> Response:
        """Refuse strangers; pass everyone else on."""
        if self._verdicts.get(request.client_ip):  # an address seen and allowed: one lookup
            return await self.next.resolve(request)
        return self._refusal(request) or await self.next.resolve(request)

    def resolve_now(self, request: Request) -> Response | None:
        """Refuse strangers; ask the next link whether it has an answer ready."""
        if self._verdicts.get(request.client_ip):  # an address seen and allowed: one lookup
            return self.next.resolve_now(request)
        return self._refusal(request) or self.next.resolve_now(request)
