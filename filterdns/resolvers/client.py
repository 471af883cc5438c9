"""The client link: who is asking decides the profile the policy below applies.

The source address is looked up in the `ClientDirectory` (a MAC rule through the neighbour
table, an exact ip rule, the longest CIDR, else the default profile), and the request goes on
with the profile and the client's name attached, for the policy, the metrics and the log.
"""

from __future__ import annotations

from filterdns.dns.model import Request, Response
from filterdns.policy.clients import ClientDirectory
from filterdns.resolvers.base import Link, Resolver


class ClientResolver(Link):
    """Attach the profile (and client name) of the asking address to the request."""

    def __init__(self, next_resolver: Resolver, directory: ClientDirectory) -> None:
        super().__init__(next_resolver)
        self.directory = directory

    def _identified(self, request: Request) -> Request:
        match = self.directory.match(request.client_ip)
        # Built directly: dataclasses.replace() inspects the fields on every call (hot path).
        return Request(
            request.query,
            request.client_ip,
            request.client_port,
            request.protocol,
            request.received_at,
            match.profile,
            match.name,
        )

    async def resolve(self, request: Request) -> Response:
        """Look the client up, then pass the request on with its profile."""
        return await self.next.resolve(self._identified(request))

    def resolve_now(self, request: Request) -> Response | None:
        """Look the client up; whatever the next link has ready for its profile."""
        return self.next.resolve_now(self._identified(request))
