"""Conditional forwarding: names under a local suffix go to their own servers.

`upstreams.conditional: {home.arpa: 192.168.1.1}` sends `printer.home.arpa` (and reverse lookups
of the LAN when its `in-addr.arpa` zone is listed) to the router, which knows the local names;
everything else goes on to the public upstreams. The longest matching suffix wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from filterdns.dns.model import Request, Response
from filterdns.dns.names import is_subdomain, normalize_name
from filterdns.resolvers.base import Link, Resolver

Route = tuple[str, Resolver]


class ConditionalResolver(Link):
    """Send names under a configured suffix to that suffix's resolver; the rest to `next`."""

    def __init__(self, next_resolver: Resolver, routes: Sequence[Route]) -> None:
        super().__init__(next_resolver)
        # Longest suffix first, so `lan.home.arpa` beats `home.arpa`.
        self.routes = sorted(
            ((normalize_name(suffix), resolver) for suffix, resolver in routes),
            key=lambda route: len(route[0]),
            reverse=True,
        )

    def route(self, name: str) -> Resolver:
        """The resolver responsible for `name` (a normalised text name)."""
        for suffix, resolver in self.routes:
            if is_subdomain(name, suffix):
                return resolver
        return self.next

    async def resolve(self, request: Request) -> Response:
        """Ask the resolver of the longest matching suffix, else pass the request on."""
        return await self.route(request.query.qname).resolve(request)
