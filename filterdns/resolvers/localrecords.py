"""The local records link: the names of `local_records:` answered by the proxy itself.

It sits below the client link (so the answer is counted and logged with the profile that asked)
and above the policy (decision order step 3: local records are answered as configured, for
every profile, before any blocking). Nothing below it, the upstreams least of all, is asked.
The answers are ready bytes (`policy.localzone.LocalZone`): a local answer costs about what a
cache hit costs.
"""

from __future__ import annotations

from filterdns.dns import wire
from filterdns.dns.model import Kind, Request, Response
from filterdns.policy.localzone import LocalZone
from filterdns.resolvers.base import Link, Resolver


class LocalRecordsResolver(Link):
    """Answers the local names; passes every other question on."""

    def __init__(self, next_resolver: Resolver, zone: LocalZone) -> None:
        super().__init__(next_resolver)
        self.zone = zone
        self._reasons: dict[str, str] = {}

    async def resolve(self, request: Request) -> Response:
        """The local answer, or the next link's."""
        return self._local(request) or await self.next.resolve(request)

    def resolve_now(self, request: Request) -> Response | None:
        """The local answer, or whatever the next link has ready."""
        return self._local(request) or self.next.resolve_now(request)

    def _local(self, request: Request) -> Response | None:
        query = request.query
        if query.qclass != wire.CLASS_IN:
            return None
        answer = self.zone.answer(query.qname, query.qtype)
        if answer is None:
            return None
        reason = self._reasons.get(query.qname)
        if reason is None:
            reason = f"local record {query.qname}: {self.zone.describe(query.qname)}"
            self._reasons[query.qname] = reason  # one per local name: bounded by the file
        return Response(Kind.LOCAL, answer, reason=reason, rule="local record")
